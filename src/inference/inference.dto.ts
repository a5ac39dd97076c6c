/**
 * OpenAI request bodies, validated with class-validator. Unknown fields are stripped (SDKs send many we
 * ignore); wrong types and out-of-range values are 400 validation_failed with the field named.
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

export class ChatMessageDto {
  @IsIn(['system', 'user', 'assistant', 'tool', 'developer']) role!:
    'system' | 'user' | 'assistant' | 'tool' | 'developer';
  @Transform(({ value }) => contentToText(value) ?? '')
  @IsString({ message: 'content must be a string or an array of text parts' })
  @MaxLength(1_000_000)
  content!: string;
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
}

export class ChatCompletionDto extends SamplingDto {
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(1000)
  @ValidateNested({ each: true })
  @Type(() => ChatMessageDto)
  messages!: ChatMessageDto[];
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
