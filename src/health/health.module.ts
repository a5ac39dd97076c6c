import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { ModelsModule } from '../models/models.module.js';
import { HealthController } from './health.controller.js';
import { HealthService } from './health.service.js';

@Module({
  imports: [TerminusModule.forRoot({ logger: false }), ModelsModule],
  controllers: [HealthController],
  providers: [HealthService],
  exports: [HealthService],
})
export class HealthModule {}
