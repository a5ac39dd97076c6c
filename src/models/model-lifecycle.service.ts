import { type BeforeApplicationShutdown, Inject, Injectable, Logger } from '@nestjs/common';
import { Clock } from '../common/clock.js';
import {
  InsufficientMemoryError,
  ModelBusyError,
  ModelLoadFailedError,
  ServiceShuttingDownError,
  UnloadUnsupportedError,
  errorText,
} from '../common/errors.js';
import { toMb } from '../common/units.js';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { ProviderRegistry, type ResolvedModel } from '../providers/provider-registry.service.js';
import { type LoadPlan, planLoad } from './eviction-policy.js';
import {
  type ModelRecord,
  type ModelState,
  ModelStateStore,
  type StateEvent,
  type UnloadOutcome,
  type UnloadReasonCode,
} from './model-state.store.js';
import { ProbeService } from './probe.service.js';
import { readRssBytes } from './rss.js';
import { evictionView } from './state-snapshot.js';

export type { ModelRecord, ModelState, StateEvent, UnloadOutcome };

export interface Lease {
  readonly modelId: string;
  /** Idempotent: a second call does nothing. */
  release(): void;
}

/**
 * Loads, unloads and leases: the actions on models. Callers ask for outcomes (`acquire`, `unload`), never
 * check-then-act: a lease is taken under the model's lock, so the idle sweeper (which re-checks under the
 * same lock) can never unload a model between a request's admission and its start. Every state change is
 * written through the ModelStateStore; this service never assigns a model's state itself.
 */
@Injectable()
export class ModelLifecycleService implements BeforeApplicationShutdown {
  private readonly logger = new Logger(ModelLifecycleService.name);
  private admitting = true;

  constructor(
    private readonly registry: ProviderRegistry,
    private readonly store: ModelStateStore,
    private readonly observer: ProbeService,
    private readonly clock: Clock,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /** Every model state event (loads, failures, unloads, drift); published by the store on real change. */
  onEvent(listener: (event: StateEvent) => void): () => void {
    return this.store.onEvent(listener);
  }

  peek(id: string): Readonly<ModelRecord> | undefined {
    return this.store.peek(id);
  }

  /**
   * Shutdown: stop admitting, let in-flight requests finish (bounded by server.shutdown_drain_s), then
   * unload in-process models so native memory is released before the process exits.
   */
  async beforeApplicationShutdown(): Promise<void> {
    this.stopAdmitting();
    const timeoutMs = this.config.server.shutdownDrainS * 1000;
    const drained = await Promise.all(this.store.allRecords().map((r) => this.drain(r, timeoutMs)));
    if (drained.includes(false))
      this.logger.warn(`shutdown: ${this.store.totalInFlight()} request(s) still in flight after ${timeoutMs} ms`);
    for (const record of this.store.allRecords()) {
      const resolved = this.registry.find(record.id);
      if (!resolved || resolved.provider.capabilities.remote || record.state !== 'loaded') continue;
      await this.unload(record.id, 'shutdown', { drainTimeoutMs: 0 }).catch((err: unknown) =>
        this.logger.warn(`shutdown unload of '${record.id}' failed: ${errorText(err)}`),
      );
    }
  }

  /** Stop admitting new leases (shutdown). */
  stopAdmitting(): void {
    this.admitting = false;
  }

  /**
   * Take an activity lease on a model, loading it first when needed (concurrent callers share one load).
   * The lease must be released when the response ends (stream closed or client gone included).
   */
  async acquire(id: string, signal?: AbortSignal): Promise<Lease> {
    if (!this.admitting) throw new ServiceShuttingDownError();
    const resolved = this.registry.resolve(id);
    const record = this.store.record(id);
    const { remote, canLoad, loadBeforeUse } = resolved.provider.capabilities;
    // Through the same path as in-process loads (states, events), not a retry inside the provider.
    const loadsFirst = !remote || (canLoad && loadBeforeUse === true);
    let believedNow = false;
    await record.lock.run(async () => {
      if (loadsFirst && record.state !== 'loaded') await this.loadLocked(resolved, record, signal);
      this.store.leaseTaken(id);
      // Remote servers load on demand: a request through us is evidence it is (or will be) resident.
      if (remote) believedNow = this.store.remoteUsed(id);
    });
    let released = false;
    return {
      modelId: id,
      release: () => {
        if (released) return;
        released = true;
        this.store.leaseReleased(id);
        if (believedNow) this.afterOwnAction(resolved);
      },
    };
  }

  /** Load without taking a lease (admin load). */
  async load(id: string, signal?: AbortSignal): Promise<ModelState> {
    const resolved = this.registry.resolve(id);
    const record = this.store.record(id);
    await record.lock.run(async () => {
      if (record.state === 'loaded') return;
      if (resolved.provider.capabilities.canLoad) await this.loadLocked(resolved, record, signal);
    });
    return record.state;
  }

  /**
   * Unload a model. `onlyIf` (the sweeper) re-checks under the lock that no request is in flight and
   * that the idle threshold still holds; without it (admin), in-flight requests are waited for first.
   */
  async unload(
    id: string,
    reason: string,
    opts: { onlyIf?: (record: Readonly<ModelRecord>) => boolean; drainTimeoutMs?: number } = {},
  ): Promise<UnloadOutcome | null> {
    const resolved = this.registry.resolve(id);
    if (!resolved.provider.capabilities.canUnload) throw new UnloadUnsupportedError(id, resolved.backend.type);
    const record = this.store.record(id);
    const outcome = await record.lock.run(async () => {
      if (opts.onlyIf && !opts.onlyIf(record)) return null;
      if (!(await this.drain(record, opts.drainTimeoutMs ?? this.config.server.shutdownDrainS * 1000))) {
        // Unloading now would break the requests still running: refuse instead.
        throw new ModelBusyError(id, record.inFlight);
      }
      const previous = this.store.unloadStarted(id);
      const sizeBefore = record.sizeBytes;
      const rssBefore = readRssBytes();
      try {
        const result = await resolved.provider.unload(id);
        const rssAfter = readRssBytes();
        const done: UnloadOutcome = {
          ok: true,
          model: id,
          was_loaded: result.wasLoaded,
          reason,
          reason_code: reasonCode(reason),
          expected_freed_mb: toMb(result.expectedFreedBytes ?? sizeBefore),
          rss_freed_mb: !resolved.provider.capabilities.remote && result.wasLoaded ? toMb(rssBefore - rssAfter) : null,
        };
        this.store.unloadSucceeded(id, done);
        if (result.wasLoaded)
          this.logger.log(`unloaded '${id}' (${reason}); rss freed ${done.rss_freed_mb ?? 'n/a'} MB`);
        return done;
      } catch (err) {
        this.store.unloadFailed(id, previous);
        throw err;
      }
    });
    // The caller (admin, the sweeper) sees the backend's own answer in every view once this returns.
    if (outcome) await this.observer.probeNow(resolved.backend.name);
    return outcome;
  }

  /** What loading `id` would evict under the memory budget, from the same snapshot every view shows. */
  plan(target: ResolvedModel): LoadPlan {
    const snapshot = this.store.snapshot();
    const record = this.store.peek(target.id);
    return planLoad(
      this.clock.nowMs(),
      { id: target.id, sizeBytes: record?.sizeBytes ?? target.descriptor.expectedSizeBytes },
      snapshot.models.map(evictionView),
      {
        maxLoadedModels: this.config.eviction.maxLoadedModels,
        memoryBudgetBytes: this.config.eviction.memoryBudgetMb * 1024 * 1024,
      },
    );
  }

  /** Waits (bounded by the Clock) until no request holds a lease on the model; true when drained. */
  async drain(record: Readonly<ModelRecord>, timeoutMs: number): Promise<boolean> {
    if (record.inFlight === 0) return true;
    // Aborted once the race is decided, so a drained model leaves no deadline pending on the clock.
    const deadline = new AbortController();
    try {
      return await Promise.race([
        new Promise<boolean>((resolve) => record.idleWaiters.push(() => resolve(true))),
        this.clock.delay(timeoutMs, deadline.signal).then(
          () => false,
          () => false,
        ),
      ]);
    } finally {
      deadline.abort();
    }
  }

  /** After our own load or unload the backend is observed at once (reads never probe themselves). */
  private afterOwnAction(resolved: ResolvedModel): void {
    void this.observer.probeNow(resolved.backend.name);
  }

  private async loadLocked(resolved: ResolvedModel, record: ModelRecord, signal?: AbortSignal): Promise<void> {
    if (!resolved.provider.capabilities.remote) await this.makeRoomFor(resolved);
    this.store.loadStarted(resolved.id);
    const started = this.clock.nowMs();
    try {
      await resolved.provider.load(resolved.id, signal);
    } catch (err) {
      const reason = errorText(err);
      this.store.loadFailed(resolved.id, reason);
      throw err instanceof Error && 'status' in err ? err : new ModelLoadFailedError(resolved.id, reason);
    }
    this.store.loadSucceeded(resolved.id, this.clock.nowMs() - started, resolved.descriptor.expectedSizeBytes);
    this.afterOwnAction(resolved);
  }

  /**
   * Before an in-process load: evict LRU idle models until it fits, or refuse with insufficient_memory.
   * Victims are loaded, idle models whose locks no load holds (a load holds only its own model's lock), so
   * this never waits in a lock cycle. Each round evicts one model and re-plans, since a request may have
   * claimed a candidate meanwhile.
   */
  private async makeRoomFor(target: ResolvedModel): Promise<void> {
    for (let round = 0; round < 64; round++) {
      const plan = this.plan(target);
      if (!plan.fits) throw new InsufficientMemoryError(target.id, plan.reason ?? 'memory budget exceeded');
      const victim = plan.evict[0];
      if (victim === undefined) return;
      await this.unload(victim, `memory budget (loading '${target.id}')`, {
        onlyIf: (record) => record.inFlight === 0 && record.state === 'loaded',
      });
    }
    throw new InsufficientMemoryError(target.id, 'could not settle the memory budget');
  }
}

function reasonCode(reason: string): UnloadReasonCode {
  if (reason === 'idle') return 'idle';
  if (reason === 'shutdown') return 'shutdown';
  if (reason.startsWith('admin')) return 'admin';
  if (reason.startsWith('memory budget')) return 'budget';
  return 'other';
}
