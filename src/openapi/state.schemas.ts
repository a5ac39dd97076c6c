/**
 * Response shapes of /api/models*, /api/eviction/plan and /health*, as classes so @nestjs/swagger generates their
 * schemas. They mirror the interfaces the services return (models.service.ts, state-snapshot.ts,
 * eviction-policy.ts, health.service.ts); the API schema test fails when a real answer carries a field that is
 * not described here, so the two cannot drift apart silently.
 */
import { ApiProperty, ApiPropertyOptional, getSchemaPath } from '@nestjs/swagger';
import { Readiness } from '../backend-state/readiness.js';

const READINESS = Object.values(Readiness);
const MODEL_STATES = ['unloaded', 'loading', 'loaded', 'unloading', 'failed', 'unknown'];
const OBSERVED_STATES = ['loaded', 'loading', 'unloaded', 'unknown'];
const nullableString = { type: String, nullable: true } as const;
const nullableNumber = { type: Number, nullable: true } as const;
const freeForm = { type: 'object', additionalProperties: true } as const;

export class CatalogEntrySchema {
  @ApiProperty() id!: string;
  @ApiProperty() name!: string;
  @ApiProperty() backend!: string;
  @ApiProperty() backend_type!: string;
  @ApiProperty(nullableString) backend_url!: string | null;
  @ApiProperty({ ...nullableString, description: "The server's own name for it (remote kinds)" })
  upstream!: string | null;
  @ApiProperty({ example: 'chat' }) purpose!: string;
  @ApiProperty({ enum: MODEL_STATES, description: 'The one answer every view shares' }) state!: string;
  @ApiProperty({ enum: OBSERVED_STATES, nullable: true, description: "The backend's own last signal" })
  observed_state!: string | null;
  @ApiProperty(nullableString) reason!: string | null;
  @ApiProperty() pinned!: boolean;
  @ApiProperty() preload!: boolean;
  @ApiProperty(nullableNumber) idle_unload_threshold_s!: number | null;
  @ApiProperty(nullableNumber) idle_seconds!: number | null;
  @ApiProperty({ ...nullableNumber, description: 'Countdown to the idle unload' }) unloads_in_s!: number | null;
  @ApiProperty() in_flight!: number;
  @ApiProperty({ description: 'Of in_flight, requests waiting for a free sequence' }) queued!: number;
  @ApiProperty(nullableNumber) size_mb!: number | null;
  @ApiProperty({ ...nullableString, format: 'date-time' }) observed_at!: string | null;
  @ApiProperty(nullableNumber) observation_age_ms!: number | null;
  @ApiProperty() stale!: boolean;
  @ApiProperty({ ...freeForm, description: 'Backend-specific facts' }) details!: Record<string, unknown>;
}

export class CatalogSchema {
  @ApiProperty({ type: [CatalogEntrySchema] }) models!: CatalogEntrySchema[];
}

export class LoadedEntrySchema {
  @ApiProperty() name!: string;
  @ApiProperty() backend!: string;
  @ApiProperty() backend_type!: string;
  @ApiProperty(nullableString) backend_url!: string | null;
  @ApiProperty(nullableString) upstream!: string | null;
  @ApiProperty() purpose!: string;
  @ApiProperty(nullableNumber) size_mb!: number | null;
  @ApiProperty(nullableNumber) vram_mb!: number | null;
  @ApiProperty(nullableNumber) ram_mb!: number | null;
  @ApiProperty({ ...nullableString, format: 'date-time' }) expires_at!: string | null;
  @ApiProperty(freeForm) details!: Record<string, unknown>;
  @ApiProperty() host!: string;
  @ApiProperty({ ...nullableString, format: 'date-time' }) loaded_at!: string | null;
  @ApiProperty(nullableNumber) idle_seconds!: number | null;
  @ApiProperty(nullableNumber) idle_unload_threshold_s!: number | null;
  @ApiProperty(nullableNumber) unloads_in_s!: number | null;
  @ApiProperty() in_flight!: number;
  @ApiProperty({ description: 'Of in_flight, requests waiting for a free sequence' }) queued!: number;
  @ApiProperty() pinned!: boolean;
  @ApiProperty({ description: 'How the backend was asked' }) observed_via!: string;
  @ApiProperty({ ...nullableString, format: 'date-time' }) observed_at!: string | null;
  @ApiProperty(nullableNumber) observation_age_ms!: number | null;
  @ApiProperty() stale!: boolean;
  @ApiProperty({ enum: MODEL_STATES, nullable: true }) believed_state!: string | null;
  @ApiProperty({ enum: OBSERVED_STATES, nullable: true }) observed_state!: string | null;
  @ApiProperty({ description: 'Our belief and the backend disagreed' }) drift!: boolean;
}

export class BackendEntrySchema {
  @ApiProperty() name!: string;
  @ApiProperty() backend_type!: string;
  @ApiProperty(nullableString) url!: string | null;
  @ApiProperty({ enum: READINESS }) readiness!: Readiness;
  @ApiProperty(nullableString) reason!: string | null;
  @ApiProperty({ description: 'The latest probe reached it' }) reachable!: boolean;
  @ApiProperty(nullableString) error!: string | null;
  @ApiProperty({ ...nullableString, format: 'date-time' }) probed_at!: string | null;
  @ApiProperty(nullableNumber) probe_ms!: number | null;
  @ApiProperty({ ...nullableString, format: 'date-time' }) observed_at!: string | null;
  @ApiProperty(nullableNumber) observation_age_ms!: number | null;
  @ApiProperty() stale!: boolean;
}

export class LoadedSchema {
  @ApiProperty({ type: [LoadedEntrySchema] }) loaded!: LoadedEntrySchema[];
  @ApiProperty({ type: [BackendEntrySchema], description: 'Every backend, reachable or not' })
  backends!: BackendEntrySchema[];
}

export class LoadResultSchema {
  @ApiProperty({ enum: [true] }) ok!: true;
  @ApiProperty() model!: string;
  @ApiProperty({ enum: MODEL_STATES }) state!: string;
}

export class UnloadResultSchema {
  @ApiProperty({ enum: [true] }) ok!: true;
  @ApiProperty() model!: string;
  @ApiProperty() was_loaded!: boolean;
  @ApiProperty() reason!: string;
  @ApiProperty({ enum: ['idle', 'admin', 'budget', 'shutdown', 'other'] }) reason_code!: string;
  @ApiProperty(nullableNumber) expected_freed_mb!: number | null;
  @ApiProperty({ ...nullableNumber, description: 'Measured drop of our resident memory' })
  rss_freed_mb!: number | null;
}

export class SkippedUnloadSchema {
  @ApiProperty() model!: string;
  @ApiProperty() reason!: string;
}

export class UnloadAllResultSchema {
  @ApiProperty({ enum: [true] }) ok!: true;
  @ApiProperty({ type: [String] }) unloaded!: string[];
  @ApiProperty({ type: [SkippedUnloadSchema], description: 'Pinned models are not listed: they stay' })
  skipped!: SkippedUnloadSchema[];
}

export class PlanEntrySchema {
  @ApiProperty() id!: string;
  @ApiProperty({ enum: ['evict', 'keep'] }) action!: 'evict' | 'keep';
  @ApiProperty() reason!: string;
  @ApiProperty(nullableNumber) idle_s!: number | null;
  @ApiProperty(nullableNumber) size_mb!: number | null;
  @ApiProperty() pinned!: boolean;
  @ApiProperty() in_flight!: number;
}

export class LoadPlanSchema {
  @ApiProperty() model!: string;
  @ApiProperty() fits!: boolean;
  @ApiProperty({ ...nullableString, description: 'Why it cannot fit' }) reason!: string | null;
  @ApiProperty() loaded_count!: number;
  @ApiProperty() max_loaded_models!: number;
  @ApiProperty() used_mb!: number;
  @ApiProperty(nullableNumber) needed_mb!: number | null;
  @ApiProperty() memory_budget_mb!: number;
  @ApiProperty({ type: [String], description: 'What would be unloaded, in order' }) evict!: string[];
  @ApiProperty({ type: [PlanEntrySchema] }) candidates!: PlanEntrySchema[];
}

export class BackendHealthSchema {
  @ApiProperty() kind!: string;
  @ApiProperty({ enum: READINESS }) readiness!: Readiness;
  @ApiProperty(nullableString) reason!: string | null;
  @ApiProperty() backend_initialized!: boolean;
  @ApiProperty() last_transition_ms!: number;
}

export class ModelHealthSchema {
  @ApiProperty({ enum: MODEL_STATES }) state!: string;
  @ApiProperty({ type: 'string', nullable: true, description: 'Why, where it needs saying (e.g. a failed load)' })
  reason!: string | null;
  @ApiProperty(nullableNumber) idle_seconds!: number | null;
  @ApiProperty(nullableNumber) idle_unload_threshold_s!: number | null;
  @ApiProperty(nullableNumber) unloads_in_s!: number | null;
  @ApiProperty() in_flight!: number;
  @ApiProperty({ description: 'Of in_flight, requests waiting for a free sequence' }) queued!: number;
}

export class HealthSchema {
  @ApiProperty({ enum: ['modelplane'] }) service!: 'modelplane';
  @ApiProperty({ enum: READINESS, description: 'Mirrors readiness' }) status!: Readiness;
  @ApiProperty({ enum: READINESS }) readiness!: Readiness;
  @ApiProperty(nullableString) reason!: string | null;
  @ApiProperty() backend_initialized!: boolean;
  @ApiProperty() last_transition_ms!: number;
  @ApiProperty() timestamp_ms!: number;
  @ApiProperty() uptime_s!: number;
  @ApiProperty({ type: 'object', additionalProperties: { $ref: getSchemaPath(BackendHealthSchema) } })
  backends!: Record<string, BackendHealthSchema>;
  @ApiProperty({ type: 'object', additionalProperties: { $ref: getSchemaPath(ModelHealthSchema) } })
  models!: Record<string, ModelHealthSchema>;
  @ApiPropertyOptional({ ...freeForm, description: 'Message-bus status (enabled, connected, published, dropped)' })
  bus!: Record<string, unknown>;
}

/** Terminus' shape: the aggregate `service` indicator and one per backend. */
export class ReadinessSchema {
  @ApiProperty({ enum: ['ok', 'error', 'shutting_down'] }) status!: string;
  @ApiProperty({ type: 'object', additionalProperties: freeForm, nullable: true }) info!: Record<string, unknown>;
  @ApiProperty({ type: 'object', additionalProperties: freeForm, nullable: true }) error!: Record<string, unknown>;
  @ApiProperty({ type: 'object', additionalProperties: freeForm }) details!: Record<string, unknown>;
}

/** `GET /health/live`: terminus' shape for a check with no indicators, always this body (common/http-server.ts). */
export class LivenessSchema {
  @ApiProperty({ enum: ['ok'] }) status!: string;
  @ApiProperty({ type: 'object', additionalProperties: false }) info!: Record<string, never>;
  @ApiProperty({ type: 'object', additionalProperties: false }) error!: Record<string, never>;
  @ApiProperty({ type: 'object', additionalProperties: false }) details!: Record<string, never>;
}

/** Referenced by `additionalProperties` only, so they are registered with the document explicitly. */
export const STATE_EXTRA_MODELS = [BackendHealthSchema, ModelHealthSchema, LivenessSchema];
