/** Starts the real app on a random loopback port, configured through the real YAML loader. */
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { createApp } from '../../src/app.factory.js';
import type { Clock } from '../../src/common/clock.js';
import type { AppConfig } from '../../src/config/app-config.js';
import { ProbeService } from '../../src/models/probe.service.js';
import { configFrom } from './config.js';

export interface RunningApp {
  app: NestFastifyApplication;
  url: string;
  config: AppConfig;
  close(): Promise<void>;
}

export async function startApp(
  yaml: Record<string, unknown>,
  options: { clock?: Clock; env?: NodeJS.ProcessEnv } = {},
): Promise<RunningApp> {
  const config = configFrom({ server: { host: '127.0.0.1', port: 0 }, ...yaml }, options.env);
  const app = await createApp(config, { clock: options.clock, logger: false });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.getHttpServer().address() as { port: number };
  return { app, url: `http://127.0.0.1:${address.port}`, config, close: () => app.close() };
}

/**
 * Observe every backend now and wait for the answers (reads never probe: this is what the background
 * observer would do on its next round).
 */
export async function observeNow(running: RunningApp): Promise<void> {
  const observer = running.app.get(ProbeService);
  // Probes our own requests triggered finish first, so this is exactly one more probe per backend.
  await observer.whenIdle();
  await observer.refresh();
}

export { getJson, postJson } from './http-json.js';
