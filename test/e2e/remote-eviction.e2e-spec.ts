/** Idle eviction of remote models used through modelplane: forwarded to each backend's own unload. */
import { BackendStartupService } from '../../src/models/backend-startup.service.js';
import { EvictionService } from '../../src/eviction/eviction.service.js';
import { getJson, postJson, startApp, type RunningApp } from '../support/app-harness.js';
import { FakeClock } from '../support/fake-clock.js';
import { startFakeOllama, startFakeRknnSd, type FakeOllama, type FakeRknnSd } from '../support/fakes/index.js';

describe('remote idle eviction', () => {
  let rknn: FakeRknnSd;
  let ollama: FakeOllama;
  let running: RunningApp;
  let clock: FakeClock;
  let eviction: EvictionService;

  beforeAll(async () => {
    rknn = await startFakeRknnSd({ pipelineLoaded: true, idleSeconds: 0 });
    ollama = await startFakeOllama({ models: [{ name: 'llama3.2:1b' }] });
    clock = new FakeClock();
    running = await startApp(
      {
        eviction: { idle_unload_s: 60, check_interval_s: 3600 },
        backends: [
          { name: 'npu', type: 'rknn-sd', url: rknn.url, probe_cache_ms: 1000, probe_interval_ms: 3_600_000 },
          { name: 'box', type: 'ollama', url: ollama.url, probe_cache_ms: 1000, probe_interval_ms: 3_600_000 },
        ],
      },
      { clock },
    );
    await running.app.get(BackendStartupService).settled();
    eviction = running.app.get(EvictionService);
  });
  afterAll(async () => {
    await running.close();
    await rknn.close();
    await ollama.close();
  });

  it('rknn-sd: the smaller idle time counts (other clients protect the model), then /admin/unload is forwarded', async () => {
    const res = await postJson(`${running.url}/v1/images/generations`, {
      model: rknn.model,
      prompt: 'a fox',
      size: '512x512',
    });
    expect(res.status).toBe(200);

    // Modelplane has been idle for 61 s, but the server says another client used it 5 s ago.
    clock.advance(61_000);
    rknn.setIdleSeconds(5);
    expect(await eviction.tick()).toEqual([]);
    expect(rknn.hits('POST /admin/unload')).toBe(0);
    expect(rknn.pipelineLoaded()).toBe(true);

    // Now the server is idle too: the sweep forwards the unload to the server's own endpoint.
    rknn.setIdleSeconds(120);
    clock.advance(2_000);
    const outcomes = await eviction.tick();
    expect(outcomes).toEqual([expect.objectContaining({ model: rknn.model, was_loaded: true, reason: 'idle' })]);
    expect(rknn.hits('POST /admin/unload')).toBe(1);
    expect(rknn.pipelineLoaded()).toBe(false);
    const loaded = (await getJson(`${running.url}/api/models/loaded`)).body.loaded.map((m: { name: string }) => m.name);
    expect(loaded).not.toContain(rknn.model);
  });

  it('ollama: idle eviction sends keep_alive 0 and the model leaves /api/ps', async () => {
    const res = await postJson(`${running.url}/v1/chat/completions`, {
      model: 'llama3.2:1b',
      messages: [{ role: 'user', content: 'hi' }],
    });
    expect(res.status).toBe(200);
    expect(ollama.loadedNames()).toContain('llama3.2:1b');
    clock.advance(59_000);
    expect(await eviction.tick()).toEqual([]);
    clock.advance(2_000);
    expect((await eviction.tick()).map((o) => o.model)).toEqual(['llama3.2:1b']);
    const unloads = ollama
      .requestsTo('POST /api/generate')
      .filter((r) => (r.body as { keep_alive?: unknown }).keep_alive === 0);
    expect(unloads).toHaveLength(1);
    expect(ollama.loadedNames()).not.toContain('llama3.2:1b');
  });
});
