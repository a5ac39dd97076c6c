import type { ExecutionContext } from '@nestjs/common';
import { AdminGuard, ApiKeyGuard, tokensMatch } from '../../src/auth/auth.guards.js';
import { configFrom } from '../support/config.js';

function contextFor(remoteAddress: string, headers: Record<string, string> = {}): ExecutionContext {
  const request = { socket: { remoteAddress }, headers };
  return { switchToHttp: () => ({ getRequest: () => request }) } as unknown as ExecutionContext;
}

describe(AdminGuard.name, () => {
  it('without a token: loopback clients pass, others get 403 forbidden', () => {
    const sut = new AdminGuard(configFrom({}));
    expect(sut.canActivate(contextFor('127.0.0.1'))).toBe(true);
    expect(sut.canActivate(contextFor('::1'))).toBe(true);
    expect(sut.canActivate(contextFor('::ffff:127.0.0.1'))).toBe(true);
    expect(() => sut.canActivate(contextFor('192.168.1.20'))).toThrow(
      expect.objectContaining({ status: 403, code: 'forbidden' }),
    );
  });

  it('with a token: the bearer token is required even from loopback', () => {
    const sut = new AdminGuard(configFrom({ server: { admin_token: 's3cret-token' } }));
    expect(() => sut.canActivate(contextFor('127.0.0.1'))).toThrow(expect.objectContaining({ status: 401 }));
    expect(sut.canActivate(contextFor('10.0.0.9', { authorization: 'Bearer s3cret-token' }))).toBe(true);
  });
});

describe(ApiKeyGuard.name, () => {
  it('is open when no API key is configured', () => {
    expect(new ApiKeyGuard(configFrom({})).canActivate(contextFor('10.0.0.1'))).toBe(true);
  });

  it('accepts the key as a bearer token or x-api-key, refuses others with 401', () => {
    const sut = new ApiKeyGuard(configFrom({ server: { api_key: 'k-123' } }));
    expect(sut.canActivate(contextFor('10.0.0.1', { authorization: 'Bearer k-123' }))).toBe(true);
    expect(sut.canActivate(contextFor('10.0.0.1', { 'x-api-key': 'k-123' }))).toBe(true);
    expect(() => sut.canActivate(contextFor('10.0.0.1', { authorization: 'Bearer nope' }))).toThrow(
      expect.objectContaining({ status: 401 }),
    );
  });
});

describe(tokensMatch.name, () => {
  it('compares whole tokens', () => {
    expect(tokensMatch('abc', 'abc')).toBe(true);
    expect(tokensMatch('abc', 'abcd')).toBe(false);
    expect(tokensMatch('', 'abc')).toBe(false);
  });
});
