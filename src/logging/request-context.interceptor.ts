import { type CallHandler, type ExecutionContext, Injectable, type NestInterceptor } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { PinoLogger } from 'nestjs-pino';
import { Observable } from 'rxjs';

/**
 * Runs each HTTP handler inside a logging context bound to its request id, so every line a service
 * writes while serving it (Nest's Logger included) carries `req_id`. nestjs-pino's own middleware
 * context does not survive Fastify's body parsing, which resumes on the socket's async context.
 */
@Injectable()
export class RequestContextInterceptor implements NestInterceptor {
  constructor(private readonly logger: PinoLogger) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    if (context.getType() !== 'http') return next.handle();
    const request = context.switchToHttp().getRequest<FastifyRequest>();
    return new Observable((subscriber) =>
      this.logger.runInContext(() => next.handle().subscribe(subscriber), { bindings: { req_id: String(request.id) } }),
    );
  }
}
