/**
 * BusService against a REAL MQTT broker (aedes on loopback) with a real mqtt client playing the
 * flight controller. The ports (status snapshot, chat handler) are test doubles; the real model
 * wiring is exercised by the app e2e.
 */
import { jest } from '@jest/globals';
import { type DynamicModule, Global, Module } from '@nestjs/common';
import { ScheduleModule, SchedulerRegistry } from '@nestjs/schedule';
import { Test, type TestingModule } from '@nestjs/testing';
import mqtt, { type MqttClient } from 'mqtt';
import { createServer, type Server, type Socket } from 'node:net';
import { BackendStateService } from '../../src/backend-state/backend-state.service.js';
import { canServe, Readiness } from '../../src/backend-state/readiness.js';
import { ZENOH_SESSION_FACTORY } from '../../src/bus/bus-transport.factory.js';
import { BusModule } from '../../src/bus/bus.module.js';
import {
  BUS_OPTIONS,
  BusChatHandler,
  type BusOptions,
  BusStatusSource,
  type StatusSnapshot,
} from '../../src/bus/bus.ports.js';
import { BusService, HEARTBEAT_INTERVAL_NAME } from '../../src/bus/bus.service.js';
import type { ZenohSession, ZenohSessionFactory } from '../../src/bus/zenoh-session.js';
import { Clock } from '../../src/common/clock.js';
import { BackendUnavailableError, InferenceFailedError, ModelNotFoundError } from '../../src/common/errors.js';
import { APP_CONFIG, type AppConfig } from '../../src/config/app-config.js';
import type { ChatCompletionRequest, ChatCompletionResponse } from '../../src/providers/openai-types.js';
import { FakeClock } from '../support/fake-clock.js';
import { advancing, waitFor } from '../support/wait-for.js';
import { freePort, type MqttBroker, startBroker } from '../support/mqtt-broker.js';

const TOPICS = { request: 'local/llm/request', response: 'local/llm/response', status: 'local/llm/status' };
const BACKEND = 'local-llm';
const MODEL = 'qwen2.5-0.5b';

function busConfig(bus: Partial<AppConfig['bus']>): AppConfig {
  return {
    bus: {
      enabled: true,
      transport: 'mqtt',
      url: 'mqtt://127.0.0.1:1',
      // An hour: a heartbeat seen in a test came from publishHeartbeat(), a transition or a (re)connect.
      heartbeatS: 3600,
      topics: TOPICS,
      connectTimeoutMs: 2000,
      ...bus,
    },
  } as AppConfig;
}

/** Status source built like HealthService.snapshot(), including fields the heartbeat must not carry. */
class StateStatusSource extends BusStatusSource {
  constructor(
    private readonly state: BackendStateService,
    private readonly clock: Clock,
  ) {
    super();
  }

  async snapshot(): Promise<StatusSnapshot> {
    const s = this.state.snapshot();
    const backends: StatusSnapshot['backends'] = {};
    for (const b of s.backends) {
      backends[b.name] = {
        kind: b.kind,
        readiness: b.readiness,
        reason: b.reason,
        backend_initialized: b.backend_initialized,
        last_transition_ms: b.last_transition_ms,
      };
    }
    return {
      service: 'modelplane',
      status: s.readiness,
      readiness: s.readiness,
      reason: s.reason,
      backend_initialized: s.backend_initialized,
      last_transition_ms: s.last_transition_ms,
      timestamp_ms: this.clock.epochMs(),
      backends,
      uptime_s: 1,
      models: { [MODEL]: { state: 'loaded' } },
      bus: { enabled: true },
    };
  }
}

/**
 * Chat handler shaped like InferenceService: admission against backend readiness first, and the
 * "runtime" is only reached when admitted. Tests swap `runtime` to script inference.
 */
class AdmittingChatHandler extends BusChatHandler {
  readonly runtime = jest.fn<(req: ChatCompletionRequest, signal: AbortSignal) => Promise<string>>();
  readonly seen: ChatCompletionRequest[] = [];

  constructor(private readonly state: BackendStateService) {
    super();
  }

  async chat(req: ChatCompletionRequest, signal: AbortSignal): Promise<ChatCompletionResponse> {
    this.seen.push(req);
    if (req.model !== MODEL) throw new ModelNotFoundError(req.model);
    const backend = this.state.get(BACKEND);
    if (!canServe(backend.readiness)) throw new BackendUnavailableError(BACKEND, backend.readiness, backend.reason);
    const content = await this.runtime(req, signal);
    return {
      id: 'chatcmpl-1',
      object: 'chat.completion',
      created: 0,
      model: req.model,
      choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop', logprobs: null }],
      usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
    };
  }
}

interface Harness {
  moduleRef: TestingModule;
  bus: BusService;
  clock: FakeClock;
  state: BackendStateService;
  chat: AdmittingChatHandler;
  close(): Promise<void>;
}

async function startBus(
  config: AppConfig,
  options: { busOptions?: Partial<BusOptions>; zenoh?: ZenohSessionFactory; ready?: boolean } = {},
): Promise<Harness> {
  const clock = new FakeClock();
  const state = new BackendStateService(clock);
  state.register(BACKEND, 'llama-cpp');
  if (options.ready ?? true) state.finalize(BACKEND, { initError: null, preloadFailures: [], preloadCount: 1 });
  const chat = new AdmittingChatHandler(state);

  // What the importing app provides (BusModule's documented expectations), made global like the app does.
  @Global()
  @Module({})
  class PortsModule {
    static register(): DynamicModule {
      const providers = [
        { provide: APP_CONFIG, useValue: config },
        { provide: Clock, useValue: clock },
        { provide: BackendStateService, useValue: state },
        { provide: BusStatusSource, useValue: new StateStatusSource(state, clock) },
        { provide: BusChatHandler, useValue: chat },
        { provide: BUS_OPTIONS, useValue: { reconnectInitialMs: 50, reconnectMaxMs: 200, ...options.busOptions } },
        ...(options.zenoh ? [{ provide: ZENOH_SESSION_FACTORY, useValue: options.zenoh }] : []),
      ];
      return { module: PortsModule, providers, exports: providers.map((p) => p.provide) };
    }
  }

  const moduleRef = await Test.createTestingModule({
    imports: [ScheduleModule.forRoot(), PortsModule.register(), BusModule],
  }).compile();
  await moduleRef.init();
  let closed = false;
  return {
    moduleRef,
    bus: moduleRef.get(BusService),
    clock,
    state,
    chat,
    close: async () => {
      if (closed) return;
      closed = true;
      await moduleRef.close();
    },
  };
}

/** A decoded wire message; the assertions pin its shape. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- JSON from the broker, checked by the assertions
type WireJson = Record<string, any>;

interface Received {
  topic: string;
  body: WireJson;
}

/** The flight controller: a plain mqtt client on the same broker. */
class FlightController {
  readonly received: Received[] = [];
  private waiters: { pred: (m: Received) => boolean; resolve: (m: Received) => void }[] = [];

  private constructor(readonly client: MqttClient) {
    client.on('message', (topic, payload) => {
      const message = { topic, body: JSON.parse(payload.toString('utf8')) as WireJson };
      this.received.push(message);
      this.waiters = this.waiters.filter((w) => {
        if (!w.pred(message)) return true;
        w.resolve(message);
        return false;
      });
    });
  }

  static async connect(url: string): Promise<FlightController> {
    const client = await mqtt.connectAsync(url, { reconnectPeriod: 100 });
    await client.subscribeAsync([TOPICS.status, TOPICS.response], { qos: 1 });
    return new FlightController(client);
  }

  statuses(): WireJson[] {
    return this.received.filter((m) => m.topic === TOPICS.status).map((m) => m.body);
  }

  /** The first message matching `pred`, already received or yet to come. */
  next(pred: (m: Received) => boolean, timeoutMs = 3000): Promise<Received> {
    const found = this.received.find(pred);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no matching bus message within ${timeoutMs} ms`)), timeoutMs);
      this.waiters.push({
        pred,
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m);
        },
      });
    });
  }

  nextStatus(pred: (body: WireJson) => boolean = () => true, timeoutMs?: number): Promise<WireJson> {
    return this.next((m) => m.topic === TOPICS.status && pred(m.body), timeoutMs).then((m) => m.body);
  }

  async request(body: unknown, timeoutMs?: number): Promise<WireJson> {
    const id = (body as { request_id: unknown }).request_id;
    const reply = this.next((m) => m.topic === TOPICS.response && m.body.request_id === id, timeoutMs);
    await this.client.publishAsync(TOPICS.request, typeof body === 'string' ? body : JSON.stringify(body), { qos: 1 });
    return (await reply).body;
  }

  async send(raw: string | Buffer): Promise<void> {
    await this.client.publishAsync(TOPICS.request, raw, { qos: 1 });
  }

  async close(): Promise<void> {
    await this.client.endAsync(true);
  }
}

/** Resolves once some client subscribed `topic` at the broker (the service is ready for requests). */
function subscribedAt(broker: MqttBroker, topic: string): Promise<void> {
  return new Promise((resolve) => {
    const onSubscribe = (subs: { topic: string }[]): void => {
      if (!subs.some((s) => s.topic === topic)) return;
      broker.aedes.off('subscribe', onSubscribe);
      resolve();
    };
    broker.aedes.on('subscribe', onSubscribe);
  });
}

const chatRequest = (id: string, extra: Record<string, unknown> = {}) => ({
  request_id: id,
  model: MODEL,
  messages: [{ role: 'user', content: 'hello' }],
  ...extra,
});

/** Everything a test starts is stopped after it, in reverse order, even when the test failed half-way. */
const cleanups: (() => Promise<unknown>)[] = [];

afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!().catch(() => undefined);
});

async function useBroker(opts: { port?: number } = {}): Promise<MqttBroker> {
  const broker = await startBroker(opts);
  cleanups.push(() => broker.stop());
  return broker;
}

async function useController(url: string): Promise<FlightController> {
  const controller = await FlightController.connect(url);
  cleanups.push(() => controller.close());
  return controller;
}

async function useBus(config: AppConfig, options?: Parameters<typeof startBus>[1]): Promise<Harness> {
  const h = await startBus(config, options);
  cleanups.push(() => h.close());
  return h;
}

describe('BusService over a real MQTT broker', () => {
  let broker: MqttBroker;
  let controller: FlightController;
  let h: Harness;

  beforeEach(async () => {
    broker = await useBroker();
    controller = await useController(broker.url);
    const subscribed = subscribedAt(broker, TOPICS.request);
    h = await useBus(busConfig({ url: broker.url }));
    await waitFor(() => h.bus.status().connected, 'bus connected');
    await subscribed;
  });

  it('reports connected after CONNACK and announces itself with a heartbeat at once', async () => {
    const first = await controller.nextStatus(() => true, 3000);
    expect(first.seq).toBe(1);
    expect(h.bus.status()).toMatchObject({
      enabled: true,
      connected: true,
      transport: 'mqtt',
      published: 1,
      dropped: 0,
      last_publish_ms: h.clock.epochMs(),
    });
  });

  it('publishes the heartbeat contract fields with status mirroring readiness and an increasing seq', async () => {
    await controller.nextStatus(() => true);
    h.clock.advance(1234);
    expect(await h.bus.publishHeartbeat()).toBe(true);
    expect(await h.bus.publishHeartbeat()).toBe(true);
    const a = await controller.nextStatus((s) => s.seq === 2);
    const b = await controller.nextStatus((s) => s.seq === 3);
    const state = h.state.snapshot();
    expect(a).toEqual({
      service: 'modelplane',
      status: 'ready',
      readiness: 'ready',
      reason: null,
      backend_initialized: true,
      last_transition_ms: state.last_transition_ms,
      timestamp_ms: h.clock.epochMs(),
      backends: {
        [BACKEND]: {
          kind: 'llama-cpp',
          readiness: 'ready',
          reason: null,
          backend_initialized: true,
          last_transition_ms: state.last_transition_ms,
        },
      },
      seq: 2,
    });
    expect(b.seq).toBe(3);
    expect(a).not.toHaveProperty('bus');
    expect(a).not.toHaveProperty('models');
  });

  it('publishes a heartbeat at once on a readiness transition, with the new state', async () => {
    await controller.nextStatus(() => true);
    h.clock.advance(5000);
    const started = Date.now();
    h.state.set(BACKEND, Readiness.Degraded, 'preload failed: qwen (bad file)');
    const hb = await controller.nextStatus((s) => s.readiness === 'degraded', 2000);
    // heartbeat_s is an hour here, so only the transition can have sent it.
    expect(Date.now() - started).toBeLessThan(2000);
    expect(hb).toMatchObject({
      status: 'degraded',
      readiness: 'degraded',
      reason: `${BACKEND}: preload failed: qwen (bad file)`,
      last_transition_ms: h.clock.epochMs(),
      seq: 2,
    });
  });

  it('coalesces transitions of one tick into one heartbeat with the final state', async () => {
    await controller.nextStatus(() => true);
    h.state.register('second', 'ollama');
    h.state.finalize('second', { initError: 'connection refused', preloadFailures: [], preloadCount: 0 });
    const hb = await controller.nextStatus((s) => s.seq === 2);
    expect(hb.backends.second).toMatchObject({ readiness: 'unavailable', backend_initialized: true });
    expect(await h.bus.publishHeartbeat()).toBe(true);
    const next = await controller.nextStatus((s) => s.seq === 3);
    expect(next.seq).toBe(3);
    expect(controller.statuses().map((s) => s.seq as number)).toEqual([1, 2, 3]);
  });

  it('registers the heartbeat interval with SchedulerRegistry and removes it on shutdown', async () => {
    const scheduler = h.moduleRef.get(SchedulerRegistry);
    expect(scheduler.doesExist('interval', HEARTBEAT_INTERVAL_NAME)).toBe(true);
    const gone = new Promise<void>((resolve) => broker.aedes.once('clientDisconnect', () => resolve()));
    await h.close();
    expect(scheduler.doesExist('interval', HEARTBEAT_INTERVAL_NAME)).toBe(false);
    await gone;
    expect(h.bus.status().connected).toBe(false);
  });

  it('answers a request with the contract reply and passes the defaults to the handler', async () => {
    h.chat.runtime.mockImplementation(async () => {
      h.clock.advance(42);
      return 'Hi there';
    });
    const reply = await controller.request(chatRequest('req-1'));
    expect(reply).toEqual({
      request_id: 'req-1',
      model: MODEL,
      content: 'Hi there',
      inference_time_ms: 42,
      timestamp_ms: h.clock.epochMs(),
    });
    expect(h.chat.seen).toEqual([
      { model: MODEL, messages: [{ role: 'user', content: 'hello' }], max_tokens: 256, temperature: 0.7 },
    ]);
    const explicit = await controller.request(chatRequest('req-2', { max_tokens: 8, temperature: 0 }));
    expect(explicit.content).toBe('Hi there');
    expect(h.chat.seen[1]).toMatchObject({ max_tokens: 8, temperature: 0 });
  });

  it('refuses with backend_unavailable, reason and readiness when admission says no, without calling the runtime', async () => {
    h.state.set(BACKEND, Readiness.Unavailable, 'all preloads failed: qwen (bad file)');
    await controller.nextStatus((s) => s.readiness === 'unavailable');
    const before = h.state.snapshot();
    const reply = await controller.request(chatRequest('req-refused'));
    expect(reply).toMatchObject({
      request_id: 'req-refused',
      model: MODEL,
      content: '',
      error: 'backend_unavailable',
      reason: 'all preloads failed: qwen (bad file)',
      readiness: 'unavailable',
      timestamp_ms: h.clock.epochMs(),
    });
    expect(h.chat.runtime).not.toHaveBeenCalled();
    expect(h.state.snapshot()).toEqual(before);
  });

  it('answers model_not_found and inference failed without touching readiness or publishing a status', async () => {
    await controller.nextStatus(() => true);
    const before = h.state.snapshot();
    const unknown = await controller.request({ ...chatRequest('req-unknown'), model: 'nope' });
    expect(unknown).toMatchObject({ request_id: 'req-unknown', model: 'nope', content: '', error: 'model_not_found' });

    h.chat.runtime.mockRejectedValueOnce(new InferenceFailedError(MODEL, 'decode error'));
    const failed = await controller.request(chatRequest('req-fail'));
    expect(failed).toMatchObject({ request_id: 'req-fail', content: '', error: 'inference failed' });

    h.chat.runtime.mockResolvedValueOnce('still fine');
    expect((await controller.request(chatRequest('req-after'))).content).toBe('still fine');
    expect(h.state.snapshot()).toEqual(before);
    expect(controller.statuses()).toHaveLength(1);
  });

  it('survives garbage: answers what has a request_id, drops the rest, and keeps serving', async () => {
    h.chat.runtime.mockResolvedValue('ok');
    await controller.send('this is not json');
    await controller.send(Buffer.from([0xff, 0x00, 0xfe, 0x7b]));
    await controller.send('[1,2,3]');
    await controller.send('{"model": "qwen"}');
    const wrongTypes = await controller.request({ request_id: 'g-1', model: 42, messages: 'hi' });
    expect(wrongTypes).toMatchObject({
      request_id: 'g-1',
      model: null,
      content: '',
      error: 'invalid_request',
      message: 'model must be a non-empty string',
    });
    const badTemp = await controller.request(chatRequest('g-2', { temperature: 'hot' }));
    expect(badTemp).toMatchObject({ request_id: 'g-2', model: MODEL, error: 'invalid_request' });
    expect(badTemp.message).toContain('temperature');

    const good = await controller.request(chatRequest('after-garbage'));
    expect(good).toMatchObject({ request_id: 'after-garbage', content: 'ok' });
    expect(good).not.toHaveProperty('error');
    expect(h.chat.seen).toHaveLength(1);
    // Only the two addressable bad requests and the good one were answered.
    expect(controller.received.filter((m) => m.topic === TOPICS.response)).toHaveLength(3);
    expect(h.state.snapshot().readiness).toBe('ready');
  });

  it('bounds in-flight bus requests and answers the overflow with an error', async () => {
    await h.close();
    const subscribed = subscribedAt(broker, TOPICS.request);
    h = await useBus(busConfig({ url: broker.url }), { busOptions: { maxInFlight: 2 } });
    await waitFor(() => h.bus.status().connected, 'bus connected');
    await subscribed;
    const release: (() => void)[] = [];
    h.chat.runtime.mockImplementation(() => new Promise<string>((resolve) => release.push(() => resolve('done'))));
    const first = controller.request(chatRequest('c-1'));
    const second = controller.request(chatRequest('c-2'));
    await waitFor(() => release.length === 2, 'two requests in the runtime');
    const third = await controller.request(chatRequest('c-3'));
    expect(third).toMatchObject({ request_id: 'c-3', content: '', error: 'too_many_requests' });
    for (const r of release) r();
    expect(await first).toMatchObject({ content: 'done' });
    expect(await second).toMatchObject({ content: 'done' });
    expect(h.chat.runtime).toHaveBeenCalledTimes(2);
  });
});

describe('BusService when the broker is not there', () => {
  it('starts without waiting, drops and counts while down, and reconnects (with subscriptions) when the broker comes up', async () => {
    const port = await freePort();
    const h = await useBus(busConfig({ url: `mqtt://127.0.0.1:${port}`, connectTimeoutMs: 5000 }));
    // Start-up returned while the connect deadline (5 s of a clock nobody moved) is still pending.
    expect(h.clock.pendingDelays).toBeGreaterThan(0);
    expect(h.bus.status()).toMatchObject({ enabled: true, connected: false, published: 0 });
    expect(await h.bus.publishHeartbeat()).toBe(false);
    expect(h.bus.status()).toMatchObject({ connected: false, published: 0, dropped: 1, last_publish_ms: null });
    await waitFor(() => h.bus.status().last_error !== null, 'a connection error');

    let broker = await useBroker({ port });
    let controller = await useController(broker.url);
    const subscribed = subscribedAt(broker, TOPICS.request);
    await waitFor(() => h.bus.status().connected, 'reconnect after the broker came up', {
      between: advancing(h.clock, 200),
    });
    await subscribed;
    expect(h.bus.status().last_error).toBeNull();
    const hb = await controller.nextStatus(() => true, 3000);
    // seq 1 was the dropped heartbeat: gaps tell the controller it missed some.
    expect(hb.seq).toBe(2);
    h.chat.runtime.mockResolvedValue('back');
    expect(await controller.request(chatRequest('after-reconnect'))).toMatchObject({ content: 'back' });

    // Broker restarts: down is noticed, then the service comes back and re-subscribes.
    await controller.close();
    await broker.stop();
    await waitFor(() => !h.bus.status().connected, 'disconnect noticed');
    expect(await h.bus.publishHeartbeat()).toBe(false);
    broker = await useBroker({ port });
    controller = await useController(broker.url);
    const resubscribed = subscribedAt(broker, TOPICS.request);
    await waitFor(() => h.bus.status().connected, 'reconnect after broker restart', {
      between: advancing(h.clock, 200),
    });
    await resubscribed;
    expect(await controller.request(chatRequest('after-restart'))).toMatchObject({ content: 'back' });
  });

  it('never reports connected to a peer that accepts TCP but never sends CONNACK', async () => {
    const sockets = new Set<Socket>();
    const deaf: Server = createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => deaf.listen(0, '127.0.0.1', () => resolve()));
    cleanups.push(async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => deaf.close(() => resolve()));
    });
    const { port } = deaf.address() as { port: number };
    const h = await useBus(busConfig({ url: `mqtt://127.0.0.1:${port}`, connectTimeoutMs: 300 }));
    // mqtt.js gives up on the silent peer after connectTimeoutMs and we retry after the backoff: a second
    // connection proves the first attempt ended, and at no point in between did the bus claim to be connected.
    let everConnected = false;
    await waitFor(
      () => {
        everConnected ||= h.bus.status().connected;
        return sockets.size >= 2;
      },
      'a retry after the silent peer timed out',
      { between: advancing(h.clock, 200) },
    );
    expect(everConnected).toBe(false);
    expect(h.bus.status().connected).toBe(false);
    expect(await h.bus.publishHeartbeat()).toBe(false);
    expect(h.bus.status()).toMatchObject({ published: 0, dropped: 1 });
  });
});

describe('BusService disabled', () => {
  it('does nothing when bus.enabled is false and says so in status()', async () => {
    const broker = await useBroker();
    let clients = 0;
    broker.aedes.on('client', () => clients++);
    const h = await useBus(busConfig({ enabled: false, url: broker.url }));
    expect(h.bus.status()).toEqual({
      enabled: false,
      connected: false,
      transport: 'mqtt',
      url: broker.url,
      last_publish_ms: null,
      published: 0,
      dropped: 0,
      last_error: null,
    });
    expect(h.moduleRef.get(SchedulerRegistry).doesExist('interval', HEARTBEAT_INTERVAL_NAME)).toBe(false);
    expect(await h.bus.publishHeartbeat()).toBe(false);
    h.state.set(BACKEND, Readiness.Degraded, 'x');
    // A transition's heartbeat is queued as a microtask: by the next turn it was sent, dropped, or never asked for.
    await new Promise((resolve) => setImmediate(resolve));
    expect(clients).toBe(0);
    expect(h.bus.status().dropped).toBe(0);
  });
});

describe('BusService heartbeat interval', () => {
  it('publishes on its own every heartbeat_s', async () => {
    const broker = await useBroker();
    const controller = await useController(broker.url);
    const h = await useBus(busConfig({ url: broker.url, heartbeatS: 0.05 }));
    await controller.nextStatus((s) => s.seq >= 4, 3000);
    const seqs = controller.statuses().map((s) => s.seq as number);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(new Set(seqs).size).toBe(seqs.length);
    expect(h.bus.status().published).toBeGreaterThanOrEqual(4);
  });
});

describe('BusService on the zenoh transport (injected session: no zenohd router runs here)', () => {
  it('maps topics to key expressions, heartbeats as JSON bytes, and answers requests', async () => {
    const puts: { key: string; body: WireJson }[] = [];
    const subscribers = new Map<string, (payload: Uint8Array) => void>();
    const session: ZenohSession = {
      put: async (key, payload) => {
        puts.push({ key, body: JSON.parse(Buffer.from(payload).toString('utf8')) as WireJson });
      },
      subscribe: async (key, handler) => {
        subscribers.set(key, handler);
      },
      ping: async () => undefined,
      close: async () => undefined,
    };
    const opened: string[] = [];
    const factory: ZenohSessionFactory = async (locator) => {
      opened.push(locator);
      return session;
    };
    const h = await useBus(busConfig({ transport: 'zenoh', url: 'ws://127.0.0.1:10000' }), { zenoh: factory });
    await waitFor(() => h.bus.status().connected, 'zenoh connected');
    expect(h.bus.status().transport).toBe('zenoh');
    await waitFor(() => subscribers.has('local/llm/request'), 'request subscriber');
    await waitFor(() => puts.some((p) => p.key === 'local/llm/status'), 'first heartbeat');
    expect(puts[0]!.body).toMatchObject({ service: 'modelplane', status: 'ready', readiness: 'ready', seq: 1 });

    h.chat.runtime.mockResolvedValue('over zenoh');
    subscribers.get('local/llm/request')!(Buffer.from(JSON.stringify(chatRequest('z-1'))));
    await waitFor(() => puts.some((p) => p.key === 'local/llm/response'), 'reply');
    expect(puts.find((p) => p.key === 'local/llm/response')!.body).toMatchObject({
      request_id: 'z-1',
      model: MODEL,
      content: 'over zenoh',
    });
    expect(opened).toHaveLength(1);
  });
});
