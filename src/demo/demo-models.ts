import { Logger } from '@nestjs/common';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { AppConfig } from '../config/app-config.js';
import { demoPaths } from '../config/demo-config.js';
import { writeTinyPipeline } from '../providers/onnx-image/tiny-pipeline.js';

/** Generates the demo's tiny models into dataDir on first run (idempotent; no downloads). */
export async function prepareDemo(config: AppConfig): Promise<void> {
  const paths = demoPaths(config.dataDir);
  mkdirSync(dirname(paths.chat), { recursive: true });
  const logger = new Logger('demo');
  writeTinyPipeline(paths.image, { scheduler: 'lcm' });
  logger.log(`demo models ready in ${dirname(paths.chat)}`);
}
