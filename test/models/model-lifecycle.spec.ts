import type { AppConfig } from '../../src/config/app-config.js';
import { EvictionService } from '../../src/eviction/eviction.service.js';
import { ModelLifecycleService } from '../../src/models/model-lifecycle.service.js';
import { configFrom } from '../support/config.js';
import { ControllableProvider } from '../support/controllable-provider.js';
import { FakeClock } from '../support/fake-clock.js';
import { buildModelCore } from '../support/model-core.js';
import { waitFor } from '../support/wait-for.js';

function setup(eviction: Record<string, unknown> = {}, models = [{ id: 'a' }, { id: 'b' }, { id: 'c' }]) {
  const config: AppConfig = configFrom({
    eviction: { idle_unload_s: 60, check_interval_s: 1, ...eviction },
    server: { shutdown_drain_s: 1 },
    backends: [{ name: 'local', type: 'llama-cpp', models: models.map((m) => ({ path: `${m.id}.gguf`, ...m })) }],
  });
  const clock = new FakeClock();
  const provider = new ControllableProvider(
    'local',
    models.map((m) => m.id),
  );
  const core = buildModelCore(config, [provider], clock);
  return { config, clock, provider, ...core };
}

describe(ModelLifecycleService.name, () => {
  it('shares one load among concurrent callers', async () => {
    const { provider, lifecycle } = setup();
    provider.holdLoads();
    const leases = Promise.all([lifecycle.acquire('a'), lifecycle.acquire('a'), lifecycle.acquire('a')]);
    await Promise.resolve();
    provider.releaseLoads();
    const acquired = await leases;
    expect(provider.loadCalls).toBe(1);
    expect(lifecycle.peek('a')!.inFlight).toBe(3);
    acquired.forEach((l) => l.release());
    expect(lifecycle.peek('a')!.inFlight).toBe(0);
  });

  it('releasing a lease twice counts once', async () => {
    const { lifecycle } = setup();
    const lease = await lifecycle.acquire('a');
    await lifecycle.acquire('a');
    lease.release();
    lease.release();
    expect(lifecycle.peek('a')!.inFlight).toBe(1);
  });

  it('a failed load fails that request, marks the model failed, and the next request retries', async () => {
    const { provider, lifecycle } = setup();
    provider.failNextLoad = new Error('bad file');
    await expect(lifecycle.acquire('a')).rejects.toThrow(/bad file/);
    expect(lifecycle.peek('a')).toMatchObject({ state: 'failed', inFlight: 0 });
    const lease = await lifecycle.acquire('a');
    expect(lifecycle.peek('a')!.state).toBe('loaded');
    lease.release();
  });

  it('admin unload waits for the in-flight request, then unloads', async () => {
    const { clock, provider, lifecycle } = setup();
    const lease = await lifecycle.acquire('a');
    provider.serving = 1;
    const unloading = lifecycle.unload('a', 'admin', { drainTimeoutMs: 5_000 });
    await waitFor(() => clock.pendingDelays > 0, 'the unload to wait for the drain');
    clock.advance(4_999);
    await new Promise((r) => setImmediate(r));
    expect(provider.unloadCalls).toBe(0);
    provider.serving = 0;
    lease.release();
    await expect(unloading).resolves.toMatchObject({ ok: true, model: 'a', was_loaded: true });
    expect(provider.unloadedWhileServing).toBe(0);
    // The drain bound was cancelled once the model drained: nothing is left waiting on the clock.
    expect(clock.pendingDelays).toBe(0);
  });

  it('admin unload refuses with model_busy when requests outlast the drain bound', async () => {
    const { clock, lifecycle } = setup();
    const lease = await lifecycle.acquire('a');
    let settled = false;
    const unloading = lifecycle.unload('a', 'admin', { drainTimeoutMs: 10 });
    unloading.catch(() => undefined).finally(() => (settled = true));
    await waitFor(() => clock.pendingDelays > 0, 'the unload to wait for the drain');
    clock.advance(9);
    await new Promise((r) => setImmediate(r));
    expect(settled).toBe(false);
    clock.advance(1);
    await expect(unloading).rejects.toMatchObject({ code: 'model_busy', status: 409 });
    expect(lifecycle.peek('a')!.state).toBe('loaded');
    lease.release();
  });

  it('a second unload reports was_loaded false', async () => {
    const { lifecycle } = setup();
    (await lifecycle.acquire('a')).release();
    await lifecycle.unload('a', 'admin');
    await expect(lifecycle.unload('a', 'admin')).resolves.toMatchObject({ was_loaded: false });
  });
});

describe(EvictionService.name, () => {
  it('unloads a model once it has been idle for its threshold, never before', async () => {
    const { clock, provider, lifecycle, eviction } = setup();
    (await lifecycle.acquire('a')).release();
    clock.advance(59_000);
    expect(await eviction.tick()).toEqual([]);
    clock.advance(1_000);
    const outcomes = await eviction.tick();
    expect(outcomes.map((o) => o.model)).toEqual(['a']);
    expect(provider.loaded.has('a')).toBe(false);
    expect(lifecycle.peek('a')!.state).toBe('unloaded');
  });

  it('never unloads while a request is in flight, however long it runs', async () => {
    const { clock, provider, lifecycle, eviction } = setup();
    const lease = await lifecycle.acquire('a');
    provider.serving = 1;
    clock.advance(3_600_000);
    expect(await eviction.tick()).toEqual([]);
    provider.serving = 0;
    lease.release();
    clock.advance(30_000);
    expect(await eviction.tick()).toEqual([]);
    clock.advance(30_000);
    expect((await eviction.tick()).length).toBe(1);
  });

  it('a request arriving mid-sweep keeps the model (re-check under the lock)', async () => {
    const { clock, provider, lifecycle, eviction } = setup();
    (await lifecycle.acquire('a')).release();
    clock.advance(61_000);
    // The request queues on the model lock before the sweeper's unload does.
    const leasePromise = lifecycle.acquire('a');
    const sweep = eviction.tick();
    const lease = await leasePromise;
    expect(await sweep).toEqual([]);
    expect(provider.loaded.has('a')).toBe(true);
    lease.release();
  });

  it('a request arriving after the unload started waits for it and reloads', async () => {
    const { clock, provider, lifecycle, eviction } = setup();
    (await lifecycle.acquire('a')).release();
    clock.advance(61_000);
    const sweep = eviction.tick();
    const lease = await lifecycle.acquire('a');
    expect((await sweep).map((o) => o.model)).toEqual(['a']);
    expect(provider.loadCalls).toBe(2);
    expect(lifecycle.peek('a')!.state).toBe('loaded');
    lease.release();
  });

  it('never evicts pinned models or models with threshold 0', async () => {
    const { clock, lifecycle, eviction } = setup({}, [
      { id: 'p', pin: true } as never,
      { id: 'z', idle_unload_s: 0 } as never,
    ]);
    (await lifecycle.acquire('p')).release();
    (await lifecycle.acquire('z')).release();
    clock.advance(10 * 24 * 3_600_000);
    expect(await eviction.tick()).toEqual([]);
  });

  it('memory budget: evicts the least recently used idle model before a load', async () => {
    const { clock, provider, lifecycle } = setup({ max_loaded_models: 2 });
    (await lifecycle.acquire('a')).release();
    clock.advance(1_000);
    (await lifecycle.acquire('b')).release();
    clock.advance(1_000);
    (await lifecycle.acquire('c')).release();
    expect([...provider.loaded].sort()).toEqual(['b', 'c']);
  });

  it('memory budget: refuses with insufficient_memory when nothing can be evicted', async () => {
    const { lifecycle } = setup({ max_loaded_models: 1 });
    const busy = await lifecycle.acquire('a');
    await expect(lifecycle.acquire('b')).rejects.toMatchObject({ code: 'insufficient_memory', status: 503 });
    busy.release();
  });
});
