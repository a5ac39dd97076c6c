import { upstreamMessage } from '../../../src/providers/remote/json.js';

describe('upstreamMessage: what a client reads of an upstream error body', () => {
  it('takes OpenAI-style error.message, FastAPI detail and plain error strings', () => {
    expect(upstreamMessage(400, '{"error":{"message":"bad model","code":400}}')).toBe('HTTP 400: bad model');
    expect(upstreamMessage(422, '{"detail":"steps too high"}')).toBe('HTTP 422: steps too high');
    expect(upstreamMessage(400, '{"error":"prompt required"}')).toBe('HTTP 400: prompt required');
  });

  it('keeps the message next to an error code (sd-server: {"error":"server_error","message":…})', () => {
    const body = '{"error":"server_error","message":"[json.exception.parse_error.101] parse error"}';
    expect(upstreamMessage(500, body)).toBe('HTTP 500: server_error: [json.exception.parse_error.101] parse error');
  });

  it('falls back to an HTML title or the bare status', () => {
    expect(upstreamMessage(502, '<html><title>Bad Gateway</title></html>')).toBe('HTTP 502: Bad Gateway');
    expect(upstreamMessage(503, '')).toBe('HTTP 503');
  });
});
