import { Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { EventEmitter } from 'node:events';
import { BackendStateService } from '../backend-state/backend-state.service.js';
import { Readiness } from '../backend-state/readiness.js';
import { Clock } from '../common/clock.js';
import { errorText } from '../common/errors.js';
import type { BackendConfig } from '../config/app-config.js';
import type { ModelProvider, Observation } from '../providers/model-provider.js';
import { ProviderRegistry } from '../providers/provider-registry.service.js';
import { ModelStateStore } from './model-state.store.js';

/** One finished probe, as metrics see it. */
export interface ProbeRecord {
  backend: string;
  ok: boolean;
  probe_ms: number;
}

interface Watch {
  provider: ModelProvider;
  backend: BackendConfig;
  inFlight: Promise<void> | null;
  /** One more probe after the running one, shared by everyone who asked for a fresh answer meanwhile. */
  followUp: Promise<void> | null;
  consecutiveFailures: number;
}

/**
 * The observer: the only code that asks backends what they hold. Remote backends are probed in the
 * background every `probe_interval_ms` and right after modelplane itself loads or unloads on them (or a
 * proxied request saw the connection refused); in-process backends right after our own loads and unloads.
 * Every probe is bounded by a hard timeout and single-flight per backend; its result is written to the
 * ModelStateStore. Reads never call this service, so a hung backend never delays an answer.
 * Probe results also drive the readiness of remote backends (failure threshold, loading, recovery).
 */
@Injectable()
export class ProbeService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(ProbeService.name);
  private readonly watches = new Map<string, Watch>();
  private readonly emitter = new EventEmitter();
  private readonly intervals: string[] = [];
  private bootstrapped = false;

  constructor(
    private readonly registry: ProviderRegistry,
    private readonly store: ModelStateStore,
    private readonly backendState: BackendStateService,
    private readonly clock: Clock,
    private readonly scheduler: SchedulerRegistry,
  ) {
    for (const { provider, backend } of registry.all()) {
      this.watches.set(backend.name, { provider, backend, inFlight: null, followUp: null, consecutiveFailures: 0 });
    }
  }

  onApplicationBootstrap(): void {
    this.bootstrapped = true;
    for (const watch of this.watches.values()) this.startInterval(watch);
  }

  onApplicationShutdown(): void {
    for (const name of this.intervals.splice(0)) {
      if (this.scheduler.doesExist('interval', name)) this.scheduler.deleteInterval(name);
    }
  }

  /** Start observing a backend added at run time (ProviderRegistry.addBackend): background probes from now on. */
  watch(backendName: string): void {
    const entry = this.registry.all().find((e) => e.backend.name === backendName);
    if (!entry || this.watches.has(backendName)) return;
    const watch: Watch = { ...entry, inFlight: null, followUp: null, consecutiveFailures: 0 };
    this.watches.set(backendName, watch);
    if (this.bootstrapped) this.startInterval(watch);
  }

  /** Stop observing a backend that is being removed; a probe already running finishes and is ignored by views. */
  unwatch(backendName: string): void {
    if (!this.watches.delete(backendName)) return;
    const name = intervalName(backendName);
    const at = this.intervals.indexOf(name);
    if (at >= 0) this.intervals.splice(at, 1);
    if (this.scheduler.doesExist('interval', name)) this.scheduler.deleteInterval(name);
  }

  private startInterval(watch: Watch): void {
    if (!watch.provider.capabilities.remote) return;
    const name = intervalName(watch.backend.name);
    // A tick that finds the previous probe still running (a hung backend) skips it: probes never pile up.
    const interval = setInterval(() => {
      if (!watch.inFlight) void this.start(watch);
    }, watch.backend.probeIntervalMs);
    interval.unref();
    this.scheduler.addInterval(name, interval);
    this.intervals.push(name);
  }

  /** Every finished probe: for probe-duration metrics. Returns the unsubscriber. */
  onProbe(listener: (probe: ProbeRecord) => void): () => void {
    this.emitter.on('probe', listener);
    return () => this.emitter.off('probe', listener);
  }

  /**
   * Observe one backend now and write the result to the store. A call while a probe runs waits for it and
   * for one more probe after it (the caller's change may have come after the first one started); callers
   * arriving meanwhile share that follow-up. Never throws.
   */
  probeNow(backendName: string): Promise<void> {
    const watch = this.watches.get(backendName);
    if (!watch) return Promise.resolve();
    if (!watch.inFlight) return this.start(watch);
    watch.followUp ??= watch.inFlight.then(() => {
      watch.followUp = null;
      return watch.inFlight ?? this.start(watch);
    });
    return watch.followUp;
  }

  private start(watch: Watch): Promise<void> {
    const probe = this.probeOnce(watch).finally(() => {
      if (watch.inFlight === probe) watch.inFlight = null;
    });
    watch.inFlight = probe;
    return probe;
  }

  /** Resolves when no probe is running (probes already asked for included). */
  async whenIdle(): Promise<void> {
    for (;;) {
      const running = [...this.watches.values()].flatMap((w) => [w.inFlight, w.followUp].filter((p) => p !== null));
      if (running.length === 0) return;
      await Promise.all(running);
    }
  }

  /** Observe every backend (or the remote ones) now and wait for all; for the sweeper and tests. */
  async refresh(which: 'all' | 'remote' = 'all'): Promise<void> {
    await Promise.all(
      [...this.watches.values()]
        .filter((w) => which === 'all' || w.provider.capabilities.remote)
        .map((w) => this.probeNow(w.backend.name)),
    );
  }

  private async probeOnce(watch: Watch): Promise<void> {
    const { provider, backend } = watch;
    const startedMs = this.clock.nowMs();
    const probedAt = new Date(this.clock.epochMs()).toISOString();
    const observation = await boundedObserve(provider, backend.probeTimeoutMs, this.clock);
    const probeMs = Math.round(this.clock.nowMs() - startedMs);
    // The backend was removed (a peer left DNS) while this probe ran: nothing to write.
    if (this.watches.get(backend.name) !== watch) return;
    this.store.observed(backend.name, observation, probedAt, probeMs);
    this.registry.refreshCatalog(backend.name);
    this.applyReadiness(watch, observation);
    this.emitter.emit('probe', {
      backend: backend.name,
      ok: observation.reachable && observation.serverState !== 'error',
      probe_ms: probeMs,
    } satisfies ProbeRecord);
  }

  /**
   * Readiness from probes, for remote backends only and only once their init has settled (before that,
   * init and preloads own the state):
   * - N consecutive failures (unreachable, timeout, or an answer meaning "cannot serve") → unavailable,
   *   with the probe's error as the reason. Fewer failures change nothing: one lost probe is not an outage.
   * - The server itself says it is loading (llama-server 503 "Loading model") → unavailable at once with
   *   reason "loading model": not able to serve → not admitted, with Retry-After. It is neither
   *   `initializing` (that would hold the whole service's readiness on one server's model load) nor
   *   `degraded` (which admits requests that would only get 503s from upstream).
   * - A good probe after unavailable → ready (recovery). `degraded` (some preload failed) is left alone.
   */
  private applyReadiness(watch: Watch, result: Observation): void {
    const name = watch.backend.name;
    if (!watch.provider.capabilities.remote || !this.backendState.has(name)) return;
    const state = this.backendState.get(name);
    if (!state.backend_initialized || state.readiness === Readiness.Initializing) return;

    const failed = !result.reachable || result.serverState === 'error';
    if (failed) {
      watch.consecutiveFailures++;
      if (watch.consecutiveFailures >= Math.max(1, watch.backend.failureThreshold)) {
        // Once unavailable, a new error text is not a new transition: keep the first reason of the streak.
        if (state.readiness !== Readiness.Unavailable)
          this.transition(name, Readiness.Unavailable, result.error ?? 'probe failed', state.readiness);
      }
      return;
    }
    watch.consecutiveFailures = 0;
    if (result.serverState === 'loading') {
      this.transition(name, Readiness.Unavailable, 'loading model', state.readiness);
      return;
    }
    if (state.readiness === Readiness.Unavailable) this.transition(name, Readiness.Ready, null, state.readiness);
  }

  private transition(name: string, to: Readiness, reason: string | null, from: Readiness): void {
    this.backendState.set(name, to, reason);
    if (from === to) return;
    if (to === Readiness.Ready) this.logger.log(`backend '${name}' recovered: ${from} → ready`);
    else this.logger.warn(`backend '${name}' ${from} → ${to}: ${reason}`);
  }
}

function intervalName(backend: string): string {
  return `modelplane-probe-${backend}`;
}

/**
 * One observation, never longer than `timeoutMs` of the clock whatever the provider does: the signal asks it to
 * stop, the race guarantees the answer even if it does not listen. On the injected Clock, so a test decides when
 * a hung backend's probe times out and a busy machine never turns a slow answer into a timeout.
 */
async function boundedObserve(provider: ModelProvider, timeoutMs: number, clock: Clock): Promise<Observation> {
  const controller = new AbortController();
  const timedOut = (): Observation => ({
    reachable: false,
    error: `probe timed out after ${timeoutMs} ms`,
    models: [],
    serverState: 'error',
  });
  // Aborted once the race is decided, so an answered probe leaves no deadline pending on the clock.
  const decided = new AbortController();
  const deadline = clock.delay(timeoutMs, decided.signal).then(
    (): Observation => {
      controller.abort(new Error(`probe timed out after ${timeoutMs} ms`));
      return timedOut();
    },
    () => new Promise<Observation>(() => undefined),
  );
  const observed = Promise.resolve()
    .then(() => provider.observe(controller.signal))
    .catch((err: unknown): Observation => ({
      reachable: false,
      error: errorText(err),
      models: [],
      serverState: 'error',
    }));
  try {
    const observation = await Promise.race([observed, deadline]);
    // A provider that honoured the abort reports it in its own words; the cause was our timeout.
    return controller.signal.aborted && !observation.reachable ? timedOut() : observation;
  } finally {
    decided.abort();
  }
}
