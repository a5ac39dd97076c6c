import { Logger } from '@nestjs/common';
import { randomInt } from 'node:crypto';
import { resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { abandonOnAbort } from '../../common/abortable.js';
import {
  AppError,
  InferenceFailedError,
  ModelLoadFailedError,
  ModelNotFoundError,
  ModelOverloadedError,
  errorText,
} from '../../common/errors.js';
import type { AppConfig, BackendConfig, ModelConfig } from '../../config/app-config.js';
import {
  IN_PROCESS_CAPABILITIES,
  type ModelDescriptor,
  type ModelProvider,
  type Observation,
  type ObservedModel,
  type UnloadResult,
} from '../model-provider.js';
import { availableCores } from '../../common/machine.js';
import type { ImageGenerationRequest, ImageGenerationResponse } from '../openai-types.js';
import {
  checkImageMemoryWithin,
  fitsImageMemory,
  frameBytes,
  type ImageMemoryShape,
  type ImageModelMemory,
  readImageMemoryShape,
} from './image-memory.js';
import {
  checkImageWork,
  type ParsedImageRequest,
  parseImageRequest,
  resolveGenerationParams,
} from './image-request.js';
import type { Ort, OrtSession } from './ort-tensors.js';
import { pipelineFileBytes } from './pipeline-files.js';
import { emptyTimings, releaseSession, type ImageGenerationTimings } from './pipeline.js';
import { openPipeline, type ImagePipeline } from './pipeline-host.js';
import { SerialQueue } from './serial-queue.js';
import { base64ImageDatum } from '../image-data.js';
import { identityModelBytes } from '../../formats/onnx-writer.js';

export interface ImageGenerationResult {
  response: ImageGenerationResponse;
  timings: ImageGenerationTimings;
}

interface ModelSlot {
  config: ModelConfig;
  /** Absolute folder, or null when the config gave none (load then fails with the reason). */
  path: string | null;
  handle: ImagePipeline | null;
  /** The one load in flight; concurrent callers await this same promise. */
  loading: Promise<ImagePipeline> | null;
  loadedAtEpochMs: number | null;
  sizeBytes: number | null;
  /** Runs (and unloads) one at a time: ORT sessions of one model share the intra-op thread pool. */
  queue: SerialQueue;
  /** Read from the export's config files on the first request (image-memory.ts). */
  memoryShape: ImageMemoryShape | null;
  /** Finished turns whose PNGs are still encoding, and the bytes of frames (and PNGs) they hold meanwhile. */
  encoding: Set<Promise<unknown>>;
  encodingBytes: number;
}

/**
 * In-process text-to-image on onnxruntime-node, over a diffusers ONNX export folder
 * (text_encoder / unet / vae_decoder / tokenizer / scheduler).
 */
export class OnnxImageProvider implements ModelProvider {
  readonly kind = 'onnx-image' as const;
  readonly backendName: string;
  readonly url = null;
  readonly capabilities = IN_PROCESS_CAPABILITIES;

  private readonly logger: Logger;
  private readonly slots = new Map<string, ModelSlot>();
  private readonly threads: number;
  private readonly maxQueued: number;
  private readonly maxWork: number;
  /** 0: no budget configured, so the machine's memory bounds a request instead. */
  private readonly memoryBudgetBytes: number;
  private ortPromise: Promise<Ort> | null = null;

  constructor(
    private readonly backend: BackendConfig,
    appConfig: AppConfig,
  ) {
    this.backendName = backend.name;
    this.logger = new Logger(`OnnxImageProvider:${backend.name}`);
    // docs/runtimes.md (ONNX "Threads"): one core is left to the event loop, or /health/live waits behind the
    // intra-op pool while an image generates; more threads than cores only makes ORT slower.
    this.threads = backend.threads ?? Math.max(1, availableCores() - 1);
    this.maxQueued = appConfig.limits.imageQueue;
    this.maxWork = appConfig.limits.imageMaxWork;
    this.memoryBudgetBytes = appConfig.eviction.memoryBudgetMb * 1024 * 1024;
    for (const model of backend.models) {
      this.slots.set(model.id, {
        config: model,
        path: model.path ? resolve(appConfig.baseDir, model.path) : null,
        handle: null,
        loading: null,
        loadedAtEpochMs: null,
        sizeBytes: null,
        queue: new SerialQueue(),
        memoryShape: null,
        encoding: new Set(),
        encodingBytes: 0,
      });
    }
  }

  /** Loads the native binding and opens a one-node session, so a broken install fails here, not on a request. */
  async init(): Promise<void> {
    let ort: Ort;
    try {
      ort = await this.runtime();
    } catch (err) {
      this.ortPromise = null;
      throw new Error(`onnxruntime-node binding failed to load: ${errorText(err)}`);
    }
    let session: OrtSession;
    try {
      session = await ort.InferenceSession.create(identityModelBytes(), this.sessionOptions());
    } catch (err) {
      throw new Error(`onnxruntime-node cannot create a session: ${errorText(err)}`);
    }
    await releaseSession(session);
    this.logger.log(`onnxruntime-node ready (cpu, ${this.threads} intra-op threads, no spinning)`);
  }

  descriptors(): ModelDescriptor[] {
    return [...this.slots.values()].map((slot) => ({
      id: slot.config.id,
      upstreamName: slot.config.upstreamName ?? slot.config.id,
      purpose: slot.config.purpose ?? 'image-generation',
      expectedSizeBytes: slot.path ? pipelineFileBytes(slot.path) : null,
      details: { format: 'onnx', family: 'diffusers', path: slot.path },
    }));
  }

  async observe(_signal: AbortSignal): Promise<Observation> {
    const models: ObservedModel[] = [...this.slots.values()].map((slot) => {
      const handle = slot.handle;
      return {
        id: slot.config.id,
        state: handle ? 'loaded' : slot.loading ? 'loading' : 'unloaded',
        sizeBytes: handle ? slot.sizeBytes : null,
        // The CPU execution provider keeps everything in host memory.
        vramBytes: handle ? 0 : null,
        ramBytes: handle ? slot.sizeBytes : null,
        expiresAt: null,
        backendIdleSeconds: null,
        details: handle
          ? {
              ...handle.info,
              thread: handle.thread,
              loaded_at: slot.loadedAtEpochMs ? new Date(slot.loadedAtEpochMs).toISOString() : null,
              queued_runs: slot.queue.size,
            }
          : {},
        observedVia: 'handle',
      };
    });
    return { reachable: true, error: null, models, serverState: 'ok' };
  }

  /** Single-flight: concurrent callers share one load; a caller's signal only abandons its own wait. */
  async load(modelId: string, signal?: AbortSignal): Promise<void> {
    await this.ensureLoaded(this.slot(modelId), signal);
  }

  async unload(modelId: string): Promise<UnloadResult> {
    const slot = this.slot(modelId);
    // A load in flight would otherwise install its handle after we looked.
    if (slot.loading) await slot.loading.catch(() => undefined);
    // Behind the run queue: sessions are never released under a running generation.
    return slot.queue.run(async () => {
      // Encoding outlives a turn (in the worker when there is one): let the last answers finish first.
      await Promise.allSettled(slot.encoding);
      const handle = slot.handle;
      const expectedFreedBytes = slot.sizeBytes;
      if (!handle) return { wasLoaded: false, expectedFreedBytes: null };
      // Cleared before releasing, so the model reads as unloaded even if a release throws.
      slot.handle = null;
      slot.loadedAtEpochMs = null;
      await handle
        .release()
        .catch((err: unknown) => this.logger.warn(`releasing the sessions of '${modelId}' failed: ${errorText(err)}`));
      return { wasLoaded: true, expectedFreedBytes };
    });
  }

  async dispose(): Promise<void> {
    for (const id of this.slots.keys()) {
      try {
        await this.unload(id);
      } catch (err) {
        this.logger.warn(`dispose: unloading '${id}' failed: ${errorText(err)}`);
      }
    }
  }

  async generateImages(
    modelId: string,
    req: ImageGenerationRequest,
    signal: AbortSignal,
  ): Promise<ImageGenerationResponse> {
    return (await this.generateWithTimings(modelId, req, signal)).response;
  }

  /**
   * Everything that can be judged without the model in memory: the fields, the work and memory bounds
   * (for a stated size) and the queue bound. The inference service asks before the lifecycle loads the
   * model, so a request that would be refused never loads it, nor evicts another model to make room.
   */
  checkImageRequest(modelId: string, req: ImageGenerationRequest): ParsedImageRequest {
    const slot = this.slot(modelId);
    const parsed = parseImageRequest(req);
    if (parsed.size) {
      checkImageWork({ ...parsed.size, steps: parsed.steps, n: parsed.n }, this.maxWork);
      const memory = this.memoryOf(slot);
      if (memory) checkImageMemoryWithin({ ...parsed.size, n: parsed.n }, memory, this.memoryBudgetBytes);
    }
    // Like chat: past the queue bound, refuse at once instead of holding the connection for minutes.
    // queue.size counts the running request too: this one would wait behind all of them.
    if (slot.queue.size > this.maxQueued) throw new ModelOverloadedError(modelId, slot.queue.size - 1);
    return parsed;
  }

  /** generateImages plus where the time went (for benchmarks and logs). */
  async generateWithTimings(
    modelId: string,
    req: ImageGenerationRequest,
    signal: AbortSignal,
  ): Promise<ImageGenerationResult> {
    const started = performance.now();
    const slot = this.slot(modelId);
    const parsed = this.checkImageRequest(modelId, req);
    const seed = parsed.seed ?? randomInt(0, 2 ** 32);
    const timings = emptyTimings();
    const enqueued = performance.now();
    const rendered = await slot.queue.run(async () => {
      timings.queueSeconds = (performance.now() - enqueued) / 1000;
      signal.throwIfAborted();
      let pipeline = slot.handle;
      if (!pipeline) {
        const loadStart = performance.now();
        pipeline = await this.loadedPipeline(slot, signal);
        timings.loadSeconds = (performance.now() - loadStart) / 1000;
      }
      const params = resolveGenerationParams(parsed, pipeline.info, seed);
      checkImageWork(params, this.maxWork);
      const vae = pipeline.info.vaeScaleFactor;
      const memory = this.memoryOf(slot);
      if (memory) checkImageMemoryWithin(params, memory, this.memoryBudgetBytes, vae);
      // The frames of earlier turns still encoding count too; when both would not fit, wait for them.
      const withEncoding = this.memoryOf(slot, slot.encodingBytes);
      if (
        slot.encodingBytes > 0 &&
        withEncoding &&
        !fitsImageMemory(params, withEncoding, this.memoryBudgetBytes, vae)
      ) {
        await Promise.allSettled(slot.encoding);
      }
      try {
        const turn = await pipeline.generate(params, signal, timings);
        timings.turnSeconds = (performance.now() - enqueued) / 1000 - timings.queueSeconds - timings.loadSeconds;
        return { turn, bytes: frameBytes(params) };
      } catch (err) {
        throw this.inferenceError(modelId, err, signal);
      }
    });
    // The model's turn is over: the next request denoises while these PNGs finish encoding.
    const encoding = rendered.turn.encoded;
    slot.encoding.add(encoding);
    slot.encodingBytes += rendered.bytes;
    let images: Buffer[];
    try {
      const encoded = await encoding;
      images = encoded.base64;
      timings.pngSeconds += encoded.seconds;
    } catch (err) {
      throw this.inferenceError(modelId, err, signal);
    } finally {
      slot.encoding.delete(encoding);
      slot.encodingBytes -= rendered.bytes;
    }
    signal.throwIfAborted();
    timings.totalSeconds = (performance.now() - started) / 1000;
    timings.secondsPerUnetStep = timings.unetSteps > 0 ? timings.unetSeconds / timings.unetSteps : 0;
    timings.secondsPerImage = timings.images > 0 ? timings.totalSeconds / timings.images : 0;
    this.logger.debug(
      `${modelId}: ${timings.images} image(s) ${timings.width}x${timings.height}, ${timings.steps} steps in ` +
        `${timings.totalSeconds.toFixed(3)} s (unet ${timings.unetSeconds.toFixed(3)} s)`,
    );
    return {
      response: {
        created: Math.floor(Date.now() / 1000),
        data: images.map((base64) => base64ImageDatum(base64, parsed.prompt)),
        model: modelId,
        usage: { elapsed_seconds: Math.round(timings.totalSeconds * 1000) / 1000, seed },
      },
      timings,
    };
  }

  private inferenceError(modelId: string, err: unknown, signal: AbortSignal): unknown {
    if (signal.aborted || err instanceof AppError) return err;
    // A runtime error inside one run (shape mismatch, bad export) fails this request only.
    return new InferenceFailedError(modelId, errorText(err));
  }

  /** What the memory check needs of this model (read once from its folder); null without a folder. */
  private memoryOf(slot: ModelSlot, heldBytes = 0): ImageModelMemory | null {
    if (!slot.path) return null;
    slot.memoryShape ??= readImageMemoryShape(slot.path);
    return { shape: slot.memoryShape, modelBytes: (slot.sizeBytes ?? pipelineFileBytes(slot.path) ?? 0) + heldBytes };
  }

  private slot(modelId: string): ModelSlot {
    const slot = this.slots.get(modelId);
    if (!slot) throw new ModelNotFoundError(modelId);
    return slot;
  }

  private runtime(): Promise<Ort> {
    // Imported lazily so a broken native binding fails init() with its reason instead of the app's import graph.
    this.ortPromise ??= import('onnxruntime-node');
    return this.ortPromise;
  }

  private sessionOptions(): NonNullable<Parameters<Ort['InferenceSession']['create']>[1]> {
    return {
      executionProviders: ['cpu'],
      intraOpNumThreads: this.threads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
      // ORT's pool threads otherwise spin between ops and keep every core busy for the whole generation, so
      // the event loop (and /health/live) waits for CPU. Flattened by the binding to session.*.allow_spinning.
      extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } },
    };
  }

  /**
   * The pipeline for a request: requests never load (the lifecycle loads a model before admitting a
   * request for it and holds it meanwhile), so no pipeline and no load under way is the caller's bug,
   * reported as one instead of a second, unaccounted load path.
   */
  private loadedPipeline(slot: ModelSlot, signal: AbortSignal): Promise<ImagePipeline> {
    if (slot.handle) return Promise.resolve(slot.handle);
    if (slot.loading) return abandonOnAbort(slot.loading, signal);
    throw new InferenceFailedError(slot.config.id, 'the model is not loaded (a request never loads it: load it first)');
  }

  private async ensureLoaded(slot: ModelSlot, signal?: AbortSignal): Promise<ImagePipeline> {
    if (slot.handle) return slot.handle;
    if (!slot.loading) {
      const loading = this.startLoad(slot);
      slot.loading = loading;
      // Cleared after settling, so a failed load can be retried by the next request.
      void loading.then(
        () => this.clearLoading(slot, loading),
        () => this.clearLoading(slot, loading),
      );
    }
    return abandonOnAbort(slot.loading, signal);
  }

  private clearLoading(slot: ModelSlot, loading: Promise<ImagePipeline>): void {
    if (slot.loading === loading) slot.loading = null;
  }

  private async startLoad(slot: ModelSlot): Promise<ImagePipeline> {
    const id = slot.config.id;
    const started = performance.now();
    try {
      if (!slot.path) throw new Error('no model folder configured (path)');
      const runtime = (): Promise<Ort> =>
        this.runtime().catch((err: unknown) => {
          throw new Error(`onnxruntime-node unavailable: ${errorText(err)}`);
        });
      const pipeline = await openPipeline(runtime, slot.path, this.sessionOptions());
      slot.sizeBytes = pipelineFileBytes(slot.path);
      slot.handle = pipeline;
      slot.loadedAtEpochMs = Date.now();
      this.logger.log(
        `loaded '${id}' (${pipeline.info.scheduler}, ${pipeline.info.timestepType} timestep, ${pipeline.thread} thread) in ` +
          `${((performance.now() - started) / 1000).toFixed(2)} s`,
      );
      return pipeline;
    } catch (err) {
      this.logger.warn(`loading '${id}' failed: ${errorText(err)}`);
      throw new ModelLoadFailedError(id, errorText(err));
    }
  }
}
