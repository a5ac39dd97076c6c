import { Inject, Injectable, Logger } from '@nestjs/common';
import { EventEmitter } from 'node:events';
import { BackendStateService } from '../backend-state/backend-state.service.js';
import { Clock } from '../common/clock.js';
import { Mutex } from '../common/mutex.js';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import type { Observation, ObservedModel } from '../providers/model-provider.js';
import { ProviderRegistry } from '../providers/provider-registry.service.js';
import { buildSnapshot, type StateSnapshot } from './state-snapshot.js';
import { type ModelState, transitionEvent } from './transitions.js';

export type { ModelState };

/** Per-model bookkeeping. Only the store writes these fields; everyone else reads them. */
export interface ModelRecord {
  readonly id: string;
  readonly backend: string;
  /** What modelplane believes (its own loads and unloads; for remote kinds, also the last observation). */
  state: ModelState;
  reason: string | null;
  inFlight: number;
  /** Monotonic ms of the last load or request end; null until first used through modelplane. */
  lastActivityMs: number | null;
  loadedAtMs: number | null;
  loadedAtEpochMs: number | null;
  /** Measured or expected size once loaded (bytes), for the memory budget. */
  sizeBytes: number | null;
  /** Serialises load, unload and lease-taking on this model (held by the lifecycle, never by the store). */
  readonly lock: Mutex;
  /** Resolved when inFlight drops to 0 (admin unload and shutdown drain wait on these). */
  idleWaiters: (() => void)[];
}

/** How the reason of an unload is counted (a closed set: metrics labels never carry ids or free text). */
export type UnloadReasonCode = 'idle' | 'admin' | 'budget' | 'shutdown' | 'other';

export interface UnloadOutcome {
  ok: true;
  model: string;
  was_loaded: boolean;
  reason: string;
  reason_code: UnloadReasonCode;
  expected_freed_mb: number | null;
  rss_freed_mb: number | null;
}

export type StateEvent =
  | { type: 'model.loaded'; model: string; backend: string; load_ms: number; at_ms: number }
  | { type: 'model.load_failed'; model: string; backend: string; reason: string; at_ms: number }
  | ({ type: 'model.unloaded'; backend: string; at_ms: number } & UnloadOutcome)
  | {
      type: 'model.drift';
      model: string;
      backend: string;
      believed_state: ModelState;
      observed_state: ObservedModel['state'];
      at_ms: number;
    };

/** The latest observation of one backend, as the observer wrote it. */
export interface BackendObservation {
  observation: Observation;
  /** Monotonic ms when the probe finished. */
  atMs: number;
  /** Wall-clock ISO time the probe started. */
  probedAt: string;
  probeMs: number;
  /** Monotonic ms and ISO time of the last observation that reached the backend. */
  lastGoodAtMs: number | null;
  lastGoodAt: string | null;
  byId: ReadonlyMap<string, ObservedModel>;
}

/**
 * The one owner of model state: believed state (through the transition table), activity leases, the
 * latest observation of every backend, and drift. Every view (/api/models, /api/models/loaded, /health,
 * /metrics, the bus heartbeat, /api/events) is projected from `snapshot()`, so they cannot disagree.
 * Events are published here and only on a real change.
 */
@Injectable()
export class ModelStateStore {
  private readonly logger = new Logger(ModelStateStore.name);
  private readonly records = new Map<string, ModelRecord>();
  private readonly observations = new Map<string, BackendObservation>();
  /** Models in a drift episode → what modelplane believed when the episode began (shown until it ends). */
  private readonly drifting = new Map<string, ModelState>();
  private readonly emitter = new EventEmitter();
  private version = 0;

  constructor(
    private readonly registry: ProviderRegistry,
    private readonly backendState: BackendStateService,
    private readonly clock: Clock,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {
    this.emitter.setMaxListeners(100);
  }

  onEvent(listener: (event: StateEvent) => void): () => void {
    this.emitter.on('event', listener);
    return () => this.emitter.off('event', listener);
  }

  /** The immutable projection every view reads; never waits on a backend. */
  snapshot(): StateSnapshot {
    return buildSnapshot({
      version: this.version,
      nowMs: this.clock.nowMs(),
      epochMs: this.clock.epochMs(),
      registry: this.registry,
      readiness: this.backendState.snapshot(),
      records: this.records,
      observations: this.observations,
      drifting: this.drifting,
      defaultIdleUnloadS: this.config.eviction.idleUnloadS,
    });
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

  peek(id: string): Readonly<ModelRecord> | undefined {
    return this.records.get(id);
  }

  allRecords(): Readonly<ModelRecord>[] {
    return [...this.records.values()];
  }

  latestObservation(backend: string): BackendObservation | undefined {
    return this.observations.get(backend);
  }

  totalInFlight(): number {
    let n = 0;
    for (const r of this.records.values()) n += r.inFlight;
    return n;
  }

  // --- our own loads and unloads (called by the lifecycle under the model's lock) ---

  loadStarted(id: string): void {
    const record = this.record(id);
    this.move(record, 'loading');
    record.reason = null;
  }

  loadSucceeded(id: string, loadMs: number, sizeBytes: number | null): void {
    const record = this.record(id);
    const now = this.clock.nowMs();
    record.loadedAtMs = now;
    record.loadedAtEpochMs = this.clock.epochMs();
    record.lastActivityMs = now;
    record.sizeBytes = sizeBytes;
    if (this.move(record, 'loaded') === 'model.loaded') {
      this.publish({
        type: 'model.loaded',
        model: id,
        backend: record.backend,
        load_ms: Math.round(loadMs),
        at_ms: record.loadedAtEpochMs,
      });
    }
  }

  loadFailed(id: string, reason: string): void {
    const record = this.record(id);
    record.reason = reason;
    if (this.move(record, 'failed') === 'model.load_failed') {
      this.publish({
        type: 'model.load_failed',
        model: id,
        backend: record.backend,
        reason,
        at_ms: this.clock.epochMs(),
      });
    }
  }

  /** Returns the state to restore if the unload fails. */
  unloadStarted(id: string): ModelState {
    const record = this.record(id);
    const previous = record.state;
    this.move(record, 'unloading');
    return previous;
  }

  unloadSucceeded(id: string, outcome: UnloadOutcome): void {
    const record = this.record(id);
    record.loadedAtMs = null;
    record.loadedAtEpochMs = null;
    record.sizeBytes = null;
    this.move(record, 'unloaded');
    // An unload that found nothing loaded changed nothing anyone could observe: no event.
    if (outcome.was_loaded)
      this.publish({ type: 'model.unloaded', backend: record.backend, at_ms: this.clock.epochMs(), ...outcome });
  }

  unloadFailed(id: string, previous: ModelState): void {
    const record = this.record(id);
    this.move(record, previous === 'loaded' || previous === 'unknown' ? previous : 'unloaded');
  }

  // --- activity leases ---

  leaseTaken(id: string): void {
    this.record(id).inFlight++;
    this.version++;
  }

  leaseReleased(id: string): void {
    const record = this.record(id);
    record.inFlight = Math.max(0, record.inFlight - 1);
    record.lastActivityMs = this.clock.nowMs();
    this.version++;
    if (record.inFlight === 0) for (const wake of record.idleWaiters.splice(0)) wake();
  }

  /**
   * A request through modelplane made a remote server load the model on demand: our belief. The view still
   * shows only what the next observation says; returns true when the belief changed (worth observing now).
   */
  remoteUsed(id: string): boolean {
    const record = this.record(id);
    if (record.state === 'loaded' || record.state === 'unknown') return false;
    this.move(record, 'loaded');
    record.lastActivityMs ??= this.clock.nowMs();
    return true;
  }

  // --- observations (called by the observer only) ---

  /**
   * Write one backend's observation. Compares belief with it: drift raises `model.drift` once per episode,
   * and for remote backends belief then follows the backend (Ollama may expire a model on its own) when
   * nothing of ours is in flight or holding the model's lock.
   */
  observed(backend: string, observation: Observation, probedAt: string, probeMs: number): void {
    const nowMs = this.clock.nowMs();
    const previous = this.observations.get(backend);
    const good = observation.reachable && observation.serverState !== 'error';
    this.observations.set(backend, {
      observation,
      atMs: nowMs,
      probedAt,
      probeMs,
      lastGoodAtMs: good ? nowMs : (previous?.lastGoodAtMs ?? null),
      lastGoodAt: good ? probedAt : (previous?.lastGoodAt ?? null),
      byId: new Map(observation.models.map((m) => [m.id, m])),
    });
    this.version++;
    const provider = this.registry.provider(backend);
    if (good && provider?.capabilities.remote) for (const m of observation.models) this.reconcile(backend, m);
  }

  /** A backend left (a fleet peer gone from DNS): its observation, drift and idle records go with it. */
  forgetBackend(backend: string): void {
    this.observations.delete(backend);
    for (const key of [...this.drifting.keys()]) if (key.startsWith(`${backend}/`)) this.drifting.delete(key);
    for (const [id, record] of this.records)
      if (record.backend === backend && record.inFlight === 0 && !record.lock.locked) this.records.delete(id);
    this.version++;
  }

  private reconcile(backend: string, observed: ObservedModel): void {
    // The same id on two backends (a fleet peer holding a model this node also has): belief is about the
    // backend the id resolves to; another backend's copy is not evidence about it.
    if (this.registry.find(observed.id)?.backend.name !== backend) return;
    const record = this.records.get(observed.id);
    const believed = record?.state;
    const comparable = (s: string | undefined): boolean => s === 'loaded' || s === 'unloaded';
    // While our own requests run, the backend may still be loading the model for them: nothing to judge.
    const drift =
      record !== undefined &&
      record.inFlight === 0 &&
      comparable(believed) &&
      comparable(observed.state) &&
      believed !== observed.state;
    const key = `${backend}/${observed.id}`;
    if (drift && !this.drifting.has(key)) {
      this.drifting.set(key, record.state);
      this.publish({
        type: 'model.drift',
        model: observed.id,
        backend,
        believed_state: record.state,
        observed_state: observed.state,
        at_ms: this.clock.epochMs(),
      });
    } else if (!drift) {
      this.drifting.delete(key);
    }
    if (drift && !record.lock.locked) {
      this.move(record, observed.state === 'loaded' ? 'loaded' : 'unloaded');
      if (record.state === 'loaded') record.lastActivityMs ??= this.clock.nowMs();
      else {
        record.loadedAtMs = null;
        record.loadedAtEpochMs = null;
      }
    }
  }

  private move(record: ModelRecord, to: ModelState): ReturnType<typeof transitionEvent> {
    if (record.state === to) return null;
    const event = transitionEvent(record.id, record.state, to);
    this.logger.debug(`model '${record.id}': ${record.state} → ${to}`);
    record.state = to;
    this.version++;
    return event;
  }

  private publish(event: StateEvent): void {
    this.version++;
    this.emitter.emit('event', event);
  }
}
