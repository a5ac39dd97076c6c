import { Injectable } from '@nestjs/common';
import { BackendStateService } from '../backend-state/backend-state.service.js';
import { canServe } from '../backend-state/readiness.js';
import { AppError, BackendUnavailableError } from '../common/errors.js';
import { assertValidModelId } from '../common/model-id.js';
import { type Lease, ModelLifecycleService } from '../models/model-lifecycle.service.js';
import type { ModelProvider } from '../providers/model-provider.js';
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
} from '../providers/openai-types.js';
import { ProviderRegistry, type ResolvedModel } from '../providers/provider-registry.service.js';

type Operation =
  'chatCompletion' | 'chatCompletionStream' | 'completion' | 'completionStream' | 'embeddings' | 'generateImages';

/** A stream whose lease is released exactly once, when the stream ends, fails or the client goes away. */
export interface LeasedStream<T> {
  chunks: AsyncIterable<T>;
  lease: Lease;
}

/**
 * The admission door for every inference path (HTTP and bus): model resolution, backend readiness,
 * activity lease with lazy load, then the provider. Failures inside a request stay in that request.
 */
@Injectable()
export class InferenceService {
  constructor(
    private readonly registry: ProviderRegistry,
    private readonly backendState: BackendStateService,
    private readonly lifecycle: ModelLifecycleService,
  ) {}

  /** Resolve and admit without loading: refuses at once when the model's backend cannot serve. */
  admit(
    modelId: unknown,
    operation: Operation,
  ): ResolvedModel & { provider: Required<Pick<ModelProvider, Operation>> } {
    const id = assertValidModelId(modelId);
    const resolved = this.registry.resolve(id);
    const state = this.backendState.get(resolved.backend.name);
    if (!canServe(state.readiness))
      throw new BackendUnavailableError(resolved.backend.name, state.readiness, state.reason);
    if (typeof resolved.provider[operation] !== 'function') {
      throw new AppError(
        400,
        'unsupported_operation',
        `Model '${id}' (${resolved.descriptor.purpose}) does not support ${describe(operation)}`,
        { model: id },
        'invalid_request_error',
        'model',
      );
    }
    return resolved as ResolvedModel & { provider: Required<Pick<ModelProvider, Operation>> };
  }

  chatCompletion(req: ChatCompletionRequest, signal: AbortSignal): Promise<ChatCompletionResponse> {
    const model = this.admit(req.model, 'chatCompletion');
    return this.withLease(model.id, signal, () => model.provider.chatCompletion(model.id, req, signal));
  }

  completion(req: CompletionRequest, signal: AbortSignal): Promise<CompletionResponse> {
    const model = this.admit(req.model, 'completion');
    return this.withLease(model.id, signal, () => model.provider.completion(model.id, req, signal));
  }

  embeddings(req: EmbeddingsRequest, signal: AbortSignal): Promise<EmbeddingsResponse> {
    const model = this.admit(req.model, 'embeddings');
    return this.withLease(model.id, signal, () => model.provider.embeddings(model.id, req, signal));
  }

  generateImages(req: ImageGenerationRequest, signal: AbortSignal): Promise<ImageGenerationResponse> {
    const model = this.admit(req.model, 'generateImages');
    return this.withLease(model.id, signal, () => model.provider.generateImages(model.id, req, signal));
  }

  async chatCompletionStream(
    req: ChatCompletionRequest,
    signal: AbortSignal,
  ): Promise<LeasedStream<ChatCompletionChunk>> {
    const model = this.admit(req.model, 'chatCompletionStream');
    const lease = await this.lifecycle.acquire(model.id, signal);
    return { lease, chunks: releasing(model.provider.chatCompletionStream(model.id, req, signal), lease) };
  }

  async completionStream(req: CompletionRequest, signal: AbortSignal): Promise<LeasedStream<CompletionChunk>> {
    const model = this.admit(req.model, 'completionStream');
    const lease = await this.lifecycle.acquire(model.id, signal);
    return { lease, chunks: releasing(model.provider.completionStream(model.id, req, signal), lease) };
  }

  private async withLease<T>(id: string, signal: AbortSignal, run: () => Promise<T>): Promise<T> {
    const lease = await this.lifecycle.acquire(id, signal);
    try {
      return await run();
    } finally {
      lease.release();
    }
  }
}

async function* releasing<T>(source: AsyncIterable<T>, lease: Lease): AsyncGenerator<T> {
  try {
    yield* source;
  } finally {
    lease.release();
  }
}

function describe(operation: Operation): string {
  switch (operation) {
    case 'chatCompletion':
    case 'chatCompletionStream':
      return 'chat completions';
    case 'completion':
    case 'completionStream':
      return 'text completions';
    case 'embeddings':
      return 'embeddings';
    case 'generateImages':
      return 'image generation';
  }
}
