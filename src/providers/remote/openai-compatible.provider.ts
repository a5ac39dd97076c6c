/**
 * Inference for servers that speak the OpenAI wire format (llama-server, Ollama's /v1, vLLM):
 * every field the client sent passes through (validated where we understand it), with the model renamed
 * to its upstream name; streams are relayed chunk by chunk. Image-only kinds do not extend this, so they expose no chat methods.
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
} from '../openai-types.js';
import { RemoteProvider } from './remote-provider.js';

type WireRequest = (ChatCompletionRequest | CompletionRequest) & Record<string, unknown>;

export abstract class OpenAiCompatibleProvider extends RemoteProvider {
  async chatCompletion(
    modelId: string,
    req: ChatCompletionRequest,
    signal: AbortSignal,
  ): Promise<ChatCompletionResponse> {
    const body = this.wire(modelId, req, false);
    const call = () => this.http.json<ChatCompletionResponse>('POST', '/v1/chat/completions', body, signal);
    return this.renamed(modelId, await this.loadingOnDemand(modelId, signal, call));
  }

  async *chatCompletionStream(
    modelId: string,
    req: ChatCompletionRequest,
    signal: AbortSignal,
  ): AsyncGenerator<ChatCompletionChunk> {
    const body = this.wire(modelId, req, true);
    const open = () => this.http.sse('/v1/chat/completions', body, signal);
    for await (const chunk of this.streamLoadingOnDemand(modelId, signal, open)) {
      yield this.renamed(modelId, chunk as ChatCompletionChunk);
    }
  }

  async completion(modelId: string, req: CompletionRequest, signal: AbortSignal): Promise<CompletionResponse> {
    const body = this.wire(modelId, req, false);
    const call = () => this.http.json<CompletionResponse>('POST', '/v1/completions', body, signal);
    return this.renamed(modelId, await this.loadingOnDemand(modelId, signal, call));
  }

  async *completionStream(
    modelId: string,
    req: CompletionRequest,
    signal: AbortSignal,
  ): AsyncGenerator<CompletionChunk> {
    const body = this.wire(modelId, req, true);
    const open = () => this.http.sse('/v1/completions', body, signal);
    for await (const chunk of this.streamLoadingOnDemand(modelId, signal, open)) {
      yield this.renamed(modelId, chunk as CompletionChunk);
    }
  }

  async embeddings(modelId: string, req: EmbeddingsRequest, signal: AbortSignal): Promise<EmbeddingsResponse> {
    const body = { ...req, model: this.upstreamOf(modelId) };
    const call = () => this.http.json<EmbeddingsResponse>('POST', '/v1/embeddings', body, signal);
    return this.renamed(modelId, await this.loadingOnDemand(modelId, signal, call));
  }

  /**
   * Whether a refusal means "load it first" (llama-server router with --no-models-autoload answers
   * 400 "model is not loaded"). Servers that load on demand by themselves never say so.
   */
  protected needsLoad(_err: unknown): boolean {
    return false;
  }

  /** Runs `call`; if the server says the model must be loaded first, loads it (bounded) and runs it once more. */
  private async loadingOnDemand<T>(modelId: string, signal: AbortSignal, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (err) {
      if (!this.needsLoad(err)) throw err;
      await this.load(modelId, signal);
      return call();
    }
  }

  /** The same for a stream: the refusal comes before its first chunk, so nothing was sent yet. */
  private async *streamLoadingOnDemand(
    modelId: string,
    signal: AbortSignal,
    open: () => AsyncGenerator<unknown>,
  ): AsyncGenerator<unknown> {
    let stream = open();
    let first: IteratorResult<unknown>;
    try {
      first = await stream.next();
    } catch (err) {
      if (!this.needsLoad(err)) throw err;
      await this.load(modelId, signal);
      stream = open();
      first = await stream.next();
    }
    if (first.done) return;
    yield first.value;
    yield* stream;
  }

  /**
   * The body as the client sent it: the fields we validated, plus the ones we do not model
   * (`passthrough`, forwarded verbatim), with the model renamed to the server's name.
   */
  private wire(modelId: string, req: ChatCompletionRequest | CompletionRequest, stream: boolean): WireRequest {
    const { passthrough, ...validated } = req;
    return { ...passthrough, ...validated, model: this.upstreamOf(modelId), stream };
  }
}
