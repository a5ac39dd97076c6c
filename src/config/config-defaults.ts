import type { BackendKind } from './backend-kinds.js';
import type { BackendConfig, ModelConfig } from './app-config.js';
import { MB } from '../common/units.js';
import { LIMIT_DEFAULTS } from './limits.js';

/** Defaults of every backend setting; the YAML loader and code-built configs (demo, benches) share them. */
export const BACKEND_DEFAULTS = {
  probeTimeoutMs: 1500,
  probeCacheMs: 1000,
  probeIntervalMs: 5000,
  failureThreshold: 3,
  requestTimeoutMs: 300_000,
  streamIdleTimeoutMs: 30_000,
  /**
   * A llama-server router load that has not finished by then failed: the real router can leave a child that
   * died at start-up `loading` for ever (a zombie it never reaps).
   */
  loadTimeoutMs: 60_000,
  /** One line of an upstream stream (SSE/NDJSON): a peer streaming 100 MB without a newline once stalled the parser. */
  maxLineBytes: 1024 * 1024,
  /** One non-streamed upstream body: a 100 MB JSON answer once took RSS from 115 to 742 MB. */
  maxBodyBytes: 64 * 1024 * 1024,
} as const;

/** Defaults of model settings that are not null when unset. */
export const MODEL_DEFAULTS = {
  /** Like Ollama's OLLAMA_NUM_PARALLEL default: a few users share a model without waiting on each other. */
  parallel: 4,
  /**
   * Like Triton's queue policy timeout: a client behind a long queue hears "retry later" within
   * two minutes instead of holding a connection for as long as the queue takes.
   */
  maxQueueWaitS: 120,
} as const;

export function modelConfig(id: string, path: string | null, overrides: Partial<ModelConfig> = {}): ModelConfig {
  return {
    id,
    path,
    upstreamName: null,
    purpose: null,
    preload: false,
    pin: false,
    idleUnloadS: null,
    contextSize: null,
    embeddings: false,
    parallel: MODEL_DEFAULTS.parallel,
    maxQueueWaitS: MODEL_DEFAULTS.maxQueueWaitS,
    ...overrides,
  };
}

/** A backend config built in code (no YAML), with the same defaults the loader applies. */
export function backendConfig(
  name: string,
  type: BackendKind,
  models: ModelConfig[],
  overrides: Partial<BackendConfig> = {},
): BackendConfig {
  return { name, type, url: null, apiKey: null, threads: null, ...BACKEND_DEFAULTS, models, ...overrides };
}

/**
 * Every default of the YAML file, under its YAML name: the loader applies these and nothing else, and
 * test/config/config-defaults.spec.ts checks that docs/configuration.md shows the same values.
 */
export const CONFIG_DEFAULTS = {
  data_dir: 'data',
  log_level: 'log',
  server: {
    host: '127.0.0.1',
    port: 8080,
    body_limit_bytes: 10 * MB,
    shutdown_drain_s: 10,
    headers_timeout_ms: LIMIT_DEFAULTS.headersTimeoutMs,
    request_timeout_ms: LIMIT_DEFAULTS.requestTimeoutMs,
    keep_alive_timeout_ms: LIMIT_DEFAULTS.keepAliveTimeoutMs,
    max_connections: LIMIT_DEFAULTS.maxConnections,
  },
  eviction: { idle_unload_s: 600, check_interval_s: 60, max_loaded_models: 0, memory_budget_mb: 0 },
  bus: {
    enabled: false,
    transport: 'mqtt',
    url: 'mqtt://127.0.0.1:1883',
    heartbeat_s: 5,
    connect_timeout_ms: 5000,
    topics: { request: 'local/llm/request', response: 'local/llm/response', status: 'local/llm/status' },
  },
  limits: {
    body_max_keys: LIMIT_DEFAULTS.bodyMaxKeys,
    body_max_depth: LIMIT_DEFAULTS.bodyMaxDepth,
    image_queue: LIMIT_DEFAULTS.imageQueue,
    image_max_work: LIMIT_DEFAULTS.imageMaxWork,
  },
  /** Each entry of `backends:`. */
  backend: {
    probe_timeout_ms: BACKEND_DEFAULTS.probeTimeoutMs,
    probe_cache_ms: BACKEND_DEFAULTS.probeCacheMs,
    probe_interval_ms: BACKEND_DEFAULTS.probeIntervalMs,
    failure_threshold: BACKEND_DEFAULTS.failureThreshold,
    request_timeout_ms: BACKEND_DEFAULTS.requestTimeoutMs,
    stream_idle_timeout_ms: BACKEND_DEFAULTS.streamIdleTimeoutMs,
    load_timeout_ms: BACKEND_DEFAULTS.loadTimeoutMs,
    max_line_bytes: BACKEND_DEFAULTS.maxLineBytes,
    max_body_bytes: BACKEND_DEFAULTS.maxBodyBytes,
  },
  /** Each entry of a backend's `models:`. */
  model: {
    preload: false,
    pin: false,
    embeddings: false,
    parallel: MODEL_DEFAULTS.parallel,
    max_queue_wait_s: MODEL_DEFAULTS.maxQueueWaitS,
  },
} as const;
