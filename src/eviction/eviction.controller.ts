import { Controller, Get, Query } from '@nestjs/common';
import { assertValidModelId } from '../common/model-id.js';
import { ProviderRegistry } from '../providers/provider-registry.service.js';
import type { LoadPlan } from '../models/eviction-policy.js';
import { EvictionService } from './eviction.service.js';

@Controller('api/eviction')
export class EvictionController {
  constructor(
    private readonly eviction: EvictionService,
    private readonly registry: ProviderRegistry,
  ) {}

  /** Which models would be evicted to load `load`, and why each other model stays (idle age, size, pinned, busy). */
  @Get('plan')
  plan(@Query('load') load: unknown): LoadPlan {
    const id = assertValidModelId(load, 'load');
    return this.eviction.plan(this.registry.resolve(id));
  }
}
