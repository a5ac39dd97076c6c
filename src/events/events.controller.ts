import { Controller, Get, Query, Req, Res } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { BackendStateService } from '../backend-state/backend-state.service.js';
import { ModelLifecycleService } from '../models/model-lifecycle.service.js';
import { ModelsService } from '../models/models.service.js';
import { EventsService } from './events.service.js';

@Controller()
export class EventsController {
  constructor(
    private readonly events: EventsService,
    private readonly backendState: BackendStateService,
    private readonly lifecycle: ModelLifecycleService,
    private readonly models: ModelsService,
  ) {}

  /** SSE stream of state changes; `?since=<seq>` replays the buffered ones first. */
  @Get('api/events')
  stream(@Query('since') since: string | undefined, @Req() request: FastifyRequest, @Res() reply: FastifyReply): void {
    reply.hijack();
    const raw = reply.raw;
    raw.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      'x-request-id': String(request.id),
    });
    const send = (e: { seq: number; type: string }): void => {
      raw.write(`id: ${e.seq}\nevent: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`);
    };
    const from = Number(since);
    if (Number.isFinite(from)) this.events.since(from).forEach(send);
    raw.write(': connected\n\n');
    const off = this.events.subscribe(send);
    raw.on('close', off);
  }
}
