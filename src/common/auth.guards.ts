import { type CanActivate, type ExecutionContext, Inject, Injectable } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { createHash, timingSafeEqual } from 'node:crypto';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { ForbiddenError, UnauthorizedError } from './errors.js';

/** Constant-time comparison; hashing first makes the lengths equal so length is not leaked either. */
export function tokensMatch(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

export function bearerToken(request: FastifyRequest): string | null {
  const header = request.headers.authorization;
  if (typeof header !== 'string') return null;
  const match = /^Bearer\s+(.+)$/i.exec(header.trim());
  // (.+) always captures when the pattern matches.
  return match ? match[1]!.trim() : null;
}

const LOOPBACK = new Set(['127.0.0.1', '::1', '::ffff:127.0.0.1']);

export function isLoopback(address: string | undefined): boolean {
  return address !== undefined && (LOOPBACK.has(address) || address.startsWith('127.'));
}

/**
 * Admin routes: `Authorization: Bearer <admin token>`; with no token configured, loopback clients only
 * (unlike the upstream rknn-sd server, an unload must never be open to the network).
 */
@Injectable()
export class AdminGuard implements CanActivate {
  constructor(@Inject(APP_CONFIG) private readonly config: AppConfig) {}

  canActivate(context: ExecutionContext): boolean {
    const request = context.switchToHttp().getRequest<FastifyRequest>();
    const expected = this.config.server.adminToken;
    if (expected === null) {
      if (isLoopback(request.socket.remoteAddress)) return true;
      throw new ForbiddenError('Admin routes answer only loopback clients when no MODELPLANE_ADMIN_TOKEN is set');
    }
    const given = bearerToken(request);
    if (given === null || !tokensMatch(given, expected))
      throw new UnauthorizedError('A valid admin bearer token is required');
    return true;
  }
}

/** Inference routes: optional API key (`MODELPLANE_API_KEY`), as Bearer token or `x-api-key`. */
@Injectable()
export class ApiKeyGuard implements CanActivate {
  constructor(@Inject(APP_CONFIG) private readonly config: AppConfig) {}

  canActivate(context: ExecutionContext): boolean {
    const expected = this.config.server.apiKey;
    if (expected === null) return true;
    const request = context.switchToHttp().getRequest<FastifyRequest>();
    const header = request.headers['x-api-key'];
    const given = bearerToken(request) ?? (typeof header === 'string' ? header : null);
    if (given === null || !tokensMatch(given, expected)) throw new UnauthorizedError('A valid API key is required');
    return true;
  }
}
