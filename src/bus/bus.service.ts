import {
  type BeforeApplicationShutdown,
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
  Optional,
} from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { BackendStateService } from '../backend-state/backend-state.service.js';
import { Clock } from '../common/clock.js';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { BusTransportFactory } from './bus-transport.factory.js';
import { errorFields, parseBusRequest, type BusRequest, type BusResponse } from './bus.protocol.js';
import {
  BUS_OPTIONS,
  BusChatHandler,
  type BusOptions,
  BusStatusSource,
  DEFAULT_BUS_OPTIONS,
  type StatusSnapshot,
} from './bus.ports.js';
import type { BusTransport, BusTransportKind } from './transport.js';

export const HEARTBEAT_INTERVAL_NAME = 'bus-heartbeat';

/** Bound on waiting for aborted bus requests to send their replies at shutdown. */
const SHUTDOWN_REPLY_GRACE_MS = 1000;
/** At most one log line per this period about undeliverable garbage, so a noisy peer cannot flood logs. */
const GARBAGE_LOG_EVERY_MS = 10_000;

/** The heartbeat on the status topic: the contract fields of the status snapshot plus `seq`. */
export interface BusHeartbeat {
  service: 'modelplane';
  status: StatusSnapshot['readiness'];
  readiness: StatusSnapshot['readiness'];
  reason: string | null;
  backend_initialized: boolean;
  last_transition_ms: number;
  timestamp_ms: number;
  backends: StatusSnapshot['backends'];
  seq: number;
}

/** The `bus` section of GET /health. */
export interface BusStatus {
  enabled: boolean;
  connected: boolean;
  transport: BusTransportKind;
  url: string;
  last_publish_ms: number | null;
  published: number;
  dropped: number;
  last_error: string | null;
}

/**
 * Pub/sub face of modelplane (opt-in): heartbeat on the status topic, chat requests on the request
 * topic answered on the response topic. Requests go through the same admission door as HTTP
 * (BusChatHandler); a failing request is answered and never changes readiness.
 */
@Injectable()
export class BusService implements OnApplicationBootstrap, BeforeApplicationShutdown, OnApplicationShutdown {
  private readonly logger = new Logger('Bus');
  private readonly options: BusOptions;
  private transport: BusTransport | null = null;
  private seq = 0;
  private published = 0;
  private dropped = 0;
  private lastPublishMs: number | null = null;
  private readonly inFlight = new Map<AbortController, Promise<void>>();
  private stopping = false;
  private transitionQueued = false;
  private offTransition: (() => void) | null = null;
  private offState: (() => void) | null = null;
  private garbageSinceLog = 0;
  private lastGarbageLogMs = Number.NEGATIVE_INFINITY;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly clock: Clock,
    private readonly backendState: BackendStateService,
    private readonly statusSource: BusStatusSource,
    private readonly chatHandler: BusChatHandler,
    private readonly scheduler: SchedulerRegistry,
    private readonly transports: BusTransportFactory,
    @Optional() @Inject(BUS_OPTIONS) options: Partial<BusOptions> | null,
  ) {
    this.options = { ...DEFAULT_BUS_OPTIONS, ...(options ?? {}) };
  }

  onApplicationBootstrap(): void {
    const bus = this.config.bus;
    if (!bus.enabled) return;
    const transport = this.transports.create(bus);
    this.transport = transport;
    transport.subscribe(bus.topics.request, (payload) => this.onRequest(payload));
    this.offState = transport.onStateChange((connected) => {
      // The flight controller learns our state right after (re)connect, not up to heartbeatS later.
      if (connected) void this.publishHeartbeat();
    });
    this.offTransition = this.backendState.onTransition(() => this.heartbeatSoon());
    const interval = setInterval(() => void this.publishHeartbeat(), bus.heartbeatS * 1000);
    this.scheduler.addInterval(HEARTBEAT_INTERVAL_NAME, interval);
    this.logger.log(`Bus on: ${bus.transport} ${bus.url}, heartbeat every ${bus.heartbeatS} s on ${bus.topics.status}`);
    // Not awaited: start-up never waits on the broker; the transport retries in the background.
    void transport.connect();
  }

  beforeApplicationShutdown(): void {
    // Requests arriving while the app drains are answered with shutting_down instead of admitted.
    this.stopping = true;
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopping = true;
    if (this.scheduler.doesExist('interval', HEARTBEAT_INTERVAL_NAME)) {
      this.scheduler.deleteInterval(HEARTBEAT_INTERVAL_NAME);
    }
    this.offTransition?.();
    this.offState?.();
    this.offTransition = this.offState = null;
    if (this.inFlight.size > 0) {
      for (const controller of this.inFlight.keys()) controller.abort(new Error('bus shutting down'));
      await Promise.race([Promise.allSettled(this.inFlight.values()), this.clock.delay(SHUTDOWN_REPLY_GRACE_MS)]);
    }
    await this.transport?.close();
  }

  status(): BusStatus {
    return {
      enabled: this.config.bus.enabled,
      connected: this.transport?.connected ?? false,
      transport: this.config.bus.transport,
      url: this.config.bus.url,
      last_publish_ms: this.lastPublishMs,
      published: this.published,
      dropped: this.dropped,
      last_error: this.transport?.lastError ?? null,
    };
  }

  /** Publishes one heartbeat now (the interval calls this; so can tests). Resolves false when dropped. */
  async publishHeartbeat(): Promise<boolean> {
    if (!this.transport) return false;
    let snapshot: StatusSnapshot;
    try {
      snapshot = await this.statusSource.snapshot();
    } catch (err) {
      this.logger.error(`Heartbeat skipped: status snapshot failed: ${(err as Error).message}`);
      return false;
    }
    const heartbeat: BusHeartbeat = {
      service: 'modelplane',
      // `status` mirrors readiness for older clients that read only `status`.
      status: snapshot.readiness,
      readiness: snapshot.readiness,
      reason: snapshot.reason,
      backend_initialized: snapshot.backend_initialized,
      last_transition_ms: snapshot.last_transition_ms,
      timestamp_ms: this.clock.epochMs(),
      backends: snapshot.backends,
      // Assigned after the snapshot resolved, so seq order is publish order even when calls overlap.
      seq: ++this.seq,
    };
    return this.publish(this.config.bus.topics.status, heartbeat, false);
  }

  /** Several transitions in one tick (e.g. initialized + ready) become one heartbeat with the final state. */
  private heartbeatSoon(): void {
    if (this.transitionQueued) return;
    this.transitionQueued = true;
    queueMicrotask(() => {
      this.transitionQueued = false;
      void this.publishHeartbeat();
    });
  }

  private onRequest(payload: Buffer): void {
    // Decided before this request joins the map, and synchronously, so a burst cannot slip past the cap.
    const overCap = this.inFlight.size >= this.options.maxInFlight;
    const controller = new AbortController();
    const done = this.handleRequest(payload, controller, overCap)
      .catch((err: unknown) => this.logger.error(`Bus request handling failed: ${(err as Error).message}`))
      .finally(() => this.inFlight.delete(controller));
    this.inFlight.set(controller, done);
  }

  private async handleRequest(payload: Buffer, controller: AbortController, overCap: boolean): Promise<void> {
    const parsed = parseBusRequest(payload);
    if (!parsed.ok) {
      if (parsed.requestId === null) {
        this.logGarbage(parsed.message, payload);
        return;
      }
      await this.reply(
        this.failure(parsed.requestId, parsed.model, 0, { error: 'invalid_request', message: parsed.message }),
      );
      return;
    }
    const req = parsed.request;
    if (this.stopping) {
      await this.reply(
        this.failure(req.request_id, req.model, 0, { error: 'shutting_down', message: 'modelplane is shutting down' }),
      );
      return;
    }
    if (overCap) {
      await this.reply(
        this.failure(req.request_id, req.model, 0, {
          error: 'too_many_requests',
          message: `more than ${this.options.maxInFlight} bus requests in flight; retry later`,
        }),
      );
      return;
    }
    await this.reply(await this.infer(req, controller.signal));
  }

  private async infer(req: BusRequest, signal: AbortSignal): Promise<BusResponse> {
    const started = this.clock.nowMs();
    try {
      const res = await this.chatHandler.chat(
        { model: req.model, messages: req.messages, max_tokens: req.max_tokens, temperature: req.temperature },
        signal,
      );
      return {
        request_id: req.request_id,
        model: req.model,
        content: res.choices[0]?.message.content ?? '',
        inference_time_ms: this.elapsedSince(started),
        timestamp_ms: this.clock.epochMs(),
      };
    } catch (err) {
      const fields = errorFields(err);
      if (fields.error === 'inference failed') {
        this.logger.warn(`Bus request ${String(req.request_id)} on '${req.model}' failed: ${fields.message ?? ''}`);
      }
      return this.failure(req.request_id, req.model, this.elapsedSince(started), fields);
    }
  }

  private failure(
    requestId: BusResponse['request_id'],
    model: string | null,
    inferenceMs: number,
    fields: Pick<BusResponse, 'error' | 'message' | 'reason' | 'readiness'>,
  ): BusResponse {
    return {
      request_id: requestId,
      model,
      content: '',
      inference_time_ms: inferenceMs,
      timestamp_ms: this.clock.epochMs(),
      ...fields,
    };
  }

  private elapsedSince(startedMs: number): number {
    return Math.max(0, Math.round(this.clock.nowMs() - startedMs));
  }

  private reply(response: BusResponse): Promise<boolean> {
    return this.publish(this.config.bus.topics.response, response, true);
  }

  private async publish(topic: string, body: object, reliable: boolean): Promise<boolean> {
    const transport = this.transport;
    if (!transport) return false;
    const ok = await transport.publish(topic, JSON.stringify(body), { reliable });
    if (ok) {
      this.published++;
      this.lastPublishMs = this.clock.epochMs();
    } else {
      this.dropped++;
    }
    return ok;
  }

  private logGarbage(why: string, payload: Buffer): void {
    this.garbageSinceLog++;
    const now = this.clock.nowMs();
    if (now - this.lastGarbageLogMs < GARBAGE_LOG_EVERY_MS) return;
    const preview = payload.toString('utf8', 0, Math.min(payload.length, 80)).replace(/[^\x20-\x7e]/g, '.');
    this.logger.warn(
      `Dropped ${this.garbageSinceLog} bus message(s) without a readable request_id on ${this.config.bus.topics.request}: ${why} (latest starts '${preview}')`,
    );
    this.garbageSinceLog = 0;
    this.lastGarbageLogMs = now;
  }
}
