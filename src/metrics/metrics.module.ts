import { Global, Module } from '@nestjs/common';
import { ModelsModule } from '../models/models.module.js';
import { MetricsController } from './metrics.controller.js';
import { MetricsService } from './metrics.service.js';

/** Global so the request path (inference, HTTP hooks) can record without importing this module. */
@Global()
@Module({
  imports: [ModelsModule],
  controllers: [MetricsController],
  providers: [MetricsService],
  exports: [MetricsService],
})
export class MetricsModule {}
