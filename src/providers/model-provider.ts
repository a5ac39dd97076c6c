/**
 * The contract between the control plane and one backend (docs/architecture.md).
 * One instance per configured backend. In-process kinds hold native handles; remote kinds
 * speak HTTP and map the server's OWN load-state signal (docs/real-servers.md "How each kind tells what is loaded") to model states.
 */
import type {
  ChatCompletionChunk,
  ChatCompletionRequest,
  ChatCompletionResponse,
  CompletionChunk,
  CompletionRequest,
  CompletionResponse,
  EmbeddingsRequest,
  EmbeddingsResponse,
  ImageGenerationRequest,
  ImageGenerationResponse,
} from './openai-types.js';

import type { BackendKind } from '../config/backend-kinds.js';

// Re-exported so existing imports keep working; the kinds belong to the config layer.
export { BACKEND_KINDS, IN_PROCESS_KINDS, REMOTE_KINDS, type BackendKind } from '../config/backend-kinds.js';

/**
 * What a model is for; the Models-app shows it. Well-known values: chat, embedding, image-generation,
 * vision, code, text-to-speech; free text beyond those.
 */
export type ModelPurpose = string;

/** Load state as observed from the runtime that holds the model. */
export type ObservedState = 'loaded' | 'loading' | 'unloaded' | 'unknown';

/** A model this backend can serve (configured or discovered), independent of load state. */
export interface ModelDescriptor {
  /** modelplane id: what clients send as `model`. */
  id: string;
  /** Name at the backend (Ollama tag, served model name); equals id when not mapped. */
  upstreamName: string;
  purpose: ModelPurpose;
  /** Expected resident size in bytes before loading (from file size or metadata); null when unknown. */
  expectedSizeBytes: number | null;
  details: Record<string, unknown>;
}

/** One model as its runtime reports it right now. */
export interface ObservedModel {
  id: string;
  state: ObservedState;
  sizeBytes: number | null;
  vramBytes: number | null;
  ramBytes: number | null;
  /** ISO time the backend will drop it on its own (Ollama keep_alive), else null. */
  expiresAt: string | null;
  /** Idle seconds the backend itself reports (rknn-sd `idle_seconds`), else null. */
  backendIdleSeconds: number | null;
  details: Record<string, unknown>;
  /** How we know: 'handle', 'GET /api/ps', 'GET /health', ... */
  observedVia: string;
}

/** The result of one probe of a backend. A dead backend is reported, never skipped. */
export interface Observation {
  reachable: boolean;
  /** Error text when the probe failed (timeout, refused, bad status). */
  error: string | null;
  models: ObservedModel[];
  /** Readiness hint from the probe itself: e.g. llama-server 503 "Loading model" → 'loading'. */
  serverState: 'ok' | 'loading' | 'error';
  /** A peer modelplane node (kind `modelplane`): its name and its own loaded entries, for the fleet view. */
  peer?: PeerObservation;
}

/** What a probe of a peer node saw; the store keeps it with the observation so the fleet view reads one truth. */
export interface PeerObservation {
  /** The peer's node name (its `fleet.node_name`). */
  node: string;
  /** The peer's own entries of GET /api/models/loaded (peers of the peer left out). */
  loaded: Record<string, unknown>[];
}

export interface ProviderCapabilities {
  /** The backend tells whether weights are in memory. false → state 'unknown' (sd-cpp). */
  canObserveLoadState: boolean;
  canUnload: boolean;
  canLoad: boolean;
  /** Backend is remote and needs periodic probes for readiness. */
  remote: boolean;
  /**
   * A remote server that does not load a model by itself when asked for it (llama-server router, e.g.
   * with --no-models-autoload): modelplane loads it (`load`) before forwarding, like an in-process model.
   */
  loadBeforeUse?: boolean;
}

/** In-process runtimes hold the handle themselves: they always know, load and free what they hold. */
export const IN_PROCESS_CAPABILITIES: Readonly<ProviderCapabilities> = {
  canObserveLoadState: true,
  canUnload: true,
  canLoad: true,
  remote: false,
};

export interface UnloadResult {
  wasLoaded: boolean;
  /** Size the model was expected to occupy, bytes (null when unknown). */
  expectedFreedBytes: number | null;
}

/**
 * Contract per method (callers rely on all of these):
 * - init: resolves when the backend can serve (binding loaded / server reachable); rejects with
 *   the reason otherwise. Never called twice.
 * - descriptors: the catalog, cheap and synchronous; remote kinds refresh it from probes.
 * - observe: what is REALLY loaded. Must settle within `signal` (aborted at the probe timeout);
 *   must not throw for an unreachable backend: it returns reachable:false with the error.
 * - load: idempotent and single-flight per model: concurrent callers share one load. Resolves when
 *   the model can serve. Rejects (ModelLoadFailedError / UpstreamError) on failure; request-scoped.
 * - unload: idempotent, best-effort; ALWAYS clears any in-process handle even when disposal throws.
 *   Throws UnloadUnsupportedError when capabilities.canUnload is false.
 * - inference methods: only those the backend supports are present. Failures are request-scoped
 *   (AppError subclasses); they never touch readiness.
 * - dispose: frees everything at shutdown.
 */
export interface ModelProvider {
  readonly kind: BackendKind;
  readonly backendName: string;
  /** Base URL for remote kinds, null in-process. */
  readonly url: string | null;
  readonly capabilities: ProviderCapabilities;

  init(): Promise<void>;
  descriptors(): ModelDescriptor[];
  observe(signal: AbortSignal): Promise<Observation>;
  load(modelId: string, signal?: AbortSignal): Promise<void>;
  unload(modelId: string): Promise<UnloadResult>;
  dispose(): Promise<void>;
  /**
   * In-process kinds that queue requests for a model: how many hold a sequence and how many wait.
   * Synchronous and cheap (the runtime's own counters): views read it at snapshot time.
   */
  queueStats?(modelId: string): { active: number; queued: number };

  chatCompletion?(modelId: string, req: ChatCompletionRequest, signal: AbortSignal): Promise<ChatCompletionResponse>;
  chatCompletionStream?(
    modelId: string,
    req: ChatCompletionRequest,
    signal: AbortSignal,
  ): AsyncIterable<ChatCompletionChunk>;
  completion?(modelId: string, req: CompletionRequest, signal: AbortSignal): Promise<CompletionResponse>;
  completionStream?(modelId: string, req: CompletionRequest, signal: AbortSignal): AsyncIterable<CompletionChunk>;
  embeddings?(modelId: string, req: EmbeddingsRequest, signal: AbortSignal): Promise<EmbeddingsResponse>;
  generateImages?(modelId: string, req: ImageGenerationRequest, signal: AbortSignal): Promise<ImageGenerationResponse>;
  /**
   * Refuses (throws the AppError) an image request that can be judged without the model in memory;
   * called before the model is loaded, so a request that would be refused never loads or evicts anything.
   */
  checkImageRequest?(modelId: string, req: ImageGenerationRequest): unknown;
}
