/**
 * The one seam between the bus service and a pub/sub library. Two rules every transport keeps:
 * `connected` is true only after the broker/router acknowledged us (a session opened in the wrong
 * mode once published nothing while claiming to be up), and publish never throws: a message that
 * cannot go out is dropped and counted so /health shows it.
 */
import type { Logger } from '@nestjs/common';
import { type Clock, SystemClock } from '../common/clock.js';
import { errorText } from '../common/errors.js';

export type BusTransportKind = 'mqtt' | 'zenoh';

export type BusPayloadHandler = (payload: Buffer) => void;

export type BusStateListener = (connected: boolean) => void;

export interface PublishOptions {
  /**
   * Ask the transport for its acknowledged delivery (MQTT QoS 1) — for replies a requester waits on.
   * Heartbeats are superseded by the next one and go best-effort (QoS 0).
   */
  reliable?: boolean;
}

export interface BackoffOptions {
  /** First reconnect delay; doubles per failed attempt. */
  initialMs: number;
  maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 500, maxMs: 30_000 };

export interface BusTransportStats {
  published: number;
  dropped: number;
  /** Wall-clock ms of the last message the transport handed over successfully; null before any. */
  lastPublishMs: number | null;
  /** The last connection problem, for /health; null once connected. */
  lastError: string | null;
}

export interface BusTransport {
  readonly kind: BusTransportKind;
  readonly url: string;
  /** true only after the broker/router acknowledged the session. */
  readonly connected: boolean;
  /** The last connection problem (null while connected), for /health. */
  readonly lastError: string | null;
  /**
   * Starts connecting (and keeps retrying in the background). Resolves once connected or after the
   * connect timeout, whichever comes first, and never rejects: start-up must not wait on a broker.
   */
  connect(): Promise<void>;
  /**
   * Resolves true once the message was handed to the broker/router (for `reliable`, once it
   * acknowledged it); false when it was dropped (disconnected, or the send failed) and counted.
   * Never rejects, never throws.
   */
  publish(topic: string, payload: Buffer | string, options?: PublishOptions): Promise<boolean>;
  /** Registers a handler; subscriptions survive reconnects. */
  subscribe(topic: string, handler: BusPayloadHandler): void;
  close(): Promise<void>;
  /** Called on every flip of `connected`. Returns an unsubscribe function. */
  onStateChange(listener: BusStateListener): () => void;
  stats(): BusTransportStats;
}

/** Exponential reconnect delay: initial, 2×initial, 4×initial … capped at max. */
export function backoffDelayMs(attempt: number, backoff: BackoffOptions): number {
  return Math.min(backoff.maxMs, backoff.initialMs * 2 ** Math.min(attempt, 30));
}

/** Shared bookkeeping for the transports: counters, state flips and their listeners. */
export class TransportState {
  published = 0;
  dropped = 0;
  lastPublishMs: number | null = null;
  lastError: string | null = null;
  private connectedNow = false;
  private readonly listeners = new Set<BusStateListener>();
  /** Ends the connect() wait in progress, if any. */
  private endConnectWait: (() => void) | null = null;

  constructor(private readonly clock: Clock) {}

  get connected(): boolean {
    return this.connectedNow;
  }

  /** Returns true when this call flipped the state. */
  set(connected: boolean): boolean {
    if (this.connectedNow === connected) return false;
    this.connectedNow = connected;
    if (connected) this.lastError = null;
    for (const listener of [...this.listeners]) {
      try {
        listener(connected);
      } catch {
        // A listener's bug must not break the transport's reconnect logic.
      }
    }
    return true;
  }

  countPublished(): void {
    this.published += 1;
    this.lastPublishMs = this.clock.epochMs();
  }

  countDropped(): void {
    this.dropped += 1;
  }

  onState(listener: BusStateListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Runs `start` and resolves once connected, once `start` gives up, or after `timeoutMs` (then
   * `onTimeout` runs first) — whichever comes first. Start-up never waits on a broker beyond the bound.
   */
  untilConnected(timeoutMs: number, start: (giveUp: () => void) => void, onTimeout?: () => void): Promise<void> {
    return new Promise<void>((resolve) => {
      let settled = false;
      // Aborted when connected or given up first, so no connect deadline stays pending on the clock.
      const deadline = new AbortController();
      const done = (): void => {
        if (settled) return;
        settled = true;
        deadline.abort();
        off();
        if (this.endConnectWait === done) this.endConnectWait = null;
        resolve();
      };
      this.endConnectWait = done;
      this.clock.delay(timeoutMs, deadline.signal).then(
        () => {
          if (settled) return;
          onTimeout?.();
          done();
        },
        () => undefined,
      );
      const off = this.onState((connected) => {
        if (connected) done();
      });
      start(done);
    });
  }

  /** The transport closed: a connect() still waiting returns now, and leaves no deadline pending. */
  close(): void {
    this.endConnectWait?.();
    this.set(false);
  }

  stats(): BusTransportStats {
    return {
      published: this.published,
      dropped: this.dropped,
      lastPublishMs: this.lastPublishMs,
      lastError: this.lastError,
    };
  }
}

/** The handlers per topic (or key) of one transport; subscriptions outlive connections, so they live here. */
export class TopicHandlers {
  private readonly byTopic = new Map<string, Set<BusPayloadHandler>>();

  /** Returns true when the topic is new, i.e. the caller must subscribe at the broker now. */
  add(topic: string, handler: BusPayloadHandler): boolean {
    let set = this.byTopic.get(topic);
    const added = set === undefined;
    if (!set) {
      set = new Set();
      this.byTopic.set(topic, set);
    }
    set.add(handler);
    return added;
  }

  topics(): string[] {
    return [...this.byTopic.keys()];
  }

  /** Hands a message to every handler of its topic; one handler's bug reaches neither the others nor the transport. */
  dispatch(topic: string, payload: Buffer, logger: Logger): void {
    for (const handler of this.byTopic.get(topic) ?? []) {
      try {
        handler(payload);
      } catch (error) {
        logger.error(`bus handler for '${topic}' threw: ${errorText(error)}`);
      }
    }
  }
}

/** Reconnect attempts with exponential backoff, waited out on the clock; a pending retry never keeps the process alive. */
export class Reconnector {
  private attempt = 0;
  private waiting: AbortController | null = null;

  constructor(
    readonly backoff: BackoffOptions = DEFAULT_BACKOFF,
    private readonly clock: Clock = new SystemClock(),
  ) {}

  get pending(): boolean {
    return this.waiting !== null;
  }

  /** The delay before the next attempt; counts the attempt. */
  nextDelayMs(): number {
    const delay = backoffDelayMs(this.attempt, this.backoff);
    this.attempt += 1;
    return delay;
  }

  /** Connected again: the next outage starts from the initial delay. */
  reset(): void {
    this.attempt = 0;
  }

  /** Runs `retry` after `delayMs`, replacing a retry already pending. */
  schedule(delayMs: number, retry: () => void): void {
    this.cancel();
    const waiting = new AbortController();
    this.waiting = waiting;
    this.clock.delay(delayMs, waiting.signal).then(
      () => {
        if (this.waiting !== waiting) return;
        this.waiting = null;
        retry();
      },
      () => undefined,
    );
  }

  cancel(): void {
    this.waiting?.abort();
    this.waiting = null;
  }
}
