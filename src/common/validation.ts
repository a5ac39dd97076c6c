import { ValidationPipe, type ValidationError } from '@nestjs/common';
import { type FieldIssue, ValidationFailedError } from './errors.js';

const ECHO_MAX_CHARS = 200;

/** What an error may echo of a bad value: a 2 MB string once made a 6 MB 400. */
export function echoable(value: unknown): unknown {
  if (typeof value === 'string') {
    return value.length > ECHO_MAX_CHARS ? `${value.slice(0, ECHO_MAX_CHARS)}… (${value.length} chars)` : value;
  }
  if (typeof value === 'object' && value !== null) {
    // Bounded by the body limit and key cap, so stringifying to measure is affordable.
    const text = JSON.stringify(value) ?? '';
    if (text.length <= ECHO_MAX_CHARS) return value;
    return Array.isArray(value) ? `(array of ${value.length} items)` : `(object of ${text.length} chars)`;
  }
  return value;
}

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
      out.push({ field, value: echoable(e.value), rule, message: message.replace(/^property /, '') });
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
