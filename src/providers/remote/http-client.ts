/**
 * The one HTTP path every remote provider uses (undici). Two flavours:
 * - probe calls never throw for an HTTP status (the provider interprets it) and are bounded by the
 *   caller's signal plus undici's own header/body timeouts as a backstop;
 * - request calls (inference, load, unload) map every failure to the error envelope (upstream-errors.ts):
 *   an upstream 4xx is the client's error and keeps its status; refused/reset connections and
 *   503 "Loading model" are 503 backend_unavailable; other non-2xx are 502 upstream_error; no answer
 *   within backend.requestTimeoutMs → 504 upstream_timeout.
 * A client disconnect (its AbortSignal) aborts the upstream request too.
 */
import { Agent, type Dispatcher } from 'undici';
import { AppError, UpstreamError, UpstreamTimeoutError } from '../../common/errors.js';
import type { BackendConfig } from '../../config/app-config.js';
import { isRecord, parseJson, upstreamMessage } from './json.js';
import { rawSseJson, SseLineTooLongError, sseData } from './sse.js';
import { isConnectionFailure, UpstreamUnavailableError, upstreamHttpError } from './upstream-errors.js';

export type HttpMethod = 'GET' | 'POST';

export interface HttpAnswer {
  status: number;
  text: string;
}

export { isRecord, parseJson, upstreamMessage };

/** Short text for a network-level failure (refused, reset, DNS), for probe results and error messages. */
export function networkErrorText(err: unknown): string {
  // Duck-typed: errors raised by node internals may come from another realm (jest's vm), failing instanceof.
  if (typeof err !== 'object' || err === null) return String(err);
  const { code, message, name } = err as { code?: unknown; message?: unknown; name?: unknown };
  const text = typeof message === 'string' && message.length > 0 ? message : typeof name === 'string' ? name : 'error';
  if (code === 'ECONNREFUSED') return `connection refused (${text})`;
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') return 'no answer (timed out)';
  if (name === 'AbortError' || name === 'TimeoutError') return 'aborted';
  return text;
}

function errorCode(err: unknown): unknown {
  return typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
}

/** After [DONE], at most this much more of a stream is read to keep its connection; a longer tail closes it. */
const DONE_TAIL_BYTES = 64 * 1024;

/** Marks an abort caused by our own deadline, as opposed to the client going away. */
class DeadlineExceeded extends Error {}

interface Deadline {
  signal: AbortSignal;
  expired: () => boolean;
  /** Stop the clock (headers arrived for a stream: from then on only gaps between chunks count). */
  clear: () => void;
}

function deadline(timeoutMs: number, client?: AbortSignal): Deadline {
  // Real time on purpose, like AbortSignal.timeout: it bounds a real upstream's socket, whose progress no test
  // clock moves; a FakeClock here would turn every hung-upstream test into one that must advance time by hand.
  // One controller for both causes, the client's abort forwarded by a listener: AbortSignal.any built a
  // composite signal (weak references both ways, kept for GC) on every request.
  const controller = new AbortController();
  let expired = false;
  const timer = setTimeout(() => {
    expired = true;
    controller.abort(new DeadlineExceeded('deadline'));
  }, timeoutMs);
  timer.unref?.();
  const forward = (): void => controller.abort(client!.reason);
  if (client?.aborted) forward();
  else client?.addEventListener('abort', forward, { once: true });
  return {
    signal: controller.signal,
    expired: () => expired,
    clear: () => {
      clearTimeout(timer);
      client?.removeEventListener('abort', forward);
    },
  };
}

/**
 * A parsed chunk naming `modelId` (the client's name, not the server's), remembering its wire text
 * (rawSseJson) so it is relayed without re-encoding: the rename substitutes the exact `"model":…` text.
 */
function relayed(parsed: unknown, payload: string, modelId: string | undefined): unknown {
  if (!isRecord(parsed)) return parsed;
  let text: string | null = payload;
  if (modelId !== undefined && parsed.model !== modelId) {
    const said = typeof parsed.model === 'string' ? `"model":${JSON.stringify(parsed.model)}` : null;
    parsed.model = modelId;
    const at = said === null ? -1 : payload.indexOf(said);
    text =
      at === -1 || payload.includes(said!, at + 1)
        ? null
        : `${payload.slice(0, at)}"model":${JSON.stringify(modelId)}${payload.slice(at + said!.length)}`;
  }
  // One event on several `data:` lines carries newlines: re-encoded, as one line, instead.
  if (text !== null && !/[\r\n]/.test(text)) rawSseJson.set(parsed, text);
  return parsed;
}

/** Reads and discards what is left of a body (bounded; past `limit` bytes the connection is dropped). */
function drainTail(body: Dispatcher.ResponseData['body'], limit: number): void {
  let bytes = 0;
  body.on('error', () => undefined);
  body.on('data', (chunk: Buffer) => {
    bytes += chunk.length;
    if (bytes > limit) body.destroy();
  });
  body.resume();
}

export class RemoteHttpClient {
  readonly baseUrl: string;
  private readonly agent: Agent;
  /** undici's `origin` and the path prefix of baseUrl, split once instead of parsing a URL per request. */
  private readonly origin: string;
  private readonly basePath: string;
  /** The request headers of each kind of call, built once (undici only reads them). */
  private readonly headers: Record<string, string>;
  private readonly jsonHeaders: Record<string, string>;
  private readonly sseHeaders: Record<string, string>;

  constructor(private readonly backend: BackendConfig) {
    if (!backend.url) throw new Error(`backend '${backend.name}' (${backend.type}) has no url`);
    this.baseUrl = backend.url.replace(/\/+$/, '');
    // A short keep-alive: probes every second or two reuse the connection, idle ones are dropped quickly.
    this.agent = new Agent({ keepAliveTimeout: 4_000, connect: { timeout: backend.requestTimeoutMs } });
    const url = new URL(this.baseUrl);
    this.origin = url.origin;
    this.basePath = url.pathname.replace(/\/+$/, '');
    this.headers = { accept: 'application/json', ...backend.headers };
    if (backend.apiKey) this.headers.authorization = `Bearer ${backend.apiKey}`;
    this.jsonHeaders = { ...this.headers, 'content-type': 'application/json' };
    this.sseHeaders = { ...this.jsonHeaders, accept: 'text/event-stream' };
  }

  /** A probe call: any HTTP status is returned; network errors and aborts are thrown. */
  async probe(method: HttpMethod, path: string, signal: AbortSignal, body?: unknown): Promise<HttpAnswer> {
    const res = await this.dispatch(method, path, body, signal, {
      headersTimeout: this.backend.probeTimeoutMs,
      bodyTimeout: this.backend.probeTimeoutMs,
    });
    return { status: res.statusCode, text: await this.readCapped(res.body) };
  }

  /**
   * A request-scoped call returning status and body whatever the status (the caller decides which
   * non-2xx it understands, e.g. llama-server's 400 "model is already running"). Network failures and
   * the deadline are mapped to UpstreamError / UpstreamTimeoutError.
   */
  async send(method: HttpMethod, path: string, body: unknown, signal?: AbortSignal): Promise<HttpAnswer> {
    const limit = deadline(this.backend.requestTimeoutMs, signal);
    try {
      const res = await this.dispatch(method, path, body, limit.signal, {});
      return { status: res.statusCode, text: await this.readCapped(res.body) };
    } catch (err) {
      throw this.mapFailure(err, limit, signal);
    } finally {
      limit.clear();
    }
  }

  /** A request-scoped JSON call: 2xx → parsed body; anything else → an AppError. */
  async json<T>(method: HttpMethod, path: string, body: unknown, signal?: AbortSignal): Promise<T> {
    const answer = await this.send(method, path, body, signal);
    if (answer.status < 200 || answer.status >= 300)
      throw upstreamHttpError(this.backend.name, answer.status, answer.text);
    const parsed = parseJson(answer.text);
    if (parsed === null) {
      throw new UpstreamError(this.backend.name, `${method} ${path} answered a body that is not JSON`, answer.status);
    }
    return parsed as T;
  }

  /**
   * POST and stream the answer as SSE: yields each `data:` payload parsed as JSON, stops at [DONE].
   * Bounds: requestTimeoutMs for the whole exchange, streamIdleTimeoutMs for any silence between
   * chunks (undici's bodyTimeout); either ends the stream with UpstreamTimeoutError. A non-2xx answer
   * throws before the first chunk, so the caller can still answer with an HTTP status. A stream that
   * ends without [DONE] was cut: that is an error, never a normal end. Chunks name `modelId` when given.
   * Stopping the iteration early
   * (client gone) destroys the upstream connection.
   */
  async *sse(path: string, body: unknown, signal: AbortSignal, modelId?: string): AsyncGenerator<unknown> {
    const limit = deadline(this.backend.requestTimeoutMs, signal);
    let res: Dispatcher.ResponseData;
    try {
      res = await this.dispatch('POST', path, body, limit.signal, {
        bodyTimeout: this.backend.streamIdleTimeoutMs,
        sse: true,
      });
    } catch (err) {
      limit.clear();
      throw this.mapFailure(err, limit, signal);
    }
    let complete = false;
    try {
      if (res.statusCode < 200 || res.statusCode >= 300) {
        const text = await this.readCapped(res.body).catch(() => '');
        throw upstreamHttpError(this.backend.name, res.statusCode, text);
      }
      // Not destroyed when the parser stops at [DONE]: the connection goes back to the pool (below).
      const body = res.body.iterator({ destroyOnReturn: false });
      for await (const payload of sseData(body, this.backend.maxLineBytes)) {
        if (payload.trim() === '[DONE]') {
          complete = true;
          return;
        }
        const parsed = parseJson(payload);
        if (isRecord(parsed) && parsed.error !== undefined && parsed.choices === undefined) {
          throw new UpstreamError(this.backend.name, upstreamMessage(res.statusCode, payload), res.statusCode);
        }
        if (parsed !== null) yield relayed(parsed, payload, modelId);
      }
      throw new UpstreamError(this.backend.name, 'the stream ended before [DONE] (connection closed)');
    } catch (err) {
      throw this.mapFailure(err, limit, signal, true);
    } finally {
      limit.clear();
      if (complete) {
        // Only the end of the chunked body is left: reading it keeps the keep-alive connection (destroying it
        // cost every stream a new TCP connection, ~1 ms). Not awaited: the client's [DONE] must not wait for it.
        drainTail(res.body, DONE_TAIL_BYTES);
      } else if (!res.body.destroyed) {
        // Early exit (consumer stopped, client gone): drop the upstream connection so the server stops generating.
        res.body.destroy();
      }
    }
  }

  async close(): Promise<void> {
    await this.agent.close();
  }

  /** The body as text, refused past max_body_bytes instead of buffered whole (a 100 MB answer: RSS 115 → 742 MB). */
  private async readCapped(body: Dispatcher.ResponseData['body']): Promise<string> {
    const chunks: Buffer[] = [];
    let bytes = 0;
    for await (const chunk of body) {
      const buf = chunk as Buffer;
      bytes += buf.length;
      if (bytes > this.backend.maxBodyBytes) {
        body.destroy();
        throw new UpstreamError(this.backend.name, `the answer exceeds max_body_bytes (${this.backend.maxBodyBytes})`);
      }
      chunks.push(buf);
    }
    return Buffer.concat(chunks).toString('utf8');
  }

  private dispatch(
    method: HttpMethod,
    path: string,
    body: unknown,
    signal: AbortSignal,
    opts: { headersTimeout?: number; bodyTimeout?: number; sse?: boolean },
  ): Promise<Dispatcher.ResponseData> {
    const headers = opts.sse ? this.sseHeaders : body === undefined ? this.headers : this.jsonHeaders;
    return this.agent.request({
      origin: this.origin,
      path: `${this.basePath}${path}`,
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
      headersTimeout: opts.headersTimeout ?? this.backend.requestTimeoutMs,
      bodyTimeout: opts.bodyTimeout ?? this.backend.requestTimeoutMs,
    });
  }

  private mapFailure(err: unknown, limit: Deadline, client?: AbortSignal, streaming = false): unknown {
    if (err instanceof AppError) return err;
    if (err instanceof SseLineTooLongError) return new UpstreamError(this.backend.name, err.message);
    // The client went away: not an upstream failure; let the caller see the abort as it is.
    if (client?.aborted && !limit.expired()) return err;
    const code = errorCode(err);
    if (limit.expired() || code === 'UND_ERR_HEADERS_TIMEOUT') {
      return new UpstreamTimeoutError(this.backend.name, this.backend.requestTimeoutMs);
    }
    if (code === 'UND_ERR_BODY_TIMEOUT') {
      return new UpstreamTimeoutError(
        this.backend.name,
        streaming ? this.backend.streamIdleTimeoutMs : this.backend.requestTimeoutMs,
      );
    }
    // Before any answer, "nobody there" is the backend being down: evidence for its readiness. Mid-stream
    // the server answered and then went away; the chunks already sent make that an upstream failure.
    if (!streaming && isConnectionFailure(err)) {
      return new UpstreamUnavailableError(this.backend.name, networkErrorText(err));
    }
    return new UpstreamError(this.backend.name, networkErrorText(err));
  }
}
