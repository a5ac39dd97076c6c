import { type CanActivate, type ExecutionContext, Inject, Injectable } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { createHash, timingSafeEqual } from 'node:crypto';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { ForbiddenError, UnauthorizedError } from '../common/errors.js';

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

/** Headers a reverse proxy adds; their presence means the loopback peer is relaying someone else. */
const PROXY_HEADERS = ['forwarded', 'x-forwarded-for', 'x-real-ip'] as const;

export function proxiedVia(request: FastifyRequest): string | null {
  return PROXY_HEADERS.find((h) => request.headers[h] !== undefined) ?? null;
}

const LOOPBACK = new Set(['127.0.0.1', '::1', '::ffff:127.0.0.1']);

export function isLoopback(address: string | undefined): boolean {
  return address !== undefined && (LOOPBACK.has(address) || address.startsWith('127.'));
}

/**
 * Admin routes: `Authorization: Bearer <admin token>`; with no token configured, loopback clients only
 * (unlike the upstream rknn-sd server, an unload must never be open to the network). A loopback request that
 * carries proxy headers is refused too: any reverse proxy on the same host would otherwise open admin to the
 * world. Behind a proxy, set the token.
 */
@Injectable()
export class AdminGuard implements CanActivate {
  constructor(@Inject(APP_CONFIG) private readonly config: AppConfig) {}

  canActivate(context: ExecutionContext): boolean {
    const request = context.switchToHttp().getRequest<FastifyRequest>();
    const expected = this.config.server.adminToken;
    if (expected === null) {
      const proxy = proxiedVia(request);
      if (proxy !== null) {
        throw new ForbiddenError(
          `Admin routes without MODELPLANE_ADMIN_TOKEN answer direct loopback clients only; this request came through a proxy (${proxy} header)`,
        );
      }
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
    checkApiKey(context.switchToHttp().getRequest<FastifyRequest>(), this.config.server.apiKey);
    return true;
  }
}

export function checkApiKey(request: FastifyRequest, expected: string | null): void {
  if (expected === null) return;
  const header = request.headers['x-api-key'];
  const given = bearerToken(request) ?? (typeof header === 'string' ? header : null);
  if (given === null || !tokensMatch(given, expected)) throw new UnauthorizedError('A valid API key is required');
}

/**
 * The same check as an onRequest hook on /v1/*: guards run after the body is parsed, so without it a client
 * without the key learned whether its body was valid JSON, too large or too deep before hearing 401.
 */
export function apiKeyOnRequest(expected: string | null): (request: FastifyRequest) => Promise<void> {
  return async (request) => {
    if (expected === null || !(request.url === '/v1' || request.url.startsWith('/v1/'))) return;
    checkApiKey(request, expected);
  };
}
