/**
 * Inference for servers that speak the OpenAI wire format (llama-server, Ollama's /v1, vLLM):
 * the request passes through with the model renamed to its upstream name; streams are relayed chunk
 * by chunk. Image-only kinds do not extend this, so they expose no chat methods.
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

export abstract class OpenAiCompatibleProvider extends RemoteProvider {
  async chatCompletion(
    modelId: string,
    req: ChatCompletionRequest,
    signal: AbortSignal,
  ): Promise<ChatCompletionResponse> {
    const body = { ...req, model: this.upstreamOf(modelId), stream: false };
    return this.renamed(
      modelId,
      await this.http.json<ChatCompletionResponse>('POST', '/v1/chat/completions', body, signal),
    );
  }

  async *chatCompletionStream(
    modelId: string,
    req: ChatCompletionRequest,
    signal: AbortSignal,
  ): AsyncGenerator<ChatCompletionChunk> {
    const body = { ...req, model: this.upstreamOf(modelId), stream: true };
    for await (const chunk of this.http.sse('/v1/chat/completions', body, signal)) {
      yield this.renamed(modelId, chunk as ChatCompletionChunk);
    }
  }

  async completion(modelId: string, req: CompletionRequest, signal: AbortSignal): Promise<CompletionResponse> {
    const body = { ...req, model: this.upstreamOf(modelId), stream: false };
    return this.renamed(modelId, await this.http.json<CompletionResponse>('POST', '/v1/completions', body, signal));
  }

  async *completionStream(
    modelId: string,
    req: CompletionRequest,
    signal: AbortSignal,
  ): AsyncGenerator<CompletionChunk> {
    const body = { ...req, model: this.upstreamOf(modelId), stream: true };
    for await (const chunk of this.http.sse('/v1/completions', body, signal)) {
      yield this.renamed(modelId, chunk as CompletionChunk);
    }
  }

  async embeddings(modelId: string, req: EmbeddingsRequest, signal: AbortSignal): Promise<EmbeddingsResponse> {
    const body = { ...req, model: this.upstreamOf(modelId) };
    return this.renamed(modelId, await this.http.json<EmbeddingsResponse>('POST', '/v1/embeddings', body, signal));
  }
}
