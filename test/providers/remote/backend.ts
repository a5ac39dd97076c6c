import type { BackendConfig, ModelConfig } from '../../../src/config/app-config.js';
import { backendConfig, modelConfig } from '../../../src/config/config-defaults.js';
import type { BackendKind } from '../../../src/providers/model-provider.js';

/** A remote backend config as the loader would produce it, with short timeouts for tests. */
export function remoteBackend(
  type: BackendKind,
  url: string,
  overrides: Partial<Omit<BackendConfig, 'models'>> & { models?: Partial<ModelConfig>[] } = {},
): BackendConfig {
  const { models, ...rest } = overrides;
  return backendConfig(
    `${type}-test`,
    type,
    (models ?? []).map(({ id, ...m }) => modelConfig(id ?? 'model', null, m)),
    { url, probeTimeoutMs: 1000, probeCacheMs: 0, probeIntervalMs: 0, requestTimeoutMs: 2000, ...rest },
  );
}

export const probeSignal = (): AbortSignal => AbortSignal.timeout(1000);
