import { Injectable } from '@nestjs/common';
import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';
import { BackendStateService } from '../backend-state/backend-state.service.js';
import { Clock } from '../common/clock.js';
import { idleSeconds, unloadsInS } from '../eviction/eviction.policy.js';
import {
  IN_PROCESS_KINDS,
  type ModelProvider,
  type ObservedModel,
  type ObservedState,
} from '../providers/model-provider.js';
import { ProviderRegistry, type ResolvedModel } from '../providers/provider-registry.service.js';
import { ModelLifecycleService, type ModelRecord } from './model-lifecycle.service.js';
import { ProbeService, type ProbeResult } from './probe.service.js';

const MB = 1024 * 1024;
const toMb = (bytes: number | null): number | null => (bytes === null ? null : Math.round((bytes / MB) * 100) / 100);

/** Per-model summary in GET /health (and the bus heartbeat's source snapshot). */
export interface ModelHealth {
  state: string;
  idle_seconds: number | null;
  idle_unload_threshold_s: number | null;
  unloads_in_s: number | null;
  in_flight: number;
}

export interface LoadedEntry {
  name: string;
  backend: string;
  backend_type: string;
  backend_url: string | null;
  purpose: string;
  size_mb: number | null;
  vram_mb: number | null;
  ram_mb: number | null;
  expires_at: string | null;
  details: Record<string, unknown>;
  host: string;
  loaded_at: string | null;
  idle_seconds: number | null;
  idle_unload_threshold_s: number | null;
  unloads_in_s: number | null;
  in_flight: number;
  pinned: boolean;
  observed_via: string;
  believed_state: string | null;
  observed_state: ObservedState;
  drift: boolean;
}

export interface BackendEntry {
  name: string;
  backend_type: string;
  url: string | null;
  reachable: boolean;
  readiness: string;
  reason: string | null;
  probed_at: string;
  probe_ms: number;
  error: string | null;
}

export interface CatalogEntry {
  id: string;
  name: string;
  backend: string;
  backend_type: string;
  backend_url: string | null;
  purpose: string;
  state: string;
  observed_state: ObservedState | null;
  reason: string | null;
  pinned: boolean;
  preload: boolean;
  idle_unload_threshold_s: number | null;
  idle_seconds: number | null;
  unloads_in_s: number | null;
  in_flight: number;
  size_mb: number | null;
  details: Record<string, unknown>;
}

export interface DriftEvent {
  type: 'model.drift';
  model: string;
  backend: string;
  believed_state: string;
  observed_state: ObservedState;
  at_ms: number;
}

/**
 * Model reporting: what is REALLY loaded, from each backend's own load-state signal (probes run
 * concurrently, each bounded, behind ProbeService's cache + single-flight). Nothing is listed as loaded
 * because it could be served.
 */
@Injectable()
export class ModelsService {
  private readonly events = new EventEmitter();
  private readonly drifting = new Set<string>();
  private readonly localHost = hostname();

  constructor(
    private readonly registry: ProviderRegistry,
    private readonly probes: ProbeService,
    private readonly lifecycle: ModelLifecycleService,
    private readonly backendState: BackendStateService,
    private readonly clock: Clock,
  ) {
    // Our own loads and unloads change what is loaded: the next answer must not come from the cache.
    lifecycle.onEvent((event) => probes.invalidate(event.backend));
    lifecycle.onBeliefChange((backend) => probes.invalidate(backend));
  }

  onDrift(listener: (event: DriftEvent) => void): () => void {
    this.events.on('drift', listener);
    return () => this.events.off('drift', listener);
  }

  /** Probe every backend concurrently (cached, single-flight, bounded by each backend's timeout). */
  async observeAll(): Promise<ProbeResult[]> {
    const results = await Promise.all(
      this.registry.all().map(({ provider, backend }) =>
        this.probes.observe(provider, {
          timeoutMs: backend.probeTimeoutMs,
          cacheMs: backend.probeCacheMs,
          failureThreshold: backend.failureThreshold,
        }),
      ),
    );
    return results;
  }

  /** The backend's own idle seconds for a model, from its latest probe (rknn-sd reports it). */
  backendIdleSeconds(modelId: string): number | null {
    const backend = this.registry.find(modelId)?.backend.name;
    const model = backend === undefined ? undefined : this.probes.latest(backend)?.models.find((m) => m.id === modelId);
    return model?.backendIdleSeconds ?? null;
  }

  async loaded(): Promise<{ loaded: LoadedEntry[]; backends: BackendEntry[] }> {
    const results = await this.observeAll();
    const loaded: LoadedEntry[] = [];
    for (const result of results) {
      const entry = this.registry.all().find((p) => p.backend.name === result.backend);
      if (!entry) continue;
      for (const observed of result.models) {
        // The belief as it was when compared: reconcile() may then align it with the observation.
        const believed = this.lifecycle.peek(observed.id)?.state ?? null;
        const drift = this.reconcile(entry.provider, observed);
        if (observed.state !== 'loaded') continue;
        loaded.push(this.loadedEntry(entry.provider, observed, drift, believed));
      }
    }
    return { loaded, backends: results.map((r) => this.backendEntry(r)) };
  }

  async catalog(): Promise<{ models: CatalogEntry[] }> {
    const results = await this.observeAll();
    const observedById = new Map<string, ObservedModel>();
    for (const r of results) for (const m of r.models) observedById.set(m.id, m);
    return { models: this.registry.catalog().map((m) => this.catalogEntry(m, observedById.get(m.id) ?? null)) };
  }

  /** Per-model summary for GET /health (no probing: the health snapshot must stay instant). */
  healthModels(): Record<string, ModelHealth> {
    const out: Record<string, ModelHealth> = {};
    for (const m of this.registry.catalog()) {
      const record = this.lifecycle.peek(m.id);
      const timing = this.timing(m.id, record, record?.state === 'loaded');
      out[m.id] = {
        state: record?.state ?? this.initialState(m.provider),
        ...timing,
        in_flight: record?.inFlight ?? 0,
      };
    }
    return out;
  }

  private initialState(provider: ModelProvider): string {
    return provider.capabilities.canObserveLoadState ? 'unloaded' : 'unknown';
  }

  private timing(
    id: string,
    record: ModelRecord | undefined,
    loaded: boolean,
  ): Omit<ModelHealth, 'state' | 'in_flight'> {
    const resolved = this.registry.find(id);
    const threshold = this.lifecycle.idleThresholdS(id);
    const pinned = this.lifecycle.isPinned(id);
    const view = {
      id,
      loaded,
      inFlight: record?.inFlight ?? 0,
      lastActivityMs: record?.lastActivityMs ?? null,
      backendIdleS: this.backendIdleSeconds(id),
      thresholdS: threshold,
      pinned,
      canUnload: resolved?.provider.capabilities.canUnload ?? false,
      sizeBytes: null,
      local: resolved ? IN_PROCESS_KINDS.includes(resolved.backend.type) : false,
    };
    const now = this.clock.nowMs();
    const idle = loaded ? idleSeconds(now, view) : null;
    return {
      idle_seconds: idle === null ? null : Math.round(idle * 10) / 10,
      idle_unload_threshold_s: pinned || threshold === 0 ? null : threshold,
      unloads_in_s: roundOrNull(unloadsInS(now, view)),
    };
  }

  /**
   * Compare belief with observation. Drift raises an event once per episode. A remote backend may drop a
   * model on its own (Ollama keep_alive), so once reported, belief follows the backend when nothing is in flight.
   */
  private reconcile(provider: ModelProvider, observed: ObservedModel): boolean {
    const record = this.lifecycle.peek(observed.id);
    const believed = record?.state;
    const comparable = (s: string | undefined): boolean => s === 'loaded' || s === 'unloaded';
    // While our own requests run, the backend may still be loading the model for them: nothing to judge.
    const drift =
      record !== undefined &&
      record.inFlight === 0 &&
      comparable(believed) &&
      comparable(observed.state) &&
      believed !== observed.state;
    const key = `${provider.backendName}/${observed.id}`;
    if (drift && !this.drifting.has(key)) {
      this.drifting.add(key);
      this.events.emit('drift', {
        type: 'model.drift',
        model: observed.id,
        backend: provider.backendName,
        believed_state: believed!,
        observed_state: observed.state,
        at_ms: this.clock.epochMs(),
      } satisfies DriftEvent);
    } else if (!drift) {
      this.drifting.delete(key);
    }
    if (drift && provider.capabilities.remote && record.inFlight === 0 && !record.lock.locked) {
      record.state = observed.state === 'loaded' ? 'loaded' : 'unloaded';
      if (record.state === 'loaded') record.lastActivityMs ??= this.clock.nowMs();
    }
    return drift;
  }

  private loadedEntry(
    provider: ModelProvider,
    observed: ObservedModel,
    drift: boolean,
    believed: string | null,
  ): LoadedEntry {
    const resolved = this.registry.find(observed.id);
    const record = this.lifecycle.peek(observed.id);
    const local = IN_PROCESS_KINDS.includes(provider.kind);
    return {
      name: observed.id,
      backend: provider.backendName,
      backend_type: provider.kind,
      backend_url: provider.url,
      purpose: resolved?.descriptor.purpose ?? 'chat',
      size_mb: toMb(observed.sizeBytes),
      vram_mb: toMb(observed.vramBytes),
      ram_mb: toMb(observed.ramBytes),
      expires_at: observed.expiresAt,
      details: { ...resolved?.descriptor.details, ...observed.details },
      host: local || provider.url === null ? this.localHost : new URL(provider.url).hostname,
      loaded_at: record?.loadedAtEpochMs ? new Date(record.loadedAtEpochMs).toISOString() : null,
      ...this.timing(observed.id, record, true),
      in_flight: record?.inFlight ?? 0,
      pinned: this.lifecycle.isPinned(observed.id),
      observed_via: observed.observedVia,
      believed_state: believed,
      observed_state: observed.state,
      drift,
    };
  }

  private backendEntry(r: ProbeResult): BackendEntry {
    const provider = this.registry.provider(r.backend);
    const state = this.backendState.get(r.backend);
    return {
      name: r.backend,
      backend_type: provider?.kind ?? state.kind,
      url: provider?.url ?? null,
      reachable: r.reachable,
      readiness: state.readiness,
      reason: state.reason,
      probed_at: r.probed_at,
      probe_ms: r.probe_ms,
      error: r.error,
    };
  }

  private catalogEntry(m: ResolvedModel, observed: ObservedModel | null): CatalogEntry {
    const record = this.lifecycle.peek(m.id);
    // Observation is the truth; belief fills in only where the backend cannot tell (never 'loaded' then).
    const state = observed
      ? observed.state === 'unloaded' && record?.state === 'failed'
        ? 'failed'
        : observed.state
      : record?.state === 'loaded'
        ? 'unknown'
        : (record?.state ?? this.initialState(m.provider));
    const canObserve = m.provider.capabilities.canObserveLoadState;
    return {
      id: m.id,
      name: m.id,
      backend: m.backend.name,
      backend_type: m.backend.type,
      backend_url: m.provider.url,
      purpose: m.descriptor.purpose,
      state: canObserve ? state : 'unknown',
      observed_state: observed?.state ?? null,
      reason: record?.reason ?? null,
      pinned: m.config?.pin ?? false,
      preload: m.config?.preload ?? false,
      ...this.timing(m.id, record, observed?.state === 'loaded'),
      in_flight: record?.inFlight ?? 0,
      size_mb: toMb(observed?.sizeBytes ?? m.descriptor.expectedSizeBytes),
      details: m.descriptor.details,
    };
  }
}

function roundOrNull(value: number | null): number | null {
  return value === null ? null : Math.round(value * 10) / 10;
}
