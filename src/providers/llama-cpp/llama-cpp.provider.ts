import { Logger } from '@nestjs/common';
import { type Clock, SystemClock } from '../../common/clock.js';
import { statSync } from 'node:fs';
import { ContextLengthExceededError, EmbeddingsNotSupportedError, InferenceFailedError } from '../../common/errors.js';
import type { AppConfig, BackendConfig } from '../../config/app-config.js';
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
  CompletionChunk,
  CompletionRequest,
  CompletionResponse,
  EmbeddingsRequest,
  EmbeddingsResponse,
  Usage,
} from '../openai-types.js';
import { chatPrompt, checkTextLength, inputTokens, type PreparedPrompt, textPrompt } from './generation.js';
import { OffThreadTokenizer } from './off-thread-tokenizer.js';
import type { LlamaRuntime } from './llama-runtime.js';
import { errorText, handleMemory, type LlamaHandle } from './model-loader.js';
import { ModelSlots, type Prepared } from './model-slots.js';
import {
  addUsage,
  chatChunker,
  chatResponse,
  completionId,
  float32Base64,
  nowSeconds,
  promptList,
} from './openai-shapes.js';
import { refuseUnsupported, requestExtras } from './request-features.js';
import { invalidRequest } from './sampling.js';

export { directGenerate, type DirectGenerateOptions, type DirectGenerateResult } from './direct-generate.js';

export { MAX_QUEUED_REQUESTS } from './model-slots.js';

/** Requests of one model: generating (each on its own sequence) and waiting for a sequence. */
export interface QueueStats {
  active: number;
  queued: number;
}

/**
 * In-process LLM inference on node-llama-cpp. Each loaded model has one context holding
 * `parallel` sequences that node-llama-cpp decodes together in shared batches; requests beyond
 * that wait in arrival order. A request goes to the free sequence already holding the longest
 * prefix of its prompt, so a continuing conversation re-evaluates only its new messages.
 */
export class LlamaCppProvider implements ModelProvider {
  readonly kind = 'llama-cpp' as const;
  readonly backendName: string;
  readonly url = null;
  readonly capabilities = IN_PROCESS_CAPABILITIES;

  private readonly logger: Logger;
  private readonly slots: ModelSlots;
  private readonly tokenizer = new OffThreadTokenizer();

  constructor(
    backend: BackendConfig,
    private readonly runtime: LlamaRuntime,
    appConfig: AppConfig,
    clock: Clock = new SystemClock(),
  ) {
    this.backendName = backend.name;
    this.logger = new Logger(`LlamaCppProvider:${backend.name}`);
    const threads = backend.threads ?? runtime.threads;
    this.slots = new ModelSlots(backend.models, appConfig.baseDir, runtime, threads, this.logger, clock);
  }

  async init(): Promise<void> {
    try {
      await this.runtime.get();
    } catch (err) {
      throw new Error(`node-llama-cpp binding failed to load: ${errorText(err)}`);
    }
    // Header reads only: cheap, and they give descriptors() real size estimates before any load.
    await Promise.all(this.slots.all().map((slot) => this.slots.estimate(slot)));
  }

  descriptors(): ModelDescriptor[] {
    return this.slots.all().map((slot) => {
      if (slot.estimateBytes === null) void this.slots.estimate(slot);
      return {
        id: slot.config.id,
        upstreamName: slot.config.upstreamName ?? slot.config.id,
        purpose: slot.config.purpose ?? (slot.config.embeddings ? 'embedding' : 'chat'),
        expectedSizeBytes: slot.estimateBytes ?? fileSize(slot.path),
        details: {
          format: 'gguf',
          path: slot.path,
          embeddings: slot.config.embeddings,
          parallel: slot.config.parallel,
        },
      };
    });
  }

  /** Requests generating and waiting on one model, read synchronously for health and loaded views. */
  queueStats(modelId: string): QueueStats {
    const queue = this.slots.slot(modelId).queue;
    return { active: queue.active, queued: queue.queued };
  }

  /** The prompt and the model-built generation settings (grammar, token biases) of one request. */
  private prepare(
    modelId: string,
    req: ChatCompletionRequest | CompletionRequest,
    prompt: (h: LlamaHandle) => Promise<PreparedPrompt>,
  ): (h: LlamaHandle) => Promise<Prepared> {
    return async (h) => {
      const prepared = await prompt(h);
      return { prompt: prepared, extras: await requestExtras(await this.runtime.module(), h, modelId, req) };
    };
  }

  async observe(_signal: AbortSignal): Promise<Observation> {
    const models: ObservedModel[] = this.slots.all().map((slot) => {
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
          // Counters that change per request (in flight, queued, loading) are read live by the views through
          // queueStats and the store; an observation copy of them would go stale and contradict those.
          path: slot.path,
          parallel: slot.config.parallel,
          ...(h
            ? {
                architecture: h.architecture,
                context_size: h.contextSize,
                train_context_size: h.model.trainContextSize,
                threads: this.slots.threads,
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
    await this.slots.acquire(this.slots.slot(modelId), signal);
  }

  /** Stops every sequence's generation, waits for all of them to return, then frees the model. */
  unload(modelId: string): Promise<UnloadResult> {
    return this.slots.unload(modelId);
  }

  async dispose(): Promise<void> {
    await Promise.all(
      this.slots
        .all()
        .map(({ config: { id } }) =>
          this.unload(id).catch((err: unknown) => this.logger.warn(`unload of '${id}' at shutdown: ${errorText(err)}`)),
        ),
    );
    await this.tokenizer.dispose();
  }

  async chatCompletion(
    modelId: string,
    req: ChatCompletionRequest,
    signal: AbortSignal,
  ): Promise<ChatCompletionResponse> {
    const slot = this.slots.slot(modelId);
    refuseUnsupported(modelId, req);
    const result = await this.slots.runPrompt(
      slot,
      signal,
      this.prepare(modelId, req, (h) => chatPrompt(h, modelId, req.messages, this.tokenizer)),
      req,
    );
    return chatResponse(req.model || modelId, result);
  }

  async *chatCompletionStream(
    modelId: string,
    req: ChatCompletionRequest,
    signal: AbortSignal,
  ): AsyncGenerator<ChatCompletionChunk> {
    const slot = this.slots.slot(modelId);
    const chunk = chatChunker(req.model || modelId);
    refuseUnsupported(modelId, req);
    const prepare = this.prepare(modelId, req, (h) => chatPrompt(h, modelId, req.messages, this.tokenizer));
    for await (const event of this.slots.stream(slot, signal, prepare, req)) {
      if (event.kind === 'start') yield chunk({ role: 'assistant', content: '' }, null);
      else if (event.kind === 'text') yield chunk({ content: event.text }, null);
      else yield chunk({}, event.result.finishReason, event.result.usage);
    }
  }

  async completion(modelId: string, req: CompletionRequest, signal: AbortSignal): Promise<CompletionResponse> {
    const slot = this.slots.slot(modelId);
    const prompts = promptList(req.prompt);
    refuseUnsupported(modelId, req);
    const choices: CompletionResponse['choices'] = [];
    const usage: Usage = { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 };
    for (const [index, prompt] of prompts.entries()) {
      const prepare = this.prepare(modelId, req, (h) => textPrompt(h, modelId, prompt, this.tokenizer));
      const result = await this.slots.runPrompt(slot, signal, prepare, req);
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
    const slot = this.slots.slot(modelId);
    const id = completionId('cmpl');
    const created = nowSeconds();
    const model = req.model || modelId;
    const prompts = promptList(req.prompt);
    refuseUnsupported(modelId, req);
    for (const [index, prompt] of prompts.entries()) {
      const prepare = this.prepare(modelId, req, (h) => textPrompt(h, modelId, prompt, this.tokenizer));
      for await (const event of this.slots.stream(slot, signal, prepare, req)) {
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
    const slot = this.slots.slot(modelId);
    if (!slot.config.embeddings) {
      throw new EmbeddingsNotSupportedError(modelId);
    }
    const inputs = Array.isArray(req.input) ? req.input : [req.input];
    if (inputs.length === 0 || inputs.some((i) => typeof i !== 'string')) {
      throw invalidRequest('input must be a string or a non-empty array of strings', 'input');
    }
    return this.slots.runWithoutSequence(slot, signal, async (h, s) => {
      const embedding = h.embedding;
      if (!embedding) throw new InferenceFailedError(modelId, 'the model has no embedding context');
      for (const text of inputs) checkTextLength(modelId, text.length, h.contextSize, 'input');
      const data: EmbeddingsResponse['data'] = [];
      let promptTokens = 0;
      for (const [index, text] of inputs.entries()) {
        s.throwIfAborted();
        const tokens = await inputTokens(h, text, this.tokenizer);
        const counted = tokens.length + (h.model.tokens.shouldPrependBosToken ? 1 : 0);
        if (counted > h.contextSize) {
          throw new ContextLengthExceededError(
            `Input ${index} has ${counted} tokens; the embedding context of '${modelId}' holds ${h.contextSize}`,
            { model: modelId, index, prompt_tokens: counted, context_size: h.contextSize },
            'input',
          );
        }
        promptTokens += counted;
        // The tokens counted above, so a long input is not tokenised a second time on the event loop.
        const { vector } = await embedding.getEmbeddingFor(tokens);
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
}

function fileSize(path: string | null): number | null {
  if (!path) return null;
  try {
    return statSync(path).size;
  } catch {
    return null;
  }
}
