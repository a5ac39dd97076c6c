import { Module } from '@nestjs/common';
import { ModelsModule } from '../models/models.module.js';
import { EvictionController } from './eviction.controller.js';
import { EvictionService } from './eviction.service.js';

@Module({
  imports: [ModelsModule],
  controllers: [EvictionController],
  providers: [EvictionService],
  exports: [EvictionService],
})
export class EvictionModule {}
