import { join } from 'node:path';
import type { BackendConfig } from './app-config.js';
import { backendConfig, modelConfig } from './config-defaults.js';

/** Where the embedded demo's generated models live, under the data folder. */
export function demoPaths(dataDir: string): { chat: string; embed: string; image: string } {
  const dir = join(dataDir, 'demo');
  return { chat: join(dir, 'demo-chat.gguf'), embed: join(dir, 'demo-embed.gguf'), image: join(dir, 'demo-image') };
}

/**
 * The embedded demo (no config file): tiny generated models, in-process, so the whole API works on a
 * fresh machine with no downloads. The files are generated into dataDir at start-up (src/demo).
 */
export function demoBackends(dataDir: string): BackendConfig[] {
  const paths = demoPaths(dataDir);
  return [
    backendConfig('local-llm', 'llama-cpp', [
      modelConfig('demo-chat', paths.chat, { preload: true }),
      modelConfig('demo-embed', paths.embed, { embeddings: true, purpose: 'embedding' }),
    ]),
    backendConfig('local-image', 'onnx-image', [modelConfig('demo-image', paths.image, { preload: true })]),
  ];
}
