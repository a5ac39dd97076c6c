/** OpenAI response shapes built from generation results: ids, chunks, usage, embeddings encoding. */
import { randomBytes } from 'node:crypto';
import type { ChatCompletionChunk, ChatCompletionResponse, FinishReason, Usage } from '../openai-types.js';
import type { GenerationResult } from './generation.js';
import { invalidRequest } from './sampling.js';

export function chatResponse(model: string, result: GenerationResult): ChatCompletionResponse {
  return {
    id: completionId('chatcmpl'),
    object: 'chat.completion',
    created: nowSeconds(),
    model,
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

/** Builds the chunks of one chat stream, all sharing its id and creation time. */
export function chatChunker(
  model: string,
): (
  delta: ChatCompletionChunk['choices'][number]['delta'],
  finish: FinishReason,
  usage?: Usage,
) => ChatCompletionChunk {
  const id = completionId('chatcmpl');
  const created = nowSeconds();
  return (delta, finish, usage) => ({
    id,
    object: 'chat.completion.chunk',
    created,
    model,
    choices: [{ index: 0, delta, finish_reason: finish, logprobs: null }],
    ...(usage ? { usage } : {}),
  });
}

export function promptList(prompt: string | string[]): string[] {
  const list = Array.isArray(prompt) ? prompt : [prompt];
  if (list.length === 0 || list.some((p) => typeof p !== 'string')) {
    throw invalidRequest('prompt must be a string or a non-empty array of strings', 'prompt');
  }
  return list;
}

export function addUsage(total: Usage, part: Usage): void {
  total.prompt_tokens += part.prompt_tokens;
  total.completion_tokens += part.completion_tokens;
  total.total_tokens += part.total_tokens;
}

export function float32Base64(vector: readonly number[]): string {
  const f32 = Float32Array.from(vector);
  return Buffer.from(f32.buffer, f32.byteOffset, f32.byteLength).toString('base64');
}

export function completionId(prefix: string): string {
  return `${prefix}-${randomBytes(12).toString('hex')}`;
}

export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}
