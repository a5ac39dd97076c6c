/**
 * OpenAI wire shapes (snake_case), shared by the inference routes and every provider.
 * Providers return these exact shapes so remote responses pass through untouched.
 */
export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | 'tool' | 'developer';
  content: string;
}

export interface SamplingParams {
  max_tokens?: number;
  temperature?: number;
  top_p?: number;
  stop?: string | string[];
  seed?: number;
}

export interface ChatCompletionRequest extends SamplingParams {
  model: string;
  messages: ChatMessage[];
  stream?: boolean;
}

export interface CompletionRequest extends SamplingParams {
  model: string;
  prompt: string | string[];
  stream?: boolean;
}

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export type FinishReason = 'stop' | 'length' | null;

export interface ChatCompletionResponse {
  id: string;
  object: 'chat.completion';
  created: number;
  model: string;
  choices: {
    index: number;
    message: { role: 'assistant'; content: string };
    finish_reason: FinishReason;
    logprobs: null;
  }[];
  usage: Usage;
}

export interface ChatCompletionChunk {
  id: string;
  object: 'chat.completion.chunk';
  created: number;
  model: string;
  choices: {
    index: number;
    delta: { role?: 'assistant'; content?: string };
    finish_reason: FinishReason;
    logprobs: null;
  }[];
  usage?: Usage | null;
}

export interface CompletionResponse {
  id: string;
  object: 'text_completion';
  created: number;
  model: string;
  choices: { index: number; text: string; finish_reason: FinishReason; logprobs: null }[];
  usage: Usage;
}

export interface CompletionChunk {
  id: string;
  object: 'text_completion';
  created: number;
  model: string;
  choices: { index: number; text: string; finish_reason: FinishReason; logprobs: null }[];
}

export interface EmbeddingsRequest {
  model: string;
  input: string | string[];
  encoding_format?: 'float' | 'base64';
}

export interface EmbeddingsResponse {
  object: 'list';
  data: { object: 'embedding'; index: number; embedding: number[] | string }[];
  model: string;
  usage: { prompt_tokens: number; total_tokens: number };
}

export interface ImageGenerationRequest {
  model: string;
  prompt: string;
  n?: number;
  /** "WxH", multiples of 8. */
  size?: string;
  response_format?: 'b64_json';
  steps?: number;
  guidance_scale?: number;
  seed?: number;
  negative_prompt?: string;
}

export interface ImageGenerationResponse {
  created: number;
  data: { b64_json: string; revised_prompt: string }[];
  model: string;
  usage: { elapsed_seconds: number; seed: number };
}
