/**
 * Backends that come and go at run time (fleet peers found in DNS): the registry, readiness and the observer
 * take them in and let them go, and every view follows at once.
 */
import { Readiness } from '../../src/backend-state/readiness.js';
import { backendConfig } from '../../src/config/config-defaults.js';
import type { Observation } from '../../src/providers/model-provider.js';
import { configFrom } from '../support/config.js';
import { controlledPeer } from '../support/controlled-peer.js';
import { FakeClock } from '../support/fake-clock.js';
import { buildModelCore } from '../support/model-core.js';

const loaded = (id: string): Observation => ({
  reachable: true,
  error: null,
  serverState: 'ok',
  models: [
    {
      id,
      state: 'loaded',
      sizeBytes: null,
      vramBytes: null,
      ramBytes: null,
      expiresAt: null,
      backendIdleSeconds: 0,
      details: {},
      observedVia: 'test',
    },
  ],
});

describe('run-time backends (registry, readiness, observer)', () => {
  const clock = new FakeClock();
  const config = configFrom({ backends: [] });

  it('a backend added at run time is in the catalog, readiness and views; removed, it is gone from all', async () => {
    const peer = controlledPeer('peer-a');
    const core = buildModelCore(config, [peer], clock);
    core.registry.addBackend(backendConfig('peer-a', 'modelplane', [], { url: peer.url }));
    expect(core.registry.find('peer-a-model')?.backend.name).toBe('peer-a');
    expect(core.backendState.get('peer-a').readiness).toBe(Readiness.Initializing);

    core.observer.watch('peer-a');
    const probed = core.observer.probeNow('peer-a');
    peer.answer(loaded('peer-a-model'));
    await probed;
    expect(core.models.loaded().loaded.map((e) => e.name)).toEqual(['peer-a-model']);

    core.observer.unwatch('peer-a');
    await core.registry.removeBackend('peer-a');
    expect(core.registry.find('peer-a-model')).toBeUndefined();
    expect(core.backendState.has('peer-a')).toBe(false);
    expect(core.backendState.snapshot().backends).toEqual([]);
    expect(core.store.snapshot().backends).toEqual([]);
    expect(core.models.loaded().loaded).toEqual([]);
    expect(peer.disposed).toBe(true);
    // Nothing left to probe: a late call is a no-op, not an error.
    await expect(core.observer.probeNow('peer-a')).resolves.toBeUndefined();
  });

  it('a probe still running when its backend is removed writes nothing', async () => {
    const peer = controlledPeer('peer-b');
    const core = buildModelCore(config, [peer], clock);
    core.registry.addBackend(backendConfig('peer-b', 'modelplane', [], { url: peer.url }));
    core.observer.watch('peer-b');
    const probed = core.observer.probeNow('peer-b');
    core.observer.unwatch('peer-b');
    await core.registry.removeBackend('peer-b');
    peer.answer(loaded('peer-b-model'));
    await probed;
    expect(core.store.latestObservation('peer-b')).toBeUndefined();
  });

  it('refuses a second backend with a name already taken', () => {
    const peer = controlledPeer('peer-c');
    const core = buildModelCore(config, [peer], clock);
    core.registry.addBackend(backendConfig('peer-c', 'modelplane', [], { url: peer.url }));
    expect(() => core.registry.addBackend(backendConfig('peer-c', 'modelplane', [], { url: peer.url }))).toThrow(
      /already exists/,
    );
  });
});
