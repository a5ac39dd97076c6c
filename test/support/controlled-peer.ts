import type { ModelProvider, Observation } from '../../src/providers/model-provider.js';

export type ControlledPeer = ModelProvider & {
  /** Settles the oldest probe still waiting, or the next one to come. */
  answer(o: Observation): void;
  disposed: boolean;
};

/**
 * A remote peer node whose probes the test answers one by one (the shape ModelplaneProvider.observe gives the
 * store), serving `ids` (by default one model, `<name>-model`).
 */
export function controlledPeer(name: string, ids: string[] = [`${name}-model`]): ControlledPeer {
  const waiting: ((o: Observation) => void)[] = [];
  const answers: Observation[] = [];
  const peer: ControlledPeer = {
    kind: 'modelplane' as const,
    backendName: name,
    url: `http://${name}.invalid:8080`,
    capabilities: { canObserveLoadState: true, canUnload: true, canLoad: true, remote: true },
    disposed: false,
    init: async () => undefined,
    descriptors: () =>
      ids.map((id) => ({ id, upstreamName: id, purpose: 'chat', expectedSizeBytes: null, details: {} })),
    observe: () =>
      new Promise<Observation>((resolve) => {
        const ready = answers.shift();
        if (ready) resolve(ready);
        else waiting.push(resolve);
      }),
    load: async () => undefined,
    unload: async () => ({ wasLoaded: false, expectedFreedBytes: null }),
    dispose: async () => {
      peer.disposed = true;
    },
    answer: (o: Observation) => {
      const waiter = waiting.shift();
      if (waiter) waiter(o);
      else answers.push(o);
    },
  };
  return peer;
}
