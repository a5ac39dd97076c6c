import { errorText } from '../common/errors.js';
import { Logger } from '@nestjs/common';
import {
  type BackoffOptions,
  backoffDelayMs,
  type BusPayloadHandler,
  type BusTransport,
  type BusTransportStats,
  DEFAULT_BACKOFF,
  TransportState,
} from './transport.js';

/** The little of a zenoh session the bus uses; the seam that lets tests run without a router. */
export interface ZenohSession {
  put(keyExpr: string, payload: Uint8Array): Promise<void>;
  subscribe(keyExpr: string, handler: (payload: Uint8Array) => void): Promise<void>;
  /** A round trip to the router; rejects (or hangs) when the link is gone. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export type ZenohSessionFactory = (locator: string) => Promise<ZenohSession>;

/** zenoh-ts cannot work in this process (not installed, or Node started without the flags it needs). Not retried. */
export class ZenohUnavailableError extends Error {
  override name = 'ZenohUnavailableError';
}

export interface ZenohTransportOptions {
  url: string;
  connectTimeoutMs: number;
  epochMs?: () => number;
  sessionFactory?: ZenohSessionFactory;
  backoff?: BackoffOptions;
  /** How often the session is pinged; zenoh-ts itself never notices a dead router. */
  livenessIntervalMs?: number;
  livenessTimeoutMs?: number;
}

/**
 * MQTT-style topic → zenoh key expression. `local/llm/request` stays `local/llm/request`; leading,
 * trailing and doubled `/` are dropped (zenoh forbids empty chunks); the MQTT wildcards map to
 * zenoh's: `+` → `*` (one chunk), `#` → `**` (any number, last level only). Characters zenoh reserves
 * (`*` `$` `?` `#` inside a chunk) are refused rather than silently changing the meaning.
 */
export function topicToKeyExpr(topic: string): string {
  const levels = topic.split('/').filter((level) => level.length > 0);
  if (levels.length === 0) throw new Error(`bus topic '${topic}' has no key expression chunks`);
  return levels
    .map((level, i) => {
      if (level === '+') return '*';
      if (level === '#') {
        if (i !== levels.length - 1) throw new Error(`bus topic '${topic}': '#' must be the last level`);
        return '**';
      }
      if (/[*$?#+]/.test(level)) throw new Error(`bus topic '${topic}': '${level}' holds a character zenoh reserves`);
      return level;
    })
    .join('/');
}

/**
 * The locator zenoh-ts wants for a remote-api plugin: `ws/host:port` or `ws://host:port` (both accepted
 * by zenoh-ts), also written as `zenoh+ws://host:port` or `zenoh://host:port` in our config.
 */
export function zenohLocator(url: string): string {
  const match = /^(?:zenoh\+)?(wss?):\/\/(.+)$/.exec(url) ?? /^(wss?)\/(.+)$/.exec(url);
  if (match) return `${match[1]}://${match[2]}`;
  const bare = /^zenoh:\/\/(.+)$/.exec(url);
  if (bare) return `ws://${bare[1]}`;
  throw new Error(`bus url '${url}' is not a zenoh remote-api locator (expected ws://host:port)`);
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Zenoh through @eclipse-zenoh/zenoh-ts, a client of a zenohd router's remote-api plugin. zenoh-ts's
 * open() retries for about 34 minutes before failing, so connect() stops waiting after
 * connectTimeoutMs and lets that one open() go on in the background: the session is adopted if it
 * opens later, and a new open() starts (with backoff) only after the previous one settled.
 */
export class ZenohTransport implements BusTransport {
  readonly kind = 'zenoh' as const;
  readonly url: string;
  private readonly logger = new Logger(ZenohTransport.name);
  private readonly state: TransportState;
  private readonly handlers = new Map<string, Set<BusPayloadHandler>>();
  private readonly factory: ZenohSessionFactory;
  private session: ZenohSession | null = null;
  private opening = false;
  private closed = false;
  private attempt = 0;
  private retryTimer: NodeJS.Timeout | null = null;
  private livenessTimer: NodeJS.Timeout | null = null;
  private outageLogged = false;

  constructor(private readonly options: ZenohTransportOptions) {
    this.url = options.url;
    this.state = new TransportState(options.epochMs ?? Date.now);
    this.factory = options.sessionFactory ?? openZenohTsSession;
  }

  get connected(): boolean {
    return this.state.connected;
  }

  get lastError(): string | null {
    return this.state.lastError;
  }

  connect(): Promise<void> {
    if (this.closed || this.state.connected) return Promise.resolve();
    return this.state.untilConnected(
      this.options.connectTimeoutMs,
      (giveUp) => this.open(giveUp),
      () => {
        if (!this.state.connected && this.state.lastError === null) {
          this.state.lastError = `router did not answer within ${this.options.connectTimeoutMs} ms`;
        }
      },
    );
  }

  /** `reliable` is ignored: zenoh-ts put() resolves once the bytes are on the router's WebSocket. */
  async publish(topic: string, payload: Buffer | string): Promise<boolean> {
    const session = this.session;
    if (!session || !this.state.connected) {
      this.state.countDropped();
      return false;
    }
    let key: string;
    try {
      key = topicToKeyExpr(topic);
    } catch (error) {
      this.state.lastError = errorText(error);
      this.state.countDropped();
      return false;
    }
    const bytes = typeof payload === 'string' ? new TextEncoder().encode(payload) : new Uint8Array(payload);
    try {
      await session.put(key, bytes);
      this.state.countPublished();
      return true;
    } catch (error) {
      this.state.countDropped();
      this.lost(session, `put failed: ${errorText(error)}`);
      return false;
    }
  }

  subscribe(topic: string, handler: BusPayloadHandler): void {
    const key = topicToKeyExpr(topic);
    let set = this.handlers.get(key);
    if (!set) {
      set = new Set();
      this.handlers.set(key, set);
      if (this.session && this.state.connected) void this.declare(this.session, key);
    }
    set.add(handler);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.clearTimers();
    const session = this.session;
    this.session = null;
    this.state.set(false);
    if (session) await session.close().catch(() => undefined);
  }

  onStateChange(listener: (connected: boolean) => void): () => void {
    return this.state.onState(listener);
  }

  stats(): BusTransportStats {
    return this.state.stats();
  }

  /** One open() at a time; `settledEarly` lets connect() stop waiting when it fails for good. */
  private open(settledEarly: () => void = () => undefined): void {
    if (this.opening || this.closed || this.session) return;
    let locator: string;
    try {
      locator = zenohLocator(this.url);
    } catch (error) {
      this.fail(error, true);
      settledEarly();
      return;
    }
    this.opening = true;
    let opened: Promise<ZenohSession>;
    try {
      opened = this.factory(locator);
    } catch (error) {
      opened = Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    opened.then(
      (session) => {
        this.opening = false;
        void this.adopt(session);
      },
      (error: unknown) => {
        this.opening = false;
        const permanent = error instanceof ZenohUnavailableError;
        this.fail(error, permanent);
        if (permanent) settledEarly();
        else this.scheduleRetry();
      },
    );
  }

  private async adopt(session: ZenohSession): Promise<void> {
    if (this.closed) {
      // connect() gave up long ago and the service is gone; a late session must not leak.
      await session.close().catch(() => undefined);
      return;
    }
    try {
      for (const key of this.handlers.keys()) await this.declare(session, key, true);
    } catch (error) {
      this.fail(error, false);
      await session.close().catch(() => undefined);
      this.scheduleRetry();
      return;
    }
    if (this.closed) {
      await session.close().catch(() => undefined);
      return;
    }
    this.session = session;
    this.attempt = 0;
    this.outageLogged = false;
    if (this.state.set(true)) this.logger.log(`Zenoh bus connected to ${this.url}`);
    this.startLiveness(session);
  }

  private async declare(session: ZenohSession, key: string, rethrow = false): Promise<void> {
    try {
      await session.subscribe(key, (bytes) => this.deliver(key, bytes));
    } catch (error) {
      if (rethrow) throw error;
      this.lost(session, `subscribe to '${key}' failed: ${errorText(error)}`);
    }
  }

  private deliver(key: string, bytes: Uint8Array): void {
    const payload = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (const handler of this.handlers.get(key) ?? []) {
      try {
        handler(payload);
      } catch (error) {
        this.logger.error(`bus handler for '${key}' threw: ${errorText(error)}`);
      }
    }
  }

  private startLiveness(session: ZenohSession): void {
    const interval = this.options.livenessIntervalMs ?? 5000;
    const timeout = this.options.livenessTimeoutMs ?? 2000;
    this.livenessTimer = setInterval(() => {
      withTimeout(session.ping(), timeout, 'zenoh ping').catch((error: unknown) =>
        this.lost(session, errorText(error)),
      );
    }, interval);
    this.livenessTimer.unref();
  }

  /** The router stopped answering: drop the session and open a new one with backoff. */
  private lost(session: ZenohSession, why: string): void {
    if (this.session !== session) return;
    this.session = null;
    if (this.livenessTimer) clearInterval(this.livenessTimer);
    this.livenessTimer = null;
    this.state.lastError = why;
    if (this.state.set(false)) this.logger.warn(`Zenoh bus lost ${this.url} (${why}); reconnecting with backoff`);
    this.outageLogged = true;
    void session.close().catch(() => undefined);
    this.scheduleRetry();
  }

  private fail(error: unknown, permanent: boolean): void {
    this.state.lastError = errorText(error);
    if (permanent) {
      this.logger.error(`Zenoh bus cannot start: ${this.state.lastError}`);
    } else if (!this.outageLogged) {
      this.logger.warn(`Zenoh router ${this.url} not reachable: ${this.state.lastError}; retrying with backoff`);
      this.outageLogged = true;
    }
  }

  private scheduleRetry(): void {
    if (this.closed || this.retryTimer) return;
    const delay = backoffDelayMs(this.attempt, this.options.backoff ?? DEFAULT_BACKOFF);
    this.attempt += 1;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.open();
    }, delay);
    this.retryTimer.unref();
  }

  private clearTimers(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.livenessTimer) clearInterval(this.livenessTimer);
    this.retryTimer = null;
    this.livenessTimer = null;
  }
}

/** The parts of @eclipse-zenoh/zenoh-ts we call, typed here so the build does not need the optional package. */
interface ZenohTsModule {
  Config: new (locator: string, messageResponseTimeoutMs?: number) => unknown;
  Session: {
    open(config: unknown): Promise<{
      put(key: string, payload: Uint8Array): Promise<void>;
      declareSubscriber(
        key: string,
        options: { handler: (sample: { payload(): { toBytes(): Uint8Array } }) => void },
      ): Promise<unknown>;
      info(): Promise<unknown>;
      close(): Promise<void>;
    }>;
  };
}

const ZENOH_TS = '@eclipse-zenoh/zenoh-ts';

/** The real session factory: loads zenoh-ts on first use and explains what is missing when it cannot. */
export async function openZenohTsSession(locator: string): Promise<ZenohSession> {
  if (typeof (globalThis as { WebSocket?: unknown }).WebSocket !== 'function') {
    throw new ZenohUnavailableError(
      'zenoh-ts needs a global WebSocket: start Node 20 with --experimental-websocket (Node >= 22 has it built in)',
    );
  }
  let zenoh: ZenohTsModule;
  try {
    // A variable specifier keeps TypeScript from requiring the optional package at build time.
    zenoh = (await import(ZENOH_TS)) as ZenohTsModule;
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === 'ERR_MODULE_NOT_FOUND') {
      throw new ZenohUnavailableError(`${ZENOH_TS} is not installed (npm install ${ZENOH_TS}@1.10.1)`);
    }
    if (code === 'ERR_UNKNOWN_FILE_EXTENSION') {
      throw new ZenohUnavailableError(
        `${ZENOH_TS} imports a .wasm module: start Node with --experimental-wasm-modules (${errorText(error)})`,
      );
    }
    throw new ZenohUnavailableError(`${ZENOH_TS} failed to load: ${errorText(error)}`);
  }
  const session = await zenoh.Session.open(new zenoh.Config(locator));
  return {
    put: (key, payload) => session.put(key, payload),
    subscribe: async (key, handler) => {
      await session.declareSubscriber(key, { handler: (sample) => handler(sample.payload().toBytes()) });
    },
    ping: async () => {
      await session.info();
    },
    close: () => session.close(),
  };
}
