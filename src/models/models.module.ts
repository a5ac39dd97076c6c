import { Module } from '@nestjs/common';
import { ProvidersModule } from '../providers/providers.module.js';
import { BackendStartupService } from './backend-startup.service.js';
import { ModelLifecycleService } from './model-lifecycle.service.js';
import { ModelStateStore } from './model-state.store.js';
import { ModelsController } from './models.controller.js';
import { ModelsService } from './models.service.js';
import { ProbeService } from './probe.service.js';

@Module({
  imports: [ProvidersModule],
  controllers: [ModelsController],
  providers: [ModelStateStore, ProbeService, ModelLifecycleService, ModelsService, BackendStartupService],
  exports: [
    ModelStateStore,
    ProbeService,
    ModelLifecycleService,
    ModelsService,
    BackendStartupService,
    ProvidersModule,
  ],
})
export class ModelsModule {}
