/**
 * Warm routing decisions on in-memory views: this node's own backend (a controllable in-process provider) and
 * peers whose probes the test answers one by one, all on a FakeClock. The wire (relay, headers, real peers)
 * is covered by test/e2e/fleet.e2e-spec.ts; here each rule of docs/fleet.md "Warm routing" is played alone.
 */
import { backendConfig } from '../../src/config/config-defaults.js';
import { FleetRouterService } from '../../src/fleet/fleet-router.service.js';
import { FleetViewService } from '../../src/fleet/fleet-view.service.js';
import type { Lease } from '../../src/models/model-lifecycle.service.js';
import type { Observation } from '../../src/providers/model-provider.js';
import { configFrom } from '../support/config.js';
import { controlledPeer } from '../support/controlled-peer.js';
import { ControllableProvider } from '../support/controllable-provider.js';
import { FakeClock } from '../support/fake-clock.js';
import { buildModelCore, type ModelCore } from '../support/model-core.js';

interface PeerModel {
  id: string;
  state: 'loaded' | 'unloaded';
  inFlight?: number;
}

/** What a reachable peer's probe gives: its catalog states and its own loaded entries with their in_flight. */
function peerAnswer(node: string, models: PeerModel[]): Observation {
  return {
    reachable: true,
    error: null,
    serverState: 'ok',
    models: models.map((m) => ({
      id: m.id,
      state: m.state,
      sizeBytes: null,
      vramBytes: null,
      ramBytes: null,
      expiresAt: null,
      backendIdleSeconds: 0,
      details: { node },
      observedVia: 'test',
    })),
    peer: {
      node,
      loaded: models
        .filter((m) => m.state === 'loaded')
        .map((m) => ({ name: m.id, backend: 'local', backend_type: 'llama-cpp', in_flight: m.inFlight ?? 0 })),
    },
  };
}

const DOWN: Observation = { reachable: false, error: 'connect ECONNREFUSED', serverState: 'error', models: [] };

describe('fleet router: where a request goes', () => {
  let clock: FakeClock;
  let core: ModelCore;
  let local: ControllableProvider;
  let peers: Record<'a' | 'b', ReturnType<typeof controlledPeer>>;
  let router: FleetRouterService;
  let view: FleetViewService;
  const leases: Lease[] = [];

  /** One probe of a peer, answered with `o` (what the background prober would do next). */
  async function observe(name: 'a' | 'b', o: Observation): Promise<void> {
    const probed = core.observer.probeNow(`peer-${name}`);
    peers[name].answer(o);
    await probed;
  }

  beforeEach(async () => {
    clock = new FakeClock();
    const config = configFrom({ backends: [], fleet: { node_name: 'here' }, eviction: { max_loaded_models: 1 } });
    local = new ControllableProvider('local', ['m', 'other']);
    peers = { a: controlledPeer('peer-a', ['m']), b: controlledPeer('peer-b', ['m']) };
    core = buildModelCore(config, [local, peers.a, peers.b], clock);
    core.registry.addBackend(backendConfig('local', 'llama-cpp', []));
    for (const name of ['a', 'b'] as const) {
      core.registry.addBackend(
        backendConfig(`peer-${name}`, 'modelplane', [], { url: peers[name].url, failureThreshold: 1 }),
      );
    }
    // Brought up as start-up (own backend) and discovery (peers) do: initialised, then observed.
    for (const name of ['local', 'peer-a', 'peer-b']) {
      core.backendState.markInitialized(name);
      core.backendState.finalize(name, { initError: null, preloadFailures: [], preloadCount: 0 });
      core.observer.watch(name);
    }
    await core.observer.probeNow('local');
    view = new FleetViewService(config, core.store, core.models, core.registry);
    router = new FleetRouterService(core.store, core.registry, core.eviction, view);
  });

  afterEach(() => {
    for (const lease of leases.splice(0)) lease.release();
  });

  it('a model warm on two peers goes to the one with fewer requests in flight, counting what this node relays', async () => {
    await observe('a', peerAnswer('node-a', [{ id: 'm', state: 'loaded', inFlight: 3 }]));
    await observe('b', peerAnswer('node-b', [{ id: 'm', state: 'loaded', inFlight: 1 }]));
    expect(await router.choose('m')).toMatchObject({ kind: 'peer', backend: 'peer-b', why: 'warm there' });

    // Three requests this node is relaying to node-b right now: 1 + 3 there against 3 on node-a.
    const releases = [1, 2, 3].map(() => router.track('peer-b', 'm'));
    expect(await router.choose('m')).toMatchObject({ kind: 'peer', backend: 'peer-a' });
    for (const release of releases) release();
    expect(await router.choose('m')).toMatchObject({ kind: 'peer', backend: 'peer-b' });
  });

  it('this node, warm with fewer in flight than every peer, serves it itself', async () => {
    await observe('a', peerAnswer('node-a', [{ id: 'm', state: 'loaded', inFlight: 3 }]));
    await observe('b', peerAnswer('node-b', [{ id: 'm', state: 'loaded', inFlight: 4 }]));
    leases.push(await core.lifecycle.acquire('m'), await core.lifecycle.acquire('m'));
    expect(await router.choose('m')).toEqual({ kind: 'local', why: 'warm here' });
    leases.push(await core.lifecycle.acquire('m'), await core.lifecycle.acquire('m'));
    expect(await router.choose('m')).toMatchObject({ kind: 'peer', backend: 'peer-a' });
  });

  it('an unavailable peer is never chosen, even warm and idle', async () => {
    await observe('a', peerAnswer('node-a', [{ id: 'm', state: 'loaded', inFlight: 0 }]));
    await observe('b', peerAnswer('node-b', [{ id: 'm', state: 'loaded', inFlight: 5 }]));
    expect(await router.choose('m')).toMatchObject({ backend: 'peer-a' });
    await observe('a', DOWN);
    expect(view.loaded().nodes.find((n) => n.backend === 'peer-a')).toMatchObject({
      reachable: false,
      readiness: 'unavailable',
    });
    expect(await router.choose('m')).toMatchObject({ kind: 'peer', backend: 'peer-b' });
  });

  it('a stale peer is never chosen, even warm and idle', async () => {
    await observe('a', peerAnswer('node-a', [{ id: 'm', state: 'loaded', inFlight: 0 }]));
    await observe('b', peerAnswer('node-b', [{ id: 'm', state: 'loaded', inFlight: 5 }]));
    // node-a is not heard from for longer than probe_interval_ms + probe_timeout_ms; node-b is.
    const { probeIntervalMs, probeTimeoutMs } = core.registry.all().find((e) => e.backend.name === 'peer-a')!.backend;
    clock.advance(probeIntervalMs + probeTimeoutMs + 1);
    await observe('b', peerAnswer('node-b', [{ id: 'm', state: 'loaded', inFlight: 5 }]));
    const nodeA = view.loaded().nodes.find((n) => n.backend === 'peer-a');
    expect(nodeA).toMatchObject({ stale: true });
    expect(await router.choose('m')).toMatchObject({ kind: 'peer', backend: 'peer-b' });
    // Both stale: nobody is warm that the router may trust, so it is served here.
    clock.advance(probeIntervalMs + probeTimeoutMs + 1);
    expect(await router.choose('m')).toMatchObject({ kind: 'local' });
  });

  it('warm nowhere and fitting nowhere without eviction: served here, per the local plan', async () => {
    // This node may hold one model and holds 'other': 'm' fits here only by evicting it.
    await core.lifecycle.load('other');
    expect(core.eviction.plan(core.registry.resolve('m'))).toMatchObject({ fits: true, evict: ['other'] });
    // Both peers know 'm' (unloaded there); each one's eviction plan says it would have to evict.
    await observe('a', peerAnswer('node-a', [{ id: 'm', state: 'unloaded' }]));
    await observe('b', peerAnswer('node-b', [{ id: 'm', state: 'unloaded' }]));
    const asked: string[] = [];
    // The peers' answers to GET /api/eviction/plan (the wire exchange is in fleet.e2e-spec.ts).
    router.relay.fitsWithoutEvicting = async (url: string) => {
      asked.push(url);
      return false;
    };
    expect(await router.choose('m')).toEqual({ kind: 'local', why: 'local plan' });
    expect(asked.sort()).toEqual([peers.a.url, peers.b.url]);
    // The same, with one peer answering that it has room: that peer gets it.
    router.relay.fitsWithoutEvicting = async (url: string) => url === peers.b.url;
    expect(await router.choose('m')).toMatchObject({ kind: 'peer', backend: 'peer-b', why: 'fits there' });
  });
});
