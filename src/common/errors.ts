/**
 * Domain errors with a stable code and HTTP status. Services throw these; the global
 * exception filter turns them into the one error envelope (docs/api.md "Errors").
 */
export type ErrorDetails = Record<string, unknown>;

/** What one error answers: the envelope's fields and the response headers. */
export interface AppErrorOptions {
  status: number;
  /** Stable, machine-readable; every code has its named class below. */
  code: string;
  message: string;
  details?: ErrorDetails;
  /** OpenAI's error type; defaults from the status. */
  type?: string;
  /** The request field at fault, when there is one. */
  param?: string | null;
  headers?: Record<string, string>;
}

export class AppError extends Error {
  readonly status: number;
  readonly code: string;
  readonly details: ErrorDetails;
  readonly type: string;
  readonly param: string | null;
  readonly headers: Record<string, string>;

  constructor(options: AppErrorOptions) {
    super(options.message);
    this.name = new.target.name;
    this.status = options.status;
    this.code = options.code;
    this.details = options.details ?? {};
    this.type = options.type ?? defaultTypeFor(options.status);
    this.param = options.param ?? null;
    this.headers = options.headers ?? {};
  }
}

function defaultTypeFor(status: number): string {
  if (status === 401) return 'authentication_error';
  if (status === 403) return 'permission_error';
  if (status === 404) return 'not_found_error';
  if (status === 409) return 'conflict_error';
  if (status === 413) return 'invalid_request_error';
  if (status >= 400 && status < 500) return 'invalid_request_error';
  if (status === 503) return 'unavailable_error';
  return 'server_error';
}

export interface FieldIssue {
  field: string;
  value?: unknown;
  rule: string;
  message: string;
}

const RETRY_SOON = (seconds: number): Record<string, string> => ({ 'retry-after': String(seconds) });

export class ValidationFailedError extends AppError {
  constructor(readonly issues: FieldIssue[]) {
    super({
      status: 400,
      code: 'validation_failed',
      message: `Validation failed: ${issues.map((i) => `${i.field}: ${i.message}`).join('; ')}`,
      details: { details: issues },
      type: 'invalid_request_error',
      param: issues[0]?.field ?? null,
    });
  }
}

/** A request a runtime cannot serve as asked (a schema it cannot enforce, a token id it does not have). */
export class InvalidRequestError extends AppError {
  constructor(message: string, param: string | null, details: ErrorDetails = {}) {
    super({ status: 400, code: 'invalid_request', message, details, type: 'invalid_request_error', param });
  }
}

export class UnsupportedParameterError extends AppError {
  constructor(model: string, field: string, message: string) {
    super({
      status: 400,
      code: 'unsupported_parameter',
      message,
      details: { model, field },
      type: 'invalid_request_error',
      param: field,
    });
  }
}

/** The model exists but does not do this operation (chat on an image model, embeddings on a chat model). */
export class UnsupportedOperationError extends AppError {
  constructor(model: string, message: string) {
    super({
      status: 400,
      code: 'unsupported_operation',
      message,
      details: { model },
      type: 'invalid_request_error',
      param: 'model',
    });
  }
}

export class EmbeddingsNotSupportedError extends AppError {
  constructor(model: string) {
    super({
      status: 400,
      code: 'embeddings_not_supported',
      message: `Model '${model}' does not serve embeddings (set embeddings: true in its config)`,
      details: { model },
      type: 'invalid_request_error',
      param: 'model',
    });
  }
}

/** The input does not fit the model's context; OpenAI's code, so clients can shorten and retry. */
export class ContextLengthExceededError extends AppError {
  constructor(message: string, details: ErrorDetails, param: string | null) {
    super({ status: 400, code: 'context_length_exceeded', message, details, type: 'invalid_request_error', param });
  }
}

export class ModelNotFoundError extends AppError {
  constructor(model: string) {
    super({
      status: 404,
      code: 'model_not_found',
      message: `The model '${model}' does not exist`,
      details: { model },
      type: 'invalid_request_error',
      param: 'model',
    });
  }
}

export class BackendUnavailableError extends AppError {
  constructor(backend: string, readiness: string, reason: string | null, retryAfterS = 5) {
    super({
      status: 503,
      code: 'backend_unavailable',
      message: `Backend '${backend}' is ${readiness}${reason ? `: ${reason}` : ''}`,
      details: { backend, readiness, reason },
      type: 'unavailable_error',
      headers: RETRY_SOON(retryAfterS),
    });
  }
}

export class InsufficientMemoryError extends AppError {
  constructor(model: string, reason: string) {
    super({
      status: 503,
      code: 'insufficient_memory',
      message: `Cannot load '${model}': ${reason}`,
      details: { model, reason },
      type: 'unavailable_error',
      headers: RETRY_SOON(5),
    });
  }
}

export class UnloadUnsupportedError extends AppError {
  constructor(model: string, backendType: string) {
    super({
      status: 409,
      code: 'unload_unsupported',
      message: `Backend type '${backendType}' cannot unload '${model}'`,
      details: { model, backend_type: backendType },
    });
  }
}

export class UpstreamError extends AppError {
  constructor(backend: string, message: string, upstreamStatus: number | null = null) {
    super({
      status: 502,
      code: 'upstream_error',
      message: `Upstream '${backend}' failed: ${message}`,
      details: { backend, upstream_status: upstreamStatus },
    });
  }
}

export class UpstreamTimeoutError extends AppError {
  constructor(backend: string, timeoutMs: number) {
    super({
      status: 504,
      code: 'upstream_timeout',
      message: `Upstream '${backend}' did not answer within ${timeoutMs} ms`,
      details: { backend, timeout_ms: timeoutMs },
    });
  }
}

/** A request-scoped failure inside a runtime (bad prompt, decode error, missing file). Never changes readiness. */
export class InferenceFailedError extends AppError {
  constructor(model: string, message: string) {
    super({
      status: 500,
      code: 'inference_failed',
      message: `Inference on '${model}' failed: ${message}`,
      details: { model },
      type: 'server_error',
    });
  }
}

/** A model failed to load (bad file, missing file). Request-scoped: the backend stays as it was. */
export class ModelLoadFailedError extends AppError {
  constructor(model: string, message: string) {
    super({
      status: 500,
      code: 'model_load_failed',
      message: `Model '${model}' failed to load: ${message}`,
      details: { model },
      type: 'server_error',
    });
  }
}

export class UnauthorizedError extends AppError {
  constructor(message = 'A valid bearer token is required') {
    super({ status: 401, code: 'unauthorized', message, headers: { 'www-authenticate': 'Bearer' } });
  }
}

export class ForbiddenError extends AppError {
  constructor(message: string) {
    super({ status: 403, code: 'forbidden', message });
  }
}

export class NotFoundRouteError extends AppError {
  constructor(method: string, url: string) {
    super({ status: 404, code: 'not_found', message: `Route ${method} ${url} not found` });
  }
}

export class ServiceShuttingDownError extends AppError {
  constructor() {
    super({ status: 503, code: 'shutting_down', message: 'The server is shutting down', headers: RETRY_SOON(5) });
  }
}

export class ModelBusyError extends AppError {
  constructor(model: string, inFlight: number) {
    super({
      status: 409,
      code: 'model_busy',
      message: `Model '${model}' still has ${inFlight} request(s) in flight; not unloaded`,
      details: { model, in_flight: inFlight },
      type: 'conflict_error',
      headers: RETRY_SOON(5),
    });
  }
}

/**
 * A model's queue is full, or a request waited its longest allowed time for a turn (`waitedS`):
 * retry shortly (the same answer for chat and images).
 */
export class ModelOverloadedError extends AppError {
  constructor(model: string, queued: number, retryAfterS = 1, waitedS?: number) {
    super({
      status: 503,
      code: 'model_overloaded',
      message:
        waitedS === undefined
          ? `Model '${model}' has ${queued} requests waiting; try again shortly`
          : `Model '${model}' gave this request no turn within ${waitedS} s (max_queue_wait_s); try again shortly`,
      details: waitedS === undefined ? { model, queued } : { model, queued, waited_s: waitedS },
      type: 'unavailable_error',
      headers: RETRY_SOON(retryAfterS),
    });
  }
}

/** Connections over `server.max_connections`: answered before any route, then closed. */
export class TooManyConnectionsError extends AppError {
  constructor(max: number) {
    super({
      status: 503,
      code: 'too_many_connections',
      message: `The server holds its maximum of ${max} connections`,
      details: { max_connections: max },
      type: 'unavailable_error',
      headers: RETRY_SOON(1),
    });
  }
}

export class RequestTimeoutError extends AppError {
  constructor() {
    super({ status: 408, code: 'request_timeout', message: 'The request was not received in time' });
  }
}

export class HeadersTooLargeError extends AppError {
  constructor(maxBytes: number) {
    super({
      status: 431,
      code: 'headers_too_large',
      message: `Request headers exceed ${maxBytes} bytes`,
      details: { max_bytes: maxBytes },
    });
  }
}

export class MalformedRequestError extends AppError {
  constructor() {
    super({ status: 400, code: 'bad_request', message: 'Malformed HTTP request' });
  }
}

export class PayloadTooLargeError extends AppError {
  constructor() {
    super({ status: 413, code: 'payload_too_large', message: 'Request body is too large' });
  }
}

export class BadUrlError extends AppError {
  constructor() {
    super({ status: 400, code: 'bad_url', message: 'The URL is not validly %-encoded', param: 'url' });
  }
}

export class UriTooLongError extends AppError {
  constructor() {
    super({ status: 414, code: 'uri_too_long', message: 'A path segment of the URL is too long', param: 'url' });
  }
}

export class UnsupportedMediaTypeError extends AppError {
  constructor(message: string) {
    super({ status: 415, code: 'unsupported_media_type', message });
  }
}

export class BodyTooDeepError extends AppError {
  constructor(maxDepth: number) {
    super({
      status: 400,
      code: 'body_too_deep',
      message: `The JSON body nests deeper than ${maxDepth} levels`,
      details: { max_depth: maxDepth },
      param: 'body',
    });
  }
}

export class BodyTooManyKeysError extends AppError {
  constructor(maxKeys: number) {
    super({
      status: 413,
      code: 'body_too_many_keys',
      message: `The JSON body has more than ${maxKeys} keys and array items`,
      details: { max_keys: maxKeys },
      param: 'body',
    });
  }
}

export class InvalidJsonError extends AppError {
  constructor(message: string) {
    super({ status: 400, code: 'invalid_json', message, param: 'body' });
  }
}

/** Anything not thrown as an AppError: the details stay in the log, never in the answer. */
export class InternalError extends AppError {
  constructor() {
    super({ status: 500, code: 'internal_error', message: 'Internal server error' });
  }
}

/** The message of anything thrown (a runtime may throw a string); the one place that decides how. */
export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
