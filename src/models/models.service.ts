import { Injectable } from '@nestjs/common';
import type { ObservedState } from '../providers/model-provider.js';
import { ModelStateStore } from './model-state.store.js';
import type { BackendSnapshot, ModelSnapshot, StateSnapshot } from './state-snapshot.js';

/** Per-model summary in GET /health (and the bus heartbeat, and the /metrics gauges). */
export interface ModelHealth {
  state: string;
  /** Why it is in that state when that needs saying (a failed load's exit code, a stuck load). */
  reason: string | null;
  idle_seconds: number | null;
  idle_unload_threshold_s: number | null;
  unloads_in_s: number | null;
  in_flight: number;
  queued: number;
}

export interface LoadedEntry {
  name: string;
  backend: string;
  backend_type: string;
  backend_url: string | null;
  upstream: string | null;
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
  queued: number;
  pinned: boolean;
  observed_via: string;
  observed_at: string | null;
  observation_age_ms: number | null;
  stale: boolean;
  believed_state: string | null;
  observed_state: ObservedState | null;
  drift: boolean;
}

export type BackendEntry = Omit<BackendSnapshot, 'backend_initialized' | 'last_transition_ms'>;

export interface CatalogEntry {
  id: string;
  name: string;
  backend: string;
  backend_type: string;
  backend_url: string | null;
  upstream: string | null;
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
  queued: number;
  size_mb: number | null;
  observed_at: string | null;
  observation_age_ms: number | null;
  stale: boolean;
  details: Record<string, unknown>;
}

/**
 * The model views. Each is a projection of one ModelStateStore snapshot: none probes, none waits on a
 * backend, none computes a state of its own, so /api/models, /api/models/loaded, /health and /metrics
 * agree by construction. Pass the same snapshot to several views to show them at one instant.
 */
@Injectable()
export class ModelsService {
  constructor(private readonly store: ModelStateStore) {}

  snapshot(): StateSnapshot {
    return this.store.snapshot();
  }

  loaded(snapshot = this.store.snapshot()): { loaded: LoadedEntry[]; backends: BackendEntry[] } {
    return {
      loaded: snapshot.models.filter((m) => m.state === 'loaded').map(loadedEntry),
      backends: snapshot.backends.map(backendEntry),
    };
  }

  catalog(snapshot = this.store.snapshot()): { models: CatalogEntry[] } {
    return { models: snapshot.models.map(catalogEntry) };
  }

  healthModels(snapshot = this.store.snapshot()): Record<string, ModelHealth> {
    const out: Record<string, ModelHealth> = {};
    for (const m of snapshot.models) {
      out[m.id] = {
        state: m.state,
        reason: m.reason,
        idle_seconds: m.idle_seconds,
        idle_unload_threshold_s: m.idle_unload_threshold_s,
        unloads_in_s: m.unloads_in_s,
        in_flight: m.in_flight,
        queued: m.queued,
      };
    }
    return out;
  }
}

/** Fields the loaded list and the catalog both show, as the snapshot has them. */
const SHARED = [
  'backend',
  'backend_type',
  'backend_url',
  'upstream',
  'purpose',
  'size_mb',
  'details',
  'idle_seconds',
  'idle_unload_threshold_s',
  'unloads_in_s',
  'in_flight',
  'queued',
  'pinned',
  'observed_at',
  'observation_age_ms',
  'stale',
  'observed_state',
] as const;

function pick<T, K extends keyof T>(source: T, keys: readonly K[]): Pick<T, K> {
  const out = {} as Pick<T, K>;
  for (const key of keys) out[key] = source[key];
  return out;
}

function loadedEntry(m: ModelSnapshot): LoadedEntry {
  return {
    name: m.id,
    ...pick(m, SHARED),
    ...pick(m, ['vram_mb', 'ram_mb', 'expires_at', 'host', 'loaded_at', 'observed_via', 'believed_state', 'drift']),
  };
}

function backendEntry(b: BackendSnapshot): BackendEntry {
  return {
    name: b.name,
    backend_type: b.backend_type,
    url: b.url,
    reachable: b.reachable,
    readiness: b.readiness,
    reason: b.reason,
    error: b.error,
    probed_at: b.probed_at,
    probe_ms: b.probe_ms,
    observed_at: b.observed_at,
    observation_age_ms: b.observation_age_ms,
    stale: b.stale,
  };
}

function catalogEntry(m: ModelSnapshot): CatalogEntry {
  return { id: m.id, name: m.id, ...pick(m, SHARED), ...pick(m, ['state', 'reason', 'preload']) };
}
