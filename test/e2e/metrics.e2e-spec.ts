import { spawnSync } from 'node:child_process';
import { EVICTION_REASONS } from '../../src/metrics/metrics.service.js';
import { EvictionService } from '../../src/eviction/eviction.service.js';
import { BackendStartupService } from '../../src/models/backend-startup.service.js';
import { getJson, postJson, startApp, type RunningApp } from '../support/app-harness.js';
import { FakeClock } from '../support/fake-clock.js';
import { parseExposition, type PromFamily } from '../support/prom-parse.js';
import { ensureImageTestModels, TINY_LCM_DIR } from '../support/image-test-models.js';
import { ensureLlmTestModels, TINY_CHAT_GGUF } from '../support/llm-test-models.js';

const ADMIN = 'metrics-admin-token';
const admin = { authorization: `Bearer ${ADMIN}` };

async function scrape(url: string): Promise<{ text: string; families: Map<string, PromFamily> }> {
  const res = await fetch(`${url}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  const text = await res.text();
  const families = new Map<string, PromFamily>();
  // Keyed by the name as exposed: the parser reports counter families without `_total`.
  for (const f of parseExposition(text)) families.set(f.type === 'counter' ? `${f.name}_total` : f.name, f);
  return { text, families };
}

function family(families: Map<string, PromFamily>, name: string, type: PromFamily['type']): PromFamily {
  const f = families.get(name);
  if (!f) throw new Error(`${name} missing from the exposition`);
  expect({ name, type: f.type }).toEqual({ name, type });
  return f;
}

/** Label names of a family's series (without histogram `le`), as sorted lists. */
function labelKeys(f: PromFamily): string[][] {
  const keys = f.samples.map((s) =>
    JSON.stringify(
      Object.keys(s.labels)
        .filter((k) => k !== 'le')
        .sort(),
    ),
  );
  return [...new Set(keys)].map((k) => JSON.parse(k) as string[]);
}

/** Value of the sample named `suffix` (e.g. `_count`) whose labels include `labels`. */
function value(f: PromFamily, labels: Record<string, string>, sampleName = f.name): number | undefined {
  return f.samples.find((s) => s.name === sampleName && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    ?.value;
}

const count = (f: PromFamily, labels: Record<string, string>): number | undefined =>
  value(f, labels, `${f.name}_count`);
const total = (f: PromFamily, labels: Record<string, string>): number | undefined =>
  value(f, labels, `${f.name}_total`);

describe('GET /metrics (prom-client) after a chat, a stream, an image and an eviction', () => {
  let running: RunningApp;
  const clock = new FakeClock();
  let families: Map<string, PromFamily>;
  let text: string;

  beforeAll(async () => {
    await ensureLlmTestModels();
    await ensureImageTestModels();
    running = await startApp(
      {
        server: { admin_token: ADMIN },
        backends: [
          { name: 'llm', type: 'llama-cpp', threads: 1, models: [{ id: 'chat', path: TINY_CHAT_GGUF }] },
          { name: 'img', type: 'onnx-image', models: [{ id: 'lcm', path: TINY_LCM_DIR }] },
        ],
      },
      { clock },
    );
    await running.app.get(BackendStartupService).settled();
    const chat = await postJson(`${running.url}/v1/chat/completions`, {
      model: 'chat',
      messages: [{ role: 'user', content: 'hi' }],
      max_tokens: 5,
    });
    expect(chat.status).toBe(200);
    const stream = await fetch(`${running.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'chat', messages: [{ role: 'user', content: 'hi' }], max_tokens: 4, stream: true }),
    });
    expect(await stream.text()).toContain('data: [DONE]');
    const image = await postJson(`${running.url}/v1/images/generations`, {
      model: 'lcm',
      prompt: 'a red square',
      size: '64x64',
    });
    expect(image.status).toBe(200);
    expect((await getJson(`${running.url}/definitely/not/a/route`)).status).toBe(404);
    expect((await postJson(`${running.url}/api/models/chat/unload`, {}, admin)).status).toBe(200);
    ({ text, families } = await scrape(running.url));
  });
  afterAll(() => running.close());

  it('exposes default process and Node metrics', () => {
    family(families, 'process_resident_memory_bytes', 'gauge');
    family(families, 'process_cpu_seconds_total', 'counter');
    family(families, 'nodejs_eventloop_lag_seconds', 'gauge');
    family(families, 'nodejs_heap_size_used_bytes', 'gauge');
    family(families, 'nodejs_gc_duration_seconds', 'histogram');
  });

  it('times HTTP requests by route template, never by raw URL', () => {
    const f = family(families, 'modelplane_http_request_duration_seconds', 'histogram');
    expect(labelKeys(f)).toEqual([['method', 'route', 'status']]);
    const routes = new Set(f.samples.map((m) => m.labels.route));
    expect(routes).toContain('/v1/chat/completions');
    expect(routes).toContain('/api/models/:id/unload');
    expect(routes).toContain('unmatched');
    expect([...routes].some((r) => r?.includes('/chat/unload') || r?.includes('not/a/route'))).toBe(false);
    expect(count(f, { route: '/v1/chat/completions', method: 'POST', status: '200' })).toBe(2);
    expect(count(f, { route: 'unmatched', method: 'GET', status: '404' })).toBe(1);
  });

  it('counts requests, tokens and time to first token per model', () => {
    const requests = family(families, 'modelplane_requests_total', 'counter');
    expect(labelKeys(requests)).toEqual([['model', 'operation', 'outcome']]);
    expect(total(requests, { model: 'chat', operation: 'chatCompletion', outcome: 'ok' })).toBe(1);
    expect(total(requests, { model: 'chat', operation: 'chatCompletionStream', outcome: 'ok' })).toBe(1);
    expect(total(requests, { model: 'lcm', operation: 'generateImages', outcome: 'ok' })).toBe(1);

    const tokens = family(families, 'modelplane_tokens_total', 'counter');
    expect(labelKeys(tokens)).toEqual([['kind', 'model']]);
    // 5 from the plain chat's usage, 4 streamed chunks with text.
    expect(total(tokens, { model: 'chat', kind: 'completion' })).toBe(9);
    expect(total(tokens, { model: 'chat', kind: 'prompt' })).toBeGreaterThan(0);

    const ttft = family(families, 'modelplane_time_to_first_token_seconds', 'histogram');
    expect(labelKeys(ttft)).toEqual([['model']]);
    expect(count(ttft, { model: 'chat' })).toBe(2);
    expect(count(ttft, { model: 'lcm' })).toBeUndefined();
  });

  it('records model load durations and backend probe durations', () => {
    const loads = family(families, 'modelplane_model_load_duration_seconds', 'histogram');
    expect(count(loads, { model: 'chat' })).toBe(1);
    expect(count(loads, { model: 'lcm' })).toBe(1);
    const probes = family(families, 'modelplane_backend_probe_duration_seconds', 'histogram');
    expect(labelKeys(probes)).toEqual([['backend', 'result']]);
    expect(count(probes, { backend: 'llm', result: 'ok' })).toBeGreaterThan(0);
  });

  it('counts evictions by a closed set of reasons, with every reason present from the start', () => {
    const f = family(families, 'modelplane_evictions_total', 'counter');
    const reasons = f.samples.filter((s) => s.name === 'modelplane_evictions_total').map((s) => s.labels.reason);
    expect(reasons.sort()).toEqual([...EVICTION_REASONS].sort());
    expect(total(f, { reason: 'admin' })).toBe(1);
    expect(total(f, { reason: 'idle' })).toBe(0);
  });

  it('projects readiness and loaded state from the same snapshot /api/models/loaded serves', async () => {
    const loaded = family(families, 'modelplane_model_loaded', 'gauge');
    expect(value(loaded, { model: 'chat' })).toBe(0);
    expect(value(loaded, { model: 'lcm' })).toBe(1);
    const listed = await getJson(`${running.url}/api/models/loaded`);
    expect(listed.body.loaded.map((m: { name: string }) => m.name)).toEqual(['lcm']);
    const readiness = family(families, 'modelplane_backend_readiness', 'gauge');
    expect(value(readiness, { backend: 'llm', readiness: 'ready' })).toBe(1);
    family(families, 'modelplane_readiness', 'gauge');
    family(families, 'modelplane_model_in_flight', 'gauge');
    family(families, 'modelplane_requests_in_flight', 'gauge');
  });

  it('is accepted by promtool check metrics (Debian package prometheus; .ci/run installs it)', () => {
    const result = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    if (result.error) throw new Error(`promtool not runnable (apt-get install -y prometheus): ${result.error.message}`);
    expect({ status: result.status, output: `${result.stdout}${result.stderr}`.trim() }).toEqual({
      status: 0,
      output: '',
    });
  });
});

describe('modelplane_evictions_total counts idle and budget evictions under their reasons', () => {
  let running: RunningApp;
  const clock = new FakeClock();

  beforeAll(async () => {
    await ensureLlmTestModels();
    running = await startApp(
      {
        // The sweeper's own timer never fires in the test: the test ticks it after moving the clock.
        eviction: { idle_unload_s: 30, check_interval_s: 3600, max_loaded_models: 1 },
        backends: [
          {
            name: 'llm',
            type: 'llama-cpp',
            threads: 1,
            models: [
              { id: 'first', path: TINY_CHAT_GGUF },
              { id: 'second', path: TINY_CHAT_GGUF },
            ],
          },
        ],
      },
      { clock },
    );
    await running.app.get(BackendStartupService).settled();
  });
  afterAll(() => running.close());

  const chat = async (model: string): Promise<void> => {
    const res = await postJson(`${running.url}/v1/chat/completions`, {
      model,
      messages: [{ role: 'user', content: 'hi' }],
      max_tokens: 1,
    });
    expect(res.status).toBe(200);
  };
  const evictions = async (): Promise<Record<string, number | undefined>> => {
    const f = family((await scrape(running.url)).families, 'modelplane_evictions_total', 'counter');
    return Object.fromEntries(EVICTION_REASONS.map((reason) => [reason, total(f, { reason })]));
  };

  it('a load past max_loaded_models: 1 evicts the other model as reason="budget"', async () => {
    await chat('first');
    expect(await evictions()).toEqual({ idle: 0, admin: 0, budget: 0, shutdown: 0, other: 0 });
    await chat('second');
    const listed = await getJson(`${running.url}/api/models/loaded`);
    expect(listed.body.loaded.map((m: { name: string }) => m.name)).toEqual(['second']);
    expect(await evictions()).toEqual({ idle: 0, admin: 0, budget: 1, shutdown: 0, other: 0 });
  });

  it('a model idle past idle_unload_s is swept as reason="idle"', async () => {
    clock.advance(29_000);
    expect(await running.app.get(EvictionService).tick()).toEqual([]);
    expect((await evictions()).idle).toBe(0);
    clock.advance(1_000);
    expect(await running.app.get(EvictionService).tick()).toEqual([
      expect.objectContaining({ model: 'second', was_loaded: true, reason_code: 'idle' }),
    ]);
    expect(await evictions()).toEqual({ idle: 1, admin: 0, budget: 1, shutdown: 0, other: 0 });
  });
});
