import type { LogLevel } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { randomUUID } from 'node:crypto';
import { AppModule } from './app.module.js';
import type { Clock } from './common/clock.js';
import { apiKeyOnRequest } from './common/auth.guards.js';
import { installJsonBodyParser } from './common/body-guard.js';
import { GlobalExceptionFilter } from './common/exception.filter.js';
import { capConnections, endStreamsOnShutdown, mountLiveness, serverOptions } from './common/http-server.js';
import { ShutdownNotice } from './common/shutdown.js';
import { createValidationPipe } from './common/validation.js';
import type { AppConfig } from './config/app-config.js';

export interface CreateAppOptions {
  clock?: Clock;
  /** false silences Nest's logger (tests). */
  logger?: false | LogLevel[];
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
    genReqId: (req: { headers: Record<string, string | string[] | undefined> }) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    },
  });
  const app = await NestFactory.create<NestFastifyApplication>(
    AppModule.forRoot({ config, clock: options.clock }),
    adapter,
    {
      logger: options.logger ?? logLevelsFor(config.logLevel),
      bufferLogs: false,
    },
  );
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
  endStreamsOnShutdown(fastify, app.get(ShutdownNotice));
  app.useGlobalFilters(new GlobalExceptionFilter());
  app.useGlobalPipes(createValidationPipe());
  return app;
}
