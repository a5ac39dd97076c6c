/**
 * OpenAI request bodies, validated with class-validator. Wrong types and out-of-range values are 400
 * validation_failed with the field named. Fields not declared here are stripped from the DTO; the
 * controller hands them on as `passthrough` (remote backends get them verbatim).
 */
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
  ValidateBy,
  ValidateNested,
  type ValidationOptions,
} from 'class-validator';
import type { ResponseFormat, ToolCall, ToolChoice, ToolDefinition } from '../providers/openai-types.js';

function IsStringOrStringArray(maxItems: number, options?: ValidationOptions): PropertyDecorator {
  return ValidateBy(
    {
      name: 'isStringOrStringArray',
      validator: {
        validate: (value: unknown) =>
          typeof value === 'string' ||
          (Array.isArray(value) &&
            value.length >= 1 &&
            value.length <= maxItems &&
            value.every((v) => typeof v === 'string')),
        defaultMessage: (args) => `${args?.property} must be a string or an array of 1-${maxItems} strings`,
      },
    },
    options,
  );
}

/** OpenAI allows content as a string or as an array of parts; text parts are joined, others refused. */
function contentToText(value: unknown): unknown {
  if (!Array.isArray(value)) return value;
  if (!value.every((p) => typeof p === 'object' && p !== null && (p as { type?: unknown }).type === 'text'))
    return value;
  return value
    .map((p) => {
      const text = (p as { text?: unknown }).text;
      return typeof text === 'string' ? text : '';
    })
    .join('');
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A custom rule whose message names the property; `test` answers null when fine, else what is wrong. */
function Rule(name: string, test: (value: unknown) => string | null, options?: ValidationOptions): PropertyDecorator {
  return ValidateBy(
    {
      name,
      validator: {
        validate: (value: unknown) => test(value) === null,
        defaultMessage: (args) => {
          const problem = test(args?.value) ?? 'is invalid';
          // Problems inside the value name their path (`[0].function.name`); glue it to the property.
          return `${args?.property}${/^[.[]/.test(problem) ? '' : ' '}${problem}`;
        },
      },
    },
    options,
  );
}

function functionProblem(fn: unknown, where: string): string | null {
  const at = where.endsWith('.') ? where : `${where}.`;
  if (!isRecord(fn)) return `${at}function must be an object`;
  if (typeof fn.name !== 'string' || !/^[A-Za-z0-9_.-]{1,64}$/.test(fn.name))
    return `${at}function.name must be 1-64 letters, digits, _ . or -`;
  return null;
}

function toolCallsProblem(value: unknown): string | null {
  if (!Array.isArray(value) || value.length > 128) return 'must be an array of at most 128 tool calls';
  for (const [i, call] of value.entries()) {
    if (!isRecord(call) || typeof call.id !== 'string') return `[${i}] must be an object with a string id`;
    if (call.type !== undefined && call.type !== 'function') return `[${i}].type must be "function"`;
    const fn = functionProblem(call.function, `[${i}]`);
    if (fn) return fn;
    if (typeof (call.function as { arguments?: unknown }).arguments !== 'string')
      return `[${i}].function.arguments must be a JSON string`;
  }
  return null;
}

function toolsProblem(value: unknown): string | null {
  if (!Array.isArray(value) || value.length > 128) return 'must be an array of at most 128 tools';
  for (const [i, tool] of value.entries()) {
    if (!isRecord(tool) || tool.type !== 'function') return `[${i}].type must be "function"`;
    const fn = functionProblem(tool.function, `[${i}]`);
    if (fn) return fn;
    const params = (tool.function as { parameters?: unknown }).parameters;
    if (params !== undefined && !isRecord(params)) return `[${i}].function.parameters must be a JSON Schema object`;
  }
  return null;
}

function toolChoiceProblem(value: unknown): string | null {
  if (value === 'none' || value === 'auto' || value === 'required') return null;
  if (isRecord(value) && value.type === 'function') return functionProblem(value.function, '.');
  return 'must be "none", "auto", "required" or {"type":"function","function":{"name":...}}';
}

function responseFormatProblem(value: unknown): string | null {
  if (!isRecord(value)) return 'must be an object';
  switch (value.type) {
    case 'text':
      return null;
    case 'json_object':
      // llama.cpp also takes a schema right here; pass it on when it is an object.
      return value.schema === undefined || isRecord(value.schema) ? null : '.schema must be a JSON Schema object';
    case 'json_schema': {
      const js = value.json_schema;
      if (!isRecord(js)) return '.json_schema must be an object';
      if (js.schema !== undefined && !isRecord(js.schema)) return '.json_schema.schema must be a JSON Schema object';
      return null;
    }
    default:
      return '.type must be "text", "json_object" or "json_schema"';
  }
}

function logitBiasProblem(value: unknown): string | null {
  if (!isRecord(value)) return 'must be an object mapping token ids to numbers';
  const entries = Object.entries(value);
  if (entries.length > 1024) return 'must have at most 1024 entries';
  for (const [token, bias] of entries) {
    if (typeof bias !== 'number' || !Number.isFinite(bias) || bias < -100 || bias > 100)
      return `["${token}"] must be a number between -100 and 100`;
  }
  return null;
}

export class ChatMessageDto {
  @IsIn(['system', 'user', 'assistant', 'tool', 'developer']) role!:
    'system' | 'user' | 'assistant' | 'tool' | 'developer';
  // An assistant turn that only called tools has content null; treat it as empty text.
  @Transform(({ value }) => contentToText(value) ?? '')
  @IsString({ message: 'content must be a string or an array of text parts' })
  @MaxLength(1_000_000)
  content!: string;
  @IsOptional() @IsString() @MaxLength(200) name?: string;
  @IsOptional() @Rule('toolCalls', toolCallsProblem) tool_calls?: ToolCall[];
  @IsOptional() @IsString() @MaxLength(200) tool_call_id?: string;
}

class StreamOptionsDto {
  @IsOptional() @IsBoolean() include_usage?: boolean;
}

class SamplingDto {
  @IsString() @MinLength(1) @MaxLength(200) model!: string;
  @IsOptional() @IsInt() @Min(1) @Max(1_000_000) max_tokens?: number;
  @IsOptional() @IsInt() @Min(1) @Max(1_000_000) max_completion_tokens?: number;
  @IsOptional() @IsNumber() @Min(0) @Max(2) temperature?: number;
  @IsOptional() @IsNumber() @Min(0) @Max(1) top_p?: number;
  @IsOptional() @IsStringOrStringArray(4) stop?: string | string[];
  @IsOptional() @IsInt() seed?: number;
  @IsOptional() @IsBoolean() stream?: boolean;
  @IsOptional() @ValidateNested() @Type(() => StreamOptionsDto) stream_options?: StreamOptionsDto;
  @IsOptional() @IsInt() @Min(1) @Max(1, { message: 'n must be 1 (one choice per request)' }) n?: number;
  @IsOptional() @Rule('logitBias', logitBiasProblem) logit_bias?: Record<string, number>;
  @IsOptional() @IsBoolean() logprobs?: boolean;
  @IsOptional() @IsInt() @Min(0) @Max(20) top_logprobs?: number;
  @IsOptional() @IsInt() @Min(0) @Max(1_000_000) top_k?: number;
  @IsOptional() @IsNumber() @Min(0) @Max(1) min_p?: number;
  @IsOptional() @IsNumber() @Min(-2) @Max(2) presence_penalty?: number;
  @IsOptional() @IsNumber() @Min(-2) @Max(2) frequency_penalty?: number;
  @IsOptional() @IsNumber() @Min(0) @Max(10) repeat_penalty?: number;
}

export class ChatCompletionDto extends SamplingDto {
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(1000)
  @ValidateNested({ each: true })
  @Type(() => ChatMessageDto)
  messages!: ChatMessageDto[];
  // Kept as plain objects (no nested DTO) so schema keywords we do not model are not stripped.
  @IsOptional() @Rule('responseFormat', responseFormatProblem) response_format?: ResponseFormat;
  @IsOptional() @Rule('tools', toolsProblem) tools?: ToolDefinition[];
  @IsOptional() @Rule('toolChoice', toolChoiceProblem) tool_choice?: ToolChoice;
}

export class CompletionDto extends SamplingDto {
  @IsStringOrStringArray(1) prompt!: string | string[];
}

export class EmbeddingsDto {
  @IsString() @MinLength(1) @MaxLength(200) model!: string;
  @IsStringOrStringArray(256) input!: string | string[];
  @IsOptional() @IsIn(['float', 'base64']) encoding_format?: 'float' | 'base64';
}

function IsImageSize(options?: ValidationOptions): PropertyDecorator {
  return ValidateBy(
    {
      name: 'isImageSize',
      validator: {
        validate: (value: unknown) => {
          const m = typeof value === 'string' ? /^(\d{1,5})x(\d{1,5})$/.exec(value) : null;
          if (!m) return false;
          const [w, h] = [Number(m[1]), Number(m[2])];
          return w >= 8 && h >= 8 && w <= 2048 && h <= 2048 && w % 8 === 0 && h % 8 === 0;
        },
        defaultMessage: () => 'size must be "WxH" with W and H multiples of 8 between 8 and 2048',
      },
    },
    options,
  );
}

export class ImageGenerationDto {
  @IsString() @MinLength(1) @MaxLength(200) model!: string;
  @IsString() @MinLength(1) @MaxLength(4000) prompt!: string;
  @IsOptional() @IsInt() @Min(1) @Max(4) n?: number;
  @IsOptional() @IsImageSize() size?: string;
  @IsOptional()
  @IsIn(['b64_json'], { message: 'response_format must be b64_json (no file hosting here)' })
  response_format?: 'b64_json';
  @IsOptional() @IsInt() @Min(1) @Max(50) steps?: number;
  @IsOptional() @IsNumber() @Min(0) @Max(20) guidance_scale?: number;
  @IsOptional() @IsInt() @Min(0) @Max(2 ** 32 - 1) seed?: number;
  @IsOptional() @IsString() @MaxLength(4000) negative_prompt?: string;
}
