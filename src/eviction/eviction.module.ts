import { Module, type OnModuleInit } from '@nestjs/common';
import { ModelsModule } from '../models/models.module.js';
import { ModelsService } from '../models/models.service.js';
import { EvictionController } from './eviction.controller.js';
import { EvictionService } from './eviction.service.js';

@Module({
  imports: [ModelsModule],
  controllers: [EvictionController],
  providers: [EvictionService],
  exports: [EvictionService],
})
export class EvictionModule implements OnModuleInit {
  constructor(
    private readonly eviction: EvictionService,
    private readonly models: ModelsService,
  ) {}

  onModuleInit(): void {
    // Where a backend reports its own idle time (rknn-sd), the smaller of the two counts.
    this.eviction.setBackendIdleSource(
      (id) => this.models.backendIdleSeconds(id),
      () => this.models.observeAll(),
    );
  }
}
