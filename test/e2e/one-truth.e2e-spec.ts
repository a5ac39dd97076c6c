/**
 * One truth: reproductions 1–5 of "views disagree" against the real app over HTTP, with fake servers
 * on loopback. Every view (/api/models, /api/models/loaded, /health, /metrics) is read after each step and
 * must agree; nothing is `loaded` that its backend's last observation does not show.
 */
import { BackendStartupService } from '../../src/models/backend-startup.service.js';
import { getJson, observeNow, postJson, startApp, type RunningApp } from '../support/app-harness.js';
import { eventHistory } from '../support/event-history.js';
import { FakeClock } from '../support/fake-clock.js';
import {
  closedPortUrl,
  type FakeOllama,
  type FakeRknnSd,
  type PathologicalServer,
  startFakeOllama,
  startFakeRknnSd,
  startHungServer,
} from '../support/fakes/index.js';
import { ensureLlmTestModels } from '../support/llm-test-models.js';
import { expectViewsAgree, readViews } from '../support/views.js';

const MB = 1024 * 1024;
/** Background probes off: each test decides when backends are observed. */
const NO_BACKGROUND = 3_600_000;

describe('one truth: every view agrees, and reads never wait', () => {
  let clock: FakeClock;
  let ollama: FakeOllama;
  let rknn: FakeRknnSd;
  let hung: PathologicalServer;
  let running: RunningApp;

  beforeAll(async () => {
    const models = await ensureLlmTestModels();
    clock = new FakeClock();
    ollama = await startFakeOllama({ models: [{ name: 'llama3.2:1b' }, { name: 'qwen2.5:0.5b' }] });
    ollama.addLoadedModel('llama3.2:1b', { size: 1300 * MB, sizeVram: 0 });
    rknn = await startFakeRknnSd({ pipelineLoaded: true, idleSeconds: 3 });
    hung = await startHungServer();
    const remote = { probe_interval_ms: NO_BACKGROUND, probe_timeout_ms: 1000 };
    running = await startApp(
      {
        eviction: { idle_unload_s: 900, check_interval_s: 3600 },
        backends: [
          { name: 'local', type: 'llama-cpp', models: [{ id: 'tiny', path: models.chat }] },
          {
            name: 'ollama',
            type: 'ollama',
            url: ollama.url,
            ...remote,
            failure_threshold: 2,
            models: [{ id: 'llama3', upstream: 'llama3.2:1b' }],
          },
          { name: 'npu', type: 'rknn-sd', url: rknn.url, ...remote, models: [{ id: 'ma' }] },
          {
            name: 'never',
            type: 'llama-server',
            url: await closedPortUrl(),
            ...remote,
            models: [{ id: 'ghost', upstream: 'ghost.gguf' }],
          },
          { name: 'hung', type: 'openai', url: hung.url, ...remote, models: [{ id: 'wedged' }] },
        ],
      },
      { clock },
    );
    await running.app.get(BackendStartupService).settled();
    await observeNow(running);
  });
  afterAll(async () => {
    await running.close();
    await Promise.all([ollama.close(), rknn.close(), hung.close()]);
  });

  it('3: a configured id on a single-pipeline server is that pipeline: listed once, under the configured id', async () => {
    const v = await readViews(running.url);
    expectViewsAgree(v);
    expect(v.loaded.has('ma')).toBe(true);
    expect(v.catalog.has('lcm-dreamshaper-v7-rknn')).toBe(false);
    const entry = (await getJson(`${running.url}/api/models/loaded`)).body.loaded.find(
      (m: { name: string }) => m.name === 'ma',
    );
    expect(entry).toMatchObject({ upstream: rknn.model, observed_state: 'loaded', backend: 'npu' });
    // A request for the configured id reaches the pipeline by its own name.
    const image = await postJson(`${running.url}/v1/images/generations`, { model: 'ma', prompt: 'a fox', n: 1 });
    expect(image.status).toBe(200);
    expect(rknn.requestsTo('POST /v1/images/generations').at(-1)?.body).toMatchObject({ model: rknn.model });
  });

  it('2: a backend that was never reachable has its models unknown in every view, never unloaded', async () => {
    const v = await readViews(running.url);
    expectViewsAgree(v);
    expect(v.catalog.get('ghost')).toBe('unknown');
    expect(v.health.get('ghost')).toBe('unknown');
    expect(v.backends.get('never')).toMatchObject({ reachable: false, stale: true, observed_at: null });
    // /metrics shows it as unknown too, not as a 0 that could be read as "unloaded".
    const metrics = await (await fetch(`${running.url}/metrics`)).text();
    expect(metrics).toMatch(/^modelplane_model_state\{model="ghost",state="unknown"\} 1$/m);
    expect(metrics).toMatch(/^modelplane_model_state\{model="ghost",state="unloaded"\} 0$/m);
    // No modelplane_model_loaded series at all: a 0 would tell a dashboard or an alert "not loaded".
    expect(v.metricLoaded.has('ghost')).toBe(false);
    expect(metrics).not.toMatch(/^modelplane_model_loaded\{model="ghost"\}/m);
  });

  it('1: Ollama stops: loaded list, catalog, /health and /metrics all stop saying loaded at once', async () => {
    let v = await readViews(running.url);
    expectViewsAgree(v);
    expect(v.health.get('llama3')).toBe('loaded');
    expect(v.metricLoaded.get('llama3')).toBe(1);

    await ollama.stop();
    await observeNow(running);
    v = await readViews(running.url);
    expectViewsAgree(v);
    expect(v.loaded.has('llama3')).toBe(false);
    expect(v.catalog.get('llama3')).toBe('unknown');
    expect(v.health.get('llama3')).toBe('unknown');
    expect(v.metricLoaded.has('llama3')).toBe(false);
    expect(v.metricState.get('llama3')).toBe('unknown');
    const health = (await getJson(`${running.url}/health`)).body.models.llama3;
    expect(health.unloads_in_s).toBeNull();

    // 14 s later (the failure threshold passed: unavailable), nothing has resurrected the old belief.
    clock.advance(14_000);
    await observeNow(running);
    v = await readViews(running.url);
    expectViewsAgree(v);
    expect(v.health.get('llama3')).toBe('unknown');
    expect(v.backends.get('ollama')).toMatchObject({ reachable: false, readiness: 'unavailable' });

    // It comes back: observed again, every view says loaded again.
    await ollama.restart();
    await observeNow(running);
    v = await readViews(running.url);
    expectViewsAgree(v);
    expect(v.health.get('llama3')).toBe('loaded');
    expect(v.backends.get('ollama')).toMatchObject({ reachable: true, readiness: 'ready', stale: false });
  });

  it('4: events only on real change: no transition from a state to itself, no model.unloaded for an unload of nothing', async () => {
    // The closed-port backend failed many probes with its errors; the hung one timed out repeatedly.
    for (let i = 0; i < 3; i++) await observeNow(running);
    rknn.setPipelineLoaded(false);
    await observeNow(running);
    const unload = await postJson(`${running.url}/api/models/ma/unload`, {});
    expect(unload.status).toBe(200);
    expect(unload.body.was_loaded).toBe(false);

    const events = await eventHistory(running.url);
    const selfTransitions = events.filter((e) => e.type === 'backend.transition' && e.from === e.to);
    expect(selfTransitions).toEqual([]);
    expect(events.filter((e) => e.type === 'model.unloaded' && e.was_loaded === false)).toEqual([]);
    // The real transitions are there, once each.
    const neverDown = events.filter(
      (e) => e.type === 'backend.transition' && e.backend === 'never' && e.to === 'unavailable',
    );
    expect(neverDown).toHaveLength(1);
  });

  it('5: a read never waits for a hung backend, even while its probe is running', async () => {
    const before = hung.hits();
    const observing = observeNow(running);
    // The probe of the hung backend has reached it and is waiting for an answer that never comes...
    while (hung.hits() === before) await new Promise((r) => setImmediate(r));
    // ...and every read answers from the last observation meanwhile.
    const v = await readViews(running.url);
    expectViewsAgree(v);
    expect(v.backends.get('hung')).toMatchObject({ reachable: false, readiness: 'unavailable' });
    await observing;
  });

  // 6 (reads rebuild no catalog and touch no file, 20 in-process models with an ONNX pipeline) is
  // one-truth.reads.e2e-spec.ts: it counts file calls through a mocked node:fs, set up before the app loads.

  it('in-process: a load and an unload show in every view at once', async () => {
    const chat = await postJson(`${running.url}/v1/chat/completions`, {
      model: 'tiny',
      messages: [{ role: 'user', content: 'hi' }],
      max_tokens: 2,
    });
    expect(chat.status).toBe(200);
    let v = await readViews(running.url);
    expectViewsAgree(v);
    expect(v.health.get('tiny')).toBe('loaded');
    expect((await postJson(`${running.url}/api/models/tiny/unload`, {})).status).toBe(200);
    v = await readViews(running.url);
    expectViewsAgree(v);
    expect(v.health.get('tiny')).toBe('unloaded');
  });
});
