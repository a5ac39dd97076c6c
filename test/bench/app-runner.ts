/** Starts the real app for a benchmark (logger off, loopback, random port). */
import { BackendStartupService } from '../../src/models/backend-startup.service.js';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { createApp } from '../../src/app.factory.js';
import type { Clock } from '../../src/common/clock.js';
import { loadConfig } from '../../src/config/config.loader.js';

export interface BenchApp {
  app: NestFastifyApplication;
  url: string;
  close(): Promise<void>;
}

export async function startBenchApp(yaml: Record<string, unknown>, clock?: Clock): Promise<BenchApp> {
  const dir = mkdtempSync(join(tmpdir(), 'mp-bench-'));
  const file = join(dir, 'modelplane.yaml');
  writeFileSync(file, stringify({ server: { host: '127.0.0.1', port: 0 }, ...yaml }));
  const config = loadConfig({ argv: ['--config', file], env: {}, cwd: dir });
  const app = await createApp(config, { logger: false, clock });
  await app.listen({ host: '127.0.0.1', port: 0 });
  await app.get(BackendStartupService).settled();
  const { port } = app.getHttpServer().address() as { port: number };
  return { app, url: `http://127.0.0.1:${port}`, close: () => app.close() };
}
