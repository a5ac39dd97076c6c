import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const TYPES: Record<string, string> = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'style.css': 'text/css; charset=utf-8',
};

/**
 * The files live in src/dashboard/public and are not compiled. `npm run build` (`nest build`, the
 * assets in nest-cli.json) copies them next to this module in dist, so a built app needs no src/ (the
 * container image has none); under ts-jest this module runs from src/dashboard itself. The second
 * candidate serves a checkout's dist compiled by bare `tsc`, which copies nothing.
 */
function publicDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [join(here, 'public'), join(here, '..', '..', '..', 'src', 'dashboard', 'public')];
  return candidates.find((dir) => existsSync(join(dir, 'index.html'))) ?? candidates[0]!;
}

const cache = new Map<string, Buffer>();

/** A known dashboard file (a closed list: no path from the URL ever reaches the file system). */
export function dashboardAsset(file: string): { body: Buffer; contentType: string } | null {
  const contentType = TYPES[file];
  if (!contentType) return null;
  let body = cache.get(file);
  if (!body) {
    body = readFileSync(join(publicDir(), file));
    cache.set(file, body);
  }
  return { body, contentType };
}
