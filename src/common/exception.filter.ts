import { type ArgumentsHost, Catch, type ExceptionFilter, HttpException, Logger } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import {
  AppError,
  BadUrlError,
  InternalError,
  NotFoundRouteError,
  PayloadTooLargeError,
  UnsupportedMediaTypeError,
  UriTooLongError,
} from './errors.js';

/** A response whose body is already in its final shape (terminus health checks). */
export class RawHttpResponse extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown,
  ) {
    super(`raw response ${status}`);
  }
}

export interface ErrorEnvelope {
  error: {
    message: string;
    type: string;
    code: string;
    param: string | null;
    request_id: string | null;
    [detail: string]: unknown;
  };
}

const FALLBACK_BODY = '{"error":{"message":"failed to serialize error","type":"server_error","code":"internal_error"}}';

/** Any thrown value → the one error envelope (docs/api.md "Errors"). Never a stack trace on the wire. */
export function toAppError(err: unknown, method = '', url = ''): AppError {
  if (err instanceof AppError) return err;
  // Nest wraps Fastify's own 4xx errors (body parsing) in an HttpException; the cause says what went wrong.
  const cause = err instanceof HttpException ? (err.cause as { name?: string } | undefined) : undefined;
  if (cause?.name === 'FastifyError') return fromFastifyError(cause);
  if (err instanceof HttpException) {
    const status = err.getStatus();
    if (status === 404) return new NotFoundRouteError(method, url);
    const response = err.getResponse();
    const message =
      typeof response === 'string'
        ? response
        : Array.isArray((response as { message?: unknown }).message)
          ? (response as { message: string[] }).message.join('; ')
          : typeof (response as { message?: unknown }).message === 'string'
            ? (response as { message: string }).message
            : err.message;
    // A framework error whose status is only known here: the envelope with the status's generic code.
    return new AppError({ status, code: codeForStatus(status), message });
  }
  const fastifyError = err as { statusCode?: number };
  if (typeof fastifyError.statusCode === 'number' && fastifyError.statusCode >= 400 && fastifyError.statusCode < 500) {
    return fromFastifyError(err);
  }
  return new InternalError();
}

function fromFastifyError(err: unknown): AppError {
  const fastifyError = err as { statusCode?: number; code?: string; message?: string };
  const status = fastifyError.statusCode ?? 400;
  if (fastifyError.code === 'FST_ERR_CTP_BODY_TOO_LARGE' || status === 413) {
    return new PayloadTooLargeError();
  }
  if (fastifyError.code === 'FST_ERR_BAD_URL') {
    return new BadUrlError();
  }
  if (fastifyError.code === 'FST_ERR_MAX_PARAM_LENGTH' || status === 414) {
    return new UriTooLongError();
  }
  if (fastifyError.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' || status === 415) {
    return new UnsupportedMediaTypeError(fastifyError.message ?? 'Unsupported media type');
  }
  // Bad JSON and empty JSON bodies: the body itself is invalid.
  const code = fastifyError.code?.startsWith('FST_ERR_CTP_') ? 'invalid_json' : codeForStatus(status);
  return new AppError({ status, code, message: fastifyError.message ?? 'Bad request', param: 'body' });
}

function codeForStatus(status: number): string {
  switch (status) {
    case 400:
      return 'bad_request';
    case 401:
      return 'unauthorized';
    case 403:
      return 'forbidden';
    case 405:
      return 'method_not_allowed';
    case 409:
      return 'conflict';
    case 413:
      return 'payload_too_large';
    case 429:
      return 'rate_limited';
    case 503:
      return 'unavailable';
    default:
      return status >= 500 ? 'internal_error' : 'bad_request';
  }
}

export function envelopeFor(error: AppError, requestId: string | null): ErrorEnvelope {
  return {
    error: {
      ...error.details,
      message: error.message,
      type: error.type,
      code: error.code,
      param: error.param,
      request_id: requestId,
    },
  };
}

export function sendError(reply: FastifyReply, request: FastifyRequest, err: unknown, logger: Logger): void {
  if (err instanceof RawHttpResponse) {
    void reply.status(err.status).send(err.body);
    return;
  }
  const appError = toAppError(err, request.method, request.url);
  if (appError.status >= 500 && !(err instanceof AppError)) {
    logger.error(`${request.method} ${request.url} failed: ${(err as Error)?.stack ?? String(err)}`);
  }
  if (reply.sent) return;
  let body: string;
  try {
    body = JSON.stringify(envelopeFor(appError, String(request.id ?? '') || null));
  } catch {
    body = FALLBACK_BODY;
  }
  void reply
    // Router-level errors (bad URL, long parameter) never ran the onRequest hook that sets it.
    .header('x-request-id', String(request.id ?? ''))
    .status(appError.status)
    .headers(appError.headers)
    .header('content-type', 'application/json; charset=utf-8')
    .send(body);
}

@Catch()
export class GlobalExceptionFilter implements ExceptionFilter {
  private readonly logger = new Logger('HTTP');

  catch(exception: unknown, host: ArgumentsHost): void {
    const ctx = host.switchToHttp();
    sendError(ctx.getResponse<FastifyReply>(), ctx.getRequest<FastifyRequest>(), exception, this.logger);
  }
}
