import { Logger } from '@nestjs/common';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { AppConfig } from '../config/app-config.js';
import { demoPaths } from '../config/demo-config.js';
import { TINY_CHAT, TINY_EMBED, writeTinyLlamaGguf } from './tiny-llama.js';
import { writeTinyPipeline } from './tiny-image-pipeline.js';

/** Writes the demo's tiny models under <dataDir>/demo (overwriting; no downloads) and says where. */
export function writeDemoModels(dataDir: string): ReturnType<typeof demoPaths> {
  const paths = demoPaths(dataDir);
  mkdirSync(dirname(paths.chat), { recursive: true });
  writeTinyLlamaGguf(paths.chat, { ...TINY_CHAT, name: 'demo-chat' });
  writeTinyLlamaGguf(paths.embed, { ...TINY_EMBED, name: 'demo-embed' });
  writeTinyPipeline(paths.image, { scheduler: 'lcm' });
  return paths;
}

/** Generates the demo's tiny models into dataDir on first run (idempotent; no downloads). */
export async function prepareDemo(config: AppConfig): Promise<void> {
  const paths = writeDemoModels(config.dataDir);
  new Logger('demo').log(`demo models ready in ${dirname(paths.chat)}`);
}
