import { randomUUID } from 'node:crypto';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import {
  type AppError,
  HeadersTooLargeError,
  MalformedRequestError,
  RequestTimeoutError,
  ServiceShuttingDownError,
  TooManyConnectionsError,
} from './errors.js';
import { Logger } from '@nestjs/common';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { envelopeFor, sendError } from './exception.filter.js';
import type { ShutdownNotice } from './shutdown.js';

/**
 * Node/Fastify connection options and the socket-level answers that happen before any route runs: without them
 * a socket that sends half a body is never timed out (Fastify sets Node's request timeout to 0), and 20,000 such
 * sockets exhaust file descriptors.
 */

/** Node's default; a larger header block is answered 431. Fixed so the documented bound holds. */
export const MAX_HEADER_BYTES = 16 * 1024;

/** How often Node checks headers/request timeouts; a timeout fires up to this much late. */
const TIMEOUT_CHECK_MS = 500;

/** The socket timeouts this file applies; the config's `Limits` has them (common imports nothing from config). */
export interface SocketTimeouts {
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  keepAliveTimeoutMs: number;
}

export function serverOptions(limits: SocketTimeouts): {
  connectionTimeout: number;
  keepAliveTimeout: number;
  requestTimeout: number;
  http: { headersTimeout: number; maxHeaderSize: number; connectionsCheckingInterval: number };
  clientErrorHandler: (err: Error & { code?: string }, socket: Socket) => void;
  frameworkErrors: (error: Error, request: FastifyRequest, reply: FastifyReply) => void;
} {
  return {
    // No idle-socket timeout: a non-streamed generation may legitimately send nothing for minutes.
    connectionTimeout: 0,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    http: {
      // Node requires headersTimeout ≤ requestTimeout.
      headersTimeout: Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs),
      maxHeaderSize: MAX_HEADER_BYTES,
      connectionsCheckingInterval: TIMEOUT_CHECK_MS,
    },
    clientErrorHandler,
    // The router answers a bad %-encoding (400) or an over-long parameter (414) before any hook or Nest filter.
    frameworkErrors: (error, request, reply) => sendError(reply, request, error, routerLogger),
  };
}

const routerLogger = new Logger('HTTP');

/** A complete HTTP/1.1 response carrying the error envelope, for sockets no route will answer. */
export function rawErrorResponse(error: AppError): string {
  const id = randomUUID();
  const body = JSON.stringify(envelopeFor(error, id));
  const headers = [
    `HTTP/1.1 ${error.status} ${STATUS_TEXT[error.status] ?? 'Error'}`,
    'Content-Type: application/json; charset=utf-8',
    `Content-Length: ${Buffer.byteLength(body)}`,
    `x-request-id: ${id}`,
    ...Object.entries(error.headers).map(([k, v]) => `${k}: ${v}`),
    'Connection: close',
  ];
  return `${headers.join('\r\n')}\r\n\r\n${body}`;
}

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  408: 'Request Timeout',
  431: 'Request Header Fields Too Large',
  503: 'Service Unavailable',
};

/** Node's parser errors (timeouts, header overflow, garbage) answered in the envelope, then the socket closed. */
function clientErrorHandler(err: Error & { code?: string }, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  let error: AppError;
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    error = new RequestTimeoutError();
  } else if (err.code === 'HPE_HEADER_OVERFLOW') {
    error = new HeadersTooLargeError(MAX_HEADER_BYTES);
  } else {
    error = new MalformedRequestError();
  }
  if (socket.writable) socket.end(rawErrorResponse(error));
  socket.destroy();
}

/**
 * Caps open client connections. Node's own `maxConnections` drops the extra socket without a word; here it is
 * answered 503 with Retry-After first, so a client (or a load balancer) can tell overload from a dead server.
 */
export function capConnections(server: Server, max: number): void {
  let open = 0;
  // Node's HTTP parser is attached by the server's own 'connection' listeners; a refused socket must never reach them.
  const accept = server.listeners('connection') as ((socket: Socket) => void)[];
  server.removeAllListeners('connection');
  server.on('connection', (socket: Socket) => {
    if (open >= max) {
      const error = new TooManyConnectionsError(max);
      socket.on('error', () => socket.destroy());
      // Read and drop what the client sends: closing with unread data would reset the answer away.
      socket.resume();
      socket.end(rawErrorResponse(error));
      socket.once('end', () => socket.destroy());
      socket.setTimeout(1000, () => socket.destroy());
      return;
    }
    open++;
    socket.once('close', () => open--);
    for (const listener of accept) listener.call(server, socket);
  });
}

/** The terminus body for a check with no indicators, so clients see the same answer as before. */
const LIVE_BODY = '{"status":"ok","info":{},"error":{},"details":{}}';

const CLIENT_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * Liveness: the event loop answers. Never depends on a backend (a failing liveness restarts the pod). Through
 * Nest and terminus it served 0.58-0.82x the requests/s of a bare Fastify route, so `GET /health/live` is
 * answered where Node hands over the request, before routing and hooks: probes cost no access-log line and
 * no HTTP metric. Other methods reach the Fastify route below.
 */
export function answerLivenessFirst(server: Server): void {
  const handlers = server.listeners('request') as ((req: IncomingMessage, res: ServerResponse) => void)[];
  server.removeAllListeners('request');
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    if (req.method === 'GET' && (req.url === '/health/live' || req.url?.startsWith('/health/live?'))) {
      const given = req.headers['x-request-id'];
      res.writeHead(200, {
        'content-type': 'application/json; charset=utf-8',
        'cache-control': 'no-store',
        'content-length': LIVE_BODY.length,
        'x-request-id': typeof given === 'string' && CLIENT_REQUEST_ID.test(given) ? given : randomUUID(),
      });
      res.end(LIVE_BODY);
      return;
    }
    for (const handler of handlers) handler.call(server, req, res);
  });
}

/** The same answer for HEAD and for `app.inject()`, which never pass through the server's request listener. */
export function mountLiveness(fastify: FastifyInstance): void {
  fastify.get('/health/live', (_request, reply) => {
    void reply
      .header('content-type', 'application/json; charset=utf-8')
      .header('cache-control', 'no-store')
      .send(LIVE_BODY);
  });
}

/** Long-lived responses that never end on their own: ended when shutdown begins, refused once it has. */
const ENDLESS_ROUTES = ['/api/events'];

export function endStreamsOnShutdown(fastify: FastifyInstance, notice: ShutdownNotice): void {
  fastify.addHook('onRequest', async (request, reply) => {
    const path = request.url.split('?', 1)[0]!;
    if (!ENDLESS_ROUTES.includes(path)) return;
    if (notice.shuttingDown) throw new ServiceShuttingDownError();
    const off = notice.onShutdown(() => reply.raw.end());
    reply.raw.once('close', off);
  });
}
