/**
 * Truthful model reporting against remote backends (fakes on loopback), through the real app over HTTP:
 * `/api/models/loaded` lists only what each backend's own load-state signal says is in memory, every
 * backend is listed in `backends[]` whether it answers or not, and N pollers cost a backend one probe.
 */
import { BackendStartupService } from '../../src/models/backend-startup.service.js';
import { getJson, observeNow, postJson, startApp, type RunningApp } from '../support/app-harness.js';
import { FakeClock } from '../support/fake-clock.js';
import {
  closedPortUrl,
  type FakeOllama,
  type FakeOpenAi,
  type FakeRknnSd,
  type FakeSdCpp,
  type PathologicalServer,
  startFakeOllama,
  startFakeOpenAi,
  startFakeRknnSd,
  startFakeSdCpp,
  startHtmlErrorServer,
  startHungServer,
} from '../support/fakes/index.js';

/** A JSON body as the harness returns it (untyped on purpose: assertions say what it holds). */
type Json = Awaited<ReturnType<typeof getJson>>['body'];

const MB = 1024 * 1024;
/** No background probes during a test: the polls below decide when a backend is probed. */
const NO_BACKGROUND = 3_600_000;
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

interface Loaded {
  loaded: Json[];
  backends: Json[];
}

async function loaded(url: string): Promise<Loaded> {
  const res = await getJson(`${url}/api/models/loaded`, { headers: { accept: 'application/json' } });
  expect(res.status).toBe(200);
  return res.body as Loaded;
}

async function catalogEntry(url: string, id: string): Promise<Json> {
  const res = await getJson(`${url}/api/models`);
  expect(res.status).toBe(200);
  const entry = res.body.models.find((m: { id: string }) => m.id === id);
  expect(entry).toBeDefined();
  return entry;
}

const names = (body: Loaded): string[] => body.loaded.map((m) => m.name as string).sort();

describe('GET /api/models/loaded lists only what backends say is in memory', () => {
  let clock: FakeClock;
  let rknn: FakeRknnSd;
  let sdcpp: FakeSdCpp;
  let ollama: FakeOllama;
  let vllm: FakeOpenAi;
  let running: RunningApp;

  beforeAll(async () => {
    clock = new FakeClock();
    rknn = await startFakeRknnSd({ pipelineLoaded: false, idleSeconds: 0 });
    sdcpp = await startFakeSdCpp();
    ollama = await startFakeOllama({
      models: [{ name: 'qwen2.5:0.5b' }, { name: 'nomic-embed-text', family: 'nomic-bert' }],
    });
    ollama.addLoadedModel('qwen2.5:0.5b', {
      size: 1000 * MB,
      sizeVram: 600 * MB,
      expiresAt: '2026-11-22T12:05:00.000Z',
    });
    vllm = await startFakeOpenAi({ models: ['Qwen/Qwen2.5-0.5B-Instruct'] });
    const common = { probe_cache_ms: 1000, probe_interval_ms: NO_BACKGROUND };
    running = await startApp(
      {
        eviction: { idle_unload_s: 300, check_interval_s: 3600 },
        backends: [
          { name: 'npu', type: 'rknn-sd', url: rknn.url, ...common },
          {
            name: 'sdcpp',
            type: 'sd-cpp',
            url: sdcpp.url,
            ...common,
            models: [{ id: 'sd15', upstream: 'sd-v1-5-pruned-emaonly' }],
          },
          {
            name: 'ollama',
            type: 'ollama',
            url: ollama.url,
            ...common,
            models: [{ id: 'qwen', upstream: 'qwen2.5:0.5b', idle_unload_s: 120, purpose: 'chat' }],
          },
          { name: 'vllm', type: 'openai', url: vllm.url, ...common },
        ],
      },
      { clock },
    );
    await running.app.get(BackendStartupService).settled();
  });
  afterAll(async () => {
    await running.close();
    await Promise.all([rknn.close(), sdcpp.close(), ollama.close(), vllm.close()]);
  });

  it('rknn-sd: served by /v1/models but pipeline not loaded → not listed, catalog state unloaded', async () => {
    // The server itself lists the model as servable...
    const upstreamList = await getJson(`${rknn.url}/v1/models`);
    expect(upstreamList.body.data.map((m: { id: string }) => m.id)).toEqual([rknn.model]);

    // ...which is not what is in memory.
    expect(names(await loaded(running.url))).not.toContain(rknn.model);
    expect(await catalogEntry(running.url, rknn.model)).toMatchObject({
      backend: 'npu',
      backend_type: 'rknn-sd',
      purpose: 'image-generation',
      state: 'unloaded',
      observed_state: 'unloaded',
    });
  });

  it('rknn-sd: once the pipeline loads it is listed after the next observation, with the backend idle time', async () => {
    rknn.setPipelineLoaded(true);
    rknn.setIdleSeconds(42);
    expect(names(await loaded(running.url))).not.toContain(rknn.model);
    await observeNow(running);

    const body = await loaded(running.url);
    const entry = body.loaded.find((m) => m.name === rknn.model);
    expect(entry).toMatchObject({
      backend: 'npu',
      backend_type: 'rknn-sd',
      backend_url: rknn.url,
      purpose: 'image-generation',
      host: '127.0.0.1',
      observed_via: 'GET /health pipeline_loaded',
      observed_state: 'loaded',
      idle_seconds: 42,
      idle_unload_threshold_s: 300,
      unloads_in_s: 258,
      in_flight: 0,
      pinned: false,
      drift: false,
    });
    expect((await catalogEntry(running.url, rknn.model)).state).toBe('loaded');

    rknn.setPipelineLoaded(false);
    await observeNow(running);
    expect(names(await loaded(running.url))).not.toContain(rknn.model);
  });

  it('sd-cpp: in the catalog as unknown, never in the loaded list (not even after serving an image)', async () => {
    expect(await catalogEntry(running.url, 'sd15')).toMatchObject({
      backend: 'sdcpp',
      backend_type: 'sd-cpp',
      state: 'unknown',
      observed_state: 'unknown',
      purpose: 'image-generation',
    });
    const image = await postJson(`${running.url}/v1/images/generations`, { model: 'sd15', prompt: 'a cat', n: 1 });
    expect(image.status).toBe(200);
    await observeNow(running);
    expect(names(await loaded(running.url))).not.toContain('sd15');
    expect((await catalogEntry(running.url, 'sd15')).state).toBe('unknown');
    expect((await getJson(`${running.url}/health`)).body.models.sd15.state).toBe('unknown');
  });

  it('ollama: /api/ps entries carry the Models-app fields, sizes split into VRAM and RAM', async () => {
    await observeNow(running);
    clock.advance(250);
    const body = await loaded(running.url);
    const entry = body.loaded.find((m) => m.name === 'qwen');
    expect(entry).toEqual({
      name: 'qwen',
      backend: 'ollama',
      backend_type: 'ollama',
      backend_url: ollama.url,
      upstream: 'qwen2.5:0.5b',
      purpose: 'chat',
      size_mb: 1000,
      vram_mb: 600,
      ram_mb: 400,
      expires_at: '2026-11-22T12:05:00.000Z',
      details: expect.objectContaining({
        format: 'gguf',
        family: 'qwen2',
        parameter_size: '494.03M',
        quantization_level: 'Q4_K_M',
      }),
      host: '127.0.0.1',
      loaded_at: null,
      idle_seconds: null,
      idle_unload_threshold_s: 120,
      unloads_in_s: null,
      in_flight: 0,
      queued: 0,
      pinned: false,
      observed_via: 'GET /api/ps',
      observed_at: expect.stringMatching(ISO),
      observation_age_ms: 250,
      stale: false,
      believed_state: null,
      observed_state: 'loaded',
      drift: false,
    });
    // On disk only (/api/tags) is not loaded: in the catalog, not in the loaded list.
    expect(names(body)).not.toContain('nomic-embed-text:latest');
    expect(await catalogEntry(running.url, 'nomic-embed-text:latest')).toMatchObject({
      state: 'unloaded',
      purpose: 'embedding',
    });
  });

  it('openai-compatible: a served model is loaded (the server serves exactly what it started with)', async () => {
    clock.advance(1000);
    const entry = (await loaded(running.url)).loaded.find((m) => m.name === 'Qwen/Qwen2.5-0.5B-Instruct');
    expect(entry).toMatchObject({
      backend: 'vllm',
      backend_type: 'openai',
      observed_via: 'GET /health + GET /v1/models',
      observed_state: 'loaded',
    });
  });

  it('every backend is listed in backends[] with reachability, readiness and probe timing', async () => {
    clock.advance(1000);
    const body = await loaded(running.url);
    expect(body.backends.map((b) => String(b.name)).sort()).toEqual(['npu', 'ollama', 'sdcpp', 'vllm']);
    for (const b of body.backends) {
      expect(b).toMatchObject({ reachable: true, readiness: 'ready', reason: null, error: null });
      expect(b.probed_at).toMatch(ISO);
      expect(typeof b.probe_ms).toBe('number');
    }
    expect(body.backends.find((b) => b.name === 'ollama')).toMatchObject({ backend_type: 'ollama', url: ollama.url });
  });

  it('100 concurrent polls cost the backends nothing: reads project the last observation', async () => {
    const healthBefore = rknn.hits('GET /health');
    const psBefore = ollama.hits('GET /api/ps');
    const answers = await Promise.all(Array.from({ length: 100 }, () => loaded(running.url)));
    expect(rknn.hits('GET /health') - healthBefore).toBe(0);
    expect(ollama.hits('GET /api/ps') - psBefore).toBe(0);
    // Every poller got the same truth.
    for (const a of answers) expect(names(a)).toEqual(names(answers[0]!));
  });
});

describe('backends[]: hung, HTML-500 and closed-port backends are listed, never skipped, within the timeout', () => {
  const PROBE_TIMEOUT_MS = 300;
  let hung: PathologicalServer;
  let html: PathologicalServer;
  let rknn: FakeRknnSd;
  let running: RunningApp;

  beforeAll(async () => {
    hung = await startHungServer();
    html = await startHtmlErrorServer(500);
    rknn = await startFakeRknnSd({ pipelineLoaded: true });
    const common = { probe_timeout_ms: PROBE_TIMEOUT_MS, probe_interval_ms: NO_BACKGROUND };
    running = await startApp({
      backends: [
        { name: 'hung', type: 'openai', url: hung.url, ...common, models: [{ id: 'hung-chat' }] },
        { name: 'html500', type: 'ollama', url: html.url, ...common },
        { name: 'closed', type: 'llama-server', url: await closedPortUrl(), ...common },
        { name: 'npu', type: 'rknn-sd', url: rknn.url, ...common },
      ],
    });
    await running.app.get(BackendStartupService).settled();
  });
  afterAll(async () => {
    await running.close();
    await Promise.all([hung.close(), html.close(), rknn.close()]);
  });

  it('lists every backend with its error, and never waits for the hung one', async () => {
    const observing = observeNow(running);
    // While the hung backend's probe is still running, a read answers from what was last observed.
    const during = await loaded(running.url);
    expect(during.backends.map((b) => String(b.name)).sort()).toEqual(['closed', 'html500', 'hung', 'npu']);
    await observing;
    const body = await loaded(running.url);

    const byName = new Map(body.backends.map((b) => [b.name as string, b]));
    expect([...byName.keys()].sort()).toEqual(['closed', 'html500', 'hung', 'npu']);
    for (const name of ['hung', 'html500', 'closed']) {
      const b = byName.get(name)!;
      expect(b.readiness).toBe('unavailable');
      expect(typeof b.reason).toBe('string');
      expect(b.probed_at).toMatch(ISO);
      expect(typeof b.probe_ms).toBe('number');
      expect(b.probe_ms).toBeLessThanOrEqual(PROBE_TIMEOUT_MS + 700);
    }
    expect(byName.get('hung')).toMatchObject({
      backend_type: 'openai',
      url: hung.url,
      reachable: false,
      error: `probe timed out after ${PROBE_TIMEOUT_MS} ms`,
    });
    expect(byName.get('hung')!.probe_ms).toBeGreaterThanOrEqual(PROBE_TIMEOUT_MS - 10);
    expect(byName.get('closed')).toMatchObject({ reachable: false, error: expect.stringMatching(/refused/) });
    // The HTML server did answer (so it is reachable), but with an error page: unavailable, error from <title>.
    expect(byName.get('html500')).toMatchObject({
      reachable: true,
      error: expect.stringContaining('HTTP 500: 500 Internal Server Error'),
    });
    // The healthy one is reported as usual, its model loaded.
    expect(byName.get('npu')).toMatchObject({ reachable: true, readiness: 'ready', error: null });
    expect(names(body)).toEqual([rknn.model]);
  });

  it('a request to a model of an unreachable backend is refused with 503 backend_unavailable, never sent', async () => {
    const hitsBefore = hung.hits();
    const res = await postJson(`${running.url}/v1/chat/completions`, {
      model: 'hung-chat',
      messages: [{ role: 'user', content: 'hi' }],
    });
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(res.body.error).toMatchObject({ code: 'backend_unavailable', backend: 'hung', readiness: 'unavailable' });
    expect(hung.hits()).toBe(hitsBefore);
  });
});
