import { join } from 'node:path';
import type { BackendConfig, ModelConfig } from './app-config.js';

/** Where the embedded demo's generated models live, under the data folder. */
export function demoPaths(dataDir: string): { chat: string; embed: string; image: string } {
  const dir = join(dataDir, 'demo');
  return { chat: join(dir, 'demo-chat.gguf'), embed: join(dir, 'demo-embed.gguf'), image: join(dir, 'demo-image') };
}

function model(id: string, path: string, overrides: Partial<ModelConfig> = {}): ModelConfig {
  return {
    id,
    path,
    upstreamName: null,
    purpose: null,
    preload: false,
    pin: false,
    idleUnloadS: null,
    contextSize: null,
    embeddings: false,
    ...overrides,
  };
}

function inProcess(name: string, type: BackendConfig['type'], models: ModelConfig[]): BackendConfig {
  return {
    name,
    type,
    url: null,
    apiKey: null,
    probeTimeoutMs: 1500,
    probeCacheMs: 1000,
    probeIntervalMs: 5000,
    failureThreshold: 3,
    requestTimeoutMs: 300_000,
    threads: null,
    models,
  };
}

/**
 * The embedded demo (no config file): tiny generated models, in-process, so the whole API works on a
 * fresh machine with no downloads. The files are generated into dataDir at start-up (src/demo).
 */
export function demoBackends(dataDir: string): BackendConfig[] {
  const paths = demoPaths(dataDir);
  return [
    inProcess('local-llm', 'llama-cpp', [
      model('demo-chat', paths.chat, { preload: true }),
      model('demo-embed', paths.embed, { embeddings: true, purpose: 'embedding' }),
    ]),
    inProcess('local-image', 'onnx-image', [model('demo-image', paths.image, { preload: true })]),
  ];
}
