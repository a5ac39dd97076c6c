/**
 * Warm routing on the wire: a Fastify preHandler on the inference routes. It runs after the API key check
 * (onRequest) and the bounded JSON parse, before the handler. Every answer says which node served it
 * (`x-modelplane-node`). A request that carries `x-modelplane-forwarded` was routed by another node: it is
 * served here whatever this node's routing would say, and if the model is not this node's own (it resolves
 * to a peer backend), it is refused rather than sent on. That holds for inference and for the admin
 * load/unload a peer forwards, so a request is forwarded at most once and loops are impossible. A peer that
 * cannot be reached is probed at once (evidence) and the request is served here.
 */
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { RelayedAnswer } from '../providers/remote/peer-relay.js';
import { ProbeService } from '../models/probe.service.js';
import { FORWARDED_HEADER, NODE_HEADER } from '../providers/remote/modelplane.provider.js';
import { NotServedHereError } from './fleet-errors.js';
import { FleetRouterService, type Route } from './fleet-router.service.js';
import { FleetViewService } from './fleet-view.service.js';

const ROUTED = new Set(['/v1/chat/completions', '/v1/completions', '/v1/embeddings', '/v1/images/generations']);
/** Admin routes a peer forwards to (ModelplaneProvider load/unload): the model is the `:id` parameter. */
const ADMIN_FORWARDED = new Set(['/api/models/:id/load', '/api/models/:id/unload']);
/** Client headers a peer needs to answer as this node would (its key, the request id, content negotiation). */
const PASSED = ['authorization', 'x-api-key', 'accept'] as const;
/** Peer answer headers the client should see. */
const RETURNED = ['content-type', 'cache-control', 'retry-after', NODE_HEADER] as const;

export function installFleetRouting(app: NestFastifyApplication): void {
  const router = app.get(FleetRouterService);
  const view = app.get(FleetViewService);
  const probes = app.get(ProbeService);
  const fastify = app.getHttpAdapter().getInstance();
  fastify.addHook('onClose', () => router.close());
  fastify.addHook('preHandler', async (request: FastifyRequest, reply: FastifyReply) => {
    if (request.method !== 'POST') return;
    const routeUrl = request.routeOptions.url ?? '';
    const forwardedBy = request.headers[FORWARDED_HEADER];
    if (ADMIN_FORWARDED.has(routeUrl)) {
      const id = (request.params as { id?: unknown }).id;
      if (forwardedBy !== undefined && typeof id === 'string') refuseSecondHop(router, id, view.nodeName, forwardedBy);
      return;
    }
    if (!ROUTED.has(routeUrl)) return;
    const body = request.body;
    const model =
      typeof body === 'object' && body !== null && typeof (body as { model?: unknown }).model === 'string'
        ? (body as { model: string }).model
        : null;
    // A forwarded request is answered here, served or refused: this node is the one that answers.
    const answering = model === null || forwardedBy !== undefined ? view.nodeName : router.servingNode(model);
    void reply.header(NODE_HEADER, answering);
    if (model === null) return;
    if (forwardedBy !== undefined) return refuseSecondHop(router, model, view.nodeName, forwardedBy);
    if (!router.enabled) return;
    const route = await router.choose(model);
    if (route.kind === 'local') return;
    const sent = await forward(request, reply, route, router, view.nodeName);
    if (sent) return reply;
    // Nobody answered there: look at that peer again now, and serve here.
    void probes.probeNow(route.backend);
    void reply.header(NODE_HEADER, router.servingNode(model));
  });
}

/** A forwarded request is served here or refused here: never sent on to another node. */
function refuseSecondHop(router: FleetRouterService, model: string, self: string, by: string | string[]): void {
  if (router.resolvesToPeer(model)) throw new NotServedHereError(model, self, Array.isArray(by) ? by.join(',') : by);
}

/** Relays the request to the peer and its answer (streamed as it comes) to the client; false if unreachable. */
async function forward(
  request: FastifyRequest,
  reply: FastifyReply,
  route: Extract<Route, { kind: 'peer' }>,
  router: FleetRouterService,
  self: string,
): Promise<boolean> {
  const model = (request.body as { model: string }).model;
  const release = router.track(route.backend, model);
  const abort = new AbortController();
  // The client went away: stop the peer's work too.
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) abort.abort();
    release();
  });
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    [FORWARDED_HEADER]: self,
    'x-request-id': request.id,
  };
  for (const name of PASSED) {
    const value = request.headers[name];
    if (typeof value === 'string') headers[name] = value;
  }
  let res: RelayedAnswer;
  try {
    res = await router.relay.post(`${route.url}${request.url}`, request.body, headers, abort.signal);
  } catch {
    release();
    return false;
  }
  void reply.code(res.status);
  for (const name of RETURNED) {
    const value = res.headers[name];
    if (typeof value === 'string') void reply.header(name, value);
  }
  if (typeof res.headers[NODE_HEADER] !== 'string') void reply.header(NODE_HEADER, route.node);
  res.body.once('close', release);
  void reply.send(res.body);
  return true;
}
