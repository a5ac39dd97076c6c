/**
 * The YAML file's shape (snake_case, as users write it), validated with class-validator.
 * Unknown keys are rejected so a typo is named instead of silently ignored.
 */
import { Type } from 'class-transformer';
import {
  IsArray,
  IsBoolean,
  IsIn,
  IsInt,
  IsNumber,
  IsOptional,
  IsString,
  IsUrl,
  Matches,
  Max,
  Min,
  MinLength,
  ValidateNested,
} from 'class-validator';
import { MODEL_ID_PATTERN } from '../common/model-id.js';
import { FleetSchema, URL_OPTIONS } from './fleet-config.js';
import { BACKEND_KINDS } from './backend-kinds.js';
import { TIMER_MAX_MS, TIMER_MAX_S } from './limits.js';

export class ServerSchema {
  @IsOptional() @IsString() @MinLength(1) host?: string;
  @IsOptional() @IsInt() @Min(0) @Max(65535) port?: number;
  @IsOptional() @IsString() @MinLength(8) admin_token?: string;
  @IsOptional() @IsString() @MinLength(1) api_key?: string;
  @IsOptional() @IsInt() @Min(1024) body_limit_bytes?: number;
  @IsOptional() @IsNumber() @Min(0) @Max(TIMER_MAX_S) shutdown_drain_s?: number;
  @IsOptional() @IsInt() @Min(100) @Max(TIMER_MAX_MS) headers_timeout_ms?: number;
  @IsOptional() @IsInt() @Min(100) @Max(TIMER_MAX_MS) request_timeout_ms?: number;
  @IsOptional() @IsInt() @Min(100) @Max(TIMER_MAX_MS) keep_alive_timeout_ms?: number;
  @IsOptional() @IsInt() @Min(1) @Max(1_000_000) max_connections?: number;
}

/** Per-request bounds (docs/operations.md "Bounds"). */
export class LimitsSchema {
  @IsOptional() @IsInt() @Min(16) @Max(10_000_000) body_max_keys?: number;
  @IsOptional() @IsInt() @Min(4) @Max(1000) body_max_depth?: number;
  @IsOptional() @IsInt() @Min(0) @Max(100_000) image_queue?: number;
  @IsOptional() @IsInt() @Min(1) image_max_work?: number;
}

export class EvictionSchema {
  @IsOptional() @IsNumber() @Min(0) @Max(TIMER_MAX_S) idle_unload_s?: number;
  @IsOptional()
  @IsNumber()
  @Min(0.001, { message: 'check_interval_s must be > 0' })
  @Max(TIMER_MAX_S)
  check_interval_s?: number;
  @IsOptional() @IsInt() @Min(0) max_loaded_models?: number;
  @IsOptional() @IsNumber() @Min(0) memory_budget_mb?: number;
}

export class BusTopicsSchema {
  @IsOptional() @IsString() @MinLength(1) request?: string;
  @IsOptional() @IsString() @MinLength(1) response?: string;
  @IsOptional() @IsString() @MinLength(1) status?: string;
}

export class BusSchema {
  @IsOptional() @IsBoolean() enabled?: boolean;
  @IsOptional() @IsIn(['mqtt', 'zenoh']) transport?: 'mqtt' | 'zenoh';
  @IsOptional() @IsString() @MinLength(1) url?: string;
  @IsOptional() @IsNumber() @Min(0.01) @Max(TIMER_MAX_S) heartbeat_s?: number;
  @IsOptional() @IsInt() @Min(1) @Max(TIMER_MAX_MS) connect_timeout_ms?: number;
  @IsOptional() @ValidateNested() @Type(() => BusTopicsSchema) topics?: BusTopicsSchema;
}

export class ModelSchema {
  @IsString()
  @Matches(MODEL_ID_PATTERN, { message: 'id must be letters, digits and ._:@+-/ with no ".." segment' })
  id!: string;
  @IsOptional() @IsString() @MinLength(1) path?: string;
  @IsOptional() @IsString() @MinLength(1) upstream?: string;
  @IsOptional() @IsString() @MinLength(1) purpose?: string;
  @IsOptional() @IsBoolean() preload?: boolean;
  @IsOptional() @IsBoolean() pin?: boolean;
  @IsOptional() @IsNumber() @Min(0) @Max(TIMER_MAX_S) idle_unload_s?: number;
  @IsOptional() @IsInt() @Min(16) context_size?: number;
  @IsOptional() @IsBoolean() embeddings?: boolean;
  @IsOptional() @IsInt() @Min(1) @Max(64) parallel?: number;
  @IsOptional() @IsNumber() @Min(0.001) @Max(TIMER_MAX_S) max_queue_wait_s?: number;
}

export class BackendSchema {
  @IsString() @Matches(/^[A-Za-z0-9._-]{1,64}$/, { message: 'name must be 1-64 letters, digits, . _ -' }) name!: string;
  @IsIn(BACKEND_KINDS) type!: string;
  @IsOptional() @IsUrl(URL_OPTIONS) url?: string;
  @IsOptional() @IsString() api_key?: string;
  @IsOptional() @IsInt() @Min(1) @Max(TIMER_MAX_MS) probe_timeout_ms?: number;
  @IsOptional() @IsInt() @Min(0) @Max(TIMER_MAX_MS) probe_cache_ms?: number;
  @IsOptional() @IsInt() @Min(100) @Max(TIMER_MAX_MS) probe_interval_ms?: number;
  @IsOptional() @IsInt() @Min(1) failure_threshold?: number;
  @IsOptional() @IsInt() @Min(1) @Max(TIMER_MAX_MS) request_timeout_ms?: number;
  @IsOptional() @IsInt() @Min(1) @Max(TIMER_MAX_MS) stream_idle_timeout_ms?: number;
  @IsOptional() @IsInt() @Min(1) @Max(TIMER_MAX_MS) load_timeout_ms?: number;
  @IsOptional() @IsInt() @Min(1024) max_line_bytes?: number;
  @IsOptional() @IsInt() @Min(1024) max_body_bytes?: number;
  @IsOptional() @IsInt() @Min(1) threads?: number;
  @IsOptional() @IsArray() @ValidateNested({ each: true }) @Type(() => ModelSchema) models?: ModelSchema[];
}

export class ConfigSchema {
  @IsOptional() @ValidateNested() @Type(() => ServerSchema) server?: ServerSchema;
  @IsOptional() @ValidateNested() @Type(() => EvictionSchema) eviction?: EvictionSchema;
  @IsOptional() @ValidateNested() @Type(() => BusSchema) bus?: BusSchema;
  @IsOptional() @ValidateNested() @Type(() => LimitsSchema) limits?: LimitsSchema;
  @IsOptional() @ValidateNested() @Type(() => FleetSchema) fleet?: FleetSchema;
  @IsOptional() @IsIn(['error', 'warn', 'log', 'debug', 'verbose']) log_level?: string;
  @IsOptional() @IsIn(['json', 'pretty']) log_format?: string;
  @IsOptional() @IsString() data_dir?: string;
  @IsOptional() @IsArray() @ValidateNested({ each: true }) @Type(() => BackendSchema) backends?: BackendSchema[];
}
