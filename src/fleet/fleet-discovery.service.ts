import {
  Inject,
  Injectable,
  Logger,
  Optional,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { Resolver } from 'node:dns/promises';
import { BackendStateService } from '../backend-state/backend-state.service.js';
import { Readiness } from '../backend-state/readiness.js';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { ProbeService } from '../models/probe.service.js';
import { ModelStateStore } from '../models/model-state.store.js';
import { errorText } from '../common/errors.js';
import { ProviderRegistry } from '../providers/provider-registry.service.js';
import { type FleetConfig, fleetOf, isSelf, peerBackend, urlHost } from '../config/fleet-config.js';

/** What discovery asks DNS; node:dns's Resolver by default, replaceable in tests. */
export interface PeerResolver {
  resolve4(name: string): Promise<string[]>;
  resolve6(name: string): Promise<string[]>;
}
export const PEER_RESOLVER = Symbol('PEER_RESOLVER');

/** "No such name" / "no records": the Service has no ready pod, so no peer (unlike a DNS server that is down). */
const EMPTY_ANSWER = new Set(['ENOTFOUND', 'ENODATA', 'NXDOMAIN']);

/**
 * Peers the Kubernetes way: the A and AAAA records of a headless Service are its ready pods. Every
 * `interval_ms` the name is resolved; a new address becomes a `modelplane` backend (observed like any
 * remote backend), an address gone from DNS is removed from the registry, readiness and every view at once.
 * This node (self_url, pod IP) is never a peer. A DNS failure (timeout, refused) changes nothing: one lost
 * answer is not a fleet that vanished.
 */
@Injectable()
export class FleetDiscoveryService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(FleetDiscoveryService.name);
  private readonly fleet: FleetConfig;
  private readonly resolver: PeerResolver;
  /** Backend name → url of the peers DNS gave us (static peers are not ours to remove). */
  private readonly discovered = new Map<string, string>();
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  /** Bring-ups (init, first probe) of peers just added. */
  private readonly pending = new Set<Promise<void>>();

  constructor(
    @Inject(APP_CONFIG) config: AppConfig,
    private readonly registry: ProviderRegistry,
    private readonly backendState: BackendStateService,
    private readonly probes: ProbeService,
    private readonly store: ModelStateStore,
    @Optional() @Inject(PEER_RESOLVER) resolver?: PeerResolver,
  ) {
    this.fleet = fleetOf(config);
    const servers = this.fleet.dns?.servers ?? [];
    this.resolver = resolver ?? systemResolver(servers);
  }

  onApplicationBootstrap(): void {
    const dns = this.fleet.dns;
    if (!dns) return;
    void this.sync();
    this.timer = setInterval(() => void this.sync(), dns.intervalMs);
    this.timer.unref();
  }

  onApplicationShutdown(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Resolves when every peer added so far has had its init and first probe. */
  async whenSettled(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending]);
  }

  /** The peers DNS gave us now (backend name → url). */
  peers(): ReadonlyMap<string, string> {
    return this.discovered;
  }

  /** Resolve once and apply the difference; single-flight. Resolves when peers were added or removed. */
  sync(): Promise<void> {
    this.running ??= this.syncOnce().finally(() => (this.running = null));
    return this.running;
  }

  private async syncOnce(): Promise<void> {
    const dns = this.fleet.dns;
    if (!dns) return;
    const answers = await Promise.allSettled([this.resolver.resolve4(dns.name), this.resolver.resolve6(dns.name)]);
    const failed = answers.flatMap((a) => (a.status === 'rejected' ? [a.reason as unknown] : []));
    const hardFailure = failed.find((err) => !EMPTY_ANSWER.has(String((err as { code?: unknown }).code)));
    if (hardFailure !== undefined && failed.length === answers.length) {
      this.logger.warn(`DNS lookup of ${dns.name} failed (peers kept): ${errorText(hardFailure)}`);
      return;
    }
    const addresses = answers.flatMap((a) => (a.status === 'fulfilled' ? a.value : []));
    const wanted = new Map<string, string>();
    for (const ip of addresses) {
      const url = `${dns.scheme}://${urlHost(ip)}:${dns.port}`;
      if (isSelf(url, this.fleet)) continue;
      const backend = peerBackend(url, this.fleet);
      wanted.set(backend.name, url);
    }
    for (const [name] of this.discovered) if (!wanted.has(name)) await this.remove(name);
    for (const [name, url] of wanted) if (!this.discovered.has(name)) this.add(name, url);
  }

  private add(name: string, url: string): void {
    if (this.registry.provider(name)) return; // a static peer at the same address already
    const backend = peerBackend(url, this.fleet);
    const provider = this.registry.addBackend(backend);
    // Not `initializing`: a peer that appears must not take this node out of its Service while it is looked at.
    this.backendState.set(name, Readiness.Unavailable, 'discovered, not yet observed');
    this.discovered.set(name, url);
    this.probes.watch(name);
    this.logger.log(`peer ${url} joined (backend '${name}')`);
    const bringUp = (async () => {
      let initError: string | null = null;
      try {
        await provider.init();
      } catch (err) {
        initError = errorText(err);
      }
      if (!this.backendState.has(name)) return; // left again meanwhile
      this.backendState.finalize(name, { initError, preloadFailures: [], preloadCount: 0 });
      this.registry.refreshCatalog(name);
      await this.probes.probeNow(name);
    })();
    this.pending.add(bringUp);
    void bringUp.finally(() => this.pending.delete(bringUp));
  }

  private async remove(name: string): Promise<void> {
    this.logger.log(`peer ${this.discovered.get(name)} left DNS (backend '${name}' removed)`);
    this.discovered.delete(name);
    this.probes.unwatch(name);
    await this.registry.removeBackend(name);
    this.store.forgetBackend(name);
  }
}

function systemResolver(servers: string[]): PeerResolver {
  const resolver = new Resolver({ timeout: 1000, tries: 2 });
  if (servers.length > 0) resolver.setServers(servers);
  return resolver;
}
