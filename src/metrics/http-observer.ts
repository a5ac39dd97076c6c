import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { Clock } from '../common/clock.js';
import { MODEL_ID_PATTERN } from '../common/model-id.js';
import type { MetricsService } from './metrics.service.js';

/** Label for requests no route matched: the raw URL would make one series per scanner probe. */
export const UNMATCHED_ROUTE = 'unmatched';

/** The model a request is about, when it names one (body `model` or the `:id` route parameter). */
function modelOf(request: FastifyRequest): string | null {
  const body = request.body as { model?: unknown } | undefined;
  const params = request.params as { id?: unknown } | undefined;
  const candidate = typeof body?.model === 'string' ? body.model : params?.id;
  return typeof candidate === 'string' && MODEL_ID_PATTERN.test(candidate) ? candidate : null;
}

/**
 * Times every request with the injected clock and, when its connection is done with it (also for
 * hijacked SSE replies, which skip Fastify's onResponse), records the duration histogram by route
 * template and writes the one access log line.
 */
export function observeRequests(
  fastify: FastifyInstance,
  deps: { clock: Clock; metrics: MetricsService; log: Logger },
): void {
  fastify.addHook('onRequest', async (request, reply) => {
    const started = deps.clock.nowMs();
    reply.raw.once('close', () => {
      const seconds = Math.max(0, deps.clock.nowMs() - started) / 1000;
      const route = request.routeOptions.url ?? UNMATCHED_ROUTE;
      const status = reply.raw.statusCode;
      deps.metrics.httpRequest(route, request.method, status, seconds);
      const level = status >= 500 ? 'error' : status >= 400 ? 'warn' : 'info';
      // A level that is off (log_level: error drops the 2xx lines) builds no line at all.
      if (!deps.log.isLevelEnabled(level)) return;
      deps.log[level](
        {
          req_id: String(request.id),
          method: request.method,
          route,
          url: request.url,
          status,
          model: modelOf(request),
          duration_ms: Math.round(seconds * 1e6) / 1000,
          aborted: !reply.raw.writableFinished,
        },
        'request completed',
      );
    });
  });
}
