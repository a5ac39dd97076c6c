import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { AppConfig } from '../../src/config/app-config.js';
import { loadConfig } from '../../src/config/config.loader.js';

/** Writes `yaml` (an object) to a temp modelplane.yaml and loads it like `--config` would. */
export function configFrom(yaml: Record<string, unknown>, env: NodeJS.ProcessEnv = {}): AppConfig {
  const dir = mkdtempSync(join(tmpdir(), 'modelplane-'));
  const file = join(dir, 'modelplane.yaml');
  writeFileSync(file, stringify(yaml));
  return loadConfig({ argv: ['--config', file], env, cwd: dir });
}
