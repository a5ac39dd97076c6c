import { Controller, Get, Headers, Query, Req, Res } from '@nestjs/common';
import { ApiHeader, ApiOkResponse, ApiProduces, ApiQuery, ApiTags } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { BackendStateService } from '../backend-state/backend-state.service.js';
import { Clock } from '../common/clock.js';
import { ModelLifecycleService } from '../models/model-lifecycle.service.js';
import { ModelsService } from '../models/models.service.js';
import { EventsService, type StateEvent } from './events.service.js';

/**
 * Proxies and load balancers cut streams idle for 30-60 s (28 s of silence were seen): a comment line goes out
 * whenever nothing was written for this long. Checked every KEEPALIVE_TICK_MS, so the longest silence is their sum.
 */
export const KEEPALIVE_AFTER_MS = 14_000;
const KEEPALIVE_TICK_MS = 1_000;
/**
 * A subscriber that stops reading would make us buffer every event for it forever. Past this many unsent bytes
 * its connection is cut (ending it would still wait for the backlog to drain); EventSource reconnects with
 * Last-Event-ID and gets what it missed from the history.
 */
export const MAX_UNSENT_BYTES = 1024 * 1024;
/** Live events held back while the history is replayed; more means the client is far behind: cut, it resumes. */
const MAX_QUEUED_WHILE_REPLAYING = 200;
/** Sent first: how long EventSource waits before reconnecting (a restart takes a few seconds). */
const RETRY_MS = 3_000;

@Controller()
export class EventsController {
  constructor(
    private readonly events: EventsService,
    private readonly backendState: BackendStateService,
    private readonly lifecycle: ModelLifecycleService,
    private readonly models: ModelsService,
    private readonly clock: Clock,
  ) {}

  /**
   * SSE stream of state changes. `?since=<seq>` replays the buffered ones first; a reconnecting EventSource's
   * `Last-Event-ID` wins over it, so a reconnect does not replay what the client already has.
   */
  @Get('api/events')
  @ApiTags('events')
  @ApiProduces('text/event-stream')
  @ApiQuery({ name: 'since', required: false, type: Number, description: 'Replay buffered events after this seq' })
  @ApiHeader({ name: 'last-event-id', required: false, description: 'Sent by EventSource on reconnect; wins' })
  @ApiOkResponse({
    description: 'SSE: id/event/data blocks (data is the event JSON with seq, type, at_ms), keep-alive comments',
    content: { 'text/event-stream': { schema: { type: 'string' } } },
  })
  stream(
    @Query('since') since: string | undefined,
    @Headers('last-event-id') lastEventId: string | undefined,
    @Req() request: FastifyRequest,
    @Res() reply: FastifyReply,
  ): void {
    reply.hijack();
    const raw = reply.raw;
    raw.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      // nginx buffers proxied responses by default, which would hold events back.
      'x-accel-buffering': 'no',
      'x-request-id': String(request.id),
    });
    let lastWriteMs = this.clock.nowMs();
    const gone = (): boolean => raw.writableEnded || raw.destroyed;
    /** Answers whether the socket takes more now (false: wait for 'drain'). */
    const write = (text: string): boolean => {
      if (gone()) return false;
      const more = raw.write(text);
      lastWriteMs = this.clock.nowMs();
      return more;
    };
    const format = (e: StateEvent): string => `id: ${e.seq}\nevent: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`;
    // Live events that arrive while the history is replayed wait their turn, so the order is kept.
    let queued: StateEvent[] | null = [];
    const live = (e: StateEvent): void => {
      if (queued) {
        if (queued.push(e) > MAX_QUEUED_WHILE_REPLAYING) raw.destroy();
        return;
      }
      write(format(e));
      if (raw.writableLength > MAX_UNSENT_BYTES) raw.destroy();
    };
    const off = this.events.subscribe(live);
    const from = resumeFrom(lastEventId) ?? resumeFrom(since);
    const replay = async (): Promise<void> => {
      write(`retry: ${RETRY_MS}\n\n`);
      // The history can be megabytes: replayed at the pace the client reads it, not buffered all at once.
      for (const e of from === null ? [] : this.events.since(from)) {
        if (!write(format(e))) await drained(raw);
        if (gone()) return;
      }
      write(': connected\n\n');
      const pending = queued ?? [];
      queued = null;
      pending.forEach(live);
    };
    void replay();
    // A real timer (unref'd: it never holds the process up) reading the injected clock, so tests move time.
    const keepAlive = setInterval(() => {
      if (this.clock.nowMs() - lastWriteMs >= KEEPALIVE_AFTER_MS) write(': keep-alive\n\n');
    }, KEEPALIVE_TICK_MS).unref();
    // Shutdown ends the response (endStreamsOnShutdown); either way the subscription and timer go with it.
    raw.once('close', () => {
      off();
      clearInterval(keepAlive);
    });
  }
}

function resumeFrom(value: string | undefined): number | null {
  if (value === undefined || !/^\d{1,15}$/.test(value.trim())) return null;
  return Number(value.trim());
}

function drained(raw: FastifyReply['raw']): Promise<void> {
  if (raw.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      raw.off('drain', done);
      raw.off('close', done);
      resolve();
    };
    raw.once('drain', done);
    raw.once('close', done);
  });
}
