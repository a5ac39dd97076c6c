import { Logger } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { statSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import type {
  ChatHistoryItem,
  ChatWrapper,
  LlamaCompletion,
  LlamaContext,
  LlamaContextSequence,
  LlamaEmbeddingContext,
  LlamaModel,
  LlamaText,
  Token,
} from 'node-llama-cpp';
import { AppError, InferenceFailedError, ModelLoadFailedError, ModelNotFoundError } from '../../common/errors.js';
import type { AppConfig, BackendConfig, ModelConfig } from '../../config/app-config.js';
import {
  IN_PROCESS_CAPABILITIES,
  type ModelDescriptor,
  type ModelProvider,
  type Observation,
  type ObservedModel,
  type UnloadResult,
} from '../model-provider.js';
import type {
  ChatCompletionChunk,
  ChatCompletionRequest,
  ChatCompletionResponse,
  ChatMessage,
  CompletionChunk,
  CompletionRequest,
  CompletionResponse,
  EmbeddingsRequest,
  EmbeddingsResponse,
  FinishReason,
  SamplingParams,
  Usage,
} from '../openai-types.js';
import { checkGgufMetadata } from './gguf-check.js';
import type { LlamaRuntime } from './llama-runtime.js';
import { abortError, QueueFullError, RequestQueue } from './request-queue.js';
import { DEFAULT_CONTEXT_SIZE, generationOptions, invalidRequest, stopStrings } from './sampling.js';

export { directGenerate, type DirectGenerateOptions, type DirectGenerateResult } from './direct-generate.js';

/** Requests allowed to wait for one model's sequence; beyond it a request is refused with 503 at once. */
export const MAX_QUEUED_REQUESTS = 64;

interface LlamaHandle {
  model: LlamaModel;
  context: LlamaContext;
  sequence: LlamaContextSequence;
  completion: LlamaCompletion;
  embedding: LlamaEmbeddingContext | null;
  /** llama.cpp does not report the embedding context's footprint; this is GgufInsights' estimate. */
  embeddingBytes: number;
  chatWrapper: ChatWrapper;
  contextSize: number;
  architecture: string | null;
  loadedAtEpochMs: number;
  /** Aborted at unload, so a generation in flight stops at the next token instead of using freed memory. */
  lifetime: AbortController;
  /** The request running on this handle, awaited by unload before freeing native memory. */
  inFlight: Promise<unknown> | null;
}

interface ModelSlot {
  config: ModelConfig;
  path: string | null;
  handle: LlamaHandle | null;
  /** The one load in flight; concurrent callers share it. */
  loading: Promise<LlamaHandle> | null;
  unloading: Promise<void> | null;
  /** GgufInsights estimate of model + context(s), computed once from the header. */
  estimateBytes: number | null;
  estimating: Promise<void> | null;
  /** One context sequence per model: requests take turns. */
  queue: RequestQueue;
}

interface PreparedPrompt {
  /** Tokens handed to LlamaCompletion, without the BOS it prepends itself. */
  tokens: Token[];
  /** What the model really evaluates, BOS included. */
  promptTokens: number;
  stopTriggers: (string | LlamaText)[];
}

interface GenerationResult {
  text: string;
  finishReason: FinishReason;
  usage: Usage;
}

type GenerationEvent = { kind: 'start' } | { kind: 'text'; text: string } | { kind: 'end'; result: GenerationResult };

/**
 * In-process LLM inference on node-llama-cpp. One context with one sequence per loaded model;
 * requests to a model are served one at a time in arrival order (on a CPU, batching sequences
 * buys nothing and multiplies KV-cache memory), and the shared prefix of consecutive prompts
 * stays cached in the sequence.
 */
export class LlamaCppProvider implements ModelProvider {
  readonly kind = 'llama-cpp' as const;
  readonly backendName: string;
  readonly url = null;
  readonly capabilities = IN_PROCESS_CAPABILITIES;

  private readonly logger: Logger;
  private readonly slots = new Map<string, ModelSlot>();
  private readonly threads: number;

  constructor(
    backend: BackendConfig,
    private readonly runtime: LlamaRuntime,
    appConfig: AppConfig,
  ) {
    this.backendName = backend.name;
    this.logger = new Logger(`LlamaCppProvider:${backend.name}`);
    this.threads = backend.threads ?? runtime.threads;
    for (const model of backend.models) {
      this.slots.set(model.id, {
        config: model,
        path: model.path ? resolve(appConfig.baseDir, model.path) : null,
        handle: null,
        loading: null,
        unloading: null,
        estimateBytes: null,
        estimating: null,
        queue: new RequestQueue(MAX_QUEUED_REQUESTS),
      });
    }
  }

  async init(): Promise<void> {
    try {
      await this.runtime.get();
    } catch (err) {
      throw new Error(`node-llama-cpp binding failed to load: ${errorText(err)}`);
    }
    // Header reads only: cheap, and they give descriptors() real size estimates before any load.
    await Promise.all([...this.slots.values()].map((slot) => this.estimate(slot)));
  }

  descriptors(): ModelDescriptor[] {
    return [...this.slots.values()].map((slot) => {
      if (slot.estimateBytes === null) void this.estimate(slot);
      return {
        id: slot.config.id,
        upstreamName: slot.config.upstreamName ?? slot.config.id,
        purpose: purposeOf(slot.config),
        expectedSizeBytes: slot.estimateBytes ?? fileSize(slot.path),
        details: { format: 'gguf', path: slot.path, embeddings: slot.config.embeddings },
      };
    });
  }

  async observe(_signal: AbortSignal): Promise<Observation> {
    const models: ObservedModel[] = [...this.slots.values()].map((slot) => {
      const h = slot.handle;
      const mem = h ? handleMemory(h) : null;
      return {
        id: slot.config.id,
        state: h ? 'loaded' : 'unloaded',
        sizeBytes: mem ? mem.ram + mem.vram : null,
        ramBytes: mem ? mem.ram : null,
        vramBytes: mem ? mem.vram : null,
        expiresAt: null,
        backendIdleSeconds: null,
        details: {
          path: slot.path,
          loading: slot.loading !== null,
          queued: slot.queue.size,
          ...(h
            ? {
                architecture: h.architecture,
                context_size: h.contextSize,
                train_context_size: h.model.trainContextSize,
                threads: this.threads,
                embeddings: h.embedding !== null,
                loaded_at: new Date(h.loadedAtEpochMs).toISOString(),
              }
            : {}),
        },
        observedVia: 'handle',
      };
    });
    return { reachable: true, error: null, serverState: 'ok', models };
  }

  async load(modelId: string, signal?: AbortSignal): Promise<void> {
    await this.acquire(this.slot(modelId), signal);
  }

  async unload(modelId: string): Promise<UnloadResult> {
    const slot = this.slot(modelId);
    if (slot.unloading) await slot.unloading;
    if (slot.loading) await slot.loading.catch(() => undefined);
    const h = slot.handle;
    if (!h) return { wasLoaded: false, expectedFreedBytes: null };
    // Cleared first: whatever happens below, no caller can reach this handle again.
    slot.handle = null;
    const mem = handleMemory(h);
    const unloading = this.release(h, modelId);
    slot.unloading = unloading;
    try {
      await unloading;
    } finally {
      slot.unloading = null;
    }
    return { wasLoaded: true, expectedFreedBytes: mem.ram + mem.vram };
  }

  async dispose(): Promise<void> {
    await Promise.all(
      [...this.slots.keys()].map((id) =>
        this.unload(id).catch((err: unknown) => this.logger.warn(`unload of '${id}' at shutdown: ${errorText(err)}`)),
      ),
    );
  }

  async chatCompletion(
    modelId: string,
    req: ChatCompletionRequest,
    signal: AbortSignal,
  ): Promise<ChatCompletionResponse> {
    const slot = this.slot(modelId);
    const result = await this.run(slot, signal, (h, s) =>
      this.generate(h, modelId, this.chatPrompt(h, req.messages), req, s),
    );
    return {
      id: completionId('chatcmpl'),
      object: 'chat.completion',
      created: nowSeconds(),
      model: req.model || modelId,
      choices: [
        {
          index: 0,
          message: { role: 'assistant', content: result.text },
          finish_reason: result.finishReason,
          logprobs: null,
        },
      ],
      usage: result.usage,
    };
  }

  async *chatCompletionStream(
    modelId: string,
    req: ChatCompletionRequest,
    signal: AbortSignal,
  ): AsyncGenerator<ChatCompletionChunk> {
    const slot = this.slot(modelId);
    const id = completionId('chatcmpl');
    const created = nowSeconds();
    const model = req.model || modelId;
    const chunk = (
      delta: ChatCompletionChunk['choices'][number]['delta'],
      finish: FinishReason,
      usage?: Usage,
    ): ChatCompletionChunk => ({
      id,
      object: 'chat.completion.chunk',
      created,
      model,
      choices: [{ index: 0, delta, finish_reason: finish, logprobs: null }],
      ...(usage ? { usage } : {}),
    });
    for await (const event of this.stream(slot, modelId, signal, (h) => this.chatPrompt(h, req.messages), req)) {
      if (event.kind === 'start') yield chunk({ role: 'assistant', content: '' }, null);
      else if (event.kind === 'text') yield chunk({ content: event.text }, null);
      else yield chunk({}, event.result.finishReason, event.result.usage);
    }
  }

  async completion(modelId: string, req: CompletionRequest, signal: AbortSignal): Promise<CompletionResponse> {
    const slot = this.slot(modelId);
    const prompts = promptList(req.prompt);
    const choices: CompletionResponse['choices'] = [];
    const usage: Usage = { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 };
    for (const [index, prompt] of prompts.entries()) {
      const result = await this.run(slot, signal, (h, s) =>
        this.generate(h, modelId, this.textPrompt(h, prompt), req, s),
      );
      choices.push({ index, text: result.text, finish_reason: result.finishReason, logprobs: null });
      addUsage(usage, result.usage);
    }
    return {
      id: completionId('cmpl'),
      object: 'text_completion',
      created: nowSeconds(),
      model: req.model || modelId,
      choices,
      usage,
    };
  }

  async *completionStream(
    modelId: string,
    req: CompletionRequest,
    signal: AbortSignal,
  ): AsyncGenerator<CompletionChunk> {
    const slot = this.slot(modelId);
    const id = completionId('cmpl');
    const created = nowSeconds();
    const model = req.model || modelId;
    for (const [index, prompt] of promptList(req.prompt).entries()) {
      for await (const event of this.stream(slot, modelId, signal, (h) => this.textPrompt(h, prompt), req)) {
        if (event.kind === 'start') continue;
        yield {
          id,
          object: 'text_completion',
          created,
          model,
          choices: [
            {
              index,
              text: event.kind === 'text' ? event.text : '',
              finish_reason: event.kind === 'end' ? event.result.finishReason : null,
              logprobs: null,
            },
          ],
        };
      }
      if (signal.aborted) return;
    }
  }

  async embeddings(modelId: string, req: EmbeddingsRequest, signal: AbortSignal): Promise<EmbeddingsResponse> {
    const slot = this.slot(modelId);
    if (!slot.config.embeddings) {
      throw new AppError(
        400,
        'embeddings_not_supported',
        `Model '${modelId}' does not serve embeddings (set embeddings: true in its config)`,
        { model: modelId },
        'invalid_request_error',
        'model',
      );
    }
    const inputs = Array.isArray(req.input) ? req.input : [req.input];
    if (inputs.length === 0 || inputs.some((i) => typeof i !== 'string')) {
      throw invalidRequest('input must be a string or a non-empty array of strings', 'input');
    }
    return this.run(slot, signal, async (h, s) => {
      const embedding = h.embedding;
      if (!embedding) throw new InferenceFailedError(modelId, 'the model has no embedding context');
      const data: EmbeddingsResponse['data'] = [];
      let promptTokens = 0;
      for (const [index, text] of inputs.entries()) {
        s.throwIfAborted();
        const tokens = h.model.tokenize(text);
        const counted = tokens.length + (h.model.tokens.shouldPrependBosToken ? 1 : 0);
        if (counted > h.contextSize) {
          throw new AppError(
            400,
            'context_length_exceeded',
            `Input ${index} has ${counted} tokens; the embedding context of '${modelId}' holds ${h.contextSize}`,
            { model: modelId, index, prompt_tokens: counted, context_size: h.contextSize },
            'invalid_request_error',
            'input',
          );
        }
        promptTokens += counted;
        const { vector } = await embedding.getEmbeddingFor(text);
        data.push({
          object: 'embedding',
          index,
          embedding: req.encoding_format === 'base64' ? float32Base64(vector) : Array.from(vector),
        });
      }
      return {
        object: 'list',
        data,
        model: req.model || modelId,
        usage: { prompt_tokens: promptTokens, total_tokens: promptTokens },
      };
    });
  }

  // ---- loading ----

  private slot(modelId: string): ModelSlot {
    const slot = this.slots.get(modelId);
    if (!slot) throw new ModelNotFoundError(modelId);
    return slot;
  }

  /** The live handle, loading it first when needed. The caller's signal abandons the wait, never the shared load. */
  private async acquire(slot: ModelSlot, signal?: AbortSignal): Promise<LlamaHandle> {
    if (signal?.aborted) throw abortError(signal);
    if (slot.unloading) await slot.unloading;
    if (slot.handle) return slot.handle;
    if (!slot.loading) {
      const loading = this.loadSlot(slot);
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
    return signal ? abortable(slot.loading, signal) : slot.loading;
  }

  private async loadSlot(slot: ModelSlot): Promise<LlamaHandle> {
    const id = slot.config.id;
    const path = slot.path;
    if (!path) throw new ModelLoadFailedError(id, 'no model path is configured');
    const started = Date.now();
    let llama;
    let lib;
    try {
      [llama, lib] = await Promise.all([this.runtime.get(), this.runtime.module()]);
    } catch (err) {
      throw new ModelLoadFailedError(id, `node-llama-cpp is not available: ${errorText(err)}`);
    }
    try {
      const st = await stat(path);
      if (!st.isFile()) throw new Error(`${path} is not a file`);
    } catch (err) {
      throw new ModelLoadFailedError(id, `cannot read model file: ${errorText(err)}`);
    }
    let info;
    try {
      info = await lib.readGgufFileInfo(path, { readTensorInfo: false });
    } catch (err) {
      throw new ModelLoadFailedError(id, `${path} is not a readable GGUF file: ${errorText(err)}`);
    }
    const check = checkGgufMetadata(info);
    if (check.problems.length > 0) {
      throw new ModelLoadFailedError(
        id,
        `${path} has incomplete GGUF metadata (${check.problems.join('; ')}); refusing to load it, since llama.cpp may abort the process on such a file`,
      );
    }

    let model: LlamaModel | null = null;
    let context: LlamaContext | null = null;
    let embedding: LlamaEmbeddingContext | null = null;
    try {
      model = await llama.loadModel({ modelPath: path });
      const contextSize = slot.config.contextSize ?? Math.min(model.trainContextSize, DEFAULT_CONTEXT_SIZE);
      context = await model.createContext({ contextSize, sequences: 1, threads: this.threads });
      let embeddingBytes = 0;
      if (slot.config.embeddings) {
        embedding = await model.createEmbeddingContext({ contextSize, threads: this.threads });
        const est = await model.fileInsights.estimateContextResourceRequirementsV2({
          contextSize,
          modelGpuLayers: model.gpuLayers,
          isEmbeddingContext: true,
        });
        embeddingBytes = est.cpuRam + est.gpuVram;
      }
      const sequence = context.getSequence();
      const handle: LlamaHandle = {
        model,
        context,
        sequence,
        completion: new lib.LlamaCompletion({ contextSequence: sequence }),
        embedding,
        embeddingBytes,
        chatWrapper: lib.resolveChatWrapper(model),
        contextSize: context.contextSize,
        architecture: check.architecture,
        loadedAtEpochMs: Date.now(),
        lifetime: new AbortController(),
        inFlight: null,
      };
      const mem = handleMemory(handle);
      this.logger.log(
        `loaded '${id}' in ${Date.now() - started} ms (${mib(mem.ram + mem.vram)} MiB, context ${handle.contextSize}, ` +
          `${this.threads} thread(s), chat format ${handle.chatWrapper.wrapperName})`,
      );
      return handle;
    } catch (err) {
      await disposeQuietly(embedding);
      await disposeQuietly(context);
      await disposeQuietly(model);
      throw new ModelLoadFailedError(id, errorText(err));
    }
  }

  private async release(h: LlamaHandle, modelId: string): Promise<void> {
    h.lifetime.abort(new Error(`model '${modelId}' was unloaded`));
    if (h.inFlight) await h.inFlight;
    h.completion.dispose();
    for (const [what, target] of [
      ['embedding context', h.embedding],
      ['context', h.context],
      ['model', h.model],
    ] as const) {
      try {
        await target?.dispose();
      } catch (err) {
        this.logger.warn(`disposing the ${what} of '${modelId}' failed: ${errorText(err)}`);
      }
    }
    this.logger.log(`unloaded '${modelId}'`);
  }

  private estimate(slot: ModelSlot): Promise<void> {
    const llama = this.runtime.peek();
    if (slot.estimateBytes !== null || !slot.path || !llama) return Promise.resolve();
    const path = slot.path;
    slot.estimating ??= (async () => {
      try {
        const lib = await this.runtime.module();
        const info = await lib.readGgufFileInfo(path);
        // The V2 estimates hand the header to native code, which aborts on the same files a load would.
        const problems = checkGgufMetadata(info).problems;
        if (problems.length > 0) throw new Error(problems.join('; '));
        const insights = await lib.GgufInsights.from(info, llama);
        const contextSize = slot.config.contextSize ?? Math.min(insights.trainContextSize ?? 0, DEFAULT_CONTEXT_SIZE);
        const parts = [
          await insights.estimateModelResourceRequirementsV2({ gpuLayers: 0 }),
          await insights.estimateContextResourceRequirementsV2({ contextSize, modelGpuLayers: 0 }),
        ];
        if (slot.config.embeddings) {
          parts.push(
            await insights.estimateContextResourceRequirementsV2({
              contextSize,
              modelGpuLayers: 0,
              isEmbeddingContext: true,
            }),
          );
        }
        slot.estimateBytes = parts.reduce((sum, p) => sum + p.cpuRam + p.gpuVram, 0);
      } catch (err) {
        // The file size stays the estimate; the load itself reports what is wrong with the file.
        this.logger.debug(`no size estimate for '${slot.config.id}': ${errorText(err)}`);
      } finally {
        slot.estimating = null;
      }
    })();
    return slot.estimating;
  }

  // ---- inference ----

  /**
   * Runs one request against the model's only sequence, in turn. The model is loaded implicitly
   * if the caller did not load it. Every failure becomes a request-scoped AppError.
   */
  private async run<T>(
    slot: ModelSlot,
    signal: AbortSignal,
    task: (h: LlamaHandle, signal: AbortSignal) => Promise<T>,
  ): Promise<T> {
    const id = slot.config.id;
    try {
      await this.acquire(slot, signal);
      return await slot.queue.run(signal, async () => {
        // Re-acquired inside the turn: the model may have been unloaded while this request waited.
        const h = await this.acquire(slot, signal);
        const combined = AbortSignal.any([signal, h.lifetime.signal]);
        const running = task(h, combined);
        h.inFlight = running.catch(() => undefined);
        try {
          return await running;
        } finally {
          h.inFlight = null;
        }
      });
    } catch (err) {
      throw this.requestError(id, err, signal);
    }
  }

  private requestError(id: string, err: unknown, signal: AbortSignal): AppError {
    if (err instanceof AppError) return err;
    if (err instanceof QueueFullError) {
      return new AppError(
        503,
        'model_overloaded',
        `Model '${id}' has ${err.capacity} requests waiting; try again shortly`,
        { model: id, queued: err.capacity },
        'unavailable_error',
        null,
        { 'retry-after': '1' },
      );
    }
    if (signal.aborted) return new InferenceFailedError(id, 'the request was aborted');
    return new InferenceFailedError(id, errorText(err));
  }

  private chatPrompt(h: LlamaHandle, messages: ChatMessage[]): PreparedPrompt {
    if (!Array.isArray(messages) || messages.length === 0) {
      throw invalidRequest('messages must be a non-empty array', 'messages');
    }
    const history: ChatHistoryItem[] = messages.map(toHistoryItem);
    history.push({ type: 'model', response: [] });
    const state = h.chatWrapper.generateContextState({ chatHistory: history });
    const tokens = state.contextText.tokenize(h.model.tokenizer);
    return withBos(h, tokens, state.stopGenerationTriggers);
  }

  private textPrompt(h: LlamaHandle, prompt: string): PreparedPrompt {
    const bos = h.model.tokens.shouldPrependBosToken;
    return withBos(h, h.model.tokenize(prompt, false, bos ? 'trimLeadingSpace' : undefined), []);
  }

  private async generate(
    h: LlamaHandle,
    modelId: string,
    prompt: PreparedPrompt,
    req: SamplingParams,
    signal: AbortSignal,
    onText?: (text: string) => void,
  ): Promise<GenerationResult> {
    const options = generationOptions(modelId, req, prompt.promptTokens, h.contextSize);
    const meterBefore = h.sequence.tokenMeter.getState();
    const res = await h.completion.generateCompletionWithMeta(prompt.tokens, {
      ...options,
      customStopTriggers: [...prompt.stopTriggers, ...stopStrings(req.stop)],
      signal,
      // An abort returns what was generated so far; the caller decides whether that is an error.
      stopOnAbortSignal: true,
      ...(onText ? { onTextChunk: onText } : {}),
    });
    if (h.lifetime.signal.aborted) throw new InferenceFailedError(modelId, 'the model was unloaded during the request');
    if (res.metadata.stopReason === 'abort' && !onText) {
      throw new InferenceFailedError(modelId, 'the request was aborted');
    }
    const completionTokens = h.sequence.tokenMeter.diff(meterBefore).usedOutputTokens;
    return {
      text: res.response,
      finishReason: res.metadata.stopReason === 'maxTokens' ? 'length' : 'stop',
      usage: {
        prompt_tokens: prompt.promptTokens,
        completion_tokens: completionTokens,
        total_tokens: prompt.promptTokens + completionTokens,
      },
    };
  }

  /**
   * Streams one generation. Nothing is yielded until the request has its turn and its prompt is
   * accepted, so load, validation and queue errors surface on the first `next()`, before a caller
   * commits to a streaming response. Ends quietly when the caller's signal aborts (the client left)
   * or the consumer stops iterating; both stop the generation before this returns.
   */
  private async *stream(
    slot: ModelSlot,
    modelId: string,
    signal: AbortSignal,
    prepare: (h: LlamaHandle) => PreparedPrompt,
    req: SamplingParams,
  ): AsyncGenerator<GenerationEvent> {
    const local = new AbortController();
    const combined = AbortSignal.any([signal, local.signal]);
    const channel = new Channel<GenerationEvent>();
    const done = this.run(slot, combined, async (h, s) => {
      const prompt = prepare(h);
      generationOptions(modelId, req, prompt.promptTokens, h.contextSize);
      channel.push({ kind: 'start' });
      const result = await this.generate(h, modelId, prompt, req, s, (text) => {
        if (text) channel.push({ kind: 'text', text });
      });
      if (!s.aborted) channel.push({ kind: 'end', result });
    }).then(
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
}

/** A push-to-pull bridge from generation callbacks to an async iterator. */
class Channel<T> implements AsyncIterable<T> {
  private readonly items: T[] = [];
  private closed = false;
  private error: { err: unknown } | null = null;
  private wake: (() => void) | null = null;

  push(item: T): void {
    this.items.push(item);
    this.notify();
  }

  close(): void {
    this.closed = true;
    this.notify();
  }

  fail(err: unknown): void {
    this.error = { err };
    this.notify();
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    for (;;) {
      const item = this.items.shift();
      if (item !== undefined) {
        yield item;
        continue;
      }
      if (this.error) throw this.error.err;
      if (this.closed) return;
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }
}

function withBos(h: LlamaHandle, tokens: Token[], stopTriggers: (string | LlamaText)[]): PreparedPrompt {
  const bos = h.model.tokens.bos;
  const prepends = h.model.tokens.shouldPrependBosToken && bos !== null;
  // LlamaCompletion prepends BOS itself; a chat template that already starts with it would get two.
  const body = prepends && tokens[0] === bos ? tokens.slice(1) : tokens;
  return { tokens: body, promptTokens: body.length + (prepends ? 1 : 0), stopTriggers };
}

function toHistoryItem(message: ChatMessage, index: number): ChatHistoryItem {
  if (message === null || typeof message !== 'object' || typeof message.content !== 'string') {
    throw invalidRequest(`messages[${index}].content must be a string`, `messages[${index}].content`);
  }
  switch (message.role) {
    case 'system':
    case 'developer':
      return { type: 'system', text: message.content };
    case 'user':
    case 'tool':
      return { type: 'user', text: message.content };
    case 'assistant':
      return { type: 'model', response: [message.content] };
    default:
      throw invalidRequest(`messages[${index}].role is not supported`, `messages[${index}].role`);
  }
}

function promptList(prompt: string | string[]): string[] {
  const list = Array.isArray(prompt) ? prompt : [prompt];
  if (list.length === 0 || list.some((p) => typeof p !== 'string')) {
    throw invalidRequest('prompt must be a string or a non-empty array of strings', 'prompt');
  }
  return list;
}

function purposeOf(config: ModelConfig): string {
  return config.purpose ?? (config.embeddings ? 'embedding' : 'chat');
}

function handleMemory(h: LlamaHandle): { ram: number; vram: number } {
  const model = h.model.memoryUsage;
  const context = h.context.memoryUsage;
  return { ram: model.ram + context.ram + h.embeddingBytes, vram: model.vram + context.vram };
}

function fileSize(path: string | null): number | null {
  if (!path) return null;
  try {
    return statSync(path).size;
  } catch {
    return null;
  }
}

async function disposeQuietly(target: { dispose(): Promise<void> } | null): Promise<void> {
  try {
    await target?.dispose();
  } catch {
    // Cleanup after a failed load: the load error is what the caller needs to see.
  }
}

function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(abortError(signal));
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(abortError(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (err: Error) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}

function addUsage(total: Usage, part: Usage): void {
  total.prompt_tokens += part.prompt_tokens;
  total.completion_tokens += part.completion_tokens;
  total.total_tokens += part.total_tokens;
}

function float32Base64(vector: readonly number[]): string {
  const f32 = Float32Array.from(vector);
  return Buffer.from(f32.buffer, f32.byteOffset, f32.byteLength).toString('base64');
}

function completionId(prefix: string): string {
  return `${prefix}-${randomBytes(12).toString('hex')}`;
}

function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

function mib(bytes: number): string {
  return (bytes / 1048576).toFixed(1);
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
