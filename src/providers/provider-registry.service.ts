import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { BackendStateService } from '../backend-state/backend-state.service.js';
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
 * Owns the providers (one per configured backend) and the catalog index: model id → provider. The index
 * is built once at start-up and rebuilt only when a remote backend's catalog changes (after a probe), so
 * no read path walks folders or rebuilds catalogs. Init and preloads run from the models module's
 * BackendStartupService, through the lifecycle.
 */
@Injectable()
export class ProviderRegistry implements OnApplicationShutdown {
  private readonly providers = new Map<string, { provider: ModelProvider; backend: BackendConfig }>();
  private index = new Map<string, ResolvedModel>();
  private ordered: ResolvedModel[] = [];
  /** Per backend: the catalog signature the index was built from. */
  private readonly signatures = new Map<string, string>();

  constructor(
    @Inject(APP_CONFIG) config: AppConfig,
    private readonly backendState: BackendStateService,
    private readonly factory: ProviderFactory,
  ) {
    for (const backend of config.backends) {
      this.providers.set(backend.name, { provider: factory.create(backend), backend });
      backendState.register(backend.name, backend.type);
    }
    this.rebuild();
  }

  async onApplicationShutdown(): Promise<void> {
    await Promise.allSettled([...this.providers.values()].map(({ provider }) => provider.dispose()));
    await this.factory.dispose();
  }

  /**
   * A backend that appeared at run time (a fleet peer found in DNS): built, registered for readiness and added
   * to the catalog index. Its init and first probe are the caller's (the observer watches it once told to).
   */
  addBackend(backend: BackendConfig): ModelProvider {
    if (this.providers.has(backend.name)) throw new Error(`backend '${backend.name}' already exists`);
    const provider = this.factory.create(backend);
    this.providers.set(backend.name, { provider, backend });
    this.backendState.register(backend.name, backend.type);
    this.rebuild();
    return provider;
  }

  /** A run-time backend went away: out of the index and readiness at once, then its connections closed. */
  async removeBackend(name: string): Promise<void> {
    const entry = this.providers.get(name);
    if (!entry) return;
    this.providers.delete(name);
    this.signatures.delete(name);
    this.backendState.unregister(name);
    this.rebuild();
    await entry.provider.dispose().catch(() => undefined);
  }

  all(): { provider: ModelProvider; backend: BackendConfig }[] {
    return [...this.providers.values()];
  }

  provider(backendName: string): ModelProvider | undefined {
    return this.providers.get(backendName)?.provider;
  }

  /** Every model any backend can serve: configured first, then discovered (remote catalogs). */
  catalog(): readonly ResolvedModel[] {
    return this.ordered;
  }

  find(id: string): ResolvedModel | undefined {
    return this.index.get(id);
  }

  resolve(id: string): ResolvedModel {
    const found = this.find(id);
    if (!found) throw new ModelNotFoundError(id);
    return found;
  }

  /** After a probe: rebuild the index only if that backend's catalog really changed. */
  refreshCatalog(backendName: string): void {
    const entry = this.providers.get(backendName);
    if (!entry) return;
    if (this.signatures.get(backendName) === signature(entry.provider.descriptors())) return;
    this.rebuild();
  }

  private rebuild(): void {
    const index = new Map<string, ResolvedModel>();
    const ordered: ResolvedModel[] = [];
    // This node's own backends claim an id before any fleet peer does, wherever the peer is listed: a model
    // this node has is served here, a request another node forwarded here included (docs/fleet.md).
    const all = [...this.providers.values()];
    const ownFirst = [
      ...all.filter((e) => e.backend.type !== 'modelplane'),
      ...all.filter((e) => e.backend.type === 'modelplane'),
    ];
    for (const { provider, backend } of ownFirst) {
      const descriptors = provider.descriptors();
      this.signatures.set(backend.name, signature(descriptors));
      for (const descriptor of descriptors) {
        if (index.has(descriptor.id)) continue;
        const resolved: ResolvedModel = {
          id: descriptor.id,
          provider,
          backend,
          descriptor,
          config: backend.models.find((m) => m.id === descriptor.id) ?? null,
        };
        index.set(descriptor.id, resolved);
        ordered.push(resolved);
      }
    }
    this.index = index;
    this.ordered = ordered;
  }
}

function signature(descriptors: readonly ModelDescriptor[]): string {
  return JSON.stringify(descriptors.map((d) => [d.id, d.upstreamName, d.purpose, d.expectedSizeBytes, d.details]));
}
