import { Injectable } from '@nestjs/common';
import { canServe } from '../backend-state/readiness.js';
import { EvictionService } from '../eviction/eviction.service.js';
import { ModelStateStore } from '../models/model-state.store.js';
import { ProviderRegistry } from '../providers/provider-registry.service.js';
import { PeerRelay } from '../providers/remote/peer-relay.js';
import { FleetViewService, type PeerView } from './fleet-view.service.js';

/** Where one request goes. */
export type Route =
  { kind: 'local'; why: string } | { kind: 'peer'; backend: string; url: string; node: string; why: string };

/** A peer's eviction plan is asked at request time, so it is bounded hard: a hung node costs at most this. */
const PLAN_TIMEOUT_MS = 250;

/**
 * Warm routing (docs/fleet.md): a model goes to a node where it is loaded and that can serve (least in
 * flight first, this node on a tie); else to a node that can load it without evicting anything (this
 * node's own plan first, then the peers' /api/eviction/plan); else here, per the local plan. Stale,
 * unreachable and unavailable peers are never chosen. Decisions read the store's snapshot, never a peer,
 * except the bounded plan question when nothing is warm anywhere.
 */
@Injectable()
export class FleetRouterService {
  /** Requests this node has forwarded and not yet finished, per peer backend and model. */
  private readonly forwarded = new Map<string, number>();
  readonly relay = new PeerRelay();

  constructor(
    private readonly store: ModelStateStore,
    private readonly registry: ProviderRegistry,
    private readonly eviction: EvictionService,
    private readonly view: FleetViewService,
  ) {}

  get enabled(): boolean {
    return this.view.fleet.routing;
  }

  /** The node that answers for `model` when this node does not route it (its own backend, or the peer it maps to). */
  servingNode(model: string): string {
    const resolved = this.registry.find(model);
    if (resolved?.backend.type !== 'modelplane') return this.view.nodeName;
    const peer = this.view.peers(this.store.snapshot()).find((p) => p.node.backend === resolved.backend.name);
    // A peer that cannot serve serves nothing: the refusal comes from this node.
    return peer?.peer ? peer.node.host : this.view.nodeName;
  }

  /** True when this node would hand `model` to a peer (no backend of its own has it). */
  resolvesToPeer(model: string): boolean {
    return this.registry.find(model)?.backend.type === 'modelplane';
  }

  async choose(model: string): Promise<Route> {
    const snapshot = this.store.snapshot();
    const resolved = this.registry.find(model);
    const localKind = resolved !== undefined && resolved.backend.type !== 'modelplane';
    const own = localKind ? snapshot.models.find((m) => m.id === model) : undefined;
    const ownBackend = own ? snapshot.backends.find((b) => b.name === own.backend) : undefined;
    const peers = this.view.peers(snapshot).filter((p) => p.peer !== null);

    // 1. Warm somewhere: least in flight, this node first on a tie.
    let best: { route: Route; inFlight: number } | null = null;
    if (own?.state === 'loaded' && ownBackend && canServe(ownBackend.readiness))
      best = { route: { kind: 'local', why: 'warm here' }, inFlight: own.in_flight };
    for (const p of peers) {
      const entry = p.peer!.loaded.find((e) => e.name === model);
      if (!entry) continue;
      const inFlight = (typeof entry.in_flight === 'number' ? entry.in_flight : 0) + this.inFlight(p, model);
      if (best === null || inFlight < best.inFlight) best = { route: this.toPeer(p, 'warm there'), inFlight };
    }
    if (best) return best.route;

    // 2. Loadable without evicting anything: here first (no network), then the peers that know the model.
    if (resolved && localKind && ownBackend && canServe(ownBackend.readiness)) {
      const plan = this.eviction.plan(resolved);
      if (plan.fits && plan.evict.length === 0) return { kind: 'local', why: 'fits here' };
    }
    const knowing = peers.filter((p) => this.store.latestObservation(p.node.backend!)?.byId.has(model));
    const fits = await Promise.all(knowing.map((p) => this.peerFits(p, model)));
    const roomy = knowing.filter((_, i) => fits[i]);
    if (roomy.length > 0) {
      roomy.sort((a, b) => this.inFlight(a, model) - this.inFlight(b, model));
      return this.toPeer(roomy[0]!, 'fits there');
    }
    // 3. Here, per the local plan (it evicts what it must, or refuses with insufficient_memory).
    return { kind: 'local', why: 'local plan' };
  }

  /** Count a forwarded request until `release` is called (the answer ended or the client left). */
  track(backend: string, model: string): () => void {
    const key = `${backend}\u0000${model}`;
    this.forwarded.set(key, (this.forwarded.get(key) ?? 0) + 1);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const left = (this.forwarded.get(key) ?? 1) - 1;
      if (left <= 0) this.forwarded.delete(key);
      else this.forwarded.set(key, left);
    };
  }

  async close(): Promise<void> {
    await this.relay.close();
  }

  private inFlight(p: PeerView, model: string): number {
    return this.forwarded.get(`${p.node.backend}\u0000${model}`) ?? 0;
  }

  private toPeer(p: PeerView, why: string): Route {
    return { kind: 'peer', backend: p.node.backend!, url: p.node.url, node: p.node.host, why };
  }

  private peerFits(p: PeerView, model: string): Promise<boolean> {
    return this.relay.fitsWithoutEvicting(p.node.url, model, PLAN_TIMEOUT_MS);
  }
}
