/**
 * The observer: the only code that asks backends what they hold. Reads never probe; probes are bounded and
 * single-flight; remote readiness follows probes (threshold, loading, recovery) with one event per real
 * transition.
 */
import type { TransitionEvent } from '../../src/backend-state/backend-state.service.js';
import { Readiness } from '../../src/backend-state/readiness.js';
import type { AppConfig } from '../../src/config/app-config.js';
import type { ModelProvider, Observation } from '../../src/providers/model-provider.js';
import { LlamaServerProvider } from '../../src/providers/remote/llama-server.provider.js';
import { OpenAiProvider } from '../../src/providers/remote/openai.provider.js';
import { RknnSdProvider } from '../../src/providers/remote/rknn-sd.provider.js';
import { configFrom } from '../support/config.js';
import { FakeClock } from '../support/fake-clock.js';
import { startFakeLlamaServer } from '../support/fakes/llama-server.fake.js';
import { startFakeOpenAi } from '../support/fakes/openai.fake.js';
import { startHungServer } from '../support/fakes/pathological.js';
import { startFakeRknnSd } from '../support/fakes/rknn-sd.fake.js';
import { buildModelCore, type ModelCore } from '../support/model-core.js';
import { waitFor } from '../support/wait-for.js';

/** A provider whose observe() never settles and ignores its signal: the worst case the hard race exists for. */
function deafProvider(name: string): ModelProvider {
  return {
    kind: 'openai',
    backendName: name,
    url: 'http://deaf.invalid',
    capabilities: { canObserveLoadState: true, canUnload: false, canLoad: false, remote: true },
    init: async () => undefined,
    descriptors: () => [],
    observe: () => new Promise<Observation>(() => undefined),
    load: async () => undefined,
    unload: async () => ({ wasLoaded: false, expectedFreedBytes: null }),
    dispose: async () => undefined,
  };
}

type Made = (config: AppConfig['backends'][number], clock: FakeClock) => ModelProvider;

describe('ProbeService (the observer)', () => {
  let clock: FakeClock;
  const cleanup: (() => Promise<void>)[] = [];

  beforeEach(() => {
    clock = new FakeClock();
  });
  afterEach(async () => {
    for (const fn of cleanup.splice(0).reverse()) await fn();
  });

  /** The core over remote backends `{name, type, url, ...}`, each provider made by `make`. */
  function core(
    backends: { name: string; type: string; url: string; [k: string]: unknown }[],
    make: Made[],
  ): ModelCore {
    const config = configFrom({
      backends: backends.map((b) => ({ probe_timeout_ms: 1000, failure_threshold: 3, ...b })),
    });
    const providers = config.backends.map((b, i) => make[i]!(b, clock));
    cleanup.push(async () => {
      await Promise.all(providers.map((p) => p.dispose()));
    });
    return buildModelCore(config, providers, clock);
  }

  /** Settle a backend as init would have: ready (or the given failure). */
  function settle(c: ModelCore, name: string, initError: string | null = null): void {
    c.backendState.markInitialized(name);
    c.backendState.finalize(name, { initError, preloadFailures: [], preloadCount: 0 });
  }

  it('reads never probe: 100 concurrent reads cost the backend nothing, and 100 probe requests cost at most two', async () => {
    const fake = await startFakeRknnSd({ pipelineLoaded: true });
    cleanup.push(() => fake.close());
    const c = core([{ name: 'npu', type: 'rknn-sd', url: fake.url }], [(b, k) => new RknnSdProvider(b, k)]);
    for (let i = 0; i < 100; i++) c.models.loaded();
    expect(fake.hits('GET /health')).toBe(0);
    await Promise.all(Array.from({ length: 100 }, () => c.observer.probeNow('npu')));
    expect(fake.hits('GET /health')).toBeGreaterThanOrEqual(1);
    expect(fake.hits('GET /health')).toBeLessThanOrEqual(2);
    const view = c.models.loaded();
    expect(view.loaded.map((m) => m.name)).toEqual(['lcm-dreamshaper-v7-rknn']);
    expect(view.backends[0]).toMatchObject({ name: 'npu', reachable: true, stale: false, observation_age_ms: 0 });
  });

  it('a hung backend and a provider that ignores its signal are both answered within the timeout', async () => {
    const hung = await startHungServer();
    cleanup.push(() => hung.close());
    const c = core(
      [
        { name: 'hung', type: 'rknn-sd', url: hung.url, probe_timeout_ms: 100 },
        { name: 'deaf', type: 'openai', url: 'http://127.0.0.1:9', probe_timeout_ms: 100 },
      ],
      [(b, k) => new RknnSdProvider(b, k), () => deafProvider('deaf')],
    );
    const refreshed = c.observer.refresh();
    // Both probes are waiting on their deadline; 99 ms of the clock is not yet the timeout, 100 ms is.
    expect(clock.pendingDelays).toBe(2);
    clock.advance(99);
    await new Promise((r) => setImmediate(r));
    expect(c.store.latestObservation('deaf')).toBeUndefined();
    clock.advance(1);
    await refreshed;
    expect(clock.pendingDelays).toBe(0);
    for (const name of ['hung', 'deaf']) {
      expect(c.store.latestObservation(name)?.observation).toMatchObject({
        reachable: false,
        error: 'probe timed out after 100 ms',
        models: [],
      });
    }
  });

  it('asking again while a hung probe runs costs one follow-up probe, and every caller gets an answer', async () => {
    const hung = await startHungServer();
    cleanup.push(() => hung.close());
    const c = core(
      [{ name: 'hung', type: 'rknn-sd', url: hung.url, probe_timeout_ms: 100 }],
      [(b, k) => new RknnSdProvider(b, k)],
    );
    const first = c.observer.probeNow('hung');
    const asked = Array.from({ length: 10 }, () => c.observer.probeNow('hung'));
    let answered = false;
    void Promise.all([first, ...asked]).then(() => (answered = true));
    // Each probe times out when its deadline passes on the clock, once it has reached the server: the first,
    // then the one follow-up.
    let timedOut = 0;
    const timeOutProbesThatArrived = (): void => {
      if (hung.hits() > timedOut && clock.pendingDelays > 0) {
        timedOut += 1;
        clock.advance(100);
      }
    };
    await waitFor(() => answered, 'every caller answered', { between: timeOutProbesThatArrived });
    await c.observer.whenIdle();
    expect(hung.hits()).toBe(2);
  });

  it('a dead backend never delays the observation of a healthy one', async () => {
    const fake = await startFakeRknnSd({ pipelineLoaded: true });
    cleanup.push(() => fake.close());
    const c = core(
      [
        { name: 'npu', type: 'rknn-sd', url: fake.url },
        { name: 'deaf', type: 'openai', url: 'http://127.0.0.1:9', probe_timeout_ms: 60_000 },
      ],
      [(b, k) => new RknnSdProvider(b, k), () => deafProvider('deaf')],
    );
    void c.observer.refresh();
    await c.observer.probeNow('npu');
    expect(c.models.loaded().loaded.map((m) => m.name)).toEqual(['lcm-dreamshaper-v7-rknn']);
    expect(c.models.loaded().backends.find((b) => b.name === 'deaf')).toMatchObject({ reachable: false, stale: true });
  });

  it('unavailable after N consecutive failures: one event, none for later failures with a new error text', async () => {
    const fake = await startFakeOpenAi({ models: ['m1'] });
    cleanup.push(() => fake.close());
    const c = core([{ name: 'vllm', type: 'openai', url: fake.url }], [(b, k) => new OpenAiProvider(b, k)]);
    settle(c, 'vllm');
    const events: TransitionEvent[] = [];
    c.backendState.onTransition((e) => events.push(e));

    fake.setHealthy(false);
    await c.observer.probeNow('vllm');
    await c.observer.probeNow('vllm');
    expect(c.backendState.get('vllm').readiness).toBe(Readiness.Ready);
    await c.observer.probeNow('vllm');
    expect(c.backendState.get('vllm')).toMatchObject({
      readiness: Readiness.Unavailable,
      reason: expect.stringContaining('HTTP 503'),
    });
    await fake.close();
    await c.observer.probeNow('vllm');
    await c.observer.probeNow('vllm');
    expect(c.backendState.get('vllm').readiness).toBe(Readiness.Unavailable);
    expect(events.map((e) => [e.from, e.to])).toEqual([[Readiness.Ready, Readiness.Unavailable]]);
  });

  it('recovers: ready again on the next good probe', async () => {
    const fake = await startFakeOpenAi({ models: ['m1'] });
    cleanup.push(() => fake.close());
    const c = core(
      [{ name: 'vllm', type: 'openai', url: fake.url, failure_threshold: 1 }],
      [(b, k) => new OpenAiProvider(b, k)],
    );
    settle(c, 'vllm');
    fake.setHealthy(false);
    await c.observer.probeNow('vllm');
    fake.setHealthy(true);
    await c.observer.probeNow('vllm');
    expect(c.backendState.get('vllm')).toMatchObject({ readiness: Readiness.Ready, reason: null });
  });

  it('a backend whose init failed recovers through probes', async () => {
    const fake = await startFakeRknnSd({ pipelineLoaded: true });
    cleanup.push(() => fake.close());
    const c = core([{ name: 'npu', type: 'rknn-sd', url: fake.url }], [(b, k) => new RknnSdProvider(b, k)]);
    settle(c, 'npu', 'connection refused');
    expect(c.backendState.get('npu').readiness).toBe(Readiness.Unavailable);
    await c.observer.probeNow('npu');
    expect(c.backendState.get('npu')).toMatchObject({ readiness: Readiness.Ready, reason: null });
  });

  it('llama-server loading its model is not admitted (unavailable, "loading model") until it is loaded', async () => {
    const fake = await startFakeLlamaServer({ loading: true });
    cleanup.push(() => fake.close());
    const c = core([{ name: 'llama', type: 'llama-server', url: fake.url }], [(b, k) => new LlamaServerProvider(b, k)]);
    settle(c, 'llama');
    await c.observer.probeNow('llama');
    expect(c.backendState.get('llama')).toMatchObject({ readiness: Readiness.Unavailable, reason: 'loading model' });
    fake.setLoading(false);
    await c.observer.probeNow('llama');
    expect(c.backendState.get('llama').readiness).toBe(Readiness.Ready);
  });

  it('leaves readiness alone before init settles, and for degraded backends on a good probe', async () => {
    const fake = await startFakeRknnSd({ pipelineLoaded: true });
    cleanup.push(() => fake.close());
    const c = core(
      [{ name: 'npu', type: 'rknn-sd', url: fake.url, failure_threshold: 1 }],
      [(b, k) => new RknnSdProvider(b, k)],
    );
    await fake.close();
    for (let i = 0; i < 3; i++) await c.observer.probeNow('npu');
    expect(c.backendState.get('npu').readiness).toBe(Readiness.Initializing);
    const fresh = await startFakeRknnSd({ pipelineLoaded: true });
    cleanup.push(() => fresh.close());
    const d = core(
      [{ name: 'npu2', type: 'rknn-sd', url: fresh.url, failure_threshold: 1 }],
      [(b, k) => new RknnSdProvider(b, k)],
    );
    d.backendState.markInitialized('npu2');
    d.backendState.finalize('npu2', { initError: null, preloadFailures: [{ id: 'a', reason: 'x' }], preloadCount: 2 });
    await d.observer.probeNow('npu2');
    expect(d.backendState.get('npu2').readiness).toBe(Readiness.Degraded);
  });

  it('an observation older than probe_interval_ms + probe_timeout_ms is stale: its models are unknown, not loaded', async () => {
    const fake = await startFakeRknnSd({ pipelineLoaded: true });
    cleanup.push(() => fake.close());
    const c = core(
      [{ name: 'npu', type: 'rknn-sd', url: fake.url, probe_interval_ms: 1000, probe_timeout_ms: 500 }],
      [(b, k) => new RknnSdProvider(b, k)],
    );
    await c.observer.probeNow('npu');
    clock.advance(1500);
    expect(c.models.loaded().loaded).toHaveLength(1);
    clock.advance(1);
    const view = c.models.loaded();
    expect(view.loaded).toEqual([]);
    expect(view.backends[0]).toMatchObject({ stale: true, observation_age_ms: 1501 });
    expect(c.models.catalog().models[0]).toMatchObject({ state: 'unknown', stale: true });
    expect(c.models.healthModels()['lcm-dreamshaper-v7-rknn']!.state).toBe('unknown');
  });
});
