import { type Clock, SystemClock } from '../common/clock.js';
import { errorText } from '../common/errors.js';
import { Logger } from '@nestjs/common';
import { connect as mqttConnect, type MqttClient } from 'mqtt';
import {
  type BackoffOptions,
  type BusPayloadHandler,
  type BusTransport,
  type BusTransportStats,
  type PublishOptions,
  Reconnector,
  TopicHandlers,
  TransportState,
} from './transport.js';

export interface MqttTransportOptions {
  url: string;
  connectTimeoutMs: number;
  /** The connect deadline and the reconnect backoff wait on this; the system clock when absent. */
  clock?: Clock;
  backoff?: BackoffOptions;
  clientId?: string;
}

/**
 * MQTT over the `mqtt` package. Reconnects are ours, not mqtt.js's: its fixed reconnectPeriod would
 * hammer a dead broker every second forever, so we run it with reconnectPeriod 0 and schedule
 * `reconnect()` with a growing delay. For the same reason subscriptions are re-sent by us on every
 * CONNACK (mqtt.js only remembers them when it does the reconnecting itself).
 */
export class MqttTransport implements BusTransport {
  readonly kind = 'mqtt' as const;
  readonly url: string;
  private readonly logger = new Logger(MqttTransport.name);
  private readonly state: TransportState;
  private readonly handlers = new TopicHandlers();
  private readonly reconnector: Reconnector;
  private readonly clock: Clock;
  private client: MqttClient | null = null;
  private closed = false;
  /** Whether we already said "not reachable" for the current outage (logs on flips only). */
  private outageLogged = false;

  constructor(private readonly options: MqttTransportOptions) {
    this.url = options.url;
    this.clock = options.clock ?? new SystemClock();
    this.state = new TransportState(this.clock);
    this.reconnector = new Reconnector(options.backoff, this.clock);
  }

  get connected(): boolean {
    return this.state.connected;
  }

  get lastError(): string | null {
    return this.state.lastError;
  }

  connect(): Promise<void> {
    if (this.client || this.closed) return Promise.resolve();
    return this.state.untilConnected(this.options.connectTimeoutMs, (giveUp) => {
      try {
        this.client = mqttConnect(this.options.url, {
          reconnectPeriod: 0,
          connectTimeout: this.options.connectTimeoutMs,
          resubscribe: false,
          clean: true,
          clientId: this.options.clientId,
          // Offline publishes are dropped by us; never let mqtt.js pile them up for later.
          queueQoSZero: false,
        });
      } catch (error) {
        // A malformed URL throws synchronously; stay disconnected and say why.
        this.state.lastError = errorText(error);
        this.logger.error(`MQTT bus disabled: cannot connect to ${this.url}: ${this.state.lastError}`);
        giveUp();
        return;
      }
      this.wire(this.client);
    });
  }

  publish(topic: string, payload: Buffer | string, options: PublishOptions = {}): Promise<boolean> {
    const client = this.client;
    if (!client || !this.state.connected) {
      this.state.countDropped();
      return Promise.resolve(false);
    }
    return new Promise<boolean>((resolve) => {
      try {
        // The callback fires when QoS 0 is written, or when the broker's PUBACK arrives for QoS 1.
        client.publish(topic, payload, { qos: options.reliable ? 1 : 0 }, (error) => {
          if (error) this.state.countDropped();
          else this.state.countPublished();
          resolve(!error);
        });
      } catch {
        this.state.countDropped();
        resolve(false);
      }
    });
  }

  subscribe(topic: string, handler: BusPayloadHandler): void {
    if (this.handlers.add(topic, handler) && this.client && this.state.connected) {
      this.sendSubscribe(this.client, [topic]);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.reconnector.cancel();
    const client = this.client;
    this.client = null;
    this.state.close();
    if (client) await client.endAsync(true).catch(() => undefined);
  }

  onStateChange(listener: (connected: boolean) => void): () => void {
    return this.state.onState(listener);
  }

  stats(): BusTransportStats {
    return this.state.stats();
  }

  private wire(client: MqttClient): void {
    client.on('connect', () => {
      this.reconnector.reset();
      this.outageLogged = false;
      this.sendSubscribe(client, this.handlers.topics());
      if (this.state.set(true)) this.logger.log(`MQTT bus connected to ${this.url}`);
    });
    client.on('message', (topic, payload) => this.handlers.dispatch(topic, payload, this.logger));
    // mqtt.js emits 'error' for refused connections and bad CONNACKs; without a listener it would throw.
    client.on('error', (error) => {
      this.state.lastError = errorText(error);
    });
    client.on('close', () => {
      if (this.closed) return;
      const wasConnected = this.state.connected;
      this.state.set(false);
      const delay = this.reconnector.nextDelayMs();
      if (wasConnected) {
        this.logger.warn(`MQTT bus lost ${this.url}; reconnecting with backoff (first retry in ${delay} ms)`);
        this.outageLogged = true;
      } else if (!this.outageLogged) {
        const why = this.state.lastError ? `: ${this.state.lastError}` : '';
        this.logger.warn(
          `MQTT broker ${this.url} not reachable${why}; retrying with backoff up to ${this.reconnector.backoff.maxMs} ms`,
        );
        this.outageLogged = true;
      }
      this.reconnector.schedule(delay, () => {
        if (!this.closed && this.client === client) client.reconnect();
      });
    });
  }

  private sendSubscribe(client: MqttClient, topics: string[]): void {
    if (topics.length === 0) return;
    // QoS 1: the broker must get our PUBACK for each request, so a request is not lost to a busy socket.
    client.subscribe(topics, { qos: 1 }, (error) => {
      // A SUBSCRIBE cut off by a dropped connection is re-sent on the next CONNACK; not worth a log.
      if (error && this.client === client && this.state.connected) {
        this.state.lastError = `subscribe failed: ${errorText(error)}`;
        this.logger.error(`MQTT subscribe to ${topics.join(', ')} failed: ${errorText(error)}`);
      }
    });
  }
}
