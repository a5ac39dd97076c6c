/**
 * Bounds that keep one request, peer or connection from stalling the process (docs/operations.md "Bounds").
 * Kept apart from app-config.ts so the defaults have one home that code-built configs can reuse.
 */

/** Node timers hold a signed 32-bit millisecond count; anything larger silently becomes 1 ms. */
export const TIMER_MAX_MS = 2 ** 31 - 1;
export const TIMER_MAX_S = TIMER_MAX_MS / 1000;

export interface Limits {
  /** Keys (object members + array items) in one JSON body, counted before validation. */
  bodyMaxKeys: number;
  /** Nesting depth of one JSON body. */
  bodyMaxDepth: number;
  /** Time to receive the request headers. */
  headersTimeoutMs: number;
  /** Time to receive the whole request (headers and body); the response may take longer. */
  requestTimeoutMs: number;
  /** An idle keep-alive socket is closed after this. */
  keepAliveTimeoutMs: number;
  /** Open client connections; one more is answered 503 and closed. */
  maxConnections: number;
  /** Image requests waiting per model behind the running one; more are refused 503 model_overloaded. */
  imageQueue: number;
  /** width × height × steps × n of one image request. */
  imageMaxWork: number;
}

export const LIMIT_DEFAULTS: Limits = {
  bodyMaxKeys: 10_000,
  bodyMaxDepth: 64,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 60_000,
  // Above the 60 s idle timeout of common load balancers, so they never reuse a socket we just closed (a 502).
  keepAliveTimeoutMs: 72_000,
  maxConnections: 1024,
  imageQueue: 8,
  // 1024² × 4 steps × 4 images (or 1024² × 16 steps × 1); the 2048² × 50 × 4 is 50× this.
  imageMaxWork: 1024 * 1024 * 16,
};
