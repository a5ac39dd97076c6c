import { Inject, Injectable } from '@nestjs/common';
import { aggregateReadiness, canServe, Readiness } from '../backend-state/readiness.js';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { ModelStateStore } from '../models/model-state.store.js';
import { ModelsService } from '../models/models.service.js';
import type { BackendSnapshot, StateSnapshot } from '../models/state-snapshot.js';
import type { PeerObservation } from '../providers/model-provider.js';
import { ProviderRegistry } from '../providers/provider-registry.service.js';
import { ModelplaneProvider } from '../providers/remote/modelplane.provider.js';
import { type FleetConfig, fleetOf, urlHost } from '../config/fleet-config.js';

export interface FleetNode {
  host: string;
  url: string;
  /** This node (the one answering). */
  self: boolean;
  /** The backend name this node has for the peer; null for itself. */
  backend: string | null;
  reachable: boolean;
  readiness: Readiness;
  reason: string | null;
  observed_at: string | null;
  observation_age_ms: number | null;
  stale: boolean;
}

/** A node's own /api/models/loaded entry, plus where it lives. */
export type FleetLoadedEntry = Record<string, unknown> & { name: string; host: string; node_url: string };

/** One peer as the latest observation shows it. */
export interface PeerView {
  node: FleetNode;
  /** The peer's own loaded entries, only while its observation is fresh and it can serve (else none). */
  peer: PeerObservation | null;
}

/**
 * The fleet views, projected from one store snapshot plus the observations the store keeps for each peer:
 * no read asks a peer anything, so a hung node never delays an answer. A peer whose last probe failed, or
 * whose last good probe is stale, shows no models: it is marked in `nodes` and left out of `loaded`.
 */
@Injectable()
export class FleetViewService {
  readonly fleet: FleetConfig;
  readonly selfUrl: string;

  constructor(
    @Inject(APP_CONFIG) config: AppConfig,
    private readonly store: ModelStateStore,
    private readonly models: ModelsService,
    private readonly registry: ProviderRegistry,
  ) {
    this.fleet = fleetOf(config);
    this.selfUrl =
      this.fleet.selfUrl ?? `http://${reachableHost(config.server.host, this.fleet)}:${config.server.port}`;
  }

  get nodeName(): string {
    return this.fleet.nodeName;
  }

  peers(snapshot: StateSnapshot): PeerView[] {
    return snapshot.backends.filter((b) => b.backend_type === 'modelplane').map((b) => this.peerView(b));
  }

  selfNode(snapshot: StateSnapshot): FleetNode {
    const own = snapshot.backends.filter((b) => b.backend_type !== 'modelplane');
    // This node's own backends only: a peer's outage is the peer's, shown on its own line.
    const readiness = aggregateReadiness(own.map((b) => b.readiness));
    return {
      host: this.fleet.nodeName,
      url: this.selfUrl,
      self: true,
      backend: null,
      reachable: true,
      readiness,
      reason:
        own
          .filter((b) => b.reason !== null)
          .map((b) => `${b.name}: ${b.reason}`)
          .join('; ') || null,
      observed_at: new Date(snapshot.at_ms).toISOString(),
      observation_age_ms: 0,
      stale: false,
    };
  }

  loaded(snapshot = this.store.snapshot()): { loaded: FleetLoadedEntry[]; nodes: FleetNode[] } {
    const self = this.selfNode(snapshot);
    const loaded: FleetLoadedEntry[] = this.models
      .loaded(snapshot)
      .loaded.filter((e) => e.backend_type !== 'modelplane')
      .map((e) => ({ ...e, host: self.host, node_url: self.url }));
    const nodes = [self];
    for (const { node, peer } of this.peers(snapshot)) {
      nodes.push(node);
      for (const entry of peer?.loaded ?? []) {
        if (typeof entry.name !== 'string') continue;
        loaded.push({ ...entry, name: entry.name, host: node.host, node_url: node.url });
      }
    }
    return { loaded, nodes };
  }

  health(snapshot = this.store.snapshot()): {
    status: Readiness;
    ready_nodes: number;
    total_nodes: number;
    nodes: Pick<FleetNode, 'host' | 'url' | 'self' | 'readiness' | 'reason' | 'reachable' | 'stale'>[];
  } {
    const nodes = [this.selfNode(snapshot), ...this.peers(snapshot).map((p) => p.node)];
    const serving = nodes.filter((n) => canServe(n.readiness) && !n.stale).length;
    const ready = nodes.filter((n) => n.readiness === Readiness.Ready && !n.stale).length;
    const status =
      ready === nodes.length ? Readiness.Ready : serving === 0 ? Readiness.Unavailable : Readiness.Degraded;
    return {
      status,
      ready_nodes: ready,
      total_nodes: nodes.length,
      nodes: nodes.map(({ host, url, self, readiness, reason, reachable, stale }) => ({
        host,
        url,
        self,
        readiness,
        reason,
        reachable,
        stale,
      })),
    };
  }

  private peerView(b: BackendSnapshot): PeerView {
    const provider = this.registry.provider(b.name);
    const latest = this.store.latestObservation(b.name)?.observation;
    const usable = b.reachable && !b.stale && canServe(b.readiness) && latest?.serverState === 'ok';
    return {
      node: {
        host: provider instanceof ModelplaneProvider ? provider.nodeName : b.name,
        url: b.url ?? '',
        self: false,
        backend: b.name,
        reachable: b.reachable,
        readiness: b.readiness,
        reason: b.reason ?? b.error,
        observed_at: b.observed_at,
        observation_age_ms: b.observation_age_ms,
        stale: b.stale,
      },
      peer: usable ? (latest?.peer ?? null) : null,
    };
  }
}

/**
 * The host peers can reach this node at when no self_url is set: the bound address, or, when bound to every
 * interface, the pod IP (a Kubernetes node name is not a name the pod network resolves), then the node name.
 */
function reachableHost(bound: string, fleet: FleetConfig): string {
  if (bound !== '0.0.0.0' && bound !== '::') return urlHost(bound);
  if (fleet.podIp !== null) return urlHost(fleet.podIp);
  return fleet.nodeName;
}
