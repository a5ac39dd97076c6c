import { Controller, Get, Query } from '@nestjs/common';
import { ApiDefaultResponse, ApiOkResponse, ApiQuery, ApiTags } from '@nestjs/swagger';
import { assertValidModelId } from '../common/model-id.js';
import { ErrorEnvelopeSchema } from '../openapi/openai.schemas.js';
import { LoadPlanSchema } from '../openapi/state.schemas.js';
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
  @ApiTags('models')
  @ApiQuery({ name: 'load', type: String, description: 'The model that would be loaded' })
  @ApiOkResponse({ type: LoadPlanSchema })
  @ApiDefaultResponse({ type: ErrorEnvelopeSchema })
  plan(@Query('load') load: unknown): LoadPlan {
    const id = assertValidModelId(load, 'load');
    return this.eviction.plan(this.registry.resolve(id));
  }
}
