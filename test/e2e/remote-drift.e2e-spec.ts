/**
 * Drift between what modelplane believes about a remote model and what the backend reports, through
 * the real app over HTTP: Ollama may drop a model on its own (keep_alive) or another client may load
 * one. Observation wins in the loaded list, belief follows it, and each episode raises one
 * `model.drift` event on GET /api/events.
 */
import { BackendStartupService } from '../../src/models/backend-startup.service.js';
import { getJson, observeNow, startApp, type RunningApp } from '../support/app-harness.js';
import { eventHistory, type SseEvent } from '../support/event-history.js';
import { FakeClock } from '../support/fake-clock.js';
import { type FakeOllama, startFakeOllama } from '../support/fakes/index.js';

/** A JSON body as the harness returns it (untyped on purpose: assertions say what it holds). */
type Json = Awaited<ReturnType<typeof getJson>>['body'];

const NO_BACKGROUND = 3_600_000;

describe('drift between belief and observation (Ollama)', () => {
  let clock: FakeClock;
  let ollama: FakeOllama;
  let running: RunningApp;

  const loadedQwen = async (): Promise<Json> => {
    const res = await getJson(`${running.url}/api/models/loaded`);
    expect(res.status).toBe(200);
    return res.body.loaded.find((m: { name: string }) => m.name === 'qwen');
  };
  const driftEvents = async (): Promise<SseEvent[]> =>
    (await eventHistory(running.url)).filter((e) => e.type === 'model.drift' && e.model === 'qwen');
  /** What /health says, which every other view agrees with. */
  const healthState = async (): Promise<string> => {
    const state: string = (await getJson(`${running.url}/health`)).body.models.qwen.state;
    return state;
  };

  beforeAll(async () => {
    clock = new FakeClock();
    ollama = await startFakeOllama({ models: [{ name: 'qwen2.5:0.5b' }], reply: 'hello' });
    running = await startApp(
      {
        eviction: { idle_unload_s: 300, check_interval_s: 3600 },
        backends: [
          {
            name: 'ollama',
            type: 'ollama',
            url: ollama.url,
            probe_cache_ms: 1000,
            probe_interval_ms: NO_BACKGROUND,
            models: [{ id: 'qwen', upstream: 'qwen2.5:0.5b' }],
          },
        ],
      },
      { clock },
    );
    await running.app.get(BackendStartupService).settled();
  });
  afterAll(async () => {
    await running.close();
    await ollama.close();
  });

  it('a model served through modelplane is believed and observed loaded, without drift', async () => {
    expect(await loadedQwen()).toBeUndefined();
    // A slow stream: the polls below run while our request holds the model.
    ollama.wire.chunkDelayMs = 50;
    const res = await fetch(`${running.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'qwen', stream: true, messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    await reader.read();
    expect(ollama.loadedNames()).toEqual(['qwen2.5:0.5b']);
    // The last observation (from before the request) says "not loaded": while our request makes Ollama load
    // it, every view says loading, and the old observation is not drift.
    expect(await healthState()).toBe('loading');
    expect(await loadedQwen()).toBeUndefined();
    expect(await driftEvents()).toEqual([]);
    while (!(await reader.read()).done);
    ollama.wire.chunkDelayMs = 0;

    // Our request ended: the backend is observed at once and shows it loaded.
    await observeNow(running);
    expect(await loadedQwen()).toMatchObject({ believed_state: 'loaded', observed_state: 'loaded', drift: false });
    clock.advance(1000);
    expect(await loadedQwen()).toMatchObject({
      believed_state: 'loaded',
      observed_state: 'loaded',
      drift: false,
      in_flight: 0,
      idle_seconds: 1,
      idle_unload_threshold_s: 300,
      unloads_in_s: 299,
    });
    expect(await driftEvents()).toEqual([]);
    expect(await healthState()).toBe('loaded');
  });

  it('Ollama drops it on its own: not listed any more, one model.drift event, belief follows', async () => {
    ollama.removeLoadedModel('qwen2.5:0.5b');
    await observeNow(running);
    expect(await loadedQwen()).toBeUndefined();
    expect(await driftEvents()).toEqual([
      expect.objectContaining({
        type: 'model.drift',
        model: 'qwen',
        backend: 'ollama',
        believed_state: 'loaded',
        observed_state: 'unloaded',
      }),
    ]);
    expect(await healthState()).toBe('unloaded');
    const catalog = (await getJson(`${running.url}/api/models`)).body.models;
    expect(catalog.find((m: { id: string }) => m.id === 'qwen')).toMatchObject({
      state: 'unloaded',
      observed_state: 'unloaded',
    });

    // Once per episode: further polls raise no more events.
    await observeNow(running);
    await loadedQwen();
    expect(await driftEvents()).toHaveLength(1);
  });

  it('another client loads it: listed with believed vs observed and drift: true, then belief catches up', async () => {
    ollama.addLoadedModel('qwen2.5:0.5b', { size: 512 * 1024 * 1024, sizeVram: 0 });
    await observeNow(running);
    expect(await loadedQwen()).toMatchObject({
      believed_state: 'unloaded',
      observed_state: 'loaded',
      drift: true,
      size_mb: 512,
      vram_mb: 0,
      ram_mb: 512,
    });
    const events = await driftEvents();
    expect(events).toHaveLength(2);
    expect(events[1]).toMatchObject({ believed_state: 'unloaded', observed_state: 'loaded' });
    expect(typeof events[1]!.at_ms).toBe('number');

    await observeNow(running);
    expect(await loadedQwen()).toMatchObject({ believed_state: 'loaded', observed_state: 'loaded', drift: false });
    expect(await healthState()).toBe('loaded');
  });
});
