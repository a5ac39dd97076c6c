import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { BackendStateService } from '../backend-state/backend-state.service.js';
import { Readiness } from '../backend-state/readiness.js';
import { ModelNotFoundError } from '../common/errors.js';
import { APP_CONFIG, type AppConfig, type BackendConfig, type ModelConfig } from '../config/app-config.js';
import type { ModelDescriptor, ModelProvider } from './model-provider.js';
import { ProviderFactory } from './provider.factory.js';

/** A model resolved to the provider that serves it. */
export interface ResolvedModel {
  id: string;
  provider: ModelProvider;
  backend: BackendConfig;
  descriptor: ModelDescriptor;
  /** The model's own config entry; null for models discovered on a remote backend. */
  config: ModelConfig | null;
}

/**
 * Owns the providers (one per configured backend), their init and preloads, and the map from
 * model id to provider. Init runs in the background after start-up so /health can report
 * `initializing` truthfully; `settled()` resolves when every backend has a final readiness.
 */
@Injectable()
export class ProviderRegistry implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(ProviderRegistry.name);
  private readonly providers = new Map<string, { provider: ModelProvider; backend: BackendConfig }>();
  private settling: Promise<void> = Promise.resolve();
  /** Runs preloads through the model lifecycle (set by the models module so leases/budget apply). */
  private preloader: (id: string) => Promise<void> = async (id) => {
    const resolved = this.resolve(id);
    await resolved.provider.load(id);
  };

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly backendState: BackendStateService,
    private readonly factory: ProviderFactory,
  ) {
    for (const backend of config.backends) {
      this.providers.set(backend.name, { provider: factory.create(backend), backend });
      backendState.register(backend.name, backend.type);
    }
  }

  setPreloader(preloader: (id: string) => Promise<void>): void {
    this.preloader = preloader;
  }

  onApplicationBootstrap(): void {
    this.settling = Promise.all(
      [...this.providers.values()].map(({ provider, backend }) => this.initBackend(provider, backend)),
    ).then(() => undefined);
  }

  /** Resolves once every backend's init and preloads have settled. */
  settled(): Promise<void> {
    return this.settling;
  }

  async onApplicationShutdown(): Promise<void> {
    await Promise.allSettled([...this.providers.values()].map(({ provider }) => provider.dispose()));
    await this.factory.dispose();
  }

  all(): { provider: ModelProvider; backend: BackendConfig }[] {
    return [...this.providers.values()];
  }

  provider(backendName: string): ModelProvider | undefined {
    return this.providers.get(backendName)?.provider;
  }

  /** Every model any backend can serve: configured first, then discovered (remote catalogs). */
  catalog(): ResolvedModel[] {
    const seen = new Set<string>();
    const out: ResolvedModel[] = [];
    for (const { provider, backend } of this.providers.values()) {
      for (const descriptor of provider.descriptors()) {
        if (seen.has(descriptor.id)) continue;
        seen.add(descriptor.id);
        out.push({
          id: descriptor.id,
          provider,
          backend,
          descriptor,
          config: backend.models.find((m) => m.id === descriptor.id) ?? null,
        });
      }
    }
    return out;
  }

  find(id: string): ResolvedModel | undefined {
    for (const { provider, backend } of this.providers.values()) {
      const descriptor = provider.descriptors().find((d) => d.id === id);
      if (descriptor)
        return { id, provider, backend, descriptor, config: backend.models.find((m) => m.id === id) ?? null };
    }
    return undefined;
  }

  resolve(id: string): ResolvedModel {
    const found = this.find(id);
    if (!found) throw new ModelNotFoundError(id);
    return found;
  }

  private async initBackend(provider: ModelProvider, backend: BackendConfig): Promise<void> {
    let initError: string | null = null;
    try {
      await provider.init();
    } catch (err) {
      initError = errorText(err);
      this.logger.error(`backend '${backend.name}' (${backend.type}) failed to initialize: ${initError}`);
    }
    this.backendState.markInitialized(backend.name);
    const preloads = initError === null ? backend.models.filter((m) => m.preload) : [];
    const preloadFailures: { id: string; reason: string }[] = [];
    // Preloads run one after another: on a small machine parallel loads only compete for the same cores.
    for (const model of preloads) {
      try {
        await this.preloader(model.id);
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
  }
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
