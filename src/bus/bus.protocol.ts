import { AppError, errorText } from '../common/errors.js';
import { REQUEST_LIMITS } from '../common/request-limits.js';
import type { ChatMessage } from '../providers/openai-types.js';

/** Defaults of the bus request contract (docs/bus.md). */
export const DEFAULT_MAX_TOKENS = 256;
export const DEFAULT_TEMPERATURE = 0.7;

const ROLES: readonly ChatMessage['role'][] = ['system', 'user', 'assistant', 'tool', 'developer'];

export type RequestId = string | number;

/** A request on the request topic after validation and defaults. */
export interface BusRequest {
  request_id: RequestId;
  model: string;
  messages: ChatMessage[];
  max_tokens: number;
  temperature: number;
}

export type BusErrorCode =
  | 'inference failed'
  | 'backend_unavailable'
  | 'model_not_found'
  | 'invalid_request'
  | 'too_many_requests'
  | 'shutting_down';

/** The reply on the response topic; on failure content is "" and error is set. */
export interface BusResponse {
  request_id: RequestId | null;
  model: string | null;
  content: string;
  inference_time_ms: number;
  timestamp_ms: number;
  error?: BusErrorCode;
  /** Human-readable detail for invalid_request and other failures. */
  message?: string;
  /** With backend_unavailable: why, and the readiness that refused. */
  reason?: string | null;
  readiness?: string;
}

export type ParseResult =
  | { ok: true; request: BusRequest }
  /** requestId null: nothing to address a reply to, so the message can only be dropped. */
  | { ok: false; requestId: RequestId | null; model: string | null; message: string };

/** Validates one request payload. Never throws: garbage becomes a result the caller can answer or drop. */
export function parseBusRequest(payload: Buffer): ParseResult {
  let raw: unknown;
  try {
    raw = JSON.parse(payload.toString('utf8'));
  } catch {
    return { ok: false, requestId: null, model: null, message: 'payload is not valid JSON' };
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    return { ok: false, requestId: null, model: null, message: 'payload must be a JSON object' };
  }
  const obj = raw as Record<string, unknown>;
  const requestId = readRequestId(obj.request_id);
  const model = typeof obj.model === 'string' ? obj.model : null;
  const fail = (message: string): ParseResult => ({ ok: false, requestId, model, message });

  if (requestId === null) return fail('request_id must be a non-empty string or a number');
  if (model === null || model.trim().length === 0) return fail('model must be a non-empty string');
  if (model.length > REQUEST_LIMITS.nameMaxChars) {
    return fail(`model must be at most ${REQUEST_LIMITS.nameMaxChars} characters`);
  }
  if (!Array.isArray(obj.messages) || obj.messages.length === 0) {
    return fail('messages must be a non-empty array of {role, content}');
  }
  if (obj.messages.length > REQUEST_LIMITS.messagesMax) {
    return fail(`messages must hold at most ${REQUEST_LIMITS.messagesMax} messages`);
  }
  const messages: ChatMessage[] = [];
  for (const [i, m] of (obj.messages as unknown[]).entries()) {
    if (typeof m !== 'object' || m === null) return fail(`messages[${i}] must be an object`);
    const { role, content } = m as Record<string, unknown>;
    if (typeof role !== 'string' || !ROLES.includes(role as ChatMessage['role'])) {
      return fail(`messages[${i}].role must be one of ${ROLES.join(', ')}`);
    }
    if (typeof content !== 'string') return fail(`messages[${i}].content must be a string`);
    if (content.length > REQUEST_LIMITS.textMaxChars) {
      return fail(`messages[${i}].content must be at most ${REQUEST_LIMITS.textMaxChars} characters`);
    }
    messages.push({ role: role as ChatMessage['role'], content });
  }
  const maxTokens = obj.max_tokens ?? DEFAULT_MAX_TOKENS;
  if (
    typeof maxTokens !== 'number' ||
    !Number.isInteger(maxTokens) ||
    maxTokens < 1 ||
    maxTokens > REQUEST_LIMITS.maxTokensMax
  ) {
    return fail(`max_tokens must be an integer from 1 to ${REQUEST_LIMITS.maxTokensMax}`);
  }
  const temperature = obj.temperature ?? DEFAULT_TEMPERATURE;
  if (
    typeof temperature !== 'number' ||
    !Number.isFinite(temperature) ||
    temperature < 0 ||
    temperature > REQUEST_LIMITS.temperatureMax
  ) {
    return fail(`temperature must be a number between 0 and ${REQUEST_LIMITS.temperatureMax}`);
  }
  return {
    ok: true,
    request: { request_id: requestId, model, messages, max_tokens: maxTokens, temperature },
  };
}

function readRequestId(value: unknown): RequestId | null {
  if (typeof value === 'string' && value.length > 0) return value;
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  return null;
}

/** The error fields of a reply for a failure thrown by the chat handler. */
export function errorFields(err: unknown): Pick<BusResponse, 'error' | 'message' | 'reason' | 'readiness'> {
  if (err instanceof AppError) {
    switch (err.code) {
      case 'backend_unavailable':
        return {
          error: 'backend_unavailable',
          reason: typeof err.details.reason === 'string' ? err.details.reason : null,
          readiness: typeof err.details.readiness === 'string' ? err.details.readiness : 'unavailable',
          message: err.message,
        };
      case 'model_not_found':
        return { error: 'model_not_found', message: err.message };
      case 'shutting_down':
        return { error: 'shutting_down', message: err.message };
      default:
        if (err.status >= 400 && err.status < 500) return { error: 'invalid_request', message: err.message };
        return { error: 'inference failed', message: err.message };
    }
  }
  return { error: 'inference failed', message: errorText(err) };
}
