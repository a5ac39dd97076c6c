import type { BackendKind } from './backend-kinds.js';
import type { FleetConfig } from './fleet-config.js';
import type { Limits } from './limits.js';

/** Typed, validated, defaults-applied configuration. The only shape the rest of the app reads. */
export interface ModelConfig {
  id: string;
  /** In-process kinds: file (GGUF) or folder (ONNX pipeline), relative to the config file's folder. */
  path: string | null;
  /** Name at a remote backend when it differs from id (Ollama tag, served model name). */
  upstreamName: string | null;
  purpose: string | null;
  preload: boolean;
  pin: boolean;
  /** null → eviction.idleUnloadS; 0 → never idle-evicted. */
  idleUnloadS: number | null;
  /** llama-cpp: context size in tokens. */
  contextSize: number | null;
  /** Allow embeddings for a llama-cpp model. */
  embeddings: boolean;
  /** llama-cpp: sequences decoded together in one context (each holds context_size tokens); more requests queue. */
  parallel: number;
  /** llama-cpp: longest wait for a turn before a request is refused with 503 model_overloaded. */
  maxQueueWaitS: number;
}

export interface BackendConfig {
  name: string;
  type: BackendKind;
  url: string | null;
  /** Bearer token sent to a remote backend (openai kinds). */
  apiKey: string | null;
  probeTimeoutMs: number;
  probeCacheMs: number;
  /** Background probe period for remote backends, so readiness follows them without any client polling. */
  probeIntervalMs: number;
  /** Consecutive failed probes before a remote backend is `unavailable`. */
  failureThreshold: number;
  /** Timeout for a proxied inference request. */
  requestTimeoutMs: number;
  /** Longest silence between two chunks of a proxied stream before it is cut (the total is requestTimeoutMs). */
  streamIdleTimeoutMs: number;
  /** Longest wait for a remote load modelplane asked for (llama-server router) before it counts as failed. */
  loadTimeoutMs: number;
  /** Longest line of an upstream stream; longer → 502 upstream_error naming the limit. */
  maxLineBytes: number;
  /** Largest non-streamed upstream body; larger → 502 upstream_error naming the limit. */
  maxBodyBytes: number;
  /** In-process CPU threads; null → cores actually available. */
  threads: number | null;
  models: ModelConfig[];
  /** Extra headers on every request to this backend (set in code for fleet peers, not from YAML). */
  headers?: Readonly<Record<string, string>>;
  /** Bearer token for the backend's admin routes (kind modelplane: load/unload forwarded to a peer). */
  adminToken?: string | null;
}

export interface BusTopics {
  request: string;
  response: string;
  status: string;
}

export interface AppConfig {
  /** Folder of the config file (or cwd); relative model paths resolve against it. */
  baseDir: string;
  /** Where generated demo models live. */
  dataDir: string;
  /** true when no config file was given and the embedded demo runs. */
  demo: boolean;
  logLevel: 'error' | 'warn' | 'log' | 'debug' | 'verbose';
  /** null: pretty when stdout is a TTY, JSON lines otherwise. */
  logFormat: 'json' | 'pretty' | null;
  server: {
    host: string;
    port: number;
    adminToken: string | null;
    apiKey: string | null;
    bodyLimitBytes: number;
    /** Bound on draining in-flight requests at shutdown. */
    shutdownDrainS: number;
  };
  eviction: {
    idleUnloadS: number;
    checkIntervalS: number;
    maxLoadedModels: number;
    memoryBudgetMb: number;
  };
  bus: {
    enabled: boolean;
    transport: 'mqtt' | 'zenoh';
    url: string;
    heartbeatS: number;
    topics: BusTopics;
    connectTimeoutMs: number;
  };
  backends: BackendConfig[];
  /** Request, connection and upstream bounds (YAML: server.*_timeout_ms / max_connections and limits.*). */
  limits: Limits;
  /** Fleet membership and peer discovery (YAML `fleet:`); absent in configs built in code: a fleet of one. */
  fleet?: FleetConfig;
}

/** DI token for AppConfig (an interface cannot be a token). */
export const APP_CONFIG = Symbol('APP_CONFIG');
