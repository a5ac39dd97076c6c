/**
 * Inference for servers that speak the OpenAI wire format (llama-server, Ollama's /v1, vLLM):
 * every field the client sent passes through (validated where we understand it), with the model renamed
 * to its upstream name; streams are relayed chunk by chunk. Models a server must load first are loaded by
 * ModelLifecycleService before the request (capabilities.loadBeforeUse), not retried here. Image-only
 * kinds do not extend this, so they expose no chat methods.
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
    return this.renamed(
      modelId,
      await this.http.json<ChatCompletionResponse>('POST', '/v1/chat/completions', body, signal),
    );
  }

  chatCompletionStream(
    modelId: string,
    req: ChatCompletionRequest,
    signal: AbortSignal,
  ): AsyncGenerator<ChatCompletionChunk> {
    const body = this.wire(modelId, req, true);
    return this.http.sse('/v1/chat/completions', body, signal, modelId) as AsyncGenerator<ChatCompletionChunk>;
  }

  async completion(modelId: string, req: CompletionRequest, signal: AbortSignal): Promise<CompletionResponse> {
    const body = this.wire(modelId, req, false);
    return this.renamed(modelId, await this.http.json<CompletionResponse>('POST', '/v1/completions', body, signal));
  }

  completionStream(modelId: string, req: CompletionRequest, signal: AbortSignal): AsyncGenerator<CompletionChunk> {
    const body = this.wire(modelId, req, true);
    return this.http.sse('/v1/completions', body, signal, modelId) as AsyncGenerator<CompletionChunk>;
  }

  async embeddings(modelId: string, req: EmbeddingsRequest, signal: AbortSignal): Promise<EmbeddingsResponse> {
    const body = { ...req, model: this.upstreamOf(modelId) };
    return this.renamed(modelId, await this.http.json<EmbeddingsResponse>('POST', '/v1/embeddings', body, signal));
  }

  /**
   * The body as the client sent it: the fields we validated, plus the ones we do not model
   * (`passthrough`, forwarded verbatim), with the model renamed to the server's name.
   */
  private wire(modelId: string, req: ChatCompletionRequest | CompletionRequest, stream: boolean): WireRequest {
    const { passthrough, client_messages: clientMessages, ...validated } = req as ChatCompletionRequest;
    const messages = clientMessages ? { messages: clientMessages } : {};
    return { ...passthrough, ...validated, ...messages, model: this.upstreamOf(modelId), stream } as WireRequest;
  }
}
