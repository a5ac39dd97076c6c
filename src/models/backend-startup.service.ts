import { Injectable, Logger, type OnApplicationBootstrap } from '@nestjs/common';
import { BackendStateService } from '../backend-state/backend-state.service.js';
import { Readiness } from '../backend-state/readiness.js';
import type { BackendConfig } from '../config/app-config.js';
import type { ModelProvider } from '../providers/model-provider.js';
import { errorText } from '../common/errors.js';
import { ProviderRegistry } from '../providers/provider-registry.service.js';
import { ModelLifecycleService } from './model-lifecycle.service.js';
import { ProbeService } from './probe.service.js';

/**
 * Brings every backend up after start-up, in the background so /health can report `initializing`
 * truthfully: init, then preloads through the lifecycle (so leases and the memory budget apply), then
 * the final readiness. `settled()` resolves when every backend has one.
 */
@Injectable()
export class BackendStartupService implements OnApplicationBootstrap {
  private readonly logger = new Logger(BackendStartupService.name);
  private settling: Promise<void> = Promise.resolve();

  constructor(
    private readonly registry: ProviderRegistry,
    private readonly backendState: BackendStateService,
    private readonly lifecycle: ModelLifecycleService,
    private readonly observer: ProbeService,
  ) {}

  onApplicationBootstrap(): void {
    this.settling = Promise.all(
      this.registry.all().map(({ provider, backend }) => this.bringUp(provider, backend)),
    ).then(() => undefined);
  }

  /** Resolves once every backend's init and preloads have settled. */
  settled(): Promise<void> {
    return this.settling;
  }

  private async bringUp(provider: ModelProvider, backend: BackendConfig): Promise<void> {
    let initError: string | null = null;
    try {
      await provider.init();
    } catch (err) {
      initError = errorText(err);
      this.logger.error(`backend '${backend.name}' (${backend.type}) failed to initialize: ${initError}`);
    }
    this.registry.refreshCatalog(backend.name);
    this.backendState.markInitialized(backend.name);
    const preloads = initError === null ? backend.models.filter((m) => m.preload) : [];
    const preloadFailures: { id: string; reason: string }[] = [];
    // Preloads run one after another: on a small machine parallel loads only compete for the same cores.
    for (const model of preloads) {
      try {
        const lease = await this.lifecycle.acquire(model.id);
        lease.release();
        this.logger.log(`preloaded '${model.id}' on '${backend.name}'`);
      } catch (err) {
        const reason = errorText(err);
        preloadFailures.push({ id: model.id, reason });
        this.logger.error(`preload of '${model.id}' on '${backend.name}' failed: ${reason}`);
      }
    }
    // A remote backend that failed init recovers through probes; an in-process one stays unavailable.
    this.backendState.finalize(backend.name, { initError, preloadFailures, preloadCount: preloads.length });
    const state = this.backendState.get(backend.name);
    if (state.readiness !== Readiness.Ready)
      this.logger.warn(`backend '${backend.name}' is ${state.readiness}: ${state.reason}`);
    // The first observation: what the backend holds now that it is up (and its catalog, for remote kinds).
    await this.observer.probeNow(backend.name);
  }
}
