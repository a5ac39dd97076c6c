import { type DynamicModule, Module } from '@nestjs/common';
import { ScheduleModule } from '@nestjs/schedule';
import type { Logger as PinoLogger } from 'pino';
import { BackendStateModule } from './backend-state/backend-state.module.js';
import { BusAppModule } from './bus/bus-app.module.js';
import type { Clock } from './common/clock.js';
import { CommonModule } from './common/common.module.js';
import type { AppConfig } from './config/app-config.js';
import { ConfigModule } from './config/config.module.js';
import { EventsModule } from './events/events.module.js';
import { EvictionModule } from './eviction/eviction.module.js';
import { FleetModule } from './fleet/fleet.module.js';
import { HealthModule } from './health/health.module.js';
import { InferenceModule } from './inference/inference.module.js';
import { LoggingModule } from './logging/logging.module.js';
import { MetricsModule } from './metrics/metrics.module.js';
import { DashboardModule } from './dashboard/dashboard.module.js';

export interface AppModuleOptions {
  config: AppConfig;
  clock?: Clock;
  /** Root logger (logging.ts); request lines are its children. */
  log: PinoLogger;
}

@Module({})
export class AppModule {
  static forRoot({ config, clock, log }: AppModuleOptions): DynamicModule {
    return {
      module: AppModule,
      imports: [
        ConfigModule.forRoot(config),
        CommonModule.forRoot(clock),
        ScheduleModule.forRoot(),
        LoggingModule.forRoot(log),
        BackendStateModule,
        HealthModule,
        EvictionModule,
        InferenceModule,
        EventsModule,
        MetricsModule,
        DashboardModule,
        BusAppModule,
        FleetModule,
      ],
    };
  }
}
