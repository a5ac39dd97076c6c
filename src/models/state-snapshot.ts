/**
 * The immutable snapshot every view is projected from, built by a pure function of the store's records,
 * the latest observations and backend readiness at one instant. Views pick fields; none computes state.
 */
import { hostname } from 'node:os';
import { toMb } from '../common/units.js';
import type { ServiceStateView } from '../backend-state/backend-state.service.js';
import { Readiness } from '../backend-state/readiness.js';
import type { BackendConfig } from '../config/app-config.js';
import type { ObservedModel, ObservedState } from '../providers/model-provider.js';
import type { ProviderRegistry, ResolvedModel } from '../providers/provider-registry.service.js';
import { type EvictionView, idleSeconds, unloadsInS } from './eviction-policy.js';
import type { BackendObservation, ModelRecord } from './model-state.store.js';
import type { ModelState } from './transitions.js';

const LOCAL_HOST = hostname();

export interface BackendSnapshot {
  name: string;
  backend_type: string;
  url: string | null;
  readiness: Readiness;
  reason: string | null;
  backend_initialized: boolean;
  last_transition_ms: number;
  /** Whether the latest probe reached the backend; false before the first one. */
  reachable: boolean;
  error: string | null;
  probed_at: string | null;
  probe_ms: number | null;
  /** ISO time of the last observation that reached the backend (null: never). */
  observed_at: string | null;
  observation_age_ms: number | null;
  /** The last good observation is older than probe_interval_ms + probe_timeout_ms (or there is none). */
  stale: boolean;
}

export interface ModelSnapshot {
  id: string;
  backend: string;
  backend_type: string;
  backend_url: string | null;
  /** The server's own name for the model (remote kinds), null in-process. */
  upstream: string | null;
  purpose: string;
  /** The one answer to "what state is this model in", shared by every view. */
  state: ModelState;
  believed_state: ModelState | null;
  observed_state: ObservedState | null;
  drift: boolean;
  reason: string | null;
  pinned: boolean;
  preload: boolean;
  idle_seconds: number | null;
  idle_unload_threshold_s: number | null;
  unloads_in_s: number | null;
  in_flight: number;
  /** Of those, requests waiting for a free sequence of the model (in-process kinds that queue). */
  queued: number;
  size_mb: number | null;
  vram_mb: number | null;
  ram_mb: number | null;
  expires_at: string | null;
  details: Record<string, unknown>;
  host: string;
  loaded_at: string | null;
  observed_via: string;
  observed_at: string | null;
  observation_age_ms: number | null;
  stale: boolean;
  /** Monotonic ms of the last activity (eviction order); not shown on the wire. */
  last_activity_ms: number | null;
  /** Backend-reported idle seconds from a fresh observation (rknn-sd). */
  backend_idle_s: number | null;
  can_unload: boolean;
  local: boolean;
  size_bytes: number | null;
  /** Idle threshold in seconds as configured (0 = never), pinned or not. */
  threshold_s: number;
}

/** The eviction policy's input for one model, from the same snapshot the views show. */
export function evictionView(m: ModelSnapshot): EvictionView {
  return {
    id: m.id,
    loaded: m.state === 'loaded',
    inFlight: m.in_flight,
    lastActivityMs: m.last_activity_ms,
    backendIdleS: m.backend_idle_s,
    thresholdS: m.threshold_s,
    pinned: m.pinned,
    canUnload: m.can_unload,
    sizeBytes: m.size_bytes,
    local: m.local,
  };
}

export interface StateSnapshot {
  /** Bumped on every write to the store: two snapshots with the same version saw the same state. */
  version: number;
  at_ms: number;
  readiness: ServiceStateView;
  backends: BackendSnapshot[];
  models: ModelSnapshot[];
}

export interface SnapshotInput {
  version: number;
  nowMs: number;
  epochMs: number;
  registry: ProviderRegistry;
  readiness: ServiceStateView;
  records: ReadonlyMap<string, ModelRecord>;
  observations: ReadonlyMap<string, BackendObservation>;
  drifting: ReadonlyMap<string, ModelState>;
  defaultIdleUnloadS: number;
}

export function buildSnapshot(input: SnapshotInput): StateSnapshot {
  const nowIso = new Date(input.epochMs).toISOString();
  const backendViews = new Map<string, BackendSnapshot>();
  const readinessByName = new Map(input.readiness.backends.map((b) => [b.name, b]));
  for (const { provider, backend } of input.registry.all()) {
    const obs = input.observations.get(backend.name);
    const state = readinessByName.get(backend.name);
    const age = observationAge(input.nowMs, obs, provider.capabilities.remote);
    backendViews.set(backend.name, {
      name: backend.name,
      backend_type: provider.kind,
      url: provider.url,
      readiness: state?.readiness ?? Readiness.Initializing,
      reason: state?.reason ?? null,
      backend_initialized: state?.backend_initialized ?? false,
      last_transition_ms: state?.last_transition_ms ?? input.epochMs,
      reachable: provider.capabilities.remote
        ? (obs?.observation.reachable ?? false)
        : (state?.backend_initialized ?? false) && state?.readiness !== Readiness.Unavailable,
      error: obs?.observation.error ?? null,
      probed_at: obs?.probedAt ?? null,
      probe_ms: obs?.probeMs ?? null,
      observed_at: provider.capabilities.remote ? (obs?.lastGoodAt ?? null) : nowIso,
      observation_age_ms: age,
      stale: provider.capabilities.remote && (age === null || age > staleAfterMs(backend)),
    });
  }
  const models = input.registry
    .catalog()
    .map((m) => modelSnapshot(input, m, backendViews.get(m.backend.name)!, input.observations.get(m.backend.name)));
  return {
    version: input.version,
    at_ms: input.epochMs,
    readiness: input.readiness,
    backends: [...backendViews.values()],
    models,
  };
}

function staleAfterMs(backend: BackendConfig): number {
  return backend.probeIntervalMs + backend.probeTimeoutMs;
}

function observationAge(nowMs: number, obs: BackendObservation | undefined, remote: boolean): number | null {
  if (!remote) return 0;
  return obs === undefined || obs.lastGoodAtMs === null ? null : Math.max(0, Math.round(nowMs - obs.lastGoodAtMs));
}

function modelSnapshot(
  input: SnapshotInput,
  m: ResolvedModel,
  backend: BackendSnapshot,
  obs: BackendObservation | undefined,
): ModelSnapshot {
  const caps = m.provider.capabilities;
  const record = input.records.get(m.id);
  const latestGood = obs !== undefined && obs.observation.reachable && obs.observation.serverState !== 'error';
  // A remote model's observation counts only while it is fresh and from a probe that reached the server.
  const observed: ObservedModel | undefined =
    caps.remote && (!latestGood || backend.stale) ? undefined : obs?.byId.get(m.id);
  const state = truthState(caps, record, observed);
  const local = !caps.remote;
  const thresholdS = m.config?.idleUnloadS ?? input.defaultIdleUnloadS;
  const pinned = m.config?.pin ?? false;
  const sizeBytes = observed?.sizeBytes ?? record?.sizeBytes ?? m.descriptor.expectedSizeBytes;
  const view: EvictionView = {
    id: m.id,
    loaded: state === 'loaded',
    inFlight: record?.inFlight ?? 0,
    lastActivityMs: record?.lastActivityMs ?? null,
    backendIdleS: observed?.backendIdleSeconds ?? null,
    thresholdS,
    pinned,
    canUnload: caps.canUnload,
    sizeBytes,
    local,
  };
  const idle = state === 'loaded' ? idleSeconds(input.nowMs, view) : null;
  return {
    id: m.id,
    backend: m.backend.name,
    backend_type: m.provider.kind,
    backend_url: m.provider.url,
    upstream: caps.remote ? m.descriptor.upstreamName : null,
    purpose: m.descriptor.purpose,
    state,
    believed_state: input.drifting.get(`${m.backend.name}/${m.id}`) ?? record?.state ?? null,
    observed_state: caps.remote ? (observed?.state ?? null) : state === 'loaded' ? 'loaded' : 'unloaded',
    drift: input.drifting.has(`${m.backend.name}/${m.id}`),
    reason: record?.reason ?? failedReason(observed),
    pinned,
    preload: m.config?.preload ?? false,
    idle_seconds: round1(idle),
    idle_unload_threshold_s: pinned || thresholdS === 0 ? null : thresholdS,
    unloads_in_s: round1(unloadsInS(input.nowMs, view)),
    in_flight: record?.inFlight ?? 0,
    queued: state === 'loaded' ? queuedOf(m) : 0,
    size_mb: toMb(sizeBytes),
    vram_mb: toMb(observed?.vramBytes ?? null),
    ram_mb: toMb(observed?.ramBytes ?? null),
    expires_at: observed?.expiresAt ?? null,
    details: { ...m.descriptor.details, ...observed?.details },
    host: local || m.provider.url === null ? LOCAL_HOST : new URL(m.provider.url).hostname,
    loaded_at: state === 'loaded' && record?.loadedAtEpochMs ? new Date(record.loadedAtEpochMs).toISOString() : null,
    observed_via: observed?.observedVia ?? (local ? 'handle' : 'none'),
    observed_at: backend.observed_at,
    observation_age_ms: backend.observation_age_ms,
    stale: backend.stale,
    last_activity_ms: record?.lastActivityMs ?? null,
    backend_idle_s: observed?.backendIdleSeconds ?? null,
    can_unload: caps.canUnload,
    local,
    size_bytes: sizeBytes,
    threshold_s: thresholdS,
  };
}

/**
 * The one rule for a model's state. In-process: the lifecycle's record (it holds the handle). Remote: what
 * the latest fresh observation shows, except while our own load or unload is running; no usable
 * observation (never probed, unreachable, stale) or no load-state signal at all (sd-cpp) → `unknown`.
 */
function truthState(
  caps: ResolvedModel['provider']['capabilities'],
  record: ModelRecord | undefined,
  observed: ObservedModel | undefined,
): ModelState {
  if (!caps.canObserveLoadState) return 'unknown';
  if (!caps.remote) return record?.state ?? 'unloaded';
  if (record?.state === 'loading' || record?.state === 'unloading') return record.state;
  if (!observed || observed.state === 'unknown') return 'unknown';
  if (observed.state === 'unloaded' && (record?.state === 'failed' || observed.details.failed === true))
    return 'failed';
  // Our request is making the server load it on demand (Ollama, a router): loading until observed loaded.
  if (observed.state === 'unloaded' && (record?.inFlight ?? 0) > 0) return 'loading';
  return observed.state;
}

function queuedOf(m: ResolvedModel): number {
  try {
    return m.provider.queueStats?.(m.id).queued ?? 0;
  } catch {
    return 0;
  }
}

/** A server that reports a failed load of its own (llama-server router `status.failed`) says why. */
function failedReason(observed: ObservedModel | undefined): string | null {
  if (observed?.details.failed !== true) return null;
  const code = observed.details.exit_code;
  return `load failed on the server (exit code ${typeof code === 'number' ? code : 'unknown'})`;
}

function round1(value: number | null): number | null {
  return value === null ? null : Math.round(value * 10) / 10;
}
