/** Starts the real app for a benchmark (logger off, loopback, random port). */
import { BackendStartupService } from '../../src/models/backend-startup.service.js';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
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

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

export interface ServerProcess {
  url: string;
  stop(): Promise<void>;
}

/** Spawns a server on a free loopback port and waits until `healthPath` answers 200 (both sides alike). */
export async function spawnServer(
  what: string,
  command: string,
  args: (port: number) => string[],
  healthPath: string,
): Promise<ServerProcess> {
  const port = await freePort();
  const child: ChildProcess = spawn(command, args(port), { stdio: 'ignore' });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${what} exited with ${child.exitCode}`);
    try {
      if ((await fetch(`${url}${healthPath}`)).ok) break;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) throw new Error(`${what} did not become healthy in 120 s`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    stop: () =>
      new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

/**
 * modelplane as people run it: its own process (the compiled main of the bench build), so its event
 * loop serves only the server side, and the benchmark client's work in this process (parsing streams,
 * reading large image responses) is not counted against the server. MODELPLANE_BENCH_MAIN names another
 * build's main.js (e.g. the previous commit's, built in a worktree) to measure it the same way;
 * MODELPLANE_BENCH_NODE_ARGS adds node flags (space-separated, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`).
 */
export function startModelplane(config: Record<string, unknown>): Promise<ServerProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'mp-bench-'));
  const file = join(dir, 'modelplane.yaml');
  const main = process.env.MODELPLANE_BENCH_MAIN ?? fileURLToPath(new URL('../../src/main.js', import.meta.url));
  return spawnServer(
    'modelplane',
    process.execPath,
    (port) => {
      writeFileSync(file, stringify({ log_level: 'error', server: { host: '127.0.0.1', port }, ...config }));
      const nodeArgs = (process.env.MODELPLANE_BENCH_NODE_ARGS ?? '').split(' ').filter((a) => a.length > 0);
      return [...nodeArgs, main, '--config', file];
    },
    '/health/ready',
  );
}
