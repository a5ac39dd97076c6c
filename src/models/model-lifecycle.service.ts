import { type BeforeApplicationShutdown, Inject, Injectable, Logger } from '@nestjs/common';
import { EventEmitter } from 'node:events';
import { Clock } from '../common/clock.js';
import {
  ModelBusyError,
  ModelLoadFailedError,
  ServiceShuttingDownError,
  UnloadUnsupportedError,
} from '../common/errors.js';
import { Mutex } from '../common/mutex.js';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { IN_PROCESS_KINDS } from '../providers/model-provider.js';
import { errorText, ProviderRegistry, type ResolvedModel } from '../providers/provider-registry.service.js';
import { readRssBytes } from './rss.js';

/** What modelplane believes about a model (DESIGN.md §Model states). */
export type ModelState = 'unloaded' | 'loading' | 'loaded' | 'unloading' | 'failed' | 'unknown';

/** Per-model bookkeeping: state, activity leases, idle clock. Mutations happen only under `lock`. */
export interface ModelRecord {
  id: string;
  backend: string;
  state: ModelState;
  reason: string | null;
  inFlight: number;
  /** Monotonic ms of the last load or request end; null until first used through modelplane. */
  lastActivityMs: number | null;
  loadedAtMs: number | null;
  loadedAtEpochMs: number | null;
  /** Measured size once loaded (bytes), for the memory budget. */
  sizeBytes: number | null;
  readonly lock: Mutex;
  /** Resolved when inFlight drops to 0 (admin unload and shutdown drain wait on these). */
  idleWaiters: (() => void)[];
}

export interface Lease {
  readonly modelId: string;
  /** Idempotent: a second call does nothing. */
  release(): void;
}

export interface UnloadOutcome {
  ok: true;
  model: string;
  was_loaded: boolean;
  reason: string;
  expected_freed_mb: number | null;
  rss_freed_mb: number | null;
}

export type LifecycleEvent =
  | { type: 'model.loaded'; model: string; backend: string; load_ms: number; at_ms: number }
  | { type: 'model.load_failed'; model: string; backend: string; reason: string; at_ms: number }
  | ({ type: 'model.unloaded'; backend: string; at_ms: number } & UnloadOutcome);

/** Called before an in-process load so the memory budget can evict (set by the eviction module). */
export type BeforeLoadHook = (model: ResolvedModel) => Promise<void>;

/**
 * The one owner of model load state. Callers ask for outcomes (`acquire`, `unload`), never check-then-act:
 * a lease is taken under the model's lock, so the idle sweeper (which re-checks under the same lock)
 * can never unload a model between a request's admission and its start.
 */
@Injectable()
export class ModelLifecycleService implements BeforeApplicationShutdown {
  private readonly logger = new Logger(ModelLifecycleService.name);
  private readonly records = new Map<string, ModelRecord>();
  private readonly events = new EventEmitter();
  private beforeLoad: BeforeLoadHook = async () => {};
  private admitting = true;

  constructor(
    private readonly registry: ProviderRegistry,
    private readonly clock: Clock,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {
    registry.setPreloader(async (id) => {
      const lease = await this.acquire(id);
      lease.release();
    });
  }

  setBeforeLoadHook(hook: BeforeLoadHook): void {
    this.beforeLoad = hook;
  }

  onEvent(listener: (event: LifecycleEvent) => void): () => void {
    this.events.on('event', listener);
    return () => this.events.off('event', listener);
  }

  /**
   * A request through modelplane made us believe a remote model is loaded (called when that request ends):
   * an observation cached from before it must not be taken for drift.
   */
  onBeliefChange(listener: (backend: string) => void): () => void {
    this.events.on('belief', listener);
    return () => this.events.off('belief', listener);
  }

  record(id: string): ModelRecord {
    let record = this.records.get(id);
    if (!record) {
      const resolved = this.registry.find(id);
      const observable = resolved?.provider.capabilities.canObserveLoadState ?? true;
      record = {
        id,
        backend: resolved?.backend.name ?? '',
        state: observable ? 'unloaded' : 'unknown',
        reason: null,
        inFlight: 0,
        lastActivityMs: null,
        loadedAtMs: null,
        loadedAtEpochMs: null,
        sizeBytes: null,
        lock: new Mutex(),
        idleWaiters: [],
      };
      this.records.set(id, record);
    }
    return record;
  }

  peek(id: string): ModelRecord | undefined {
    return this.records.get(id);
  }

  allRecords(): ModelRecord[] {
    return [...this.records.values()];
  }

  /** Idle threshold of a model in seconds: its own, else the global default; 0 = never. */
  idleThresholdS(id: string): number {
    return this.registry.find(id)?.config?.idleUnloadS ?? this.config.eviction.idleUnloadS;
  }

  isPinned(id: string): boolean {
    return this.registry.find(id)?.config?.pin ?? false;
  }

  /**
   * Shutdown: stop admitting, let in-flight requests finish (bounded by server.shutdown_drain_s), then
   * unload in-process models so native memory is released before the process exits.
   */
  async beforeApplicationShutdown(): Promise<void> {
    this.stopAdmitting();
    const timeoutMs = this.config.server.shutdownDrainS * 1000;
    const drained = await Promise.all(this.allRecords().map((r) => this.drain(r, timeoutMs)));
    if (drained.includes(false))
      this.logger.warn(`shutdown: ${this.totalInFlight()} request(s) still in flight after ${timeoutMs} ms`);
    for (const record of this.allRecords()) {
      const resolved = this.registry.find(record.id);
      if (!resolved || !IN_PROCESS_KINDS.includes(resolved.backend.type) || record.state !== 'loaded') continue;
      await this.unload(record.id, 'shutdown', { drainTimeoutMs: 0 }).catch((err: unknown) =>
        this.logger.warn(`shutdown unload of '${record.id}' failed: ${errorText(err)}`),
      );
    }
  }

  /** Stop admitting new leases (shutdown). */
  stopAdmitting(): void {
    this.admitting = false;
  }

  totalInFlight(): number {
    let n = 0;
    for (const r of this.records.values()) n += r.inFlight;
    return n;
  }

  /**
   * Take an activity lease on a model, loading it first when needed (concurrent callers share one load).
   * The lease must be released when the response ends (stream closed or client gone included).
   */
  async acquire(id: string, signal?: AbortSignal): Promise<Lease> {
    if (!this.admitting) throw new ServiceShuttingDownError();
    const resolved = this.registry.resolve(id);
    const record = this.record(id);
    let believedNow = false;
    await record.lock.run(async () => {
      if (IN_PROCESS_KINDS.includes(resolved.backend.type) && record.state !== 'loaded') {
        await this.loadLocked(resolved, record, signal);
      }
      record.inFlight++;
      if (!IN_PROCESS_KINDS.includes(resolved.backend.type) && record.state !== 'unknown') {
        // Remote servers load on demand; a request through us is evidence it is (or will be) resident.
        believedNow = record.state !== 'loaded';
        record.state = 'loaded';
      }
    });
    let released = false;
    return {
      modelId: id,
      release: () => {
        if (released) return;
        released = true;
        record.inFlight--;
        record.lastActivityMs = this.clock.nowMs();
        if (record.inFlight === 0) for (const wake of record.idleWaiters.splice(0)) wake();
        if (believedNow) this.events.emit('belief', record.backend);
      },
    };
  }

  /** Load without taking a lease (admin load). */
  async load(id: string, signal?: AbortSignal): Promise<ModelState> {
    const resolved = this.registry.resolve(id);
    const record = this.record(id);
    await record.lock.run(async () => {
      if (record.state === 'loaded') return;
      if (resolved.provider.capabilities.canLoad || IN_PROCESS_KINDS.includes(resolved.backend.type)) {
        await this.loadLocked(resolved, record, signal);
      }
    });
    return record.state;
  }

  /**
   * Unload a model. `onlyIfIdle` (the sweeper) re-checks under the lock that no request is in flight and
   * that the idle threshold still holds; without it (admin), in-flight requests are waited for first.
   */
  async unload(
    id: string,
    reason: string,
    opts: { onlyIf?: (record: ModelRecord) => boolean; drainTimeoutMs?: number } = {},
  ): Promise<UnloadOutcome | null> {
    const resolved = this.registry.resolve(id);
    if (!resolved.provider.capabilities.canUnload) throw new UnloadUnsupportedError(id, resolved.backend.type);
    const record = this.record(id);
    return record.lock.run(async () => {
      if (opts.onlyIf && !opts.onlyIf(record)) return null;
      if (!(await this.drain(record, opts.drainTimeoutMs ?? this.config.server.shutdownDrainS * 1000))) {
        // Unloading now would break the requests still running: refuse instead.
        throw new ModelBusyError(id, record.inFlight);
      }
      const previous = record.state;
      record.state = 'unloading';
      const rssBefore = readRssBytes();
      try {
        const result = await resolved.provider.unload(id);
        const rssAfter = readRssBytes();
        const outcome: UnloadOutcome = {
          ok: true,
          model: id,
          was_loaded: result.wasLoaded,
          reason,
          expected_freed_mb: toMb(result.expectedFreedBytes ?? record.sizeBytes),
          rss_freed_mb:
            IN_PROCESS_KINDS.includes(resolved.backend.type) && result.wasLoaded ? toMb(rssBefore - rssAfter) : null,
        };
        record.state = 'unloaded';
        record.loadedAtMs = null;
        record.loadedAtEpochMs = null;
        record.sizeBytes = null;
        if (result.wasLoaded)
          this.logger.log(`unloaded '${id}' (${reason}); rss freed ${outcome.rss_freed_mb ?? 'n/a'} MB`);
        this.events.emit('event', {
          type: 'model.unloaded',
          backend: resolved.backend.name,
          at_ms: this.clock.epochMs(),
          ...outcome,
        });
        return outcome;
      } catch (err) {
        record.state = previous === 'unknown' ? 'unknown' : 'unloaded';
        throw err;
      }
    });
  }

  /** Waits (bounded, in real time) until no request holds a lease on the model; true when drained. */
  async drain(record: ModelRecord, timeoutMs: number): Promise<boolean> {
    if (record.inFlight === 0) return true;
    let timer: NodeJS.Timeout | undefined;
    const drained = await Promise.race([
      new Promise<boolean>((resolve) => record.idleWaiters.push(() => resolve(true))),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs))),
    ]);
    clearTimeout(timer);
    return drained;
  }

  private async loadLocked(resolved: ResolvedModel, record: ModelRecord, signal?: AbortSignal): Promise<void> {
    await this.beforeLoad(resolved);
    record.state = 'loading';
    record.reason = null;
    const started = this.clock.nowMs();
    try {
      await resolved.provider.load(resolved.id, signal);
    } catch (err) {
      record.state = 'failed';
      record.reason = errorText(err);
      this.events.emit('event', {
        type: 'model.load_failed',
        model: resolved.id,
        backend: resolved.backend.name,
        reason: record.reason,
        at_ms: this.clock.epochMs(),
      });
      throw err instanceof Error && 'status' in err ? err : new ModelLoadFailedError(resolved.id, record.reason);
    }
    const now = this.clock.nowMs();
    record.state = 'loaded';
    record.loadedAtMs = now;
    record.loadedAtEpochMs = this.clock.epochMs();
    record.lastActivityMs = now;
    record.sizeBytes = resolved.descriptor.expectedSizeBytes;
    this.events.emit('event', {
      type: 'model.loaded',
      model: resolved.id,
      backend: resolved.backend.name,
      load_ms: Math.round(now - started),
      at_ms: record.loadedAtEpochMs,
    });
  }
}

function toMb(bytes: number | null): number | null {
  return bytes === null ? null : Math.round((bytes / (1024 * 1024)) * 100) / 100;
}
