import { readFileSync } from 'node:fs';

/**
 * Resident memory of this process in bytes. Anonymous + file-backed: mmapped GGUF weights show up
 * as RssFile (docs/runtimes.md "Memory"), so both count toward what an unload frees.
 */
export function readRssBytes(): number {
  try {
    const status = readFileSync('/proc/self/status', 'utf8');
    const match = /^VmRSS:\s+(\d+) kB/m.exec(status);
    if (match) return Number(match[1]) * 1024;
  } catch {
    // not Linux: fall back to Node's own figure
  }
  return process.memoryUsage.rss();
}
