/**
 * OpenAI request bodies, validated with class-validator and described for /openapi.json with @ApiProperty (the
 * bounds stated twice: swagger cannot read class-validator's without the CLI plugin, which the tsc build does not
 * run). Wrong types and out-of-range values are 400 validation_failed with the field named. Fields not declared here are stripped from the DTO; the
 * controller hands them on as `passthrough` (remote backends get them verbatim).
 */
import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform, Type } from 'class-transformer';
import {
  ArrayMaxSize,
  ArrayMinSize,
  IsArray,
  IsBoolean,
  IsIn,
  IsInt,
  IsNumber,
  IsOptional,
  IsString,
  Max,
  MaxLength,
  Min,
  MinLength,
  ValidateNested,
} from 'class-validator';
import type { ResponseFormat, ToolCall, ToolChoice, ToolDefinition } from '../providers/openai-types.js';
import { REQUEST_LIMITS } from '../common/request-limits.js';
import {
  contentToText,
  IsImageSize,
  IsStringOrStringArray,
  logitBiasProblem,
  responseFormatProblem,
  Rule,
  toolCallsProblem,
  toolChoiceProblem,
  toolsProblem,
} from './request-rules.js';

const stringOrList = (maxItems: number) => ({
  oneOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' }, minItems: 1, maxItems }],
});
const TOOL_CALL = {
  type: 'object',
  required: ['id', 'function'],
  properties: {
    id: { type: 'string' },
    type: { type: 'string', enum: ['function'] },
    function: {
      type: 'object',
      required: ['name', 'arguments'],
      properties: { name: { type: 'string' }, arguments: { type: 'string', description: 'JSON text' } },
    },
  },
};

export class ChatMessageDto {
  @ApiProperty({ enum: ['system', 'user', 'assistant', 'tool', 'developer'] })
  @IsIn(['system', 'user', 'assistant', 'tool', 'developer'])
  role!: 'system' | 'user' | 'assistant' | 'tool' | 'developer';
  @ApiProperty({
    oneOf: [
      { type: 'string', maxLength: REQUEST_LIMITS.textMaxChars, nullable: true },
      { type: 'array', items: { type: 'object', properties: { type: { enum: ['text'] }, text: { type: 'string' } } } },
    ],
    description: 'Text, or text parts (joined); null on an assistant turn that only called tools',
  })
  // An assistant turn that only called tools has content null; treat it as empty text.
  @Transform(({ value }) => contentToText(value) ?? '')
  @IsString({ message: 'content must be a string or an array of text parts' })
  @MaxLength(REQUEST_LIMITS.textMaxChars)
  content!: string;
  @ApiPropertyOptional({ maxLength: REQUEST_LIMITS.nameMaxChars })
  @IsOptional()
  @IsString()
  @MaxLength(REQUEST_LIMITS.nameMaxChars)
  name?: string;
  @ApiPropertyOptional({ type: 'array', items: TOOL_CALL, maxItems: 128 })
  @IsOptional()
  @Rule('toolCalls', toolCallsProblem)
  tool_calls?: ToolCall[];
  @ApiPropertyOptional({
    maxLength: REQUEST_LIMITS.nameMaxChars,
    description: 'On a tool message: the call it answers',
  })
  @IsOptional()
  @IsString()
  @MaxLength(REQUEST_LIMITS.nameMaxChars)
  tool_call_id?: string;
}

class StreamOptionsDto {
  @ApiPropertyOptional({ description: 'Send a last chunk with usage' })
  @IsOptional()
  @IsBoolean()
  include_usage?: boolean;
}

class SamplingDto {
  @ApiProperty({ minLength: 1, maxLength: REQUEST_LIMITS.nameMaxChars })
  @IsString()
  @MinLength(1)
  @MaxLength(REQUEST_LIMITS.nameMaxChars)
  model!: string;
  @ApiPropertyOptional({ type: 'integer', minimum: 1, maximum: REQUEST_LIMITS.maxTokensMax })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(REQUEST_LIMITS.maxTokensMax)
  max_tokens?: number;
  @ApiPropertyOptional({
    type: 'integer',
    minimum: 1,
    maximum: REQUEST_LIMITS.maxTokensMax,
    description: 'Alias of max_tokens',
  })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(REQUEST_LIMITS.maxTokensMax)
  max_completion_tokens?: number;
  @ApiPropertyOptional({ minimum: 0, maximum: REQUEST_LIMITS.temperatureMax })
  @IsOptional()
  @IsNumber()
  @Min(0)
  @Max(REQUEST_LIMITS.temperatureMax)
  temperature?: number;
  @ApiPropertyOptional({ minimum: 0, maximum: 1 })
  @IsOptional()
  @IsNumber()
  @Min(0)
  @Max(1)
  top_p?: number;
  @ApiPropertyOptional(stringOrList(4))
  @IsOptional()
  @IsStringOrStringArray(4)
  stop?: string | string[];
  @ApiPropertyOptional({ type: 'integer' })
  @IsOptional()
  @IsInt()
  seed?: number;
  @ApiPropertyOptional({ description: 'Answer as text/event-stream' })
  @IsOptional()
  @IsBoolean()
  stream?: boolean;
  @ApiPropertyOptional({ type: StreamOptionsDto })
  @IsOptional()
  @ValidateNested()
  @Type(() => StreamOptionsDto)
  stream_options?: StreamOptionsDto;
  @ApiPropertyOptional({ type: 'integer', minimum: 1, maximum: 1, description: 'One choice per request' })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(1, { message: 'n must be 1 (one choice per request)' })
  n?: number;
  @ApiPropertyOptional({
    type: 'object',
    additionalProperties: { type: 'number', minimum: -100, maximum: 100 },
    description: 'Token id → bias',
  })
  @IsOptional()
  @Rule('logitBias', logitBiasProblem)
  logit_bias?: Record<string, number>;
  @ApiPropertyOptional()
  @IsOptional()
  @IsBoolean()
  logprobs?: boolean;
  @ApiPropertyOptional({ type: 'integer', minimum: 0, maximum: 20 })
  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(20)
  top_logprobs?: number;
  @ApiPropertyOptional({ type: 'integer', minimum: 0, maximum: 1_000_000, description: 'Extension (llama.cpp)' })
  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(1_000_000)
  top_k?: number;
  @ApiPropertyOptional({ minimum: 0, maximum: 1, description: 'Extension (llama.cpp)' })
  @IsOptional()
  @IsNumber()
  @Min(0)
  @Max(1)
  min_p?: number;
  @ApiPropertyOptional({ minimum: -2, maximum: 2 })
  @IsOptional()
  @IsNumber()
  @Min(-2)
  @Max(2)
  presence_penalty?: number;
  @ApiPropertyOptional({ minimum: -2, maximum: 2 })
  @IsOptional()
  @IsNumber()
  @Min(-2)
  @Max(2)
  frequency_penalty?: number;
  @ApiPropertyOptional({ minimum: 0, maximum: 10, description: 'Extension (llama.cpp)' })
  @IsOptional()
  @IsNumber()
  @Min(0)
  @Max(10)
  repeat_penalty?: number;
}

export class ChatCompletionDto extends SamplingDto {
  @ApiProperty({ type: [ChatMessageDto], minItems: 1, maxItems: REQUEST_LIMITS.messagesMax })
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(REQUEST_LIMITS.messagesMax)
  @ValidateNested({ each: true })
  @Type(() => ChatMessageDto)
  messages!: ChatMessageDto[];
  // Kept as plain objects (no nested DTO) so schema keywords we do not model are not stripped.
  @ApiPropertyOptional({
    type: 'object',
    required: ['type'],
    properties: {
      type: { type: 'string', enum: ['text', 'json_object', 'json_schema'] },
      json_schema: { type: 'object', additionalProperties: true },
    },
    additionalProperties: true,
  })
  @IsOptional()
  @Rule('responseFormat', responseFormatProblem)
  response_format?: ResponseFormat;
  @ApiPropertyOptional({
    type: 'array',
    maxItems: 128,
    items: {
      type: 'object',
      required: ['type', 'function'],
      properties: {
        type: { type: 'string', enum: ['function'] },
        function: { type: 'object', required: ['name'], additionalProperties: true },
      },
    },
  })
  @IsOptional()
  @Rule('tools', toolsProblem)
  tools?: ToolDefinition[];
  @ApiPropertyOptional({
    oneOf: [
      { type: 'string', enum: ['none', 'auto', 'required'] },
      { type: 'object', required: ['type', 'function'], additionalProperties: true },
    ],
  })
  @IsOptional()
  @Rule('toolChoice', toolChoiceProblem)
  tool_choice?: ToolChoice;
}

export class CompletionDto extends SamplingDto {
  @ApiProperty(stringOrList(1))
  @IsStringOrStringArray(1)
  prompt!: string | string[];
}

export class EmbeddingsDto {
  @ApiProperty({ minLength: 1, maxLength: REQUEST_LIMITS.nameMaxChars })
  @IsString()
  @MinLength(1)
  @MaxLength(REQUEST_LIMITS.nameMaxChars)
  model!: string;
  @ApiProperty(stringOrList(256)) @IsStringOrStringArray(256) input!: string | string[];
  @ApiPropertyOptional({ enum: ['float', 'base64'] })
  @IsOptional()
  @IsIn(['float', 'base64'])
  encoding_format?: 'float' | 'base64';
}

export class ImageGenerationDto {
  @ApiProperty({ minLength: 1, maxLength: REQUEST_LIMITS.nameMaxChars })
  @IsString()
  @MinLength(1)
  @MaxLength(REQUEST_LIMITS.nameMaxChars)
  model!: string;
  @ApiProperty({ minLength: 1, maxLength: REQUEST_LIMITS.imagePromptMaxChars })
  @IsString()
  @MinLength(1)
  @MaxLength(REQUEST_LIMITS.imagePromptMaxChars)
  prompt!: string;
  @ApiPropertyOptional({ type: 'integer', minimum: 1, maximum: REQUEST_LIMITS.imagesMax })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(REQUEST_LIMITS.imagesMax)
  n?: number;
  @ApiPropertyOptional({
    pattern: '^\\d{1,5}x\\d{1,5}$',
    example: '512x512',
    description: `WxH, multiples of 8 from 8 to ${REQUEST_LIMITS.imageSideMax}`,
  })
  @IsOptional()
  @IsImageSize()
  size?: string;
  @ApiPropertyOptional({ enum: ['b64_json'] })
  @IsOptional()
  @IsIn(['b64_json'], { message: 'response_format must be b64_json (no file hosting here)' })
  response_format?: 'b64_json';
  @ApiPropertyOptional({ type: 'integer', minimum: 1, maximum: REQUEST_LIMITS.imageStepsMax, description: 'Extension' })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(REQUEST_LIMITS.imageStepsMax)
  steps?: number;
  @ApiPropertyOptional({ minimum: 0, maximum: REQUEST_LIMITS.imageGuidanceMax, description: 'Extension' })
  @IsOptional()
  @IsNumber()
  @Min(0)
  @Max(REQUEST_LIMITS.imageGuidanceMax)
  guidance_scale?: number;
  @ApiPropertyOptional({ type: 'integer', minimum: 0, maximum: REQUEST_LIMITS.seedMax, description: 'Extension' })
  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(REQUEST_LIMITS.seedMax)
  seed?: number;
  @ApiPropertyOptional({ maxLength: REQUEST_LIMITS.imagePromptMaxChars, description: 'Extension' })
  @IsOptional()
  @IsString()
  @MaxLength(REQUEST_LIMITS.imagePromptMaxChars)
  negative_prompt?: string;
}
