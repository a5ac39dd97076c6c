/**
 * The model-state core wired by hand (no Nest container) for unit tests: registry, readiness, store,
 * observer, lifecycle and sweeper over the given providers, on the given clock.
 */
import { SchedulerRegistry } from '@nestjs/schedule';
import { BackendStateService } from '../../src/backend-state/backend-state.service.js';
import type { Clock } from '../../src/common/clock.js';
import type { AppConfig } from '../../src/config/app-config.js';
import { EvictionService } from '../../src/eviction/eviction.service.js';
import { ModelLifecycleService } from '../../src/models/model-lifecycle.service.js';
import { ModelStateStore } from '../../src/models/model-state.store.js';
import { ModelsService } from '../../src/models/models.service.js';
import { ProbeService } from '../../src/models/probe.service.js';
import type { ModelProvider } from '../../src/providers/model-provider.js';
import type { ProviderFactory } from '../../src/providers/provider.factory.js';
import { ProviderRegistry } from '../../src/providers/provider-registry.service.js';

export interface ModelCore {
  backendState: BackendStateService;
  registry: ProviderRegistry;
  store: ModelStateStore;
  observer: ProbeService;
  lifecycle: ModelLifecycleService;
  eviction: EvictionService;
  models: ModelsService;
}

export function buildModelCore(config: AppConfig, providers: ModelProvider[], clock: Clock): ModelCore {
  const byName = new Map(providers.map((p) => [p.backendName, p]));
  const factory = {
    create: (backend: { name: string }) => byName.get(backend.name)!,
    dispose: async () => undefined,
  } as unknown as ProviderFactory;
  const backendState = new BackendStateService(clock);
  const registry = new ProviderRegistry(config, backendState, factory);
  const scheduler = new SchedulerRegistry();
  const store = new ModelStateStore(registry, backendState, clock, config);
  const observer = new ProbeService(registry, store, backendState, clock, scheduler);
  const lifecycle = new ModelLifecycleService(registry, store, observer, clock, config);
  const eviction = new EvictionService(lifecycle, store, observer, clock, scheduler, config);
  return { backendState, registry, store, observer, lifecycle, eviction, models: new ModelsService(store) };
}
