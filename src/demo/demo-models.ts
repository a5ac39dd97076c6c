import { Logger } from '@nestjs/common';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { AppConfig } from '../config/app-config.js';
import { demoPaths } from '../config/demo-config.js';
import { TINY_CHAT, TINY_EMBED, writeTinyLlamaGguf } from '../providers/llama-cpp/gguf-writer.js';
import { writeTinyPipeline } from '../providers/onnx-image/tiny-pipeline.js';

/** Generates the demo's tiny models into dataDir on first run (idempotent; no downloads). */
export async function prepareDemo(config: AppConfig): Promise<void> {
  const paths = demoPaths(config.dataDir);
  mkdirSync(dirname(paths.chat), { recursive: true });
  const logger = new Logger('demo');
  writeTinyLlamaGguf(paths.chat, { ...TINY_CHAT, name: 'demo-chat' });
  writeTinyLlamaGguf(paths.embed, { ...TINY_EMBED, name: 'demo-embed' });
  writeTinyPipeline(paths.image, { scheduler: 'lcm' });
  logger.log(`demo models ready in ${dirname(paths.chat)}`);
}
