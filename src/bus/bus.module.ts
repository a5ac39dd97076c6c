import { Module } from '@nestjs/common';
import { BusTransportFactory } from './bus-transport.factory.js';
import { BusService } from './bus.service.js';

/**
 * The opt-in pub/sub bus (MQTT or Zenoh). Depends on ports, not on other modules, so the importing
 * app must make these injectable here (globally or through imports):
 * - APP_CONFIG (AppConfig; reads `bus`)
 * - Clock
 * - BackendStateService (onTransition → immediate heartbeat)
 * - BusStatusSource (the GET /health snapshot)
 * - BusChatHandler (admission + inference, e.g. backed by InferenceService.chatCompletion)
 * - SchedulerRegistry (ScheduleModule.forRoot())
 * Optional: BUS_OPTIONS (Partial<BusOptions>) and ZENOH_SESSION_FACTORY.
 * The app should also add `bus.status()` to GET /health (HealthService.contribute('bus', ...)).
 */
@Module({
  providers: [BusTransportFactory, BusService],
  exports: [BusService],
})
export class BusModule {}
