import { Controller, Get, Header, HttpCode, Param, Post, UseGuards } from '@nestjs/common';
import { AdminGuard } from '../common/auth.guards.js';
import { assertValidModelId } from '../common/model-id.js';
import { ProviderRegistry } from '../providers/provider-registry.service.js';
import { ModelLifecycleService, type UnloadOutcome } from './model-lifecycle.service.js';
import { type BackendEntry, type CatalogEntry, type LoadedEntry, ModelsService } from './models.service.js';

@Controller('api/models')
export class ModelsController {
  constructor(
    private readonly models: ModelsService,
    private readonly lifecycle: ModelLifecycleService,
    private readonly registry: ProviderRegistry,
  ) {}

  @Get()
  @Header('cache-control', 'no-store')
  catalog(): { models: CatalogEntry[] } {
    return this.models.catalog();
  }

  /** What is really in memory, per backend's own signal; every backend listed, reachable or not. */
  @Get('loaded')
  @Header('cache-control', 'no-store')
  loaded(): { loaded: LoadedEntry[]; backends: BackendEntry[] } {
    return this.models.loaded();
  }

  @Post('unload')
  @HttpCode(200)
  @UseGuards(AdminGuard)
  async unloadAll(): Promise<{ ok: true; unloaded: string[]; skipped: { model: string; reason: string }[] }> {
    const unloaded: string[] = [];
    const skipped: { model: string; reason: string }[] = [];
    // What every view shows as loaded is what gets unloaded (the same snapshot).
    for (const m of this.models.snapshot().models) {
      if (m.state !== 'loaded' || m.pinned) continue;
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
  async load(@Param('id') id: string): Promise<{ ok: true; model: string; state: string }> {
    assertValidModelId(id, 'id');
    this.registry.resolve(id);
    const state = await this.lifecycle.load(id);
    return { ok: true, model: id, state };
  }

  @Post(':id/unload')
  @HttpCode(200)
  @UseGuards(AdminGuard)
  async unload(@Param('id') id: string): Promise<UnloadOutcome> {
    assertValidModelId(id, 'id');
    const outcome = await this.lifecycle.unload(id, 'admin');
    return outcome!;
  }
}
