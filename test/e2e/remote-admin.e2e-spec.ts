/**
 * Admin unload of remote models through the real app: forwarded to each backend's own unload (rknn-sd
 * /admin/unload, Ollama keep_alive:0, llama-server router /models/unload), refused with 409
 * unload_unsupported where the backend has none (sd-cpp, OpenAI-compatible servers, single-model llama-server).
 */
import { BackendStartupService } from '../../src/models/backend-startup.service.js';
import { getJson, observeNow, postJson, startApp, type RunningApp } from '../support/app-harness.js';
import { FakeClock } from '../support/fake-clock.js';
import {
  type FakeLlamaServer,
  type FakeOllama,
  type FakeOpenAi,
  type FakeRknnSd,
  type FakeSdCpp,
  startFakeLlamaServer,
  startFakeOllama,
  startFakeOpenAi,
  startFakeRknnSd,
  startFakeSdCpp,
} from '../support/fakes/index.js';

const MB = 1024 * 1024;
const common = { probe_cache_ms: 1000, probe_interval_ms: 3_600_000 };

describe('POST /api/models/{id}/unload on remote backends', () => {
  let clock: FakeClock;
  let rknn: FakeRknnSd;
  let ollama: FakeOllama;
  let router: FakeLlamaServer;
  let single: FakeLlamaServer;
  let sdcpp: FakeSdCpp;
  let vllm: FakeOpenAi;
  let running: RunningApp;

  const unload = (id: string) => postJson(`${running.url}/api/models/${id}/unload`, {});
  const loadedNames = async (): Promise<string[]> => {
    await observeNow(running);
    const names: string[] = (await getJson(`${running.url}/api/models/loaded`)).body.loaded.map(
      (m: { name: string }) => m.name,
    );
    return names;
  };

  beforeAll(async () => {
    clock = new FakeClock();
    rknn = await startFakeRknnSd({ pipelineLoaded: true });
    ollama = await startFakeOllama({ models: [{ name: 'qwen2.5:0.5b' }] });
    ollama.addLoadedModel('qwen2.5:0.5b', { size: 300 * MB, sizeVram: 0 });
    router = await startFakeLlamaServer({ mode: 'router', models: { a: 'loaded', b: 'unloaded' } });
    single = await startFakeLlamaServer({ model: 'single.gguf' });
    sdcpp = await startFakeSdCpp();
    vllm = await startFakeOpenAi({ models: ['served'] });
    running = await startApp(
      {
        backends: [
          { name: 'npu', type: 'rknn-sd', url: rknn.url, ...common, models: [{ id: 'sd-npu', upstream: rknn.model }] },
          {
            name: 'ollama',
            type: 'ollama',
            url: ollama.url,
            ...common,
            models: [{ id: 'qwen', upstream: 'qwen2.5:0.5b' }],
          },
          { name: 'router', type: 'llama-server', url: router.url, ...common },
          {
            name: 'single',
            type: 'llama-server',
            url: single.url,
            ...common,
            models: [{ id: 'single-chat', upstream: 'single.gguf' }],
          },
          {
            name: 'sdcpp',
            type: 'sd-cpp',
            url: sdcpp.url,
            ...common,
            models: [{ id: 'sd15', upstream: 'sd-v1-5-pruned-emaonly' }],
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
    await Promise.all([rknn, ollama, router, single, sdcpp, vllm].map((f) => f.close()));
  });

  it('rknn-sd: forwards to POST /admin/unload; the pipeline is gone and the model leaves the loaded list', async () => {
    expect(await loadedNames()).toContain('sd-npu');
    const res = await unload('sd-npu');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ ok: true, model: 'sd-npu', was_loaded: true, reason: 'admin' });
    expect(rknn.hits('POST /admin/unload')).toBe(1);
    expect(rknn.pipelineLoaded()).toBe(false);
    expect(await loadedNames()).not.toContain('sd-npu');
  });

  it('ollama: forwards keep_alive: 0 on /api/generate, reporting the resident size freed', async () => {
    expect(await loadedNames()).toContain('qwen');
    const res = await unload('qwen');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ ok: true, model: 'qwen', was_loaded: true, expected_freed_mb: 300 });
    expect(ollama.requestsTo('POST /api/generate').map((r) => r.body)).toEqual([
      expect.objectContaining({ model: 'qwen2.5:0.5b', keep_alive: 0 }),
    ]);
    expect(ollama.loadedNames()).toEqual([]);
    expect(await loadedNames()).not.toContain('qwen');
  });

  it('llama-server router: forwards POST /models/unload {model}', async () => {
    expect(await loadedNames()).toContain('a');
    const res = await unload('a');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ ok: true, model: 'a', was_loaded: true });
    expect(router.requestsTo('POST /models/unload').map((r) => r.body)).toEqual([{ model: 'a' }]);
    expect(router.modelStatus('a')).toBe('unloaded');
    expect(await loadedNames()).not.toContain('a');
    // Already unloaded upstream: answered, nothing was loaded.
    expect((await unload('b')).body).toMatchObject({ ok: true, was_loaded: false });
  });

  it.each<[string, string, string]>([
    ['sd-cpp', 'sd15', 'sd-cpp'],
    ['openai-compatible', 'served', 'openai'],
    ['single-model llama-server', 'single-chat', 'llama-server'],
  ])('%s cannot unload: 409 unload_unsupported, nothing sent upstream', async (_kind, id, type) => {
    const before = [sdcpp, vllm, single].map((f) => f.requests.filter((r) => r.method === 'POST').length);
    const res = await unload(id);
    expect(res.status).toBe(409);
    expect(res.body.error).toMatchObject({ code: 'unload_unsupported', backend_type: type, model: id });
    expect([sdcpp, vllm, single].map((f) => f.requests.filter((r) => r.method === 'POST').length)).toEqual(before);
  });
});
