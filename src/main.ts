import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createApp } from './app.factory.js';
import { ShutdownNotice } from './common/shutdown.js';
import { ConfigError, loadConfig } from './config/config.loader.js';
import type { AppConfig } from './config/app-config.js';
import { createRootLogger, startupLogger } from './logging/logging.js';

/** Exit code for a configuration the process refuses to start with. */
export const EXIT_BAD_CONFIG = 2;

/** After the drain: time for unloads and closing hooks before the exit is forced (the bound is drain + 2 s). */
const AFTER_DRAIN_MS = 1500;

async function main(): Promise<void> {
  let config: AppConfig;
  try {
    config = loadConfig({ argv: process.argv.slice(2), env: process.env, cwd: process.cwd() });
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(EXIT_BAD_CONFIG);
    }
    throw err;
  }
  // One root logger from the first line on: stdout is JSON lines (unless pretty) even for what is
  // written before the app exists. createApp hands Nest's logger over to nestjs-pino on the same root.
  const log = createRootLogger(config);
  Logger.overrideLogger(startupLogger(log));
  const { prepareDemo } = await import('./demo/demo-models.js');
  if (config.demo) await prepareDemo(config);

  const app = await createApp(config, { log });
  const logger = new Logger('modelplane');
  let closing = false;
  const shutdown = (signal: string): void => {
    if (closing) return;
    closing = true;
    const drainMs = config.server.shutdownDrainS * 1000;
    logger.log(`${signal} received: draining for up to ${config.server.shutdownDrainS} s, then shutting down`);
    // Readiness 503 and event streams ended now, not after the drain.
    app.get(ShutdownNotice).begin();
    const server: Server = app.getHttpServer();
    server.closeIdleConnections();
    // Nothing may hold the process past the bound: not a slow client, a remote stream, or a stuck unload.
    setTimeout(() => {
      logger.warn(`drain of ${config.server.shutdownDrainS} s over: closing the connections still open`);
      server.closeAllConnections();
    }, drainMs).unref();
    setTimeout(() => {
      logger.error(`shutdown still running ${AFTER_DRAIN_MS} ms after the drain: exiting anyway`);
      process.exit(0);
    }, drainMs + AFTER_DRAIN_MS).unref();
    app
      .close()
      .then(() => process.exit(0))
      .catch((err: unknown) => {
        logger.error(`shutdown failed: ${String(err)}`);
        process.exit(1);
      });
  };
  // `on`, not `once`: signal-exit (pulled in by node-llama-cpp's dependencies) re-raises the signal
  // when it finds itself the only listener, which would turn a clean exit 0 into death by SIGTERM.
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  await app.listen({ host: config.server.host, port: config.server.port });
  // The bound port, not the configured one: `port: 0` picks a free port and this line is how to find it.
  const { port } = app.getHttpServer().address() as AddressInfo;
  logger.log(`listening on http://${config.server.host}:${port}${config.demo ? ' (embedded demo)' : ''}`);
  if (config.server.adminToken === null) {
    logger.log(
      'no admin token: admin routes answer direct loopback clients only (set MODELPLANE_ADMIN_TOKEN behind a proxy)',
    );
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`fatal: ${(err as Error)?.stack ?? String(err)}\n`);
  process.exit(1);
});
