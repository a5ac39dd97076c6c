/**
 * Servers that misbehave the way real ones do: one that accepts connections and never answers, one
 * that answers an HTML error page (a reverse proxy in front of a dead backend), and a port nobody
 * listens on.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { closeServer } from './fake-http.js';

export interface PathologicalServer {
  url: string;
  /** Requests received (they may never be answered). */
  hits(): number;
  close(): Promise<void>;
}

async function listen(server: Server, hits: () => number): Promise<PathologicalServer> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, hits, close: () => closeServer(server) };
}

/** Accepts every connection and request, and never answers. */
export async function startHungServer(): Promise<PathologicalServer> {
  let count = 0;
  const server = createServer(() => {
    count++;
  });
  return listen(server, () => count);
}

export const HTML_ERROR_PAGE =
  '<html>\r\n<head><title>500 Internal Server Error</title></head>\r\n<body>\r\n' +
  '<center><h1>500 Internal Server Error</h1></center>\r\n<hr><center>nginx/1.24.0</center>\r\n</body>\r\n</html>\r\n';

/** Answers every request with `status` and an nginx-style HTML page. */
export async function startHtmlErrorServer(status = 500): Promise<PathologicalServer> {
  let count = 0;
  const server = createServer((req, res) => {
    count++;
    req.resume();
    const body = HTML_ERROR_PAGE.replaceAll('500 Internal Server Error', `${status} Internal Server Error`);
    res.writeHead(status, { 'content-type': 'text/html', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
  return listen(server, () => count);
}

/** A URL on 127.0.0.1 whose port was just released: connecting is refused. */
export async function closedPortUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}
