import type { BackendKind } from './backend-kinds.js';
import type { BackendConfig, ModelConfig } from './app-config.js';

/** Defaults of every backend setting; the YAML loader and code-built configs (demo, benches) share them. */
export const BACKEND_DEFAULTS = {
  probeTimeoutMs: 1500,
  probeCacheMs: 1000,
  probeIntervalMs: 5000,
  failureThreshold: 3,
  requestTimeoutMs: 300_000,
  streamIdleTimeoutMs: 30_000,
  /** One line of an upstream stream (SSE/NDJSON): a peer streaming 100 MB without a newline once stalled the parser. */
  maxLineBytes: 1024 * 1024,
  /** One non-streamed upstream body: a 100 MB JSON answer once took RSS from 115 to 742 MB. */
  maxBodyBytes: 64 * 1024 * 1024,
} as const;

/** Defaults of model settings that are not null when unset. */
export const MODEL_DEFAULTS = {
  /** Like Ollama's OLLAMA_NUM_PARALLEL default: a few users share a model without waiting on each other. */
  parallel: 4,
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
