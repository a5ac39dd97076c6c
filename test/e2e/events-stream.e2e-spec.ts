/**
 * GET /api/events as a long-lived SSE stream behind proxies: a keep-alive comment whenever it has been silent
 * (on the injected clock), a reconnecting EventSource resumes from Last-Event-ID, and a subscriber that stops
 * reading is cut instead of making the server buffer for it without bound.
 */
import { get, type IncomingMessage } from 'node:http';
import { EventsService } from '../../src/events/events.service.js';
import { KEEPALIVE_AFTER_MS, MAX_UNSENT_BYTES } from '../../src/events/events.controller.js';
import { startApp, type RunningApp } from '../support/app-harness.js';
import { FakeClock } from '../support/fake-clock.js';

/** Reads an SSE response block by block (blocks end with a blank line). */
class SseReader {
  private buffer = '';
  private readonly decoder = new TextDecoder();
  private constructor(
    private readonly reader: ReadableStreamDefaultReader<Uint8Array>,
    private readonly abort: AbortController,
  ) {}

  static async open(url: string, headers: Record<string, string> = {}): Promise<SseReader> {
    const abort = new AbortController();
    const res = await fetch(url, { headers, signal: abort.signal });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    return new SseReader(res.body!.getReader(), abort);
  }

  /** The next block, or null when none came within `timeoutMs` (the read stays pending for the next call). */
  private pending: ReturnType<ReadableStreamDefaultReader<Uint8Array>['read']> | null = null;
  async next(timeoutMs = 5000): Promise<string | null> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const end = this.buffer.indexOf('\n\n');
      if (end !== -1) {
        const block = this.buffer.slice(0, end);
        this.buffer = this.buffer.slice(end + 2);
        return block;
      }
      const left = deadline - Date.now();
      if (left <= 0) return null;
      this.pending ??= this.reader.read();
      let timer: NodeJS.Timeout | undefined;
      const result = await Promise.race([
        this.pending,
        new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), left))),
      ]);
      clearTimeout(timer);
      if (result === null) return null;
      this.pending = null;
      if (result.done) throw new Error('stream ended');
      this.buffer += this.decoder.decode(result.value, { stream: true });
    }
  }

  async until(match: (block: string) => boolean, timeoutMs = 5000): Promise<string[]> {
    const seen: string[] = [];
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const block = await this.next(Math.max(0, deadline - Date.now()));
      if (block === null) throw new Error(`no matching block within ${timeoutMs} ms; saw ${JSON.stringify(seen)}`);
      seen.push(block);
      if (match(block)) return seen;
    }
  }

  close(): void {
    this.abort.abort();
  }
}

const ids = (blocks: string[]): number[] =>
  blocks.flatMap((b) => b.split('\n').filter((l) => l.startsWith('id: '))).map((l) => Number(l.slice(4)));

describe('GET /api/events stream', () => {
  let clock: FakeClock;
  let running: RunningApp;
  let events: EventsService;
  beforeAll(async () => {
    clock = new FakeClock();
    running = await startApp({ backends: [] }, { clock });
    events = running.app.get(EventsService);
  });
  afterAll(() => running.close());

  it('sends a keep-alive comment once it has been silent for 14 s of clock time, and only then', async () => {
    const sse = await SseReader.open(`${running.url}/api/events`);
    try {
      await sse.until((b) => b === ': connected');
      clock.advance(KEEPALIVE_AFTER_MS - 1000);
      events.publish({ type: 'test.ping' });
      await sse.until((b) => b.includes('event: test.ping'));
      // 13 s since the last event: still nothing to keep alive (the check runs every real second).
      clock.advance(KEEPALIVE_AFTER_MS - 1000);
      expect(await sse.next(1500)).toBeNull();
      clock.advance(1000);
      expect(await sse.next(5000)).toBe(': keep-alive');
      // The comment counts as traffic: the next one waits for another silent stretch.
      expect(await sse.next(1500)).toBeNull();
    } finally {
      sse.close();
    }
  });

  it('tells EventSource how long to wait before reconnecting, and resumes from Last-Event-ID over ?since', async () => {
    const published = [1, 2, 3].map((n) => {
      events.publish({ type: 'test.resume', n });
      return events.since(0).at(-1)!.seq;
    });
    const sse = await SseReader.open(`${running.url}/api/events?since=0`, { 'last-event-id': String(published[1]) });
    try {
      const blocks = await sse.until((b) => b === ': connected');
      expect(blocks[0]).toMatch(/^retry: \d+$/);
      expect(ids(blocks)).toEqual([published[2]]);
    } finally {
      sse.close();
    }
  });

  it('cuts a subscriber that stops reading once 1 MiB is unsent; it resumes from its last event id', async () => {
    const first = events.since(0).at(-1)!.seq + 1;
    const res = await new Promise<IncomingMessage>((resolve, reject) =>
      get(`${running.url}/api/events`, resolve).on('error', reject),
    );
    res.pause();
    let received = '';
    res.setEncoding('utf8');
    res.on('data', (d: string) => (received += d));
    const closed = new Promise<void>((resolve) => res.on('close', resolve));
    // 200 events of 64 KiB (12.5 MiB) while the client reads nothing: far beyond the kernel's socket buffers.
    const payload = 'x'.repeat(64 * 1024);
    for (let i = 0; i < 200; i++) events.publish({ type: 'test.bulk', i, payload });
    expect(200 * payload.length).toBeGreaterThan(MAX_UNSENT_BYTES * 4);
    res.resume();
    await closed;
    // Only blocks closed by a blank line count (EventSource drops a block cut in the middle).
    const complete = received.split('\n\n').slice(0, -1);
    const got = ids(complete.filter((b) => b.includes('event: test.bulk')));
    // Cut before the end: the server did not keep 12.5 MiB for a reader that had stopped.
    expect(got.length).toBeLessThan(200);
    const last = got.length > 0 ? got.at(-1)! : first - 1;

    const sse = await SseReader.open(`${running.url}/api/events`, { 'last-event-id': String(last) });
    try {
      const blocks = await sse.until((b) => b === ': connected', 20_000);
      const resumed = ids(blocks);
      expect(resumed[0]).toBe(last + 1);
      expect(resumed.at(-1)).toBe(first + 199);
    } finally {
      sse.close();
    }
  });
});
