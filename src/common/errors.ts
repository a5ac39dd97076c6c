/**
 * Domain errors with a stable code and HTTP status. Services throw these; the global
 * exception filter turns them into the one error envelope (DESIGN.md §Errors).
 */
export type ErrorDetails = Record<string, unknown>;

export class AppError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: ErrorDetails = {},
    readonly type: string = defaultTypeFor(status),
    readonly param: string | null = null,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = new.target.name;
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

export class ValidationFailedError extends AppError {
  constructor(readonly issues: FieldIssue[]) {
    super(
      400,
      'validation_failed',
      `Validation failed: ${issues.map((i) => `${i.field}: ${i.message}`).join('; ')}`,
      { details: issues },
      'invalid_request_error',
      issues[0]?.field ?? null,
    );
  }
}

export class ModelNotFoundError extends AppError {
  constructor(model: string) {
    super(404, 'model_not_found', `The model '${model}' does not exist`, { model }, 'invalid_request_error', 'model');
  }
}

export class BackendUnavailableError extends AppError {
  constructor(backend: string, readiness: string, reason: string | null, retryAfterS = 5) {
    super(
      503,
      'backend_unavailable',
      `Backend '${backend}' is ${readiness}${reason ? `: ${reason}` : ''}`,
      { backend, readiness, reason },
      'unavailable_error',
      null,
      { 'retry-after': String(retryAfterS) },
    );
  }
}

export class InsufficientMemoryError extends AppError {
  constructor(model: string, reason: string) {
    super(
      503,
      'insufficient_memory',
      `Cannot load '${model}': ${reason}`,
      { model, reason },
      'unavailable_error',
      null,
      {
        'retry-after': '5',
      },
    );
  }
}

export class UnloadUnsupportedError extends AppError {
  constructor(model: string, backendType: string) {
    super(409, 'unload_unsupported', `Backend type '${backendType}' cannot unload '${model}'`, {
      model,
      backend_type: backendType,
    });
  }
}

export class UpstreamError extends AppError {
  constructor(backend: string, message: string, upstreamStatus: number | null = null) {
    super(502, 'upstream_error', `Upstream '${backend}' failed: ${message}`, {
      backend,
      upstream_status: upstreamStatus,
    });
  }
}

export class UpstreamTimeoutError extends AppError {
  constructor(backend: string, timeoutMs: number) {
    super(504, 'upstream_timeout', `Upstream '${backend}' did not answer within ${timeoutMs} ms`, {
      backend,
      timeout_ms: timeoutMs,
    });
  }
}

/** A request-scoped failure inside a runtime (bad prompt, decode error, missing file). Never changes readiness. */
export class InferenceFailedError extends AppError {
  constructor(model: string, message: string) {
    super(500, 'inference_failed', `Inference on '${model}' failed: ${message}`, { model }, 'server_error');
  }
}

/** A model failed to load (bad file, missing file). Request-scoped: the backend stays as it was. */
export class ModelLoadFailedError extends AppError {
  constructor(model: string, message: string) {
    super(500, 'model_load_failed', `Model '${model}' failed to load: ${message}`, { model }, 'server_error');
  }
}

export class UnauthorizedError extends AppError {
  constructor(message = 'A valid bearer token is required') {
    super(401, 'unauthorized', message, {}, 'authentication_error', null, { 'www-authenticate': 'Bearer' });
  }
}

export class ForbiddenError extends AppError {
  constructor(message: string) {
    super(403, 'forbidden', message);
  }
}

export class NotFoundRouteError extends AppError {
  constructor(method: string, url: string) {
    super(404, 'not_found', `Route ${method} ${url} not found`);
  }
}

export class ServiceShuttingDownError extends AppError {
  constructor() {
    super(503, 'shutting_down', 'The server is shutting down', {}, 'unavailable_error', null, { 'retry-after': '5' });
  }
}

export class ModelBusyError extends AppError {
  constructor(model: string, inFlight: number) {
    super(
      409,
      'model_busy',
      `Model '${model}' still has ${inFlight} request(s) in flight; not unloaded`,
      { model, in_flight: inFlight },
      'conflict_error',
      null,
      { 'retry-after': '5' },
    );
  }
}

/** A model's queue is full: retry shortly (the same answer for chat and images). */
export class ModelOverloadedError extends AppError {
  constructor(model: string, queued: number, retryAfterS = 1) {
    super(
      503,
      'model_overloaded',
      `Model '${model}' has ${queued} requests waiting; try again shortly`,
      { model, queued },
      'unavailable_error',
      null,
      { 'retry-after': String(retryAfterS) },
    );
  }
}

/** The message of anything thrown (a runtime may throw a string); the one place that decides how. */
export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
