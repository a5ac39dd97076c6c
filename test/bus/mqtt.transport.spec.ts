/** MqttTransport against a real aedes broker and a real mqtt client on loopback. */
import { connectAsync, type MqttClient } from 'mqtt';
import { createServer, type Server, type Socket } from 'node:net';
import { MqttTransport } from '../../src/bus/mqtt.transport.js';
import { FakeClock } from '../support/fake-clock.js';
import { freePort, type MqttBroker, startBroker } from '../support/mqtt-broker.js';
import { advancing, waitFor } from '../support/wait-for.js';

const FAST_BACKOFF = { initialMs: 100, maxMs: 400 };

/** Collects messages a real client receives on `topic`. */
async function listen(url: string, topic: string): Promise<{ client: MqttClient; messages: string[] }> {
  const client = await connectAsync(url, { reconnectPeriod: 0 });
  const messages: string[] = [];
  client.on('message', (t, payload) => {
    if (t === topic) messages.push(payload.toString('utf8'));
  });
  await client.subscribeAsync(topic, { qos: 1 });
  return { client, messages };
}

describe('MqttTransport (real broker)', () => {
  let broker: MqttBroker | null = null;
  let transport: MqttTransport | null = null;
  const clients: MqttClient[] = [];
  let clock: FakeClock;

  beforeEach(() => {
    clock = new FakeClock();
  });

  afterEach(async () => {
    await transport?.close();
    transport = null;
    await Promise.all(clients.splice(0).map((c) => c.endAsync(true)));
    await broker?.stop();
    broker = null;
  });

  it('is connected after the CONNACK, publishes to subscribers and receives on its subscriptions', async () => {
    broker = await startBroker();
    transport = new MqttTransport({ url: broker.url, connectTimeoutMs: 5000, backoff: FAST_BACKOFF, clock });
    const received: string[] = [];
    transport.subscribe('local/llm/request', (payload) => received.push(payload.toString('utf8')));
    expect(transport.connected).toBe(false);
    await transport.connect();
    expect(transport.connected).toBe(true);
    expect(transport.lastError).toBeNull();

    const peer = await listen(broker.url, 'local/llm/status');
    clients.push(peer.client);
    await expect(transport.publish('local/llm/status', '{"a":1}')).resolves.toBe(true);
    await expect(transport.publish('local/llm/status', Buffer.from('{"b":2}'), { reliable: true })).resolves.toBe(true);
    await waitFor(() => peer.messages.length === 2, 'both messages');
    expect(peer.messages).toEqual(['{"a":1}', '{"b":2}']);

    await peer.client.publishAsync('local/llm/request', 'hello', { qos: 1 });
    await waitFor(() => received.length === 1, 'the request');
    expect(received).toEqual(['hello']);
    expect(transport.stats()).toMatchObject({ published: 2, dropped: 0 });
    expect(typeof transport.stats().lastPublishMs).toBe('number');
  });

  it('is not connected when the server accepts TCP but never sends a CONNACK; connect() still resolves in time', async () => {
    // A TCP listener that is not an MQTT broker: the socket opens, no CONNACK ever comes.
    const sockets = new Set<Socket>();
    const silent: Server = createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', () => resolve()));
    const port = (silent.address() as { port: number }).port;
    try {
      transport = new MqttTransport({
        url: `mqtt://127.0.0.1:${port}`,
        connectTimeoutMs: 400,
        backoff: FAST_BACKOFF,
        clock,
      });
      let returned = false;
      const connecting = transport.connect().then(() => (returned = true));
      await waitFor(() => sockets.size > 0, 'the TCP connection');
      expect(returned).toBe(false);
      // connect() gives up waiting at connectTimeoutMs, CONNACK or not.
      clock.advance(400);
      await connecting;
      expect(transport.connected).toBe(false);
      await expect(transport.publish('local/llm/status', 'x')).resolves.toBe(false);
      expect(transport.stats()).toMatchObject({ published: 0, dropped: 1 });
    } finally {
      await transport?.close();
      transport = null;
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  });

  it('with the broker down: connect() resolves, publishes are dropped and counted, and it connects once the broker is up', async () => {
    const port = await freePort();
    transport = new MqttTransport({
      url: `mqtt://127.0.0.1:${port}`,
      connectTimeoutMs: 1000,
      backoff: FAST_BACKOFF,
      clock,
    });
    const received: string[] = [];
    transport.subscribe('local/llm/request', (payload) => received.push(payload.toString('utf8')));
    const states: boolean[] = [];
    transport.onStateChange((connected) => states.push(connected));
    const connecting = transport.connect();
    await waitFor(() => transport!.lastError !== null, 'the refused connection');
    // connect() resolves at connectTimeoutMs even though nothing ever answered.
    clock.advance(1000);
    await connecting;
    expect(transport.connected).toBe(false);
    expect(transport.lastError).toMatch(/ECONNREFUSED/);
    await expect(transport.publish('local/llm/status', 'lost')).resolves.toBe(false);
    expect(transport.stats().dropped).toBe(1);

    broker = await startBroker({ port });
    await waitFor(() => transport!.connected, 'the reconnect', { between: advancing(clock, 400) });
    expect(states).toEqual([true]);
    expect(transport.lastError).toBeNull();

    // The subscription made while disconnected is live now.
    const peer = await listen(broker.url, 'unused/topic');
    clients.push(peer.client);
    await peer.client.publishAsync('local/llm/request', 'after-up', { qos: 1 });
    await waitFor(() => received.includes('after-up'), 'a request after the broker came up');
  });

  it('reports the loss when the broker goes away, reconnects when it returns, and re-subscribes', async () => {
    broker = await startBroker();
    const port = broker.port;
    transport = new MqttTransport({ url: broker.url, connectTimeoutMs: 2000, backoff: FAST_BACKOFF, clock });
    const received: string[] = [];
    transport.subscribe('local/llm/request', (payload) => received.push(payload.toString('utf8')));
    const states: boolean[] = [];
    transport.onStateChange((connected) => states.push(connected));
    await transport.connect();
    expect(transport.connected).toBe(true);

    await broker.stop();
    await waitFor(() => !transport!.connected, 'the loss');
    await expect(transport.publish('local/llm/status', 'while-down')).resolves.toBe(false);

    broker = await startBroker({ port });
    await waitFor(() => transport!.connected, 'the reconnect', { between: advancing(clock, 400) });
    expect(states).toEqual([true, false, true]);

    const peer = await listen(broker.url, 'local/llm/status');
    clients.push(peer.client);
    // The subscription comes back with the reconnect; retry the publish until the broker routes it.
    await waitFor(() => {
      void peer.client.publishAsync('local/llm/request', 'after-restart', { qos: 1 }).catch(() => undefined);
      return received.includes('after-restart');
    }, 'a request after the restart');
    await expect(transport.publish('local/llm/status', 'back')).resolves.toBe(true);
    await waitFor(() => peer.messages.includes('back'), 'a publish after the restart');
  });

  it('stops reconnecting after close()', async () => {
    const port = await freePort();
    transport = new MqttTransport({
      url: `mqtt://127.0.0.1:${port}`,
      connectTimeoutMs: 300,
      backoff: FAST_BACKOFF,
      clock,
    });
    const connecting = transport.connect();
    await waitFor(() => clock.pendingDelays >= 2, 'a retry scheduled after the refused connection');
    await transport.close();
    await connecting;
    // Nothing is left waiting to retry, however much time passes.
    expect(clock.pendingDelays).toBe(0);
    broker = await startBroker({ port });
    let connections = 0;
    broker.aedes.on('client', () => (connections += 1));
    clock.advance(60_000);
    // A real client connecting now is the only one the broker ever sees.
    const peer = await listen(broker.url, 'unused/topic');
    clients.push(peer.client);
    expect(connections).toBe(1);
    expect(transport.connected).toBe(false);
    await expect(transport.publish('local/llm/status', 'x')).resolves.toBe(false);
  });
});
