/**
 * ZenohTransport without a router (none can run here): the session factory is replaced by a fake,
 * so the topic mapping, the open() timeout, late sessions, retries and liveness are tested for real.
 */
import { WebSocket as WsWebSocket, WebSocketServer } from 'ws';
import { topicToKeyExpr, zenohLocator } from '../../src/bus/zenoh-keys.js';
import { openZenohTsSession, type ZenohSession, ZenohUnavailableError } from '../../src/bus/zenoh-session.js';
import { ZenohTransport } from '../../src/bus/zenoh.transport.js';
import { FakeClock } from '../support/fake-clock.js';
import { advancing, waitFor } from '../support/wait-for.js';

const FAST_BACKOFF = { initialMs: 50, maxMs: 200 };

/** Lets promise callbacks already due run (a settled open(), a resolved delay). */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

class FakeSession implements ZenohSession {
  readonly puts: { key: string; text: string }[] = [];
  readonly subscribers = new Map<string, (payload: Uint8Array) => void>();
  closed = false;
  failPuts = false;
  failPings = false;

  async put(key: string, payload: Uint8Array): Promise<void> {
    if (this.failPuts) throw new Error('WebSocket is closed');
    this.puts.push({ key, text: new TextDecoder().decode(payload) });
  }

  async subscribe(key: string, handler: (payload: Uint8Array) => void): Promise<void> {
    this.subscribers.set(key, handler);
  }

  async ping(): Promise<void> {
    if (this.failPings) throw new Error('Remote api request timeout');
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  /** What a router would deliver to our subscriber on `key`. */
  deliver(key: string, text: string): void {
    this.subscribers.get(key)!(new TextEncoder().encode(text));
  }
}

/** A factory whose open() calls the test resolves or rejects by hand. */
function manualFactory() {
  const calls: { locator: string; resolve: (s: ZenohSession) => void; reject: (e: unknown) => void }[] = [];
  const factory = (locator: string) =>
    new Promise<ZenohSession>((resolve, reject) => {
      calls.push({ locator, resolve, reject });
    });
  return { factory, calls };
}

describe('topicToKeyExpr', () => {
  it.each([
    ['local/llm/request', 'local/llm/request'],
    ['/local/llm/status/', 'local/llm/status'],
    ['local//llm', 'local/llm'],
    ['fleet/+/status', 'fleet/*/status'],
    ['fleet/#', 'fleet/**'],
  ])('maps %s to %s', (topic, key) => {
    expect(topicToKeyExpr(topic)).toBe(key);
  });

  it.each([
    ['', /no key expression chunks/],
    ['a/#/b', /'#' must be the last level/],
    ['a/b?c', /reserves/],
    ['a/$x', /reserves/],
    ['a/b*', /reserves/],
  ])('refuses %j', (topic, message) => {
    expect(() => topicToKeyExpr(topic)).toThrow(message);
  });
});

describe('zenohLocator', () => {
  it.each([
    ['ws://127.0.0.1:10000', 'ws://127.0.0.1:10000'],
    ['ws/127.0.0.1:10000', 'ws://127.0.0.1:10000'],
    ['wss://router:10000', 'wss://router:10000'],
    ['zenoh+ws://router:10000', 'ws://router:10000'],
    ['zenoh://router:10000', 'ws://router:10000'],
  ])('accepts %s as %s', (url, locator) => {
    expect(zenohLocator(url)).toBe(locator);
  });

  it('refuses an MQTT url', () => {
    expect(() => zenohLocator('mqtt://127.0.0.1:1883')).toThrow(/not a zenoh remote-api locator/);
  });
});

describe('ZenohTransport', () => {
  let transport: ZenohTransport | null = null;
  let clock: FakeClock;
  beforeEach(() => {
    clock = new FakeClock();
  });
  afterEach(async () => {
    await transport?.close();
    transport = null;
  });

  it('is connected only after open() resolved; publishes and receives on mapped key expressions', async () => {
    const session = new FakeSession();
    const { factory, calls } = manualFactory();
    transport = new ZenohTransport({
      url: 'ws://router:10000',
      connectTimeoutMs: 2000,
      sessionFactory: factory,
      clock,
    });
    const received: string[] = [];
    transport.subscribe('/local/llm/request', (payload) => received.push(payload.toString('utf8')));
    const connecting = transport.connect();
    await waitFor(() => calls.length === 1, 'open()');
    expect(calls[0]!.locator).toBe('ws://router:10000');
    expect(transport.connected).toBe(false);
    await expect(transport.publish('local/llm/status', 'early')).resolves.toBe(false);

    calls[0]!.resolve(session);
    await connecting;
    expect(transport.connected).toBe(true);
    expect([...session.subscribers.keys()]).toEqual(['local/llm/request']);

    await expect(transport.publish('local/llm/status', '{"seq":1}')).resolves.toBe(true);
    expect(session.puts).toEqual([{ key: 'local/llm/status', text: '{"seq":1}' }]);
    session.deliver('local/llm/request', '{"request_id":"r1"}');
    expect(received).toEqual(['{"request_id":"r1"}']);
    expect(transport.stats()).toMatchObject({ published: 1, dropped: 1 });
  });

  it('stops waiting after connectTimeoutMs when open() hangs (zenoh-ts retries ~34 min), and adopts the session if it opens later', async () => {
    const { factory, calls } = manualFactory();
    transport = new ZenohTransport({ url: 'ws/router:10000', connectTimeoutMs: 150, sessionFactory: factory, clock });
    const states: boolean[] = [];
    transport.onStateChange((c) => states.push(c));
    let returned = false;
    const connecting = transport.connect().then(() => (returned = true));
    clock.advance(149);
    await settle();
    expect(returned).toBe(false);
    clock.advance(1);
    await connecting;
    expect(transport.connected).toBe(false);
    expect(transport.lastError).toMatch(/did not answer within 150 ms/);
    // Still one open() in flight: no pile-up of background retries.
    expect(calls).toHaveLength(1);

    const late = new FakeSession();
    calls[0]!.resolve(late);
    await waitFor(() => transport!.connected, 'the late session');
    expect(states).toEqual([true]);
    expect(transport.lastError).toBeNull();
  });

  it('closes a session that opens after close()', async () => {
    const { factory, calls } = manualFactory();
    transport = new ZenohTransport({ url: 'ws://router:10000', connectTimeoutMs: 50, sessionFactory: factory, clock });
    const connecting = transport.connect();
    clock.advance(50);
    await connecting;
    await transport.close();
    const late = new FakeSession();
    calls[0]!.resolve(late);
    await waitFor(() => late.closed, 'the late session to be closed');
    expect(transport.connected).toBe(false);
  });

  it('retries a failed open() with backoff', async () => {
    const { factory, calls } = manualFactory();
    transport = new ZenohTransport({
      url: 'ws://router:10000',
      connectTimeoutMs: 1000,
      sessionFactory: factory,
      backoff: FAST_BACKOFF,
      clock,
    });
    const connecting = transport.connect();
    await waitFor(() => calls.length === 1, 'open()');
    calls[0]!.reject(new Error('Failed to connect to locator endpoint'));
    await waitFor(() => calls.length === 2, 'the retry', { between: advancing(clock, 50) });
    expect(transport.lastError).toMatch(/Failed to connect/);
    calls[1]!.resolve(new FakeSession());
    await connecting;
    expect(transport.connected).toBe(true);
  });

  it('gives up at once, with the reason, when zenoh-ts cannot run in this process', async () => {
    let opens = 0;
    transport = new ZenohTransport({
      url: 'ws://router:10000',
      connectTimeoutMs: 5000,
      backoff: FAST_BACKOFF,
      clock,
      sessionFactory: async () => {
        opens += 1;
        throw new ZenohUnavailableError('start Node 20 with --experimental-websocket');
      },
    });
    // Returns with no time passing at all (the 5 s deadline is on a clock nobody moves).
    await transport.connect();
    expect(transport.connected).toBe(false);
    expect(transport.lastError).toMatch(/--experimental-websocket/);
    // Nothing waits to retry, however long we wait.
    expect(clock.pendingDelays).toBe(0);
    clock.advance(60_000);
    await settle();
    expect(opens).toBe(1);
  });

  it('an MQTT url with transport zenoh is reported, not retried', async () => {
    let opens = 0;
    transport = new ZenohTransport({
      url: 'mqtt://127.0.0.1:1883',
      connectTimeoutMs: 5000,
      clock,
      sessionFactory: async () => {
        opens += 1;
        return new FakeSession();
      },
    });
    await transport.connect();
    expect(transport.connected).toBe(false);
    expect(transport.lastError).toMatch(/not a zenoh remote-api locator/);
    expect(opens).toBe(0);
  });

  it('a failed put flips to disconnected and opens a new session', async () => {
    const first = new FakeSession();
    const second = new FakeSession();
    const sessions = [first, second];
    transport = new ZenohTransport({
      url: 'ws://router:10000',
      connectTimeoutMs: 1000,
      backoff: FAST_BACKOFF,
      clock,
      sessionFactory: async () => sessions.shift()!,
    });
    transport.subscribe('local/llm/request', () => undefined);
    await transport.connect();
    first.failPuts = true;
    await expect(transport.publish('local/llm/status', 'x')).resolves.toBe(false);
    expect(transport.connected).toBe(false);
    expect(first.closed).toBe(true);
    await waitFor(() => transport!.connected, 'the new session', { between: advancing(clock, 200) });
    expect([...second.subscribers.keys()]).toEqual(['local/llm/request']);
    await expect(transport.publish('local/llm/status', 'y')).resolves.toBe(true);
    expect(second.puts.map((p) => p.text)).toEqual(['y']);
  });

  it('notices a router that stopped answering through the liveness ping', async () => {
    const first = new FakeSession();
    const sessions = [first, new FakeSession()];
    transport = new ZenohTransport({
      url: 'ws://router:10000',
      connectTimeoutMs: 1000,
      backoff: FAST_BACKOFF,
      livenessIntervalMs: 50,
      livenessTimeoutMs: 50,
      clock,
      sessionFactory: async () => sessions.shift()!,
    });
    const states: boolean[] = [];
    transport.onStateChange((c) => states.push(c));
    await transport.connect();
    first.failPings = true;
    // A ping that fails ends the session; the next interval and the backoff pass on the fake clock.
    await waitFor(() => states.length >= 3, 'loss and recovery', { between: advancing(clock, 50) });
    expect(states.slice(0, 3)).toEqual([true, false, true]);
    expect(first.closed).toBe(true);
  });
});

describe('openZenohTsSession (the real factory)', () => {
  it('explains the missing Node flag when there is no global WebSocket', async () => {
    const holder = globalThis as { WebSocket?: unknown };
    const saved = holder.WebSocket;
    delete holder.WebSocket;
    try {
      await expect(openZenohTsSession('ws://127.0.0.1:10000')).rejects.toThrow(ZenohUnavailableError);
      await expect(openZenohTsSession('ws://127.0.0.1:10000')).rejects.toThrow(/--experimental-websocket/);
    } finally {
      if (saved !== undefined) holder.WebSocket = saved;
    }
  });
});

describe('ZenohTransport with the real zenoh-ts client', () => {
  it('stays disconnected against a WebSocket peer that is not a remote-api plugin (no Ping answer)', async () => {
    // A plain WebSocket server: the socket opens, but nobody answers zenoh-ts's Ping, so no session exists.
    const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise((resolve) => server.once('listening', resolve));
    const port = (server.address() as { port: number }).port;
    const holder = globalThis as { WebSocket?: unknown };
    const saved = holder.WebSocket;
    // zenoh-ts never closes the socket of a failed open (and its onclose logs); the test closes every one it
    // made and waits for their close events, so nothing is left to log after the test.
    const sockets: WsWebSocket[] = [];
    // Node 20 has no global WebSocket without --experimental-websocket; ws's is API-compatible for zenoh-ts.
    holder.WebSocket = class extends WsWebSocket {
      constructor(...args: ConstructorParameters<typeof WsWebSocket>) {
        super(...args);
        sockets.push(this);
      }
    };
    const warn = console.warn;
    console.warn = () => undefined;
    const transport = new ZenohTransport({
      url: `ws://127.0.0.1:${port}`,
      connectTimeoutMs: 10_000,
      backoff: FAST_BACKOFF,
      // Nobody moves it: no retry and no deadline of ours runs while zenoh-ts's own open() fails.
      clock: new FakeClock(),
    });
    try {
      const states: boolean[] = [];
      transport.onStateChange((c) => states.push(c));
      void transport.connect();
      await waitFor(() => server.clients.size > 0, 'the WebSocket connection');
      await waitFor(() => transport.lastError !== null, 'the failed open');
      expect(transport.lastError).toMatch(/Remote api request timeout/);
      expect(transport.connected).toBe(false);
      // The failed open() never flipped the state, not even briefly.
      await settle();
      expect(states).toEqual([]);
    } finally {
      await transport.close();
      for (const socket of sockets) socket.terminate();
      await Promise.all(
        sockets
          .filter((socket) => socket.readyState !== WsWebSocket.CLOSED)
          .map((socket) => new Promise((resolve) => socket.once('close', resolve))),
      );
      // zenoh-ts's own onclose handler runs in the same turn as the 'close' listeners above; one more turn for safety.
      await new Promise((resolve) => setImmediate(resolve));
      console.warn = warn;
      if (saved === undefined) delete holder.WebSocket;
      else holder.WebSocket = saved;
      for (const client of server.clients) client.terminate();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
