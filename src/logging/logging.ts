import type { IncomingMessage } from 'node:http';
import type { Params } from 'nestjs-pino';
import { type DestinationStream, type Logger, type LevelWithSilent, pino } from 'pino';
import pretty from 'pino-pretty';
import type { AppConfig } from '../config/app-config.js';

/** Nest's level names → pino's. */
const PINO_LEVEL: Record<AppConfig['logLevel'], LevelWithSilent> = {
  error: 'error',
  warn: 'warn',
  log: 'info',
  debug: 'debug',
  verbose: 'trace',
};

/**
 * Never written to a log: credentials in headers (wherever a header object is logged) and the
 * configured tokens if a config object is ever logged.
 */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers["x-api-key"]',
  'headers.authorization',
  'headers["x-api-key"]',
  '*.admin_token',
  '*.adminToken',
  '*.api_key',
  '*.apiKey',
];

export interface LoggingOptions {
  /** Where lines go; stdout when absent. Tests pass a collecting stream. */
  stream?: DestinationStream;
  /** false: nothing is logged (tests that do not look at logs). */
  enabled?: boolean;
}

/** JSON lines unless asked for pretty output (`log_format: pretty`) or, with no choice made, stdout is a TTY. */
export function wantsPretty(config: AppConfig): boolean {
  return config.logFormat === 'pretty' || (config.logFormat === null && process.stdout.isTTY === true);
}

/** The root pino logger of the app; request loggers are its children carrying `req_id`. */
export function createRootLogger(config: AppConfig, options: LoggingOptions = {}): Logger {
  const level = options.enabled === false ? 'silent' : PINO_LEVEL[config.logLevel];
  const destination = wantsPretty(config)
    ? pretty({
        colorize: options.stream === undefined && process.stdout.isTTY === true,
        sync: true,
        destination: options.stream ?? 1,
      })
    : options.stream;
  return pino(
    {
      level,
      base: { service: 'modelplane' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    },
    destination,
  );
}

/**
 * nestjs-pino parameters: every line written while a request is handled carries `req_id` (the same id
 * Fastify assigned and echoes in `x-request-id`). pino-http's own access line is off: ours is written
 * when the response closes, where the route template and the model are known (http-observer.ts).
 */
export function loggerParams(root: Logger): Params {
  return {
    pinoHttp: {
      logger: root,
      autoLogging: false,
      quietReqLogger: true,
      customAttributeKeys: { reqId: 'req_id' },
      // Fastify's genReqId stores the id on the raw request (app.factory.ts).
      genReqId: (req: IncomingMessage) => req.id,
    },
  };
}
