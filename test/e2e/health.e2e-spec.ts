import { getJson, startApp, type RunningApp } from '../support/app-harness.js';

describe('health routes (no backends)', () => {
  let running: RunningApp;
  beforeAll(async () => {
    running = await startApp({ backends: [] });
  });
  afterAll(() => running.close());

  it('GET /health/live answers 200 in the terminus shape', async () => {
    const res = await getJson(`${running.url}/health/live`);
    expect(res.status).toBe(200);
    expect(res.body.status).toBe('ok');
  });

  it('GET /health/ready is 200 with no backends (aggregate ready)', async () => {
    const res = await getJson(`${running.url}/health/ready`);
    expect(res.status).toBe(200);
    expect(res.body.details.service).toMatchObject({ status: 'up', readiness: 'ready' });
  });

  it('GET /health is the full snapshot with status mirroring readiness', async () => {
    const res = await getJson(`${running.url}/health`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      service: 'modelplane',
      status: 'ready',
      readiness: 'ready',
      reason: null,
      backend_initialized: true,
    });
    expect(typeof res.body.timestamp_ms).toBe('number');
    expect(typeof res.body.last_transition_ms).toBe('number');
    expect(res.body.bus).toMatchObject({ enabled: false, connected: false });
  });
});

describe('error envelope', () => {
  let running: RunningApp;
  beforeAll(async () => {
    running = await startApp({ backends: [] });
  });
  afterAll(() => running.close());

  it('unknown routes get 404 in the envelope with a generated request id echoed', async () => {
    const res = await getJson(`${running.url}/nope`);
    expect(res.status).toBe(404);
    expect(res.body.error).toMatchObject({ code: 'not_found', type: 'not_found_error' });
    expect(res.body.error.request_id).toBe(res.headers.get('x-request-id'));
    expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('echoes a client x-request-id', async () => {
    const res = await getJson(`${running.url}/nope`, { headers: { 'x-request-id': 'trace-42' } });
    expect(res.headers.get('x-request-id')).toBe('trace-42');
    expect(res.body.error.request_id).toBe('trace-42');
  });

  it('bad JSON gets 400 in the envelope', async () => {
    const res = await getJson(`${running.url}/health`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"model": ',
    });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('invalid_json');
    expect(res.body.error.message).not.toMatch(/at .*\.js:\d+/);
  });
});

describe('body limits', () => {
  let running: RunningApp;
  beforeAll(async () => {
    running = await startApp({ server: { body_limit_bytes: 2048 }, backends: [] });
  });
  afterAll(() => running.close());

  it('a body over server.body_limit_bytes gets 413 payload_too_large in the envelope', async () => {
    const res = await getJson(`${running.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'x', messages: [{ role: 'user', content: 'y'.repeat(5000) }] }),
    });
    expect(res.status).toBe(413);
    expect(res.body.error.code).toBe('payload_too_large');
  });
});
