import { Module } from '@nestjs/common';
import { ProvidersModule } from '../providers/providers.module.js';
import { ModelLifecycleService } from './model-lifecycle.service.js';
import { ModelsController } from './models.controller.js';
import { ModelsService } from './models.service.js';
import { ProbeService } from './probe.service.js';
import { RemoteWatchService } from './remote-watch.service.js';

@Module({
  imports: [ProvidersModule],
  controllers: [ModelsController],
  providers: [ModelLifecycleService, ModelsService, ProbeService, RemoteWatchService],
  exports: [ModelLifecycleService, ModelsService, ProvidersModule],
})
export class ModelsModule {}
