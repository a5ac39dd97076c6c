import { type ArgumentMetadata, ValidationPipe, type ValidationError } from '@nestjs/common';
import { getMetadataStorage } from 'class-validator';
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

const declaredFields = new WeakMap<object, ReadonlySet<string>>();

/** The top-level properties a DTO validates (inherited ones too): exactly what `whitelist` would keep. */
function fieldsOf(dto: object): ReadonlySet<string> {
  let fields = declaredFields.get(dto);
  if (!fields) {
    // always=true, strictGroups=false: every rule regardless of groups, as the pipe validates without groups.
    const rules = getMetadataStorage().getTargetValidationMetadatas(dto as new () => object, '', true, false);
    fields = new Set(rules.map((rule) => rule.propertyName));
    declaredFields.set(dto, fields);
  }
  return fields;
}

/**
 * Unknown top-level body fields never reach class-transformer, which copies (and so walks) every nested value
 * of every field before `whitelist` drops it: validation costs what the declared fields cost, whatever an
 * unknown one holds. The raw body is untouched, so the controller still forwards unknown fields verbatim.
 */
class DeclaredFieldsValidationPipe extends ValidationPipe {
  override async transform(value: unknown, metadata: ArgumentMetadata): Promise<unknown> {
    if (metadata.type === 'body' && metadata.metatype && this.toValidate(metadata) && isRecord(value)) {
      const fields = fieldsOf(metadata.metatype);
      const declared: Record<string, unknown> = {};
      for (const key of Object.keys(value)) if (fields.has(key)) declared[key] = value[key];
      return super.transform(declared, metadata);
    }
    return super.transform(value, metadata);
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Request validation for every route. Unknown body fields are stripped, not rejected:
 * OpenAI SDKs send fields we do not use (user, n, stream_options...), and refusing them breaks clients.
 */
export function createValidationPipe(): ValidationPipe {
  return new DeclaredFieldsValidationPipe({
    whitelist: true,
    forbidNonWhitelisted: false,
    transform: true,
    exceptionFactory: (errors) => new ValidationFailedError(flattenValidationErrors(errors)),
  });
}
