import { ValidationPipe, type ValidationError } from '@nestjs/common';
import { type FieldIssue, ValidationFailedError } from './errors.js';

/** class-validator errors → flat field issues with dotted paths (`backends[0].url`). */
export function flattenValidationErrors(errors: ValidationError[], prefix = ''): FieldIssue[] {
  const out: FieldIssue[] = [];
  for (const e of errors) {
    const field = /^\d+$/.test(e.property)
      ? `${prefix}[${e.property}]`
      : prefix
        ? `${prefix}.${e.property}`
        : e.property;
    for (const [rule, message] of Object.entries(e.constraints ?? {})) {
      out.push({ field, value: e.value, rule, message: message.replace(/^property /, '') });
    }
    if (e.children?.length) out.push(...flattenValidationErrors(e.children, field));
  }
  return out;
}

/**
 * Request validation for every route. Unknown body fields are stripped, not rejected:
 * OpenAI SDKs send fields we do not use (user, n, stream_options...), and refusing them breaks clients.
 */
export function createValidationPipe(): ValidationPipe {
  return new ValidationPipe({
    whitelist: true,
    forbidNonWhitelisted: false,
    transform: true,
    exceptionFactory: (errors) => new ValidationFailedError(flattenValidationErrors(errors)),
  });
}
