/**
 * Structured logs as an operator reads them: JSON lines, one access line per request with route,
 * status, model and duration, every line of a request carrying its req_id, no secrets.
 * One app per file: nestjs-pino keeps one root logger per process (see src/logging/logging.ts).
 */
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { Writable } from 'node:stream';
import { createApp } from '../../src/app.factory.js';
import { BackendStartupService } from '../../src/models/backend-startup.service.js';
import { configFrom } from '../support/config.js';
import { ensureLlmTestModels, TINY_CHAT_GGUF } from '../support/llm-test-models.js';

const ADMIN = 'logging-admin-token-123';
const API_KEY = 'logging-api-key-456';

class Lines extends Writable {
  readonly text: string[] = [];
  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    this.text.push(...chunk.toString('utf8').split('\n').filter(Boolean));
    done();
  }
  json(): Record<string, unknown>[] {
    return this.text.map((l) => JSON.parse(l) as Record<string, unknown>);
  }
}

describe('JSON logs with request ids (nestjs-pino)', () => {
  const lines = new Lines();
  let app: NestFastifyApplication;
  let url: string;

  beforeAll(async () => {
    await ensureLlmTestModels();
    const config = configFrom({
      server: { host: '127.0.0.1', port: 0, admin_token: ADMIN, api_key: API_KEY },
      log_format: 'json',
      backends: [
        { name: 'llm', type: 'llama-cpp', threads: 1, models: [{ id: 'chat', path: TINY_CHAT_GGUF, preload: true }] },
      ],
    });
    app = await createApp(config, { logStream: lines });
    await app.listen({ host: '127.0.0.1', port: 0 });
    await app.get(BackendStartupService).settled();
    url = `http://127.0.0.1:${(app.getHttpServer().address() as { port: number }).port}`;
  });
  afterAll(() => app.close());

  it('writes every line as JSON with level, time and message', () => {
    expect(lines.text.length).toBeGreaterThan(0);
    for (const line of lines.json()) {
      expect(line).toMatchObject({ service: 'modelplane' });
      expect(typeof line.level).toBe('string');
      expect(typeof line.time).toBe('string');
      expect(typeof line.msg).toBe('string');
    }
  });

  it('writes one access line per request with route template, status, model and duration, under its req_id', async () => {
    const res = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-request-id': 'trace-chat-1',
        authorization: `Bearer ${API_KEY}`,
      },
      body: JSON.stringify({ model: 'chat', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-request-id')).toBe('trace-chat-1');
    const access = lines.json().filter((l) => l.msg === 'request completed' && l.req_id === 'trace-chat-1');
    expect(access).toHaveLength(1);
    expect(access[0]).toMatchObject({
      method: 'POST',
      route: '/v1/chat/completions',
      status: 200,
      model: 'chat',
      level: 'info',
    });
    expect(typeof access[0]!.duration_ms).toBe('number');
  });

  it('tags lines written while handling a request with that request id', async () => {
    const res = await fetch(`${url}/api/models/chat/unload`, {
      method: 'POST',
      headers: { 'x-request-id': 'trace-unload-1', authorization: `Bearer ${ADMIN}` },
    });
    expect(res.status).toBe(200);
    const ofRequest = lines.json().filter((l) => l.req_id === 'trace-unload-1');
    // The provider's and the lifecycle's own lines, then the access line.
    expect(ofRequest.filter((l) => String(l.msg).startsWith("unloaded 'chat'")).length).toBeGreaterThanOrEqual(1);
    expect(ofRequest.at(-1)).toMatchObject({ msg: 'request completed', route: '/api/models/:id/unload', status: 200 });
  });

  it('a generated id is logged when the client sends none, and equals the x-request-id answered', async () => {
    // (/health/live is answered before routing and writes no access line: probes would drown the log.)
    const res = await fetch(`${url}/health`);
    const id = res.headers.get('x-request-id');
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    expect(lines.json().filter((l) => l.req_id === id && l.route === '/health')).toHaveLength(1);
  });

  it('logs 4xx at warn with the route template, and never writes tokens or keys', async () => {
    const res = await fetch(`${url}/api/models/chat/unload`, {
      method: 'POST',
      headers: { 'x-request-id': 'trace-denied', authorization: 'Bearer wrong-token-789', 'x-api-key': API_KEY },
    });
    expect(res.status).toBe(401);
    expect(lines.json().find((l) => l.req_id === 'trace-denied')).toMatchObject({ level: 'warn', status: 401 });
    const all = lines.text.join('\n');
    for (const secret of [ADMIN, API_KEY, 'wrong-token-789']) expect(all).not.toContain(secret);
  });
});
