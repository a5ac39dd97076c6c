/**
 * The models of one llama-cpp backend and the requests to them: one shared load per model, an
 * unload that waits for every sequence, admission (`parallel` at once, the rest first-come in a
 * bounded queue) and the choice of sequence by shared prompt prefix.
 */
import type { Logger } from '@nestjs/common';
import { resolve } from 'node:path';
import { abandonOnAbort, abortError } from '../../common/abortable.js';
import type { Clock } from '../../common/clock.js';
import { AppError, InferenceFailedError, ModelNotFoundError, ModelOverloadedError } from '../../common/errors.js';
import type { ModelConfig } from '../../config/app-config.js';
import type { UnloadResult } from '../model-provider.js';
import type { SamplingParams } from '../openai-types.js';
import { Channel, generate, type GenerationEvent, type GenerationResult, type PreparedPrompt } from './generation.js';
import type { LlamaRuntime } from './llama-runtime.js';
import { errorText, estimateBytes, handleMemory, type LlamaHandle, loadHandle, releaseHandle } from './model-loader.js';
import { QueueFullError, QueueWaitExceededError, RequestQueue } from './request-queue.js';
import { type GenerationExtras, generationOptions } from './sampling.js';
import type { PooledSequence } from './sequence-pool.js';

/** Requests allowed to wait for one model's sequences; beyond it a request is refused with 503 at once. */
export const MAX_QUEUED_REQUESTS = 64;

export interface ModelSlot {
  config: ModelConfig;
  path: string | null;
  handle: LlamaHandle | null;
  /** The one load in flight; concurrent callers share it. */
  loading: Promise<LlamaHandle> | null;
  unloading: Promise<void> | null;
  /** GgufInsights estimate of model + context with all its sequences, computed once from the header. */
  estimateBytes: number | null;
  estimating: Promise<void> | null;
  /** `parallel` requests at once, one per context sequence; the rest wait in arrival order. */
  queue: RequestQueue;
}

/** A request holding its turn: the model, its own sequence and its prepared prompt. */
/** What a request brings to its turn, built on the loaded model before it queues. */
export interface Prepared {
  prompt: PreparedPrompt;
  extras: GenerationExtras;
}

export interface Turn {
  h: LlamaHandle;
  signal: AbortSignal;
  seq: PooledSequence;
  prompt: PreparedPrompt;
  extras: GenerationExtras;
}

export class ModelSlots {
  private readonly slots = new Map<string, ModelSlot>();

  constructor(
    models: readonly ModelConfig[],
    baseDir: string,
    private readonly runtime: LlamaRuntime,
    readonly threads: number,
    private readonly logger: Logger,
    clock: Clock,
  ) {
    for (const model of models) {
      this.slots.set(model.id, {
        config: model,
        path: model.path ? resolve(baseDir, model.path) : null,
        handle: null,
        loading: null,
        unloading: null,
        estimateBytes: null,
        estimating: null,
        queue: new RequestQueue(MAX_QUEUED_REQUESTS, model.parallel, {
          maxMs: model.maxQueueWaitS * 1000,
          delay: (ms, signal) => clock.delay(ms, signal),
        }),
      });
    }
  }

  all(): ModelSlot[] {
    return [...this.slots.values()];
  }

  slot(modelId: string): ModelSlot {
    const slot = this.slots.get(modelId);
    if (!slot) throw new ModelNotFoundError(modelId);
    return slot;
  }

  /**
   * The live handle, loading it first when needed: the load path, taken only by `load()`, i.e. by
   * the lifecycle. The caller's signal abandons the wait, never the shared load.
   */
  async acquire(slot: ModelSlot, signal?: AbortSignal): Promise<LlamaHandle> {
    if (signal?.aborted) throw abortError(signal);
    if (slot.unloading) await slot.unloading;
    if (slot.handle) return slot.handle;
    if (!slot.loading) {
      const loading = loadHandle(this.runtime, slot.config, slot.path, this.threads, this.logger);
      slot.loading = loading;
      loading.then(
        (h) => {
          slot.handle = h;
          slot.loading = null;
        },
        () => {
          slot.loading = null;
        },
      );
    }
    return signal ? abandonOnAbort(slot.loading, signal) : slot.loading;
  }

  /**
   * The live handle for a request. Requests never load: the lifecycle loads a model before it
   * admits a request for it and holds it until the request ends, so a request that finds no model
   * (nor a load or unload under way to wait for) is a bug in the caller, reported as one instead
   * of quietly starting a second, unaccounted load path.
   */
  private async loaded(slot: ModelSlot, signal: AbortSignal): Promise<LlamaHandle> {
    if (signal.aborted) throw abortError(signal);
    if (slot.unloading) await slot.unloading;
    if (slot.handle) return slot.handle;
    if (slot.loading) return abandonOnAbort(slot.loading, signal);
    throw new InferenceFailedError(slot.config.id, 'the model is not loaded (a request never loads it: load it first)');
  }

  estimate(slot: ModelSlot): Promise<void> {
    if (slot.estimateBytes !== null || !slot.path || !this.runtime.peek()) return Promise.resolve();
    const path = slot.path;
    slot.estimating ??= estimateBytes(this.runtime, slot.config, path)
      .then((bytes) => {
        slot.estimateBytes = bytes;
      })
      .catch((err: unknown) => {
        // The file size stays the estimate; the load itself reports what is wrong with the file.
        this.logger.debug(`no size estimate for '${slot.config.id}': ${errorText(err)}`);
      })
      .finally(() => {
        slot.estimating = null;
      });
    return slot.estimating;
  }

  // ---- inference ----

  /**
   * Runs one request once it has a turn. The prompt is prepared (and refused when bad) before the
   * request joins the queue, so a 400 never waits behind other users; with its turn, the request
   * takes the free sequence sharing the longest prefix with that prompt. The model must be loaded
   * (see `loaded`). Every failure becomes a request-scoped AppError.
   */
  async run<T>(
    slot: ModelSlot,
    signal: AbortSignal,
    prepare: (h: LlamaHandle) => Prepared | Promise<Prepared>,
    task: (turn: Turn) => Promise<T>,
  ): Promise<T> {
    try {
      const { prompt, extras } = await prepare(await this.loaded(slot, signal));
      return await this.admit(slot, signal, (h, s) => {
        const seq = h.pool.take(prompt.evaluated).member;
        return h.pool.use(seq, () => task({ h, signal: s, seq, prompt, extras }));
      });
    } catch (err) {
      throw this.requestError(slot.config.id, err, signal);
    }
  }

  /** Work on the model that needs a turn but no sequence (embeddings: their own context). */
  async runWithoutSequence<T>(
    slot: ModelSlot,
    signal: AbortSignal,
    task: (h: LlamaHandle, signal: AbortSignal) => Promise<T>,
  ): Promise<T> {
    try {
      await this.loaded(slot, signal);
      return await this.admit(slot, signal, (h, s) => h.pool.use(null, () => task(h, s)));
    } catch (err) {
      throw this.requestError(slot.config.id, err, signal);
    }
  }

  private admit<T>(
    slot: ModelSlot,
    signal: AbortSignal,
    body: (h: LlamaHandle, signal: AbortSignal) => Promise<T>,
  ): Promise<T> {
    return slot.queue.run(signal, async () => {
      // Looked up again inside the turn: the handle may have been replaced while this request waited.
      const h = await this.loaded(slot, signal);
      return body(h, AbortSignal.any([signal, h.lifetime.signal]));
    });
  }

  runPrompt(
    slot: ModelSlot,
    signal: AbortSignal,
    prepare: (h: LlamaHandle) => Prepared | Promise<Prepared>,
    req: SamplingParams,
  ): Promise<GenerationResult> {
    return this.run(slot, signal, prepare, (t) =>
      generate(t.h, t.seq, slot.config.id, t.prompt, req, t.extras, t.signal),
    );
  }

  private requestError(id: string, err: unknown, signal: AbortSignal): AppError {
    if (err instanceof AppError) return err;
    if (err instanceof QueueFullError) {
      return new ModelOverloadedError(id, err.capacity);
    }
    if (err instanceof QueueWaitExceededError) {
      return new ModelOverloadedError(id, this.slot(id).queue.queued, 1, err.waitedMs / 1000);
    }
    if (signal.aborted) return new InferenceFailedError(id, 'the request was aborted');
    return new InferenceFailedError(id, errorText(err));
  }

  /**
   * Streams one generation. Nothing is yielded until the request has its turn and its prompt is
   * accepted, so load, validation and queue errors surface on the first `next()`, before a caller
   * commits to a streaming response. Ends quietly when the caller's signal aborts (the client left)
   * or the consumer stops iterating; both stop the generation and free its sequence before this returns.
   */
  async *stream(
    slot: ModelSlot,
    signal: AbortSignal,
    prepare: (h: LlamaHandle) => Prepared | Promise<Prepared>,
    req: SamplingParams,
  ): AsyncGenerator<GenerationEvent> {
    const modelId = slot.config.id;
    const local = new AbortController();
    const combined = AbortSignal.any([signal, local.signal]);
    const channel = new Channel<GenerationEvent>();
    const done = this.run(
      slot,
      combined,
      async (h) => {
        const prepared = await prepare(h);
        // Sampling fields are judged before queueing too, so a bad request never waits for a turn.
        generationOptions(modelId, req, prepared.prompt.promptTokens, h.contextSize, prepared.extras);
        return prepared;
      },
      async (t) => {
        channel.push({ kind: 'start' });
        const result = await generate(t.h, t.seq, modelId, t.prompt, req, t.extras, t.signal, (text) => {
          if (text) channel.push({ kind: 'text', text });
        });
        if (!t.signal.aborted) channel.push({ kind: 'end', result });
      },
    ).then(
      () => channel.close(),
      (err: unknown) => channel.fail(err),
    );
    try {
      for await (const event of channel) yield event;
    } catch (err) {
      if (signal.aborted) return;
      throw err;
    } finally {
      local.abort();
      await done;
    }
  }

  /** Stops every sequence's generation, waits for all of them to return, then frees the model. */
  async unload(modelId: string): Promise<UnloadResult> {
    const slot = this.slot(modelId);
    if (slot.unloading) await slot.unloading;
    if (slot.loading) await slot.loading.catch(() => undefined);
    const h = slot.handle;
    if (!h) return { wasLoaded: false, expectedFreedBytes: null };
    // Cleared first: whatever happens below, no caller can reach this handle again.
    slot.handle = null;
    const mem = handleMemory(h);
    const unloading = releaseHandle(h, modelId, this.logger);
    slot.unloading = unloading;
    try {
      await unloading;
    } finally {
      slot.unloading = null;
    }
    return { wasLoaded: true, expectedFreedBytes: mem.ram + mem.vram };
  }
}
