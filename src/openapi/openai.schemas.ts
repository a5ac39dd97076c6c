/**
 * Response shapes of the /v1 routes and of every error, as classes so @nestjs/swagger generates their schemas.
 * Never instantiated: they describe what the providers and openai-wire.ts send. Fields follow the OpenAI API
 * description (the conformance test holds our answers to it); ours are marked as extensions.
 */
import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';

const FINISH_REASONS = ['stop', 'length', 'tool_calls'];

export class ToolCallFunctionSchema {
  @ApiProperty() name!: string;
  @ApiProperty({ description: 'JSON text of the arguments' }) arguments!: string;
}

export class ToolCallSchema {
  @ApiProperty() id!: string;
  @ApiProperty({ enum: ['function'] }) type!: 'function';
  @ApiProperty({ type: ToolCallFunctionSchema }) function!: ToolCallFunctionSchema;
}

export class PromptTokensDetailsSchema {
  @ApiProperty({ description: "Prompt tokens served from a sequence's cache" }) cached_tokens!: number;
}

export class UsageSchema {
  @ApiProperty() prompt_tokens!: number;
  @ApiProperty() completion_tokens!: number;
  @ApiProperty() total_tokens!: number;
  @ApiPropertyOptional({ type: PromptTokensDetailsSchema }) prompt_tokens_details?: PromptTokensDetailsSchema;
}

export class ModelSchema {
  @ApiProperty() id!: string;
  @ApiProperty({ enum: ['model'] }) object!: 'model';
  @ApiProperty({ description: 'Unix seconds (when this modelplane started)' }) created!: number;
  @ApiProperty({ description: 'The backend serving it' }) owned_by!: string;
  @ApiProperty({ description: 'Extension: chat, embeddings or image-generation', example: 'chat' }) purpose!: string;
}

export class ModelListSchema {
  @ApiProperty({ enum: ['list'] }) object!: 'list';
  @ApiProperty({ type: [ModelSchema] }) data!: ModelSchema[];
}

export class ChatMessageOutSchema {
  @ApiProperty({ enum: ['assistant'] }) role!: 'assistant';
  @ApiProperty({ type: String, nullable: true }) content!: string | null;
  @ApiProperty({ type: String, nullable: true, description: 'Always present; null unless the model refused' })
  refusal!: string | null;
  @ApiPropertyOptional({ type: [ToolCallSchema] }) tool_calls?: ToolCallSchema[];
}

export class ChatChoiceSchema {
  @ApiProperty() index!: number;
  @ApiProperty({ type: ChatMessageOutSchema }) message!: ChatMessageOutSchema;
  @ApiProperty({ enum: FINISH_REASONS }) finish_reason!: string;
  @ApiProperty({
    type: 'object',
    additionalProperties: true,
    nullable: true,
    description: 'Token log probabilities when asked for',
  })
  logprobs!: Record<string, unknown> | null;
}

export class ChatCompletionSchema {
  @ApiProperty() id!: string;
  @ApiProperty({ enum: ['chat.completion'] }) object!: 'chat.completion';
  @ApiProperty({ description: 'Unix seconds' }) created!: number;
  @ApiProperty() model!: string;
  @ApiProperty({ type: [ChatChoiceSchema] }) choices!: ChatChoiceSchema[];
  @ApiProperty({ type: UsageSchema }) usage!: UsageSchema;
}

export class ToolCallDeltaSchema {
  @ApiProperty() index!: number;
  @ApiPropertyOptional() id?: string;
  @ApiPropertyOptional({ enum: ['function'] }) type?: 'function';
  @ApiPropertyOptional({ type: ToolCallFunctionSchema }) function?: ToolCallFunctionSchema;
}

export class ChatDeltaSchema {
  @ApiPropertyOptional({ enum: ['assistant'] }) role?: 'assistant';
  @ApiPropertyOptional({ type: String, nullable: true }) content?: string | null;
  @ApiPropertyOptional({ type: [ToolCallDeltaSchema] }) tool_calls?: ToolCallDeltaSchema[];
}

export class ChatChunkChoiceSchema {
  @ApiProperty() index!: number;
  @ApiProperty({ type: ChatDeltaSchema }) delta!: ChatDeltaSchema;
  @ApiProperty({ enum: FINISH_REASONS, nullable: true }) finish_reason!: string | null;
  @ApiPropertyOptional({ type: 'object', additionalProperties: true, nullable: true })
  logprobs?: Record<string, unknown> | null;
}

/** One `data:` event of a chat stream (`stream: true`); the stream ends with `data: [DONE]`. */
export class ChatCompletionChunkSchema {
  @ApiProperty() id!: string;
  @ApiProperty({ enum: ['chat.completion.chunk'] }) object!: 'chat.completion.chunk';
  @ApiProperty() created!: number;
  @ApiProperty() model!: string;
  @ApiProperty({ type: [ChatChunkChoiceSchema], description: 'Empty in the final usage chunk' })
  choices!: ChatChunkChoiceSchema[];
  @ApiPropertyOptional({
    type: UsageSchema,
    nullable: true,
    description: 'On the last chunk with stream_options.include_usage',
  })
  usage?: UsageSchema | null;
}

export class CompletionChoiceSchema {
  @ApiProperty() index!: number;
  @ApiProperty() text!: string;
  @ApiProperty({ enum: FINISH_REASONS, nullable: true, description: 'null on stream chunks before the last' })
  finish_reason!: string | null;
  @ApiProperty({ type: 'object', additionalProperties: true, nullable: true })
  logprobs!: Record<string, unknown> | null;
}

/** A completion; with `stream: true`, each `data:` event has this shape too (usage on the last, if asked). */
export class CompletionSchema {
  @ApiProperty() id!: string;
  @ApiProperty({ enum: ['text_completion'] }) object!: 'text_completion';
  @ApiProperty() created!: number;
  @ApiProperty() model!: string;
  @ApiProperty({ type: [CompletionChoiceSchema] }) choices!: CompletionChoiceSchema[];
  @ApiPropertyOptional({ type: UsageSchema, nullable: true }) usage?: UsageSchema | null;
}

export class EmbeddingSchema {
  @ApiProperty({ enum: ['embedding'] }) object!: 'embedding';
  @ApiProperty() index!: number;
  @ApiProperty({
    oneOf: [{ type: 'array', items: { type: 'number' } }, { type: 'string' }],
    description: 'Floats, or base64 of little-endian float32 with encoding_format base64',
  })
  embedding!: number[] | string;
}

export class EmbeddingUsageSchema {
  @ApiProperty() prompt_tokens!: number;
  @ApiProperty() total_tokens!: number;
}

export class EmbeddingsSchema {
  @ApiProperty({ enum: ['list'] }) object!: 'list';
  @ApiProperty({ type: [EmbeddingSchema] }) data!: EmbeddingSchema[];
  @ApiProperty() model!: string;
  @ApiProperty({ type: EmbeddingUsageSchema }) usage!: EmbeddingUsageSchema;
}

export class ImageDataSchema {
  @ApiProperty({ description: 'PNG, base64' }) b64_json!: string;
  @ApiProperty() revised_prompt!: string;
}

export class ImageInputTokensDetailsSchema {
  @ApiProperty() text_tokens!: number;
  @ApiProperty() image_tokens!: number;
}

export class ImageUsageSchema {
  @ApiProperty({ description: '0: diffusion models are not metered in tokens' }) input_tokens!: number;
  @ApiProperty() output_tokens!: number;
  @ApiProperty() total_tokens!: number;
  @ApiProperty({ type: ImageInputTokensDetailsSchema }) input_tokens_details!: ImageInputTokensDetailsSchema;
}

export class ImageTimingsSchema {
  @ApiProperty({ description: 'Wall time of the generation' }) elapsed_seconds!: number;
  @ApiProperty({ description: 'Seed that reproduces the image' }) seed!: number;
}

export class ImagesSchema {
  @ApiProperty() created!: number;
  @ApiProperty({ type: [ImageDataSchema] }) data!: ImageDataSchema[];
  @ApiProperty() model!: string;
  @ApiProperty({ type: ImageUsageSchema }) usage!: ImageUsageSchema;
  @ApiProperty({ type: ImageTimingsSchema, description: 'Extension: what the run measured' })
  timings!: ImageTimingsSchema;
}

/** The one error envelope of every route (OpenAI's `{error:{message,type,code,param}}` plus details). */
export class ErrorEnvelopeSchema {
  @ApiProperty({
    type: 'object',
    required: ['message', 'type', 'code', 'param', 'request_id'],
    properties: {
      message: { type: 'string' },
      type: { type: 'string', example: 'invalid_request_error' },
      code: { type: 'string', example: 'validation_failed', description: 'Stable code; the list is in docs/api.md' },
      param: { type: 'string', nullable: true, description: 'The field at fault' },
      request_id: { type: 'string', nullable: true, description: 'Same as the x-request-id header' },
    },
    // Codes add their own detail fields (details, model, backend, readiness, limits).
    additionalProperties: true,
  })
  error!: Record<string, unknown>;
}
