import { Global, Module, type OnModuleInit } from '@nestjs/common';
import { HealthModule } from '../health/health.module.js';
import { type HealthSnapshot, HealthService } from '../health/health.service.js';
import { InferenceModule } from '../inference/inference.module.js';
import { InferenceService } from '../inference/inference.service.js';
import { BusChatHandler, BusStatusSource, type StatusBackend, type StatusSnapshot } from './bus.ports.js';
import { BusModule } from './bus.module.js';
import { BusService } from './bus.service.js';

function toStatusSnapshot(snapshot: HealthSnapshot): StatusSnapshot {
  const backends: Record<string, StatusBackend> = {};
  for (const [name, backend] of Object.entries(snapshot.backends)) backends[name] = { ...backend };
  return { ...snapshot, backends };
}

/**
 * Binds the bus's ports to the app: the heartbeat reads the very snapshot behind GET /health, and bus
 * requests go through InferenceService (same admission, leases and lazy load as HTTP). Global because
 * BusModule resolves its ports from its own scope and must not import app modules itself.
 */
@Global()
@Module({
  imports: [HealthModule, InferenceModule],
  providers: [
    {
      provide: BusStatusSource,
      useFactory: (health: HealthService): BusStatusSource => ({
        snapshot: async () => toStatusSnapshot(health.snapshot()),
      }),
      inject: [HealthService],
    },
    {
      provide: BusChatHandler,
      useFactory: (inference: InferenceService): BusChatHandler => ({
        chat: (req, signal) => inference.chatCompletion(req, signal),
      }),
      inject: [InferenceService],
    },
  ],
  exports: [BusStatusSource, BusChatHandler],
})
export class BusPortsModule {}

/** The module the app imports: the bus, its ports, and its `bus` section in GET /health. */
@Module({ imports: [BusPortsModule, HealthModule, BusModule] })
export class BusAppModule implements OnModuleInit {
  constructor(
    private readonly health: HealthService,
    private readonly bus: BusService,
  ) {}

  onModuleInit(): void {
    // Always present, so an operator sees `enabled: false` rather than wondering whether the bus is broken.
    this.health.contribute('bus', () => ({ ...this.bus.status() }));
  }
}
