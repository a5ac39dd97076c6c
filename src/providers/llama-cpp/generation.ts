/**
 * One generation on one context sequence: prompt preparation (chat template, BOS), the length
 * bound checked before any tokenising, the call into LlamaCompletion, and the push-to-pull bridge
 * that turns its text callbacks into a stream.
 */
import type { ChatHistoryItem, LlamaText, Token } from 'node-llama-cpp';
import { ContextLengthExceededError, InferenceFailedError } from '../../common/errors.js';
import type { ChatMessage, FinishReason, SamplingParams, Usage } from '../openai-types.js';
import { heldBackText } from './generated-tokens.js';
import type { LlamaHandle } from './model-loader.js';
import { OFF_THREAD_CHARS, type OffThreadTokenizer } from './off-thread-tokenizer.js';
import { type GenerationExtras, generationOptions, invalidRequest, stopStrings } from './sampling.js';
import type { PooledSequence } from './sequence-pool.js';

/**
 * Characters per token assumed by the pre-tokenising length bound. Real text averages 3-5
 * characters per token and code with long runs of spaces rarely passes 8, so 8 never refuses a
 * prompt that fits, while it keeps llama.cpp's tokenizer (quadratic on long runs without spaces:
 * 1 MB of 'a' took 160 s) away from inputs that cannot fit anyway.
 */
export const MAX_CHARS_PER_TOKEN = 8;

export interface PreparedPrompt {
  /** Tokens handed to LlamaCompletion, without the BOS it prepends itself. */
  tokens: Token[];
  /** What the sequence holds once the prompt is evaluated (BOS included): compared for prefix reuse. */
  evaluated: Token[];
  /** What the model really evaluates, BOS included. */
  promptTokens: number;
  stopTriggers: (string | LlamaText)[];
}

/** OpenAI's usage, with the prompt tokens served from a sequence's cache (`cached_tokens`, as OpenAI reports it). */
export type GenerationUsage = Usage & { prompt_tokens_details: { cached_tokens: number } };

export interface GenerationResult {
  text: string;
  finishReason: FinishReason;
  usage: GenerationUsage;
}

export type GenerationEvent =
  { kind: 'start' } | { kind: 'text'; text: string } | { kind: 'end'; result: GenerationResult };

/** 400 context_length_exceeded for text that cannot fit the context whatever its tokens, before tokenising it. */
export function checkTextLength(modelId: string, chars: number, contextSize: number, param: string): void {
  const limit = contextSize * MAX_CHARS_PER_TOKEN;
  if (chars <= limit) return;
  throw new ContextLengthExceededError(
    `The input of ${chars} characters cannot fit the ${contextSize}-token context of '${modelId}' (at most ${limit} characters are accepted)`,
    { model: modelId, characters: chars, max_characters: limit, context_size: contextSize },
    param,
  );
}

export async function chatPrompt(
  h: LlamaHandle,
  modelId: string,
  messages: ChatMessage[],
  tokenizer: OffThreadTokenizer,
): Promise<PreparedPrompt> {
  if (!Array.isArray(messages) || messages.length === 0) {
    throw invalidRequest('messages must be a non-empty array', 'messages');
  }
  const history: ChatHistoryItem[] = messages.map(toHistoryItem);
  const chars = messages.reduce((sum, m) => sum + (typeof m.content === 'string' ? m.content.length : 0), 0);
  checkTextLength(modelId, chars, h.contextSize, 'messages');
  history.push({ type: 'model', response: [] });
  const state = h.chatWrapper.generateContextState({ chatHistory: history });
  const tokens =
    chars > OFF_THREAD_CHARS
      ? await tokenizer.tokenize(h.modelPath, { kind: 'llama-text', json: state.contextText.toJSON() })
      : state.contextText.tokenize(h.model.tokenizer);
  return withBos(h, tokens, state.stopGenerationTriggers);
}

export async function textPrompt(
  h: LlamaHandle,
  modelId: string,
  prompt: string,
  tokenizer: OffThreadTokenizer,
): Promise<PreparedPrompt> {
  checkTextLength(modelId, prompt.length, h.contextSize, 'prompt');
  const trimLeadingSpace = h.model.tokens.shouldPrependBosToken;
  const tokens =
    prompt.length > OFF_THREAD_CHARS
      ? await tokenizer.tokenize(h.modelPath, { kind: 'text', text: prompt, trimLeadingSpace })
      : h.model.tokenize(prompt, false, trimLeadingSpace ? 'trimLeadingSpace' : undefined);
  return withBos(h, tokens, []);
}

/** Tokens of one embeddings input, as `model.tokenize(text)` gives them, long ones off the event loop. */
export function inputTokens(h: LlamaHandle, text: string, tokenizer: OffThreadTokenizer): Promise<Token[]> | Token[] {
  return text.length > OFF_THREAD_CHARS
    ? tokenizer.tokenize(h.modelPath, { kind: 'text', text, trimLeadingSpace: false })
    : h.model.tokenize(text);
}

/** Runs one completion on `seq`. An abort returns the text so far when streaming, and fails otherwise. */
export async function generate(
  h: LlamaHandle,
  seq: PooledSequence,
  modelId: string,
  prompt: PreparedPrompt,
  req: SamplingParams,
  extras: GenerationExtras,
  signal: AbortSignal,
  onText?: (text: string) => void,
): Promise<GenerationResult> {
  const options = generationOptions(modelId, req, prompt.promptTokens, h.contextSize, extras);
  const meterBefore = seq.sequence.tokenMeter.getState();
  seq.generated.length = 0;
  await h.pool.align(seq, prompt.evaluated);
  const res = await seq.completion.generateCompletionWithMeta(prompt.tokens, {
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
  let text = res.response;
  if (res.metadata.stopReason === 'maxTokens') {
    const tail = heldBackText(h.model, seq.generated, text);
    if (tail) {
      onText?.(tail);
      text += tail;
    }
  }
  const used = seq.sequence.tokenMeter.diff(meterBefore);
  const completionTokens = used.usedOutputTokens;
  // The meter counts a decoded token that yields logits as output: the prompt's last token and every
  // generated token fed back. So the input count is exactly the prompt tokens evaluated, less one.
  const promptEvaluated = used.usedInputTokens + 1;
  return {
    text,
    finishReason: res.metadata.stopReason === 'maxTokens' ? 'length' : 'stop',
    usage: {
      prompt_tokens: prompt.promptTokens,
      completion_tokens: completionTokens,
      total_tokens: prompt.promptTokens + completionTokens,
      prompt_tokens_details: { cached_tokens: Math.max(0, prompt.promptTokens - promptEvaluated) },
    },
  };
}

/** A push-to-pull bridge from generation callbacks to an async iterator. */
export class Channel<T> implements AsyncIterable<T> {
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
  return {
    tokens: body,
    evaluated: prepends ? [bos, ...body] : body,
    promptTokens: body.length + (prepends ? 1 : 0),
    stopTriggers,
  };
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
