import type { LoggerService } from '@nestjs/common';
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
 * configured tokens if a config object is ever logged. Paths match one level of wildcard only; the
 * configured values themselves are also masked wherever they appear (maskSecrets).
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

/**
 * Shorter values are not masked: replacing every "k" of every line because an API key is "k" would make
 * the logs unreadable, and a value that short protects nothing anyway.
 */
export const MASKED_SECRET_MIN_CHARS = 6;

/**
 * Every credential the config holds that is long enough to mask: the server's admin token and API key, the
 * fleet's admin token, each backend's key and admin token.
 */
export function configuredSecrets(config: AppConfig): string[] {
  const all = [
    config.server.adminToken,
    config.server.apiKey,
    config.fleet?.adminToken ?? null,
    ...config.backends.flatMap((b) => [b.apiKey, b.adminToken ?? null]),
  ];
  return [...new Set(all.filter((s): s is string => typeof s === 'string' && s.length >= MASKED_SECRET_MIN_CHARS))];
}

const CENSOR = '[redacted]';

/**
 * A written line with every configured secret replaced, as it appears raw or JSON-escaped: the
 * redact paths only cover fields, and a token can also reach a line inside a message, an error or
 * an object logged deeper than they reach. Lines without a secret come back as they are.
 */
export function maskSecrets(line: string, secrets: readonly string[]): string {
  let out = line;
  for (const secret of secrets) {
    out = out.replaceAll(secret, CENSOR);
    const escaped = JSON.stringify(secret).slice(1, -1);
    if (escaped !== secret) out = out.replaceAll(escaped, CENSOR);
  }
  return out;
}

/** The root pino logger of the app; request loggers are its children carrying `req_id`. */
export function createRootLogger(config: AppConfig, options: LoggingOptions = {}): Logger {
  const secrets = configuredSecrets(config);
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
      redact: { paths: REDACT_PATHS, censor: CENSOR },
      ...(secrets.length > 0 ? { hooks: { streamWrite: (line: string) => maskSecrets(line, secrets) } } : {}),
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

type PinoMethod = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';

/**
 * Nest's static `Logger` over the app's root pino logger, for the lines main.ts writes before the app
 * exists (the demo's models are prepared first). Without it they go to Nest's coloured text logger
 * and stdout's first line is not JSON. Same shape as nestjs-pino's lines: `context` and `msg`.
 * (nestjs-pino's own Logger cannot be made this early: its first use fixes the process-wide
 * pino-http middleware, request-id options included.)
 */
export function startupLogger(root: Logger): LoggerService {
  const write =
    (method: PinoMethod) =>
    (message: unknown, ...params: unknown[]): void => {
      // Nest passes the logger's context as the last parameter.
      const context = params.at(-1);
      const fields: Record<string, unknown> = typeof context === 'string' ? { context } : {};
      if (message instanceof Error) root[method]({ ...fields, err: message }, message.message);
      else if (typeof message === 'object' && message !== null) root[method]({ ...fields, ...message });
      else root[method](fields, String(message));
    };
  return {
    fatal: write('fatal'),
    error: write('error'),
    warn: write('warn'),
    log: write('info'),
    debug: write('debug'),
    verbose: write('trace'),
  };
}
