import { type Clock, SystemClock } from '../common/clock.js';
import { errorText } from '../common/errors.js';
import { Logger } from '@nestjs/common';
import {
  type BackoffOptions,
  type BusPayloadHandler,
  type BusTransport,
  type BusTransportStats,
  Reconnector,
  TopicHandlers,
  TransportState,
} from './transport.js';
import { topicToKeyExpr, zenohLocator } from './zenoh-keys.js';
import {
  openZenohTsSession,
  type ZenohSession,
  type ZenohSessionFactory,
  ZenohUnavailableError,
} from './zenoh-session.js';

export interface ZenohTransportOptions {
  url: string;
  connectTimeoutMs: number;
  /** Connect deadline, backoff and liveness wait on this; the system clock when absent. */
  clock?: Clock;
  sessionFactory?: ZenohSessionFactory;
  backoff?: BackoffOptions;
  /** How often the session is pinged; zenoh-ts itself never notices a dead router. */
  livenessIntervalMs?: number;
  livenessTimeoutMs?: number;
}

async function withTimeout<T>(clock: Clock, promise: Promise<T>, ms: number, what: string): Promise<T> {
  // Aborted once the race is decided, so an answered ping leaves no deadline pending on the clock.
  const deadline = new AbortController();
  const timeout = clock.delay(ms, deadline.signal).then(
    () => Promise.reject(new Error(`${what} timed out after ${ms} ms`)),
    () => new Promise<never>(() => undefined),
  );
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    deadline.abort();
  }
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
  private readonly handlers = new TopicHandlers();
  private readonly reconnector: Reconnector;
  private readonly clock: Clock;
  private readonly factory: ZenohSessionFactory;
  private session: ZenohSession | null = null;
  private opening = false;
  private closed = false;
  /** Aborts the liveness loop of the current session. */
  private liveness: AbortController | null = null;
  private outageLogged = false;

  constructor(private readonly options: ZenohTransportOptions) {
    this.url = options.url;
    this.clock = options.clock ?? new SystemClock();
    this.state = new TransportState(this.clock);
    this.factory = options.sessionFactory ?? openZenohTsSession;
    this.reconnector = new Reconnector(options.backoff, this.clock);
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
    if (this.handlers.add(key, handler) && this.session && this.state.connected) void this.declare(this.session, key);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.clearTimers();
    const session = this.session;
    this.session = null;
    this.state.close();
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
      for (const key of this.handlers.topics()) await this.declare(session, key, true);
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
    this.reconnector.reset();
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
    this.handlers.dispatch(key, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), this.logger);
  }

  private startLiveness(session: ZenohSession): void {
    const interval = this.options.livenessIntervalMs ?? 5000;
    const timeout = this.options.livenessTimeoutMs ?? 2000;
    this.stopLiveness();
    const liveness = new AbortController();
    this.liveness = liveness;
    void (async () => {
      // One ping per interval, never two at once: the next interval starts when the previous ping settled.
      while (!liveness.signal.aborted) {
        try {
          await this.clock.delay(interval, liveness.signal);
        } catch {
          return;
        }
        try {
          await withTimeout(this.clock, session.ping(), timeout, 'zenoh ping');
        } catch (error) {
          this.lost(session, errorText(error));
          return;
        }
      }
    })();
  }

  private stopLiveness(): void {
    this.liveness?.abort();
    this.liveness = null;
  }

  /** The router stopped answering: drop the session and open a new one with backoff. */
  private lost(session: ZenohSession, why: string): void {
    if (this.session !== session) return;
    this.session = null;
    this.stopLiveness();
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
    if (this.closed || this.reconnector.pending) return;
    this.reconnector.schedule(this.reconnector.nextDelayMs(), () => this.open());
  }

  private clearTimers(): void {
    this.reconnector.cancel();
    this.stopLiveness();
  }
}
