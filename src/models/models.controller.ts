import { Controller, Get, Header, HttpCode, Param, Post, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiDefaultResponse, ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { AdminGuard } from '../auth/auth.guards.js';
import { assertValidModelId } from '../common/model-id.js';
import { ErrorEnvelopeSchema } from '../openapi/openai.schemas.js';
import {
  CatalogSchema,
  LoadedSchema,
  LoadResultSchema,
  UnloadAllResultSchema,
  UnloadResultSchema,
} from '../openapi/state.schemas.js';
import { ProviderRegistry } from '../providers/provider-registry.service.js';
import { ModelLifecycleService, type UnloadOutcome } from './model-lifecycle.service.js';
import { type BackendEntry, type CatalogEntry, type LoadedEntry, ModelsService } from './models.service.js';

@Controller('api/models')
@ApiTags('models')
@ApiDefaultResponse({ type: ErrorEnvelopeSchema, description: 'Any error, in the one envelope' })
export class ModelsController {
  constructor(
    private readonly models: ModelsService,
    private readonly lifecycle: ModelLifecycleService,
    private readonly registry: ProviderRegistry,
  ) {}

  @Get()
  @Header('cache-control', 'no-store')
  @ApiOkResponse({ type: CatalogSchema })
  catalog(): { models: CatalogEntry[] } {
    return this.models.catalog();
  }

  /** What is really in memory, per backend's own signal; every backend listed, reachable or not. */
  @Get('loaded')
  @Header('cache-control', 'no-store')
  @ApiOkResponse({ type: LoadedSchema })
  loaded(): { loaded: LoadedEntry[]; backends: BackendEntry[] } {
    return this.models.loaded();
  }

  @Post('unload')
  @HttpCode(200)
  @UseGuards(AdminGuard)
  @ApiBearerAuth('bearer')
  @ApiOkResponse({ type: UnloadAllResultSchema })
  async unloadAll(): Promise<{ ok: true; unloaded: string[]; skipped: { model: string; reason: string }[] }> {
    const unloaded: string[] = [];
    const skipped: { model: string; reason: string }[] = [];
    // What every view shows as loaded is what gets unloaded (the same snapshot).
    for (const m of this.models.snapshot().models) {
      if (m.state !== 'loaded' || m.pinned) continue;
      // "Unload everything" is this node's memory; a peer's models are unloaded one by one or on that node.
      if (m.backend_type === 'modelplane') {
        skipped.push({ model: m.id, reason: 'on_peer' });
        continue;
      }
      if (!m.can_unload) {
        skipped.push({ model: m.id, reason: 'unload_unsupported' });
        continue;
      }
      try {
        const outcome = await this.lifecycle.unload(m.id, 'admin unload all');
        if (outcome?.was_loaded) unloaded.push(m.id);
      } catch (err) {
        skipped.push({ model: m.id, reason: (err as Error).message });
      }
    }
    return { ok: true, unloaded, skipped };
  }

  @Post(':id/load')
  @HttpCode(200)
  @UseGuards(AdminGuard)
  @ApiBearerAuth('bearer')
  @ApiOkResponse({ type: LoadResultSchema })
  async load(@Param('id') id: string): Promise<{ ok: true; model: string; state: string }> {
    assertValidModelId(id, 'id');
    this.registry.resolve(id);
    const state = await this.lifecycle.load(id);
    return { ok: true, model: id, state };
  }

  @Post(':id/unload')
  @HttpCode(200)
  @UseGuards(AdminGuard)
  @ApiBearerAuth('bearer')
  @ApiOkResponse({ type: UnloadResultSchema })
  async unload(@Param('id') id: string): Promise<UnloadOutcome> {
    assertValidModelId(id, 'id');
    const outcome = await this.lifecycle.unload(id, 'admin');
    return outcome!;
  }
}
