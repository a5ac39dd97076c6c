/**
 * Probe-driven readiness of remote backends, through the real app over HTTP: N consecutive failed
 * probes make a backend unavailable (its models refused with 503 + Retry-After, nothing sent upstream),
 * the next good probe brings it back, and every transition is on GET /api/events. A llama-server that
 * is still loading its model is not admitted.
 */
import { BackendStartupService } from '../../src/models/backend-startup.service.js';
import { getJson, observeNow, postJson, startApp, type RunningApp } from '../support/app-harness.js';
import { FakeClock } from '../support/fake-clock.js';
import { waitFor } from '../support/wait-for.js';
import { type FakeLlamaServer, startFakeLlamaServer } from '../support/fakes/index.js';

/** A JSON body as the harness returns it (untyped on purpose: assertions say what it holds). */
type Json = Awaited<ReturnType<typeof getJson>>['body'];

const NO_BACKGROUND = 3_600_000;
// Generous: init's own probe must not time out on a busy 2-core machine.
const PROBE_TIMEOUT_MS = 1000;
const chat = (model: string) => ({ model, messages: [{ role: 'user', content: 'hello' }] });

/** Reads GET /api/events?since=0 (history replay, then live) until `done` holds or the time is up. */
async function eventsUntil(url: string, done: (events: Json[]) => boolean, timeoutMs = 5000): Promise<Json[]> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  const events: Json[] = [];
  try {
    const res = await fetch(`${url}/api/events?since=0`, { signal: abort.signal });
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    for (;;) {
      const { value, done: ended } = await reader.read();
      if (ended) break;
      buffer += decoder.decode(value, { stream: true });
      let end: number;
      while ((end = buffer.indexOf('\n\n')) !== -1) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = block.split('\n').find((line) => line.startsWith('data: '));
        if (data) events.push(JSON.parse(data.slice('data: '.length)));
      }
      if (done(events)) break;
    }
  } catch {
    // time is up: return what arrived so the assertion shows it
  } finally {
    clearTimeout(timer);
    abort.abort();
  }
  return events;
}

describe('remote readiness follows probes: failure threshold, refusal, recovery', () => {
  let clock: FakeClock;
  let llama: FakeLlamaServer;
  let running: RunningApp;

  const health = async (): Promise<Json> => (await getJson(`${running.url}/health`)).body;
  /**
   * One poll = one observation, a second later. The probe deadline is on the clock: for a hung backend the poll
   * moves it past probe_timeout_ms once the probe waits on it, so no machine is too slow for the healthy case.
   */
  const poll = async (hung = false): Promise<Json> => {
    clock.advance(1000);
    const observing = observeNow(running);
    if (hung) {
      await waitFor(() => clock.pendingDelays > 0, 'the probe to wait on its deadline');
      clock.advance(PROBE_TIMEOUT_MS);
    }
    await observing;
    const res = await getJson(`${running.url}/api/models/loaded`);
    expect(res.status).toBe(200);
    return res.body.backends.find((b: { name: string }) => b.name === 'llama');
  };

  beforeAll(async () => {
    clock = new FakeClock();
    llama = await startFakeLlamaServer({ model: 'qwen.gguf', reply: 'hi there' });
    running = await startApp(
      {
        backends: [
          {
            name: 'llama',
            type: 'llama-server',
            url: llama.url,
            probe_timeout_ms: PROBE_TIMEOUT_MS,
            probe_cache_ms: 1000,
            probe_interval_ms: NO_BACKGROUND,
            failure_threshold: 3,
            models: [{ id: 'chat', upstream: 'qwen.gguf' }],
          },
        ],
      },
      { clock },
    );
    await running.app.get(BackendStartupService).settled();
  });
  afterAll(async () => {
    await running.close();
    await llama.close();
  });

  it('stays ready through fewer than failure_threshold failed probes, then goes unavailable with the error', async () => {
    const before = await health();
    expect(before.backends.llama).toMatchObject({ readiness: 'ready', reason: null, backend_initialized: true });
    expect((await postJson(`${running.url}/v1/chat/completions`, chat('chat'))).status).toBe(200);
    // The chat made us observe the backend; let that finish before it starts hanging.
    await observeNow(running);

    llama.setHang(true);
    for (let i = 1; i <= 2; i++) {
      expect(await poll(true)).toMatchObject({ reachable: false, readiness: 'ready' });
      // One lost probe is not an outage.
      expect((await health()).backends.llama.readiness).toBe('ready');
    }
    expect(await poll(true)).toMatchObject({
      reachable: false,
      readiness: 'unavailable',
      reason: `probe timed out after ${PROBE_TIMEOUT_MS} ms`,
    });
    const after = await health();
    expect(after.backends.llama).toMatchObject({
      readiness: 'unavailable',
      reason: `probe timed out after ${PROBE_TIMEOUT_MS} ms`,
    });
    expect(after.backends.llama.last_transition_ms).toBeGreaterThan(before.backends.llama.last_transition_ms);
    expect(after).toMatchObject({ status: 'unavailable', readiness: 'unavailable' });
    expect((await getJson(`${running.url}/health/ready`)).status).toBe(503);
    // Liveness never depends on a backend.
    expect((await getJson(`${running.url}/health/live`)).status).toBe(200);
  });

  it('refuses requests for its models with 503 backend_unavailable + Retry-After, sending nothing upstream', async () => {
    const sent = llama.hits('POST /v1/chat/completions');
    const res = await postJson(`${running.url}/v1/chat/completions`, chat('chat'));
    expect(res.status).toBe(503);
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(res.body.error).toMatchObject({
      code: 'backend_unavailable',
      type: 'unavailable_error',
      backend: 'llama',
      readiness: 'unavailable',
      reason: `probe timed out after ${PROBE_TIMEOUT_MS} ms`,
    });
    expect(llama.hits('POST /v1/chat/completions')).toBe(sent);
  });

  it('recovers on the next good probe and serves again; both transitions are on /api/events', async () => {
    llama.setHang(false);
    expect(await poll()).toMatchObject({ reachable: true, readiness: 'ready', reason: null, error: null });
    expect((await health()).backends.llama).toMatchObject({ readiness: 'ready', reason: null });
    expect((await getJson(`${running.url}/health/ready`)).status).toBe(200);
    const res = await postJson(`${running.url}/v1/chat/completions`, chat('chat'));
    expect(res.status).toBe(200);
    expect(res.body.choices[0].message.content).toBe('hi there');

    const events = await eventsUntil(running.url, (es) =>
      es.some(
        (e) => e.type === 'backend.transition' && e.backend === 'llama' && e.to === 'ready' && e.from === 'unavailable',
      ),
    );
    const transitions = events.filter((e) => e.type === 'backend.transition' && e.backend === 'llama');
    const down = transitions.findLastIndex((e) => e.from === 'ready' && e.to === 'unavailable');
    const up = transitions.findLastIndex((e) => e.from === 'unavailable' && e.to === 'ready');
    expect(down).toBeGreaterThanOrEqual(0);
    expect(transitions[down]!.reason).toBe(`probe timed out after ${PROBE_TIMEOUT_MS} ms`);
    expect(up).toBeGreaterThan(down);
    expect(typeof transitions[up]!.seq).toBe('number');
  });
});

describe('llama-server (single model) still loading its model', () => {
  let clock: FakeClock;
  let llama: FakeLlamaServer;
  let running: RunningApp;

  beforeAll(async () => {
    clock = new FakeClock();
    llama = await startFakeLlamaServer({ model: 'qwen.gguf', loading: true, reply: 'ready now' });
    running = await startApp(
      {
        backends: [
          {
            name: 'llama',
            type: 'llama-server',
            url: llama.url,
            probe_cache_ms: 1000,
            probe_interval_ms: NO_BACKGROUND,
            models: [{ id: 'chat', upstream: 'qwen.gguf' }],
          },
        ],
      },
      { clock },
    );
    await running.app.get(BackendStartupService).settled();
  });
  afterAll(async () => {
    await running.close();
    await llama.close();
  });

  it('is not ready from the start, and its model is neither loaded nor admitted', async () => {
    const health = (await getJson(`${running.url}/health`)).body;
    expect(health.backends.llama.readiness).not.toBe('ready');
    expect(health.backends.llama.reason).toMatch(/loading model/i);

    const loaded = (await getJson(`${running.url}/api/models/loaded`)).body;
    expect(loaded.loaded).toEqual([]);
    expect(loaded.backends[0]).toMatchObject({ name: 'llama', reachable: true, readiness: 'unavailable' });
    const catalog = (await getJson(`${running.url}/api/models`)).body.models;
    expect(catalog.find((m: { id: string }) => m.id === 'chat')).toMatchObject({ state: 'loading' });

    const res = await postJson(`${running.url}/v1/chat/completions`, chat('chat'));
    expect(res.status).toBe(503);
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(res.body.error).toMatchObject({ code: 'backend_unavailable', backend: 'llama' });
    expect(res.body.error.reason).toMatch(/loading model/i);
    expect(llama.hits('POST /v1/chat/completions')).toBe(0);
  });

  it('becomes ready and serves once the model has loaded (next probe)', async () => {
    llama.setLoading(false);
    await observeNow(running);
    const loaded = (await getJson(`${running.url}/api/models/loaded`)).body;
    expect(loaded.loaded.map((m: { name: string }) => m.name)).toEqual(['chat']);
    expect(loaded.backends[0]).toMatchObject({ readiness: 'ready', reason: null });
    const res = await postJson(`${running.url}/v1/chat/completions`, chat('chat'));
    expect(res.status).toBe(200);
    expect(res.body.choices[0].message.content).toBe('ready now');
  });
});
