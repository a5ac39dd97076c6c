import type { LogLevel } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { Logger as PinoNestLogger } from 'nestjs-pino';
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { DestinationStream, Logger as PinoLogger } from 'pino';
import { AppModule } from './app.module.js';
import { Clock } from './common/clock.js';
import { apiKeyOnRequest } from './auth/auth.guards.js';
import { installJsonBodyParser } from './common/body-guard.js';
import { GlobalExceptionFilter } from './common/exception.filter.js';
import {
  answerLivenessFirst,
  capConnections,
  endStreamsOnShutdown,
  mountLiveness,
  serverOptions,
} from './common/http-server.js';
import { ShutdownNotice } from './common/shutdown.js';
import { createValidationPipe } from './common/validation.js';
import type { AppConfig } from './config/app-config.js';
import { installFleetRouting } from './fleet/fleet-proxy.js';
import { createRootLogger } from './logging/logging.js';
import { observeRequests } from './metrics/http-observer.js';
import { MetricsService } from './metrics/metrics.service.js';
import { mountOpenApi } from './openapi/openapi.js';

export interface CreateAppOptions {
  clock?: Clock;
  /** false silences the logs (tests), unless `logStream` is given. */
  logger?: false | LogLevel[];
  /** JSON log lines go here instead of stdout (tests read them). */
  logStream?: DestinationStream;
  /** The root logger when the caller made it already (main.ts logs before the app exists). */
  log?: PinoLogger;
}

const LEVELS: LogLevel[] = ['fatal', 'error', 'warn', 'log', 'debug', 'verbose'];

export function logLevelsFor(level: AppConfig['logLevel']): LogLevel[] {
  return LEVELS.slice(0, LEVELS.indexOf(level) + 1);
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Builds the Fastify-backed Nest app with the one error envelope and request ids; does not listen. */
export async function createApp(config: AppConfig, options: CreateAppOptions = {}): Promise<NestFastifyApplication> {
  const adapter = new FastifyAdapter({
    bodyLimit: config.server.bodyLimitBytes,
    ...serverOptions(config.limits),
    // Accept a well-formed client id so one request can be followed across services; otherwise make one.
    genReqId: (req: IncomingMessage) => {
      const given = req.headers['x-request-id'];
      const id = typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
      // Kept on the raw request too: pino-http (which only sees the raw request) logs it as req_id.
      req.id = id;
      return id;
    },
  });
  const logging = options.log !== undefined || options.logStream !== undefined || options.logger !== false;
  const log = options.log ?? createRootLogger(config, { stream: options.logStream, enabled: logging });
  const app = await NestFactory.create<NestFastifyApplication>(
    AppModule.forRoot({ config, clock: options.clock, log }),
    adapter,
    { logger: logging ? undefined : false, bufferLogs: logging },
  );
  if (logging) app.useLogger(app.get(PinoNestLogger));
  const fastify = app.getHttpAdapter().getInstance();
  fastify.addHook('onRequest', async (request, reply) => {
    void reply.header('x-request-id', request.id);
  });
  // Issue 16: the key is checked, and the body bounded, before anything walks the body.
  fastify.addHook('onRequest', apiKeyOnRequest(config.server.apiKey));
  installJsonBodyParser(app, config.server.bodyLimitBytes, {
    maxKeys: config.limits.bodyMaxKeys,
    maxDepth: config.limits.bodyMaxDepth,
  });
  capConnections(fastify.server, config.limits.maxConnections);
  mountLiveness(fastify);
  answerLivenessFirst(fastify.server);
  endStreamsOnShutdown(fastify, app.get(ShutdownNotice));
  observeRequests(fastify, { clock: app.get(Clock), metrics: app.get(MetricsService), log });
  installFleetRouting(app);
  mountOpenApi(app);
  app.useGlobalFilters(new GlobalExceptionFilter());
  app.useGlobalPipes(createValidationPipe());
  return app;
}
