import { Controller, Get, Header, Query, Req, Res } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { BackendStateService } from '../backend-state/backend-state.service.js';
import { Readiness } from '../backend-state/readiness.js';
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

  /** Prometheus text exposition; hand-written to stay dependency-free. */
  @Get('metrics')
  @Header('content-type', 'text/plain; version=0.0.4; charset=utf-8')
  metrics(): string {
    const lines: string[] = [];
    const metric = (
      name: string,
      help: string,
      type: 'gauge' | 'counter',
      samples: [Record<string, string>, number][],
    ): void => {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
      for (const [labels, value] of samples) {
        const text = Object.entries(labels)
          .map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`)
          .join(',');
        lines.push(`${name}${text ? `{${text}}` : ''} ${value}`);
      }
    };
    const snapshot = this.backendState.snapshot();
    const readinessValues = Object.values(Readiness);
    metric(
      'modelplane_readiness',
      'Aggregate readiness (1 for the current value).',
      'gauge',
      readinessValues.map((r) => [{ readiness: r }, snapshot.readiness === r ? 1 : 0]),
    );
    metric(
      'modelplane_backend_readiness',
      'Backend readiness (1 for the current value).',
      'gauge',
      snapshot.backends.flatMap((b) =>
        readinessValues.map((r): [Record<string, string>, number] => [
          { backend: b.name, readiness: r },
          b.readiness === r ? 1 : 0,
        ]),
      ),
    );
    const health = this.models.healthModels();
    metric(
      'modelplane_model_loaded',
      'Model resident per modelplane (in-process handle or last observation).',
      'gauge',
      Object.entries(health).map(([id, m]) => [{ model: id }, m.state === 'loaded' ? 1 : 0]),
    );
    metric(
      'modelplane_model_in_flight',
      'Requests holding a lease on the model.',
      'gauge',
      Object.entries(health).map(([id, m]) => [{ model: id }, m.in_flight]),
    );
    metric(
      'modelplane_model_idle_seconds',
      'Seconds since the last request ended (loaded models).',
      'gauge',
      Object.entries(health)
        .filter(([, m]) => m.idle_seconds !== null)
        .map(([id, m]) => [{ model: id }, m.idle_seconds ?? 0]),
    );
    metric(
      'modelplane_events_total',
      'State events by type (unloads by reason).',
      'counter',
      [...this.events.counts()].map(([type, n]) => [{ type }, n]),
    );
    metric('modelplane_requests_in_flight', 'Requests holding a lease, all models.', 'gauge', [
      [{}, this.lifecycle.totalInFlight()],
    ]);
    return `${lines.join('\n')}\n`;
  }
}
