import type { AppConfig, BackendConfig, ModelConfig } from '../../../src/config/app-config.js';
import { backendConfig, modelConfig as baseModelConfig } from '../../../src/config/config-defaults.js';
import { LIMIT_DEFAULTS } from '../../../src/config/limits.js';

export function modelConfig(id: string, path: string | null): ModelConfig {
  return baseModelConfig(id, path);
}

export function imageBackend(models: ModelConfig[], threads: number | null = 2): BackendConfig {
  return backendConfig('local-image', 'onnx-image', models, {
    probeTimeoutMs: 2000,
    probeCacheMs: 0,
    requestTimeoutMs: 60000,
    threads,
  });
}

export function appConfig(baseDir: string, backends: BackendConfig[]): AppConfig {
  return {
    baseDir,
    dataDir: baseDir,
    demo: false,
    logLevel: 'error',
    logFormat: null,
    server: {
      host: '127.0.0.1',
      port: 0,
      adminToken: null,
      apiKey: null,
      bodyLimitBytes: 1_000_000,
      shutdownDrainS: 5,
    },
    eviction: { idleUnloadS: 600, checkIntervalS: 60, maxLoadedModels: 0, memoryBudgetMb: 0 },
    bus: {
      enabled: false,
      transport: 'mqtt',
      url: 'mqtt://127.0.0.1:1883',
      heartbeatS: 5,
      topics: { request: 'local/llm/request', response: 'local/llm/response', status: 'local/llm/status' },
      connectTimeoutMs: 1000,
    },
    backends,
    limits: LIMIT_DEFAULTS,
  };
}

/** Minimal PNG reader for assertions: checks signature and every chunk CRC, returns IHDR fields and inflated pixels. */
export { readPng } from './png-reader.js';
