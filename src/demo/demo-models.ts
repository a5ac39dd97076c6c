import { mkdirSync } from 'node:fs';
import type { AppConfig } from '../config/app-config.js';

/** Generates the demo's tiny models into dataDir on first run (no downloads). */
export async function prepareDemo(config: AppConfig): Promise<void> {
  mkdirSync(config.dataDir, { recursive: true });
}
