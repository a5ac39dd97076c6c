/**
 * The bus through the real app: a real aedes broker, a real mqtt client playing the flight controller,
 * the real YAML loader and the in-process llama-cpp backend with a tiny generated GGUF.
 */
import { BackendStartupService } from '../../src/models/backend-startup.service.js';
import { connectAsync, type MqttClient } from 'mqtt';
import { join } from 'node:path';
import { Readiness } from '../../src/backend-state/readiness.js';
import { BackendStateService } from '../../src/backend-state/backend-state.service.js';
import { BusService } from '../../src/bus/bus.service.js';
import { getJson, startApp, type RunningApp } from '../support/app-harness.js';
import { ensureLlmTestModels, TINY_CHAT_GGUF } from '../support/llm-test-models.js';
import { freePort, type MqttBroker, startBroker } from '../support/mqtt-broker.js';
import { TEST_MODELS_DIR } from '../support/test-paths.js';

const REQUEST = 'local/llm/request';
const RESPONSE = 'local/llm/response';
const STATUS = 'local/llm/status';

/** A parsed bus message (untyped on purpose: the assertions say what it holds). */
type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- wire JSON under test

async function waitFor<T>(
  probe: () => T | undefined | Promise<T | undefined>,
  what: string,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** The other side of the bus, as a flight controller would run it. */
class FlightController {
  readonly statuses: Json[] = [];
  readonly responses: Json[] = [];

  private constructor(readonly client: MqttClient) {
    client.on('message', (topic, payload) => {
      const body = JSON.parse(payload.toString('utf8')) as Json;
      if (topic === STATUS) this.statuses.push(body);
      if (topic === RESPONSE) this.responses.push(body);
    });
  }

  static async connect(url: string): Promise<FlightController> {
    const client = await connectAsync(url, { reconnectPeriod: 0 });
    const controller = new FlightController(client);
    await client.subscribeAsync([STATUS, RESPONSE], { qos: 1 });
    return controller;
  }

  send(payload: string | Buffer | Json): Promise<unknown> {
    const raw = typeof payload === 'string' || Buffer.isBuffer(payload) ? payload : JSON.stringify(payload);
    return this.client.publishAsync(REQUEST, raw, { qos: 1 });
  }

  async request(body: Json, timeoutMs = 30_000): Promise<Json> {
    await this.send(body);
    return this.reply(body.request_id, timeoutMs);
  }

  reply(requestId: unknown, timeoutMs = 30_000): Promise<Json> {
    return waitFor(
      () => this.responses.find((r) => r.request_id === requestId),
      `reply to ${String(requestId)}`,
      timeoutMs,
    );
  }

  close(): Promise<void> {
    return this.client.endAsync(true);
  }
}

const user = (content: string) => [{ role: 'user', content }];

describe('bus over MQTT (real broker, real app, llama-cpp)', () => {
  let broker: MqttBroker;
  let running: RunningApp;
  let fc: FlightController;

  beforeAll(async () => {
    await ensureLlmTestModels();
    broker = await startBroker();
    fc = await FlightController.connect(broker.url);
    running = await startApp({
      bus: { enabled: true, url: broker.url, heartbeat_s: 3600 },
      backends: [
        {
          name: 'good-llm',
          type: 'llama-cpp',
          threads: 1,
          models: [{ id: 'chat', path: TINY_CHAT_GGUF, preload: true }],
        },
        {
          name: 'broken-llm',
          type: 'llama-cpp',
          threads: 1,
          models: [{ id: 'ghost', path: join(TEST_MODELS_DIR, 'bus-missing.gguf'), preload: true }],
        },
      ],
    });
    await running.app.get(BackendStartupService).settled();
    await waitFor(async () => (await getJson(`${running.url}/health`)).body.bus?.connected === true, 'bus connected');
  });

  afterAll(async () => {
    await running?.close();
    await fc?.close();
    await broker?.stop();
  });

  it('shows the bus in GET /health as connected once the broker acknowledged it', async () => {
    const health = (await getJson(`${running.url}/health`)).body;
    expect(health.bus).toMatchObject({ enabled: true, connected: true, transport: 'mqtt', last_error: null });
    expect(typeof health.bus.published).toBe('number');
    expect(typeof health.bus.dropped).toBe('number');
    // Two clients on the broker: the flight controller and modelplane.
    expect(broker.aedes.connectedClients).toBe(2);
  });

  it('publishes a heartbeat with every contract field, status mirroring readiness, and an increasing seq', async () => {
    const bus = running.app.get(BusService);
    const before = fc.statuses.length;
    await expect(bus.publishHeartbeat()).resolves.toBe(true);
    await expect(bus.publishHeartbeat()).resolves.toBe(true);
    await waitFor(() => fc.statuses.length >= before + 2 || undefined, 'two heartbeats');
    const first = fc.statuses[before]!;
    const second = fc.statuses[before + 1]!;
    const health = (await getJson(`${running.url}/health`)).body;

    for (const hb of [first, second]) {
      expect(hb).toMatchObject({
        service: 'modelplane',
        status: 'degraded',
        readiness: 'degraded',
        backend_initialized: true,
        last_transition_ms: health.last_transition_ms,
      });
      expect(hb.status).toBe(hb.readiness);
      expect(hb.reason).toContain('ghost');
      expect(typeof hb.timestamp_ms).toBe('number');
      expect(Math.abs(hb.timestamp_ms - Date.now())).toBeLessThan(60_000);
      expect(hb.backends['good-llm']).toMatchObject({ readiness: 'ready', reason: null, backend_initialized: true });
      expect(hb.backends['broken-llm']).toMatchObject({ readiness: 'unavailable', backend_initialized: true });
      expect(hb.backends['broken-llm'].reason).toContain('ghost');
      expect(Number.isInteger(hb.seq)).toBe(true);
    }
    expect(second.seq).toBeGreaterThan(first.seq);
    // seq never goes back across everything received so far.
    const seqs = fc.statuses.map((s) => s.seq as number);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(new Set(seqs).size).toBe(seqs.length);

    const after = (await getJson(`${running.url}/health`)).body.bus;
    expect(after.published).toBeGreaterThanOrEqual(2);
    expect(typeof after.last_publish_ms).toBe('number');
  });

  it('publishes a heartbeat at once on a readiness transition (the interval is an hour)', async () => {
    const state = running.app.get(BackendStateService);
    const original = state.get('broken-llm');
    const before = fc.statuses.length;
    // A real transition (a new reason for the same readiness is not one, and publishes nothing).
    expect(original.readiness).not.toBe(Readiness.Degraded);
    state.set('broken-llm', Readiness.Degraded, 'operator pulled the card');
    try {
      const hb = await waitFor(
        () => fc.statuses.slice(before).find((s) => s.backends['broken-llm'].reason === 'operator pulled the card'),
        'the transition heartbeat',
        10_000,
      );
      expect(hb.last_transition_ms).toBe(state.get('broken-llm').last_transition_ms);
      expect(hb.seq).toBeGreaterThan(fc.statuses[before - 1]?.seq ?? 0);
    } finally {
      state.set('broken-llm', original.readiness, original.reason);
    }
  });

  it('answers a chat request on the response topic through the llama-cpp backend', async () => {
    const res = await fc.request({ request_id: 'r-1', model: 'chat', messages: user('Say hi'), max_tokens: 8 });
    expect(res).toMatchObject({ request_id: 'r-1', model: 'chat' });
    expect(res.error).toBeUndefined();
    // One printable byte per token on the tiny model: exactly the 8 tokens asked for.
    expect(res.content).toHaveLength(8);
    expect(typeof res.inference_time_ms).toBe('number');
    expect(res.inference_time_ms).toBeGreaterThanOrEqual(0);
    expect(typeof res.timestamp_ms).toBe('number');
  });

  it('applies the contract defaults (temperature 0.7, max_tokens 256) when they are left out', async () => {
    const res = await fc.request({ request_id: 'r-defaults', model: 'chat', messages: user('Tell me more') }, 60_000);
    expect(res.error).toBeUndefined();
    // The tiny model emits one printable ASCII byte per token and never stops early: length = max_tokens.
    expect(res.content).toHaveLength(256);
  });

  it('refuses a model whose backend is unavailable with backend_unavailable, reason and readiness', async () => {
    const res = await fc.request({ request_id: 'r-ghost', model: 'ghost', messages: user('x') });
    expect(res).toMatchObject({
      request_id: 'r-ghost',
      content: '',
      error: 'backend_unavailable',
      readiness: 'unavailable',
    });
    expect(res.reason).toContain('ghost');
    // Admission refused it: the runtime was never asked to load it again.
    expect((await getJson(`${running.url}/health`)).body.models.ghost.state).toBe('failed');
  });

  it('answers an unknown model with model_not_found', async () => {
    const res = await fc.request({ request_id: 'r-unknown', model: 'no-such-model', messages: user('x') });
    expect(res).toMatchObject({ request_id: 'r-unknown', content: '', error: 'model_not_found' });
  });

  it('survives garbage: answers what it can address, drops the rest, keeps serving and keeps readiness', async () => {
    const before = (await getJson(`${running.url}/health`)).body;
    const repliesBefore = fc.responses.length;

    await fc.send('this is not json');
    await fc.send(Buffer.from([0xff, 0x00, 0xfe, 0x7b]));
    await fc.send('[1, 2, 3]');
    await fc.send('null');
    await fc.send({ model: 'chat', messages: user('no id') });
    await fc.send({ request_id: 'g-messages', model: 'chat', messages: 'hi' });
    await fc.send({ request_id: 'g-model', model: 42, messages: user('x') });
    await fc.send({ request_id: 'g-tokens', model: 'chat', messages: user('x'), max_tokens: -5 });
    await fc.send({ request_id: 'g-temp', model: 'chat', messages: user('x'), temperature: 'hot' });
    await fc.send({ request_id: 'g-role', model: 'chat', messages: [{ role: 'pilot', content: 'x' }] });

    for (const id of ['g-messages', 'g-model', 'g-tokens', 'g-temp', 'g-role']) {
      const res = await fc.reply(id);
      expect(res).toMatchObject({ request_id: id, content: '', error: 'invalid_request' });
      expect(typeof res.message).toBe('string');
    }

    const next = await fc.request({
      request_id: 'after-garbage',
      model: 'chat',
      messages: user('still there?'),
      max_tokens: 4,
    });
    expect(next.error).toBeUndefined();
    expect(next.content.length).toBeGreaterThan(0);

    // Only the addressable ones were answered (5 invalid + the good one).
    const replies = fc.responses.slice(repliesBefore);
    expect(replies.map((r) => String(r.request_id)).sort()).toEqual(
      ['after-garbage', 'g-messages', 'g-model', 'g-role', 'g-temp', 'g-tokens'].sort(),
    );
    const after = (await getJson(`${running.url}/health`)).body;
    expect(after).toMatchObject({
      readiness: before.readiness,
      reason: before.reason,
      last_transition_ms: before.last_transition_ms,
    });
    expect(after.backends['good-llm'].readiness).toBe('ready');
    expect(after.bus.connected).toBe(true);
  });
});

describe('bus with the broker down at start', () => {
  let broker: MqttBroker | null = null;
  let running: RunningApp;
  let fc: FlightController | null = null;
  let port: number;

  beforeAll(async () => {
    port = await freePort();
  });

  afterAll(async () => {
    await running?.close();
    await fc?.close();
    await broker?.stop();
  });

  it('starts without waiting, reports connected false, and connects once the broker comes up', async () => {
    const started = Date.now();
    running = await startApp({
      bus: { enabled: true, url: `mqtt://127.0.0.1:${port}`, heartbeat_s: 3600, connect_timeout_ms: 1000 },
      backends: [],
    });
    // Start-up did not wait for the broker (well below the 5 s default connect timeout even on a loaded box).
    expect(Date.now() - started).toBeLessThan(15_000);
    const down = (await getJson(`${running.url}/health`)).body;
    expect(down).toMatchObject({ readiness: 'ready' });
    expect(down.bus).toMatchObject({ enabled: true, connected: false, transport: 'mqtt' });
    expect((await getJson(`${running.url}/health/ready`)).status).toBe(200);
    await expect(running.app.get(BusService).publishHeartbeat()).resolves.toBe(false);
    expect((await getJson(`${running.url}/health`)).body.bus.dropped).toBeGreaterThanOrEqual(1);

    broker = await startBroker({ port });
    await waitFor(async () => (await getJson(`${running.url}/health`)).body.bus.connected === true, 'the late connect');
    fc = await FlightController.connect(broker.url);

    // Subscriptions made before the broker existed are live: a request is answered.
    const res = await fc.request({ request_id: 'late-1', model: 'nope', messages: user('x') });
    expect(res).toMatchObject({ request_id: 'late-1', error: 'model_not_found' });
    await expect(running.app.get(BusService).publishHeartbeat()).resolves.toBe(true);
    const hb = await waitFor(() => fc!.statuses.at(-1), 'a heartbeat');
    expect(hb).toMatchObject({ service: 'modelplane', status: 'ready', readiness: 'ready' });
  });
});
