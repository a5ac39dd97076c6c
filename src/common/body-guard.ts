import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { FastifyRequest } from 'fastify';
import type { Server } from 'node:http';
import { BodyTooDeepError, BodyTooManyKeysError, InvalidJsonError } from './errors.js';

/**
 * The JSON body parser for every route. Counts keys and depth right after parsing and before anything walks
 * the body (class-transformer is recursive and super-linear: 300k keys took 115 s, 2,000 levels blew the stack).
 */

export interface BodyBounds {
  maxKeys: number;
  maxDepth: number;
}

const PROTOTYPE_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/**
 * Iterative walk (no recursion, so no stack to overflow): stops at the first bound crossed. Array items count
 * as keys too, since a 5 MB array of numbers costs validation what a 5 MB object does.
 */
export function checkBodyShape(value: unknown, bounds: BodyBounds): void {
  if (typeof value !== 'object' || value === null) return;
  const stack: [unknown, number][] = [[value, 1]];
  let keys = 0;
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!;
    if (depth > bounds.maxDepth) throw new BodyTooDeepError(bounds.maxDepth);
    if (Array.isArray(node)) {
      keys += node.length;
      if (keys > bounds.maxKeys) throw new BodyTooManyKeysError(bounds.maxKeys);
      for (const item of node) if (typeof item === 'object' && item !== null) stack.push([item, depth + 1]);
      continue;
    }
    for (const key in node as Record<string, unknown>) {
      if (++keys > bounds.maxKeys) throw new BodyTooManyKeysError(bounds.maxKeys);
      // JSON.parse makes these own data properties; refused as Fastify's secure parser did, before any merge sees them.
      if (PROTOTYPE_KEYS.has(key)) throw new InvalidJsonError(`The JSON body contains the forbidden key '${key}'`);
      const child = (node as Record<string, unknown>)[key];
      if (typeof child === 'object' && child !== null) stack.push([child, depth + 1]);
    }
  }
}

/** `JSON.parse` plus the shape check; an empty body is no body (a POST without one is still served). */
export function parseJsonBody(text: string, bounds: BodyBounds): unknown {
  if (text.trim() === '') return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new InvalidJsonError(`Body is not valid JSON: ${(err as Error).message.slice(0, 200)}`);
  }
  checkBodyShape(value, bounds);
  return value;
}

/** Replaces the default JSON parser (which refuses an empty body and knows no key or depth bound). */
export function installJsonBodyParser(app: NestFastifyApplication, bodyLimit: number, bounds: BodyBounds): void {
  app.useBodyParser<Server>(
    'application/json',
    { bodyLimit },
    (_request: FastifyRequest, body: Buffer, done: (err: Error | null, body?: unknown) => void) => {
      try {
        done(null, parseJsonBody(body.toString('utf8'), bounds));
      } catch (err) {
        done(err as Error);
      }
    },
  );
}
