/**
 * What an upstream answer or failure means for the client, in our one error envelope:
 * - the server refused the request itself (4xx: context too long, unknown model, bad schema) → the
 *   client's error, with the server's status and message; a context overflow is `context_length_exceeded`;
 * - the server is not there (connection refused or reset) or says it is loading (503 "Loading model")
 *   → `503 backend_unavailable` with Retry-After; the inference service takes it as evidence and
 *   probes the backend at once;
 * - anything else (5xx, garbage) → `502 upstream_error` carrying the upstream status.
 */
import { AppError, BackendUnavailableError, UpstreamError } from '../../common/errors.js';
import { isRecord, parseJson, upstreamMessage } from './json.js';

/** The backend could not be reached or is loading: the request was not served, and readiness may be stale. */
export class UpstreamUnavailableError extends BackendUnavailableError {
  constructor(
    readonly backend: string,
    reason: string,
  ) {
    // 'unavailable' is what a probe will most likely conclude; admission follows once it has.
    super(backend, 'unavailable', reason, 1);
  }
}

/** The upstream refused the request as the client's error: its status and message, in our envelope. */
export class UpstreamRejectedError extends AppError {
  constructor(backend: string, status: number, message: string, upstream: Record<string, unknown>) {
    const type = typeof upstream.type === 'string' ? upstream.type : null;
    const contextOverflow = status === 400 && isContextOverflow(type, message);
    // The upstream's own status is kept (a 404 unknown model stays 404), so the class names the code only.
    super({
      status,
      code: contextOverflow ? 'context_length_exceeded' : 'upstream_rejected',
      message,
      details: { backend, upstream_status: status, ...(type ? { upstream_type: type } : {}), ...numbers(upstream) },
      type: 'invalid_request_error',
      param: typeof upstream.param === 'string' ? upstream.param : contextOverflow ? 'messages' : null,
    });
  }
}

/**
 * llama.cpp: type `exceed_context_size_error`; OpenAI/vLLM: "maximum context length is N tokens";
 * Ollama: "input length exceeds the context length".
 */
function isContextOverflow(type: string | null, message: string): boolean {
  return (
    type === 'exceed_context_size_error' ||
    /context[ _](length|size|window)|maximum context|exceeds the available context/i.test(message)
  );
}

/** Token counts the server gave (llama.cpp `n_prompt_tokens`, `n_ctx`): useful to the client, kept. */
function numbers(upstream: Record<string, unknown>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const key of ['n_prompt_tokens', 'n_ctx']) {
    const v = upstream[key];
    if (typeof v === 'number') out[key] = v;
  }
  return out;
}

/** Status codes that are about our own credentials or routing to the server, never the client's request. */
const OURS = new Set([401, 403, 407]);

/** A non-2xx upstream answer → the error the client gets. */
export function upstreamHttpError(backend: string, status: number, text: string): AppError {
  const message = upstreamMessage(status, text);
  if (status === 503 && /loading/i.test(message)) return new UpstreamUnavailableError(backend, 'loading model');
  if (status >= 400 && status < 500 && !OURS.has(status)) {
    const json = parseJson(text);
    const err = isRecord(json) && isRecord(json.error) ? json.error : {};
    return new UpstreamRejectedError(backend, status, message.replace(/^HTTP \d+: /, ''), err);
  }
  return new UpstreamError(backend, message, status);
}

/** Node/undici codes for "nobody is listening" or "the server went away" before it answered. */
const GONE = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_CONNECT_TIMEOUT',
]);

export function isConnectionFailure(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const { code, cause } = err as { code?: unknown; cause?: unknown };
  if (typeof code === 'string' && GONE.has(code)) return true;
  return cause !== undefined && cause !== err && isConnectionFailure(cause);
}
