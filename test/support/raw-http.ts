/** Raw-socket HTTP for cases fetch cannot send (bad %-encoding, partial bodies, Expect: 100-continue). */
import { connect, type Socket } from 'node:net';

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** Everything the server sent before closing (or before we stopped reading). */
  raw: string;
}

export function parseRaw(raw: string): RawResponse {
  // A 100 Continue interim response may precede the final one.
  const text = raw.replace(/^HTTP\/1\.1 100 Continue\r\n\r\n/, '');
  const end = text.indexOf('\r\n\r\n');
  const head = end >= 0 ? text.slice(0, end) : text;
  const [statusLine, ...lines] = head.split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const i = line.indexOf(':');
    if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  return {
    status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine ?? '')?.[1] ?? 0),
    headers,
    body: text.slice(end + 4),
    raw,
  };
}

/** Sends `request` verbatim and reads until the server closes, `done(raw)` says enough, or `timeoutMs` passes. */
export function rawRequest(
  url: string,
  request: string | Buffer,
  options: { timeoutMs?: number; done?: (raw: string) => boolean } = {},
): Promise<RawResponse & { closedByServer: boolean }> {
  const { port, hostname } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket: Socket = connect(Number(port), hostname);
    let raw = '';
    let settled = false;
    const finish = (closedByServer: boolean): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ ...parseRaw(raw), closedByServer });
    };
    const timer = setTimeout(() => finish(false), options.timeoutMs ?? 10_000);
    socket.on('connect', () => socket.write(request));
    socket.on('data', (d: Buffer) => {
      raw += d.toString('latin1');
      if (options.done?.(raw)) finish(false);
    });
    socket.on('end', () => finish(true));
    socket.on('close', () => finish(true));
    socket.on('error', (err) => (settled ? undefined : raw ? finish(true) : reject(err)));
  });
}

/** A complete response with a Content-Length body has arrived. */
export function hasFullBody(raw: string): boolean {
  const r = parseRaw(raw);
  const length = Number(r.headers['content-length'] ?? NaN);
  return Number.isFinite(length) && Buffer.byteLength(r.body, 'latin1') >= length;
}
