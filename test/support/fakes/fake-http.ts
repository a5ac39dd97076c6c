/**
 * The plumbing shared by every fake backend: a node:http server on 127.0.0.1:0, per-route hit
 * counters, the parsed request log, JSON and SSE writers, and a switch that makes every route hang.
 * Dependency-free so e2e tests and benchmarks can reuse it.
 */
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  /** Parsed JSON body; null when empty or not JSON. */
  body: unknown;
  rawBody: string;
}

/** Returns false when no route matched (the fake then answers 404 in its own dialect). */
export type FakeHandler = (req: FakeRequest, res: ServerResponse) => boolean | Promise<boolean>;

export interface FakeServerControls {
  url: string;
  port: number;
  /** Requests served per route, keyed `'GET /health'`. */
  hits(route: string): number;
  /** Every request so far, oldest first. */
  requests: FakeRequest[];
  /** Requests to one route, oldest first. */
  requestsTo(route: string): FakeRequest[];
  resetCounts(): void;
  /** While on, every request is accepted and never answered (a wedged server). */
  setHang(on: boolean): void;
  /** Delay before every answer, ms (a slow server). */
  setDelay(ms: number): void;
  close(): Promise<void>;
  /** The process dies: the port refuses connections until `restart()`. */
  stop(): Promise<void>;
  /** The same server comes back on the same port (a restart). */
  restart(): Promise<void>;
}

export async function startFakeHttp(
  handler: FakeHandler,
  notFound: (req: FakeRequest, res: ServerResponse) => void,
): Promise<FakeServerControls> {
  const requests: FakeRequest[] = [];
  const counts = new Map<string, number>();
  let hang = false;
  let delayMs = 0;
  const server: Server = createServer((incoming, res) => {
    const chunks: Buffer[] = [];
    incoming.on('data', (c: Buffer) => chunks.push(c));
    incoming.on('end', () => {
      const url = new URL(incoming.url ?? '/', 'http://fake');
      const rawBody = Buffer.concat(chunks).toString('utf8');
      let body: unknown = null;
      try {
        body = rawBody.length > 0 ? JSON.parse(rawBody) : null;
      } catch {
        body = null;
      }
      const req: FakeRequest = {
        method: incoming.method ?? 'GET',
        path: url.pathname,
        query: url.searchParams,
        headers: incoming.headers,
        body,
        rawBody,
      };
      requests.push(req);
      const route = `${req.method} ${req.path}`;
      counts.set(route, (counts.get(route) ?? 0) + 1);
      if (hang) return;
      const run = async (): Promise<void> => {
        if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
        if (!(await handler(req, res))) notFound(req, res);
      };
      run().catch((err: unknown) => {
        if (!res.headersSent) sendJson(res, 500, { error: String(err) });
        else res.destroy();
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    hits: (route) => counts.get(route) ?? 0,
    requests,
    requestsTo: (route) => requests.filter((r) => `${r.method} ${r.path}` === route),
    resetCounts: () => {
      counts.clear();
      requests.length = 0;
    },
    setHang: (on) => {
      hang = on;
    },
    setDelay: (ms) => {
      delayMs = ms;
    },
    close: () => closeServer(server),
    stop: () => closeServer(server),
    restart: () => new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve)),
  };
}

export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    // Hung and keep-alive connections would hold close() forever.
    server.closeAllConnections();
  });
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

export function sendText(res: ServerResponse, status: number, text: string, contentType = 'text/plain'): void {
  res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/**
 * Writes an SSE stream like llama.cpp and OpenAI do: `data: {json}\n\n` per chunk, then
 * `data: [DONE]\n\n`. Resolves early when the client goes away (records it in `aborted`).
 */
export async function sendSse(
  res: ServerResponse,
  payloads: unknown[],
  opts: { delayMs?: number; onClientGone?: () => void } = {},
): Promise<void> {
  res.writeHead(200, {
    'content-type': 'text/event-stream',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
  });
  let gone = false;
  res.on('close', () => {
    if (!res.writableEnded) {
      gone = true;
      opts.onClientGone?.();
    }
  });
  for (const payload of payloads) {
    if (gone) return;
    res.write(`data: ${JSON.stringify(payload)}\n\n`);
    if (opts.delayMs) await new Promise((r) => setTimeout(r, opts.delayMs));
  }
  if (gone) return;
  res.write('data: [DONE]\n\n');
  res.end();
}
