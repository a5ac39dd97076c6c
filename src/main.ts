import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { createApp } from './app.factory.js';
import { ConfigError, loadConfig } from './config/config.loader.js';
import type { AppConfig } from './config/app-config.js';

/** Exit code for a configuration the process refuses to start with. */
export const EXIT_BAD_CONFIG = 2;

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
  const { prepareDemo } = await import('./demo/demo-models.js');
  if (config.demo) await prepareDemo(config);

  const app = await createApp(config);
  const logger = new Logger('modelplane');
  let closing = false;
  const shutdown = (signal: string): void => {
    if (closing) return;
    closing = true;
    logger.log(`${signal} received: draining and shutting down`);
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
  logger.log(`listening on http://${config.server.host}:${config.server.port}${config.demo ? ' (embedded demo)' : ''}`);
}

main().catch((err: unknown) => {
  process.stderr.write(`fatal: ${(err as Error)?.stack ?? String(err)}\n`);
  process.exit(1);
});
