import { Module } from '@nestjs/common';
import { ModelsModule } from '../models/models.module.js';
import { InferenceController } from './inference.controller.js';
import { InferenceService } from './inference.service.js';

@Module({
  imports: [ModelsModule],
  controllers: [InferenceController],
  providers: [InferenceService],
  exports: [InferenceService],
})
export class InferenceModule {}
