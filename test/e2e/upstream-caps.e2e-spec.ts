/**
 * Issue 16 item 3: a bad peer hurts only itself. An upstream streaming an endless line or an oversize JSON body
 * is cut at the backend's max_line_bytes / max_body_bytes with 502 upstream_error naming the limit, while the
 * server (liveness, a healthy backend's probes) carries on.
 */
import { createServer, type Server, type ServerResponse } from 'node:http';
import { getJson, postJson, startApp, type RunningApp } from '../support/app-harness.js';
import { waitFor } from '../support/wait-for.js';

const GENEROUS_MS = 10_000;

/** Writes `total` bytes of 'a' as fast as the reader takes them; stops when the socket goes away. */
function pour(res: ServerResponse, total: number): void {
  const block = Buffer.alloc(64 * 1024, 'a');
  let sent = 0;
  const more = (): void => {
    while (sent < total && !res.destroyed) {
      sent += block.length;
      if (!res.write(block)) return void res.once('drain', more);
    }
    res.end();
  };
  res.on('close', () => (sent = total));
  more();
}

async function startBadPeer(): Promise<{ url: string; close(): void }> {
  const server: Server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      if (req.url === '/health') return void res.end();
      if (req.url === '/v1/models') {
        res.setHeader('content-type', 'application/json');
        return void res.end(JSON.stringify({ object: 'list', data: [{ id: 'bad', object: 'model', owned_by: 'x' }] }));
      }
      if (req.url === '/v1/chat/completions') {
        // Streamed: `data: ` and then 100 MB without a newline. Not streamed: a 100 MB JSON string.
        const body = req.headers.accept === 'text/event-stream';
        res.writeHead(200, { 'content-type': body ? 'text/event-stream' : 'application/json' });
        res.write(body ? 'data: ' : '{"id":"x","choices":[],"pad":"');
        return pour(res, 100 * 1024 * 1024);
      }
      res.statusCode = 404;
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return { url: `http://127.0.0.1:${port}`, close: () => (server.closeAllConnections(), server.close()) };
}

describe('upstream line and body caps', () => {
  let peer: { url: string; close(): void };
  let running: RunningApp;
  beforeAll(async () => {
    peer = await startBadPeer();
    running = await startApp({
      backends: [
        {
          name: 'bad',
          type: 'openai',
          url: peer.url,
          max_line_bytes: 64 * 1024,
          max_body_bytes: 1024 * 1024,
          models: [{ id: 'bad' }],
        },
      ],
    });
    await waitFor(async () => (await getJson(`${running.url}/health/ready`)).status === 200, 'the app to be ready');
  });
  afterAll(async () => {
    await running.close();
    peer.close();
  });

  it('a stream line past max_line_bytes ends the request with upstream_error naming the limit, quickly', async () => {
    const started = Date.now();
    const res = await fetch(`${running.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'bad', stream: true, messages: [{ role: 'user', content: 'hi' }] }),
    });
    const text = await res.text();
    expect(Date.now() - started).toBeLessThan(GENEROUS_MS);
    expect(text).toContain('upstream_error');
    expect(text).toContain('max_line_bytes (65536)');
    expect(text).not.toContain('[DONE]');
    if (res.status !== 200) expect(res.status).toBe(502);
    const live = await getJson(`${running.url}/health/live`);
    expect(live.status).toBe(200);
  });

  it('a body past max_body_bytes answers 502 upstream_error naming the limit, without buffering it all', async () => {
    const rssBefore = process.memoryUsage().rss;
    const res = await postJson(`${running.url}/v1/chat/completions`, {
      model: 'bad',
      messages: [{ role: 'user', content: 'hi' }],
    });
    expect(res.status).toBe(502);
    expect(res.body.error.code).toBe('upstream_error');
    expect(res.body.error.message).toContain('max_body_bytes (1048576)');
    // The finding was +627 MB; the cap keeps growth to the limit plus buffers.
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(80 * 1024 * 1024);
  });
});
