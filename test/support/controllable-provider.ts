/**
 * A hand-written provider with controllable loads, for lifecycle races that must be deterministic
 * (STYLE #11). It records invariant breaches: an unload while a request is being served.
 */
import type { ModelDescriptor, ModelProvider, Observation, UnloadResult } from '../../src/providers/model-provider.js';

export class ControllableProvider implements ModelProvider {
  readonly kind = 'llama-cpp' as const;
  readonly url = null;
  readonly capabilities = { canObserveLoadState: true, canUnload: true, canLoad: true, remote: false };
  readonly loaded = new Set<string>();
  loadCalls = 0;
  unloadCalls = 0;
  serving = 0;
  unloadedWhileServing = 0;
  private gate: Promise<void> | null = null;
  private openGate: (() => void) | null = null;
  failNextLoad: Error | null = null;

  constructor(
    readonly backendName: string,
    private readonly ids: string[],
    private readonly sizeBytes = 100 * 1024 * 1024,
  ) {}

  /** Loads after this call wait until `releaseLoads()`. */
  holdLoads(): void {
    this.gate = new Promise((resolve) => (this.openGate = resolve));
  }

  releaseLoads(): void {
    this.openGate?.();
    this.gate = null;
  }

  async init(): Promise<void> {}

  descriptors(): ModelDescriptor[] {
    return this.ids.map((id) => ({
      id,
      upstreamName: id,
      purpose: 'chat',
      expectedSizeBytes: this.sizeBytes,
      details: {},
    }));
  }

  async observe(): Promise<Observation> {
    return {
      reachable: true,
      error: null,
      serverState: 'ok',
      models: this.ids.map((id) => ({
        id,
        state: this.loaded.has(id) ? 'loaded' : 'unloaded',
        sizeBytes: this.loaded.has(id) ? this.sizeBytes : null,
        vramBytes: null,
        ramBytes: null,
        expiresAt: null,
        backendIdleSeconds: null,
        details: {},
        observedVia: 'handle',
      })),
    };
  }

  async load(id: string): Promise<void> {
    this.loadCalls++;
    if (this.gate) await this.gate;
    if (this.failNextLoad) {
      const err = this.failNextLoad;
      this.failNextLoad = null;
      throw err;
    }
    this.loaded.add(id);
  }

  async unload(id: string): Promise<UnloadResult> {
    this.unloadCalls++;
    if (this.serving > 0) this.unloadedWhileServing++;
    const wasLoaded = this.loaded.delete(id);
    return { wasLoaded, expectedFreedBytes: wasLoaded ? this.sizeBytes : null };
  }

  async dispose(): Promise<void> {
    this.loaded.clear();
  }
}
