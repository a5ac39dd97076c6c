import { Injectable, Logger } from '@nestjs/common';
import { EventEmitter } from 'node:events';
import { BackendStateService } from '../backend-state/backend-state.service.js';
import { Readiness } from '../backend-state/readiness.js';
import { Clock } from '../common/clock.js';
import type { ModelProvider, Observation } from '../providers/model-provider.js';

export interface ProbeOptions {
  /** Bound on one probe: the answer never takes longer, whatever the backend or provider does. */
  timeoutMs: number;
  /** How long a probe result is reused (on the injected Clock). Default 1000. */
  cacheMs?: number;
  /** Consecutive failed probes before a remote backend is marked unavailable. */
  failureThreshold: number;
}

export type ProbeResult = Observation & {
  backend: string;
  /** ISO time the probe started. */
  probed_at: string;
  probe_ms: number;
  /** true when served from the short-lived cache rather than a new probe. */
  cached: boolean;
};

/** One finished probe, as metrics see it. */
export interface ProbeRecord {
  backend: string;
  ok: boolean;
  probe_ms: number;
}

interface Entry {
  result: ProbeResult | null;
  /** Clock.nowMs() when `result` was obtained. */
  atMs: number;
  inFlight: Promise<ProbeResult> | null;
  consecutiveFailures: number;
  /** Bumped by invalidate(): a probe that started before it must not be cached after it. */
  generation: number;
}

const DEFAULT_CACHE_MS = 1000;

/**
 * Probes backends for what they really have loaded. Per backend: a short cache and single-flight, so
 * N clients polling cost a backend one probe; every probe is bounded by a hard timeout, so one dead
 * backend never slows the answer about the others. Probe results also drive the readiness of remote
 * backends (DESIGN.md §Readiness); every change goes through BackendStateService.set (which emits events).
 */
@Injectable()
export class ProbeService {
  private readonly logger = new Logger(ProbeService.name);
  private readonly entries = new Map<string, Entry>();
  private readonly emitter = new EventEmitter();
  private readonly watched = new Map<string, { provider: ModelProvider; opts: ProbeOptions }>();

  constructor(
    private readonly clock: Clock,
    private readonly backendState: BackendStateService,
  ) {}

  observe(provider: ModelProvider, opts: ProbeOptions): Promise<ProbeResult> {
    const entry = this.entry(provider.backendName);
    const cacheMs = opts.cacheMs ?? DEFAULT_CACHE_MS;
    if (entry.result && this.clock.nowMs() - entry.atMs < cacheMs) {
      return Promise.resolve({ ...entry.result, cached: true });
    }
    if (entry.inFlight) return entry.inFlight;
    const generation = entry.generation;
    const probe = this.probe(provider, opts).then((result) => {
      if (entry.inFlight === probe) entry.inFlight = null;
      this.emitter.emit('probe', {
        backend: result.backend,
        ok: result.reachable && result.serverState !== 'error',
        probe_ms: result.probe_ms,
      } satisfies ProbeRecord);
      if (generation !== entry.generation) return result;
      entry.result = result;
      entry.atMs = this.clock.nowMs();
      this.applyReadiness(provider, entry, result, opts.failureThreshold);
      return result;
    });
    entry.inFlight = probe;
    return probe;
  }

  /** Probe every provider concurrently; one slow backend delays nobody else beyond its own timeout. */
  probeAll(
    providers: readonly ModelProvider[],
    optsFor: (provider: ModelProvider) => ProbeOptions,
  ): Promise<ProbeResult[]> {
    return Promise.all(providers.map((p) => this.observe(p, optsFor(p))));
  }

  /** Every finished probe (not cache hits): for probe-duration metrics. Returns the unsubscriber. */
  onProbe(listener: (probe: ProbeRecord) => void): () => void {
    this.emitter.on('probe', listener);
    return () => this.emitter.off('probe', listener);
  }

  /**
   * Observe a backend now (e.g. a proxied request just saw connection refused): readiness then follows
   * reality within one probe round trip. Single-flight with any probe already running. Never throws.
   */
  probeNow(backendName: string): Promise<void> {
    const watched = this.watched.get(backendName);
    if (!watched) return Promise.resolve();
    this.invalidate(backendName);
    return this.observe(watched.provider, watched.opts).then(() => undefined);
  }

  /** Remember how to probe a backend so probeNow(name) can be called by name. */
  watch(provider: ModelProvider, opts: ProbeOptions): void {
    this.watched.set(provider.backendName, { provider, opts });
  }

  /** Forget the cached result (after a load or unload through us, the next answer must be fresh). */
  invalidate(backendName: string): void {
    const entry = this.entries.get(backendName);
    if (!entry) return;
    entry.result = null;
    entry.inFlight = null;
    entry.generation++;
  }

  /** The latest result without probing (null before the first probe). */
  latest(backendName: string): ProbeResult | null {
    return this.entries.get(backendName)?.result ?? null;
  }

  private entry(name: string): Entry {
    let entry = this.entries.get(name);
    if (!entry) {
      entry = { result: null, atMs: 0, inFlight: null, consecutiveFailures: 0, generation: 0 };
      this.entries.set(name, entry);
    }
    return entry;
  }

  private async probe(provider: ModelProvider, opts: ProbeOptions): Promise<ProbeResult> {
    const startedMs = this.clock.nowMs();
    const probedAt = new Date(this.clock.epochMs()).toISOString();
    const controller = new AbortController();
    const timedOut = (): Observation => ({
      reachable: false,
      error: `probe timed out after ${opts.timeoutMs} ms`,
      models: [],
      serverState: 'error',
    });
    let timer: NodeJS.Timeout | undefined;
    // The signal asks the provider to stop; the race guarantees the answer even if it does not listen.
    const deadline = new Promise<Observation>((resolve) => {
      timer = setTimeout(() => {
        controller.abort(new Error(`probe timed out after ${opts.timeoutMs} ms`));
        resolve(timedOut());
      }, opts.timeoutMs);
    });
    const observed = Promise.resolve()
      .then(() => provider.observe(controller.signal))
      .catch((err: unknown): Observation => ({
        reachable: false,
        error: typeof err === 'object' && err !== null && 'message' in err ? String(err.message) : String(err),
        models: [],
        serverState: 'error',
      }));
    let observation: Observation;
    try {
      observation = await Promise.race([observed, deadline]);
    } finally {
      clearTimeout(timer);
    }
    // A provider that honoured the abort reports it in its own words; the cause was our timeout.
    if (controller.signal.aborted && !observation.reachable) observation = timedOut();
    return {
      ...observation,
      backend: provider.backendName,
      probed_at: probedAt,
      probe_ms: Math.round(this.clock.nowMs() - startedMs),
      cached: false,
    };
  }

  /**
   * Readiness from probes, for remote backends only and only once their init has settled (before that,
   * init and preloads own the state):
   * - N consecutive failures (unreachable, timeout, or an answer meaning "cannot serve") → unavailable,
   *   with the probe's error as the reason. Fewer failures change nothing: one lost probe is not an outage.
   * - The server itself says it is loading (llama-server 503 "Loading model") → unavailable at once with
   *   reason "loading model". This is what a Kubernetes user expects: not able to serve → not admitted, with
   *   Retry-After. It is neither `initializing` (that would hold the whole service's aggregate readiness,
   *   and with it /health/ready for every other backend, on one server's model load) nor `degraded`
   *   (which admits requests that would only get 503s from upstream).
   * - A good probe after unavailable → ready (recovery). `degraded` (some preload failed) is left alone:
   *   a good probe says nothing about those preloads.
   */
  private applyReadiness(provider: ModelProvider, entry: Entry, result: ProbeResult, threshold: number): void {
    const name = provider.backendName;
    if (!provider.capabilities.remote || !this.backendState.has(name)) return;
    const state = this.backendState.get(name);
    if (!state.backend_initialized || state.readiness === Readiness.Initializing) return;

    const failed = !result.reachable || result.serverState === 'error';
    if (failed) {
      entry.consecutiveFailures++;
      if (entry.consecutiveFailures >= Math.max(1, threshold)) {
        // The error itself is the reason: stable across a failure streak, so no event per probe.
        this.transition(name, Readiness.Unavailable, result.error ?? 'probe failed', state.readiness);
      }
      return;
    }
    entry.consecutiveFailures = 0;
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
