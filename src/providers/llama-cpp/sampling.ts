/**
 * OpenAI sampling fields → node-llama-cpp generation options, shared by the provider and
 * `directGenerate` so a benchmark compares the HTTP path with exactly the same settings.
 */
import type { LlamaCompletionGenerationOptions, LlamaGrammar, TokenBias } from 'node-llama-cpp';
import { type AppError, ContextLengthExceededError, InvalidRequestError } from '../../common/errors.js';
import type { SamplingParams } from '../openai-types.js';

/** OpenAI leaves max_tokens open-ended; a bounded default keeps one request from holding a model for minutes. */
export const DEFAULT_MAX_TOKENS = 256;
/**
 * Ollama and llama-server both default to 0.8, and a local-model user expects their defaults
 * (what a user of Ollama, llama-swap or Triton would expect); OpenAI's 1.0 is
 * noticeably noisier on small models. Send temperature 0 for greedy, deterministic output.
 */
export const DEFAULT_TEMPERATURE = 0.8;
export const DEFAULT_CONTEXT_SIZE = 2048;

/** Generation settings that need the loaded model to build (a grammar from a JSON schema, token biases). */
export interface GenerationExtras {
  grammar?: LlamaGrammar;
  tokenBias?: TokenBias;
}

/** Tokens looked back at by the repetition penalties (llama-server's `repeat_last_n` default). */
export const PENALTY_LAST_TOKENS = 64;

export function invalidRequest(message: string, param: string | null): AppError {
  return new InvalidRequestError(message, param);
}

export function stopStrings(stop: SamplingParams['stop']): string[] {
  if (stop === undefined || stop === null) return [];
  const list = Array.isArray(stop) ? stop : [stop];
  return list.filter((s): s is string => typeof s === 'string' && s.length > 0);
}

/**
 * Generation options for a prompt of `promptTokens` tokens (BOS included) in a context of
 * `contextSize`. max_tokens is capped to what fits, so the context never shifts mid-answer and
 * a capped answer ends with finish_reason 'length', like llama-server.
 */
export function generationOptions(
  model: string,
  req: SamplingParams,
  promptTokens: number,
  contextSize: number,
  extras: GenerationExtras = {},
): LlamaCompletionGenerationOptions & { maxTokens: number } {
  const room = contextSize - promptTokens;
  if (room < 1) {
    throw new ContextLengthExceededError(
      `The prompt of ${promptTokens} tokens leaves no room to generate in the ${contextSize}-token context of '${model}'`,
      { model, prompt_tokens: promptTokens, context_size: contextSize },
      'messages',
    );
  }
  // max_completion_tokens is OpenAI's newer name for the same limit; it wins when both are sent.
  const requested = req.max_completion_tokens ?? req.max_tokens ?? DEFAULT_MAX_TOKENS;
  if (!Number.isInteger(requested) || requested < 1) {
    const field = req.max_completion_tokens !== undefined ? 'max_completion_tokens' : 'max_tokens';
    throw invalidRequest(`${field} must be a positive integer`, field);
  }
  const temperature = req.temperature ?? DEFAULT_TEMPERATURE;
  if (!(temperature >= 0)) throw invalidRequest('temperature must be >= 0', 'temperature');
  if (req.top_p !== undefined && !(req.top_p > 0 && req.top_p <= 1)) {
    throw invalidRequest('top_p must be in (0, 1]', 'top_p');
  }
  return {
    maxTokens: Math.min(requested, room),
    temperature,
    ...(req.top_p !== undefined ? { topP: req.top_p } : {}),
    ...(req.seed !== undefined ? { seed: req.seed } : {}),
    ...(req.top_k !== undefined ? { topK: req.top_k } : {}),
    ...(req.min_p !== undefined ? { minP: req.min_p } : {}),
    repeatPenalty: repeatPenalty(req),
    // The prompt is checked to fit above; shifting would silently drop the start of the conversation.
    disableContextShift: true,
    contextShiftSize: 1,
    ...(extras.grammar ? { grammar: extras.grammar } : {}),
    ...(extras.tokenBias ? { tokenBias: extras.tokenBias } : {}),
  };
}

/**
 * OpenAI semantics: no penalty unless asked for (node-llama-cpp enables one by default).
 * repeat_penalty is llama.cpp's multiplicative penalty (1 = off); presence and frequency are
 * OpenAI's additive ones; all look at the last PENALTY_LAST_TOKENS tokens, as llama-server does.
 */
function repeatPenalty(req: SamplingParams): LlamaCompletionGenerationOptions['repeatPenalty'] {
  const penalty = req.repeat_penalty;
  const presence = req.presence_penalty;
  const frequency = req.frequency_penalty;
  if (penalty === undefined && !presence && !frequency) return false;
  if (penalty !== undefined && !(penalty >= 0)) throw invalidRequest('repeat_penalty must be >= 0', 'repeat_penalty');
  return {
    lastTokens: PENALTY_LAST_TOKENS,
    penalty: penalty ?? 1,
    ...(presence ? { presencePenalty: presence } : {}),
    ...(frequency ? { frequencyPenalty: frequency } : {}),
    penalizeNewLine: true,
  };
}
