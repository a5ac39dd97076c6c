import { Inject, Injectable, Optional } from '@nestjs/common';
import { Clock } from '../common/clock.js';
import type { AppConfig } from '../config/app-config.js';
import { BUS_OPTIONS, type BusOptions, DEFAULT_BUS_OPTIONS } from './bus.ports.js';
import { MqttTransport } from './mqtt.transport.js';
import type { BusTransport } from './transport.js';
import type { ZenohSessionFactory } from './zenoh-session.js';
import { ZenohTransport } from './zenoh.transport.js';

/** Token for a replacement Zenoh session factory (tests; no router can run there). */
export const ZENOH_SESSION_FACTORY = Symbol('ZENOH_SESSION_FACTORY');

/** Builds the transport named by config.bus.transport. A provider so tests can swap it. */
@Injectable()
export class BusTransportFactory {
  private readonly options: BusOptions;

  constructor(
    private readonly clock: Clock,
    @Optional() @Inject(BUS_OPTIONS) options: Partial<BusOptions> | null,
    @Optional() @Inject(ZENOH_SESSION_FACTORY) private readonly zenohFactory: ZenohSessionFactory | null,
  ) {
    this.options = { ...DEFAULT_BUS_OPTIONS, ...(options ?? {}) };
  }

  create(bus: AppConfig['bus']): BusTransport {
    const backoff = { initialMs: this.options.reconnectInitialMs, maxMs: this.options.reconnectMaxMs };
    switch (bus.transport) {
      case 'mqtt':
        return new MqttTransport({ url: bus.url, connectTimeoutMs: bus.connectTimeoutMs, backoff, clock: this.clock });
      case 'zenoh':
        return new ZenohTransport({
          url: bus.url,
          connectTimeoutMs: bus.connectTimeoutMs,
          backoff,
          clock: this.clock,
          sessionFactory: this.zenohFactory ?? undefined,
        });
    }
  }
}
