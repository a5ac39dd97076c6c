import type { BackendConfig, ModelConfig } from '../../../src/config/app-config.js';
import type { BackendKind } from '../../../src/providers/model-provider.js';

/** A remote backend config as the loader would produce it, with short timeouts for tests. */
export function remoteBackend(
  type: BackendKind,
  url: string,
  overrides: Partial<Omit<BackendConfig, 'models'>> & { models?: Partial<ModelConfig>[] } = {},
): BackendConfig {
  const { models, ...rest } = overrides;
  return {
    name: `${type}-test`,
    type,
    url,
    apiKey: null,
    probeTimeoutMs: 1000,
    probeCacheMs: 0,
    probeIntervalMs: 0,
    failureThreshold: 3,
    requestTimeoutMs: 2000,
    threads: null,
    ...rest,
    models: (models ?? []).map((m) => ({
      id: m.id ?? 'model',
      path: null,
      upstreamName: m.upstreamName ?? null,
      purpose: m.purpose ?? null,
      preload: m.preload ?? false,
      pin: m.pin ?? false,
      idleUnloadS: m.idleUnloadS ?? null,
      contextSize: null,
      embeddings: false,
    })),
  };
}

export const probeSignal = (): AbortSignal => AbortSignal.timeout(1000);
