/**
 * OpenAI wire shapes (snake_case), shared by the inference routes and every provider.
 * Providers return these exact shapes so remote responses pass through untouched.
 */
export interface ToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | 'tool' | 'developer';
  content: string;
  name?: string;
  /** Calls an assistant turn made (content is then usually empty). */
  tool_calls?: ToolCall[];
  /** On a `tool` message: which call this is the result of. */
  tool_call_id?: string;
}

/** A JSON Schema; passed through to the backend as the client wrote it. */
export type JsonSchema = Record<string, unknown>;

export type ResponseFormat =
  | { type: 'text' }
  | { type: 'json_object'; schema?: JsonSchema }
  | {
      type: 'json_schema';
      json_schema: { name?: string; description?: string; schema?: JsonSchema; strict?: boolean };
    };

export interface ToolDefinition {
  type: 'function';
  function: { name: string; description?: string; parameters?: JsonSchema; strict?: boolean };
}

export type ToolChoice = 'none' | 'auto' | 'required' | { type: 'function'; function: { name: string } };

export interface SamplingParams {
  max_tokens?: number;
  max_completion_tokens?: number;
  temperature?: number;
  top_p?: number;
  stop?: string | string[];
  seed?: number;
  /** Token id (as a string key) → bias in [-100, 100]. */
  logit_bias?: Record<string, number>;
  logprobs?: boolean;
  top_logprobs?: number;
  top_k?: number;
  min_p?: number;
  presence_penalty?: number;
  frequency_penalty?: number;
  repeat_penalty?: number;
  /**
   * Fields the client sent that modelplane does not model (vendor extensions such as llama.cpp's
   * `mirostat` or `grammar`, vLLM's `guided_json`). Remote OpenAI-compatible backends receive them
   * verbatim; in-process providers must refuse any they cannot honour with a 400 naming the field.
   */
  passthrough?: Record<string, unknown>;
}

export interface ChatCompletionRequest extends SamplingParams {
  model: string;
  messages: ChatMessage[];
  stream?: boolean;
  stream_options?: { include_usage?: boolean };
  response_format?: ResponseFormat;
  tools?: ToolDefinition[];
  tool_choice?: ToolChoice;
  /**
   * `messages` exactly as the client sent them (validated above as `messages`). Remote backends get these,
   * so what modelplane normalises for its own use (an assistant turn's `content: null` beside its tool
   * calls, text parts, per-message vendor fields) reaches them unchanged.
   */
  client_messages?: unknown[];
}

export interface CompletionRequest extends SamplingParams {
  model: string;
  prompt: string | string[];
  stream?: boolean;
  stream_options?: { include_usage?: boolean };
}

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export type FinishReason = 'stop' | 'length' | 'tool_calls' | null;

export interface ChatCompletionResponse {
  id: string;
  object: 'chat.completion';
  created: number;
  model: string;
  choices: {
    index: number;
    message: { role: 'assistant'; content: string; tool_calls?: ToolCall[] };
    finish_reason: FinishReason;
    /** Filled when the request asked for `logprobs` and the backend supports them. */
    logprobs: unknown;
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
    delta: { role?: 'assistant'; content?: string | null; tool_calls?: (Partial<ToolCall> & { index: number })[] };
    finish_reason: FinishReason;
    logprobs: unknown;
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
