import { BackendStateService, type TransitionEvent } from '../../src/backend-state/backend-state.service.js';
import { Readiness } from '../../src/backend-state/readiness.js';
import { SystemClock } from '../../src/common/clock.js';
import type { ModelProvider, Observation } from '../../src/providers/model-provider.js';
import { ProbeService } from '../../src/models/probe.service.js';
import { LlamaServerProvider } from '../../src/providers/remote/llama-server.provider.js';
import { OpenAiProvider } from '../../src/providers/remote/openai.provider.js';
import { RknnSdProvider } from '../../src/providers/remote/rknn-sd.provider.js';
import { FakeClock } from '../support/fake-clock.js';
import { startFakeLlamaServer } from '../support/fakes/llama-server.fake.js';
import { startFakeOpenAi } from '../support/fakes/openai.fake.js';
import { type PathologicalServer, startHungServer } from '../support/fakes/pathological.js';
import { type FakeRknnSd, startFakeRknnSd } from '../support/fakes/rknn-sd.fake.js';
import { remoteBackend } from '../providers/remote/backend.js';

const opts = { timeoutMs: 1000, cacheMs: 1000, failureThreshold: 3 };

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

describe('ProbeService', () => {
  let clock: FakeClock;
  let state: BackendStateService;
  let probes: ProbeService;
  const cleanup: (() => Promise<void>)[] = [];

  beforeEach(() => {
    clock = new FakeClock();
    state = new BackendStateService(clock);
    probes = new ProbeService(clock, state);
  });
  afterEach(async () => {
    for (const fn of cleanup.splice(0).reverse()) await fn();
  });

  async function rknn(): Promise<{ fake: FakeRknnSd; provider: RknnSdProvider }> {
    const fake = await startFakeRknnSd({ pipelineLoaded: true });
    const provider = new RknnSdProvider(remoteBackend('rknn-sd', fake.url), clock);
    cleanup.push(
      () => fake.close(),
      () => provider.dispose(),
    );
    return { fake, provider };
  }

  it('100 concurrent callers cost the backend one probe, and all see the same answer', async () => {
    const { fake, provider } = await rknn();
    const results = await Promise.all(Array.from({ length: 100 }, () => probes.observe(provider, opts)));
    expect(fake.hits('GET /health')).toBe(1);
    expect(new Set(results.map((r) => r.probed_at)).size).toBe(1);
    expect(results[0]).toMatchObject({ backend: 'rknn-sd-test', reachable: true, cached: false });
    expect(results[0]!.models[0]!.state).toBe('loaded');
  });

  it('serves from the cache until cacheMs passes on the clock, then probes again', async () => {
    const { fake, provider } = await rknn();
    await probes.observe(provider, opts);
    clock.advance(999);
    await expect(probes.observe(provider, opts)).resolves.toMatchObject({ cached: true });
    expect(fake.hits('GET /health')).toBe(1);
    fake.setPipelineLoaded(false);
    clock.advance(1);
    const fresh = await probes.observe(provider, opts);
    expect(fresh.cached).toBe(false);
    expect(fresh.models[0]!.state).toBe('unloaded');
    expect(fake.hits('GET /health')).toBe(2);
  });

  it('answers about a hung backend within the timeout, and about a provider that ignores its signal too', async () => {
    const hung: PathologicalServer = await startHungServer();
    const provider = new RknnSdProvider(remoteBackend('rknn-sd', hung.url, { name: 'hung' }), new SystemClock());
    cleanup.push(
      () => hung.close(),
      () => provider.dispose(),
    );
    for (const p of [provider, deafProvider('deaf')]) {
      const started = Date.now();
      const result = await probes.observe(p, { timeoutMs: 100, cacheMs: 0, failureThreshold: 3 });
      expect(Date.now() - started).toBeLessThanOrEqual(100 + 300);
      expect(result).toMatchObject({ reachable: false, error: 'probe timed out after 100 ms', models: [] });
    }
  });

  it('probeAll: a dead backend does not delay the answer about a healthy one', async () => {
    const { provider } = await rknn();
    const started = Date.now();
    const [good, dead] = await probes.probeAll([provider, deafProvider('deaf')], (p) => ({
      ...opts,
      timeoutMs: p.backendName === 'deaf' ? 100 : 1000,
    }));
    expect(Date.now() - started).toBeLessThanOrEqual(400);
    expect(good).toMatchObject({ reachable: true });
    expect(dead).toMatchObject({ reachable: false, backend: 'deaf' });
  });

  it('marks a remote backend unavailable after N consecutive failures and ready again on the next good probe, evented', async () => {
    const fake = await startFakeOpenAi({ models: ['m1'] });
    const provider = new OpenAiProvider(remoteBackend('openai', fake.url, { name: 'vllm' }), clock);
    cleanup.push(
      () => fake.close(),
      () => provider.dispose(),
    );
    state.register('vllm', 'openai');
    state.finalize('vllm', { initError: null, preloadFailures: [], preloadCount: 0 });
    const events: TransitionEvent[] = [];
    state.onTransition((e) => events.push(e));
    const once = { timeoutMs: 1000, cacheMs: 0, failureThreshold: 3 };

    fake.setHealthy(false);
    await probes.observe(provider, once);
    await probes.observe(provider, once);
    expect(state.get('vllm').readiness).toBe(Readiness.Ready);
    await probes.observe(provider, once);
    expect(state.get('vllm')).toMatchObject({
      readiness: Readiness.Unavailable,
      reason: expect.stringContaining('HTTP 503'),
    });
    await probes.observe(provider, once);

    fake.setHealthy(true);
    await probes.observe(provider, once);
    expect(state.get('vllm')).toMatchObject({ readiness: Readiness.Ready, reason: null });
    expect(events.map((e) => [e.from, e.to])).toEqual([
      [Readiness.Ready, Readiness.Unavailable],
      [Readiness.Unavailable, Readiness.Ready],
    ]);
  });

  it('a backend whose init failed recovers through probes', async () => {
    const { provider } = await rknn();
    state.register('rknn-sd-test', 'rknn-sd');
    state.finalize('rknn-sd-test', { initError: 'connection refused', preloadFailures: [], preloadCount: 0 });
    await probes.observe(provider, opts);
    expect(state.get('rknn-sd-test')).toMatchObject({ readiness: Readiness.Ready, reason: null });
  });

  it('llama-server loading its model is not admitted (unavailable, "loading model") until it is loaded', async () => {
    const fake = await startFakeLlamaServer({ loading: true });
    const provider = new LlamaServerProvider(remoteBackend('llama-server', fake.url, { name: 'llama' }), clock);
    cleanup.push(
      () => fake.close(),
      () => provider.dispose(),
    );
    state.register('llama', 'llama-server');
    state.finalize('llama', { initError: null, preloadFailures: [], preloadCount: 0 });
    const once = { ...opts, cacheMs: 0 };
    await probes.observe(provider, once);
    expect(state.get('llama')).toMatchObject({ readiness: Readiness.Unavailable, reason: 'loading model' });
    fake.setLoading(false);
    await probes.observe(provider, once);
    expect(state.get('llama').readiness).toBe(Readiness.Ready);
  });

  it('leaves readiness alone before init settles, and for degraded backends on a good probe', async () => {
    const { provider } = await rknn();
    state.register('rknn-sd-test', 'rknn-sd');
    const failing = deafProvider('rknn-sd-test');
    for (let i = 0; i < 3; i++) await probes.observe(failing, { timeoutMs: 20, cacheMs: 0, failureThreshold: 1 });
    expect(state.get('rknn-sd-test').readiness).toBe(Readiness.Initializing);
    state.finalize('rknn-sd-test', { initError: null, preloadFailures: [{ id: 'a', reason: 'x' }], preloadCount: 2 });
    await probes.observe(provider, { ...opts, cacheMs: 0 });
    expect(state.get('rknn-sd-test').readiness).toBe(Readiness.Degraded);
  });
});
