/**
 * The custom class-validator rules of the OpenAI request DTOs (inference.dto.ts): each names the property and,
 * inside nested values, the path of what is wrong.
 */
import { ValidateBy, type ValidationOptions } from 'class-validator';
import { REQUEST_LIMITS } from '../common/request-limits.js';

export function IsStringOrStringArray(maxItems: number, options?: ValidationOptions): PropertyDecorator {
  return ValidateBy(
    {
      name: 'isStringOrStringArray',
      validator: {
        validate: (value: unknown) =>
          typeof value === 'string' ||
          (Array.isArray(value) &&
            value.length >= 1 &&
            value.length <= maxItems &&
            value.every((v) => typeof v === 'string')),
        defaultMessage: (args) => `${args?.property} must be a string or an array of 1-${maxItems} strings`,
      },
    },
    options,
  );
}

/** OpenAI allows content as a string or as an array of parts; text parts are joined, others refused. */
export function contentToText(value: unknown): unknown {
  if (!Array.isArray(value)) return value;
  if (!value.every((p) => typeof p === 'object' && p !== null && (p as { type?: unknown }).type === 'text'))
    return value;
  return value
    .map((p) => {
      const text = (p as { text?: unknown }).text;
      return typeof text === 'string' ? text : '';
    })
    .join('');
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A custom rule whose message names the property; `test` answers null when fine, else what is wrong. */
export function Rule(
  name: string,
  test: (value: unknown) => string | null,
  options?: ValidationOptions,
): PropertyDecorator {
  return ValidateBy(
    {
      name,
      validator: {
        validate: (value: unknown) => test(value) === null,
        defaultMessage: (args) => {
          const problem = test(args?.value) ?? 'is invalid';
          // Problems inside the value name their path (`[0].function.name`); glue it to the property.
          return `${args?.property}${/^[.[]/.test(problem) ? '' : ' '}${problem}`;
        },
      },
    },
    options,
  );
}

export function functionProblem(fn: unknown, where: string): string | null {
  const at = where.endsWith('.') ? where : `${where}.`;
  if (!isRecord(fn)) return `${at}function must be an object`;
  if (typeof fn.name !== 'string' || !/^[A-Za-z0-9_.-]{1,64}$/.test(fn.name))
    return `${at}function.name must be 1-64 letters, digits, _ . or -`;
  return null;
}

export function toolCallsProblem(value: unknown): string | null {
  if (!Array.isArray(value) || value.length > 128) return 'must be an array of at most 128 tool calls';
  for (const [i, call] of value.entries()) {
    if (!isRecord(call) || typeof call.id !== 'string') return `[${i}] must be an object with a string id`;
    if (call.type !== undefined && call.type !== 'function') return `[${i}].type must be "function"`;
    const fn = functionProblem(call.function, `[${i}]`);
    if (fn) return fn;
    if (typeof (call.function as { arguments?: unknown }).arguments !== 'string')
      return `[${i}].function.arguments must be a JSON string`;
  }
  return null;
}

export function toolsProblem(value: unknown): string | null {
  if (!Array.isArray(value) || value.length > 128) return 'must be an array of at most 128 tools';
  for (const [i, tool] of value.entries()) {
    if (!isRecord(tool) || tool.type !== 'function') return `[${i}].type must be "function"`;
    const fn = functionProblem(tool.function, `[${i}]`);
    if (fn) return fn;
    const params = (tool.function as { parameters?: unknown }).parameters;
    if (params !== undefined && !isRecord(params)) return `[${i}].function.parameters must be a JSON Schema object`;
  }
  return null;
}

export function toolChoiceProblem(value: unknown): string | null {
  if (value === 'none' || value === 'auto' || value === 'required') return null;
  if (isRecord(value) && value.type === 'function') return functionProblem(value.function, '.');
  return 'must be "none", "auto", "required" or {"type":"function","function":{"name":...}}';
}

export function responseFormatProblem(value: unknown): string | null {
  if (!isRecord(value)) return 'must be an object';
  switch (value.type) {
    case 'text':
      return null;
    case 'json_object':
      // llama.cpp also takes a schema right here; pass it on when it is an object.
      return value.schema === undefined || isRecord(value.schema) ? null : '.schema must be a JSON Schema object';
    case 'json_schema': {
      const js = value.json_schema;
      if (!isRecord(js)) return '.json_schema must be an object';
      if (js.schema !== undefined && !isRecord(js.schema)) return '.json_schema.schema must be a JSON Schema object';
      return null;
    }
    default:
      return '.type must be "text", "json_object" or "json_schema"';
  }
}

export function logitBiasProblem(value: unknown): string | null {
  if (!isRecord(value)) return 'must be an object mapping token ids to numbers';
  const entries = Object.entries(value);
  if (entries.length > 1024) return 'must have at most 1024 entries';
  for (const [token, bias] of entries) {
    if (typeof bias !== 'number' || !Number.isFinite(bias) || bias < -100 || bias > 100)
      return `["${token}"] must be a number between -100 and 100`;
  }
  return null;
}

export function IsImageSize(options?: ValidationOptions): PropertyDecorator {
  return ValidateBy(
    {
      name: 'isImageSize',
      validator: {
        validate: (value: unknown) => {
          const m = typeof value === 'string' ? /^(\d{1,5})x(\d{1,5})$/.exec(value) : null;
          if (!m) return false;
          const [w, h] = [Number(m[1]), Number(m[2])];
          return (
            w >= 8 &&
            h >= 8 &&
            w <= REQUEST_LIMITS.imageSideMax &&
            h <= REQUEST_LIMITS.imageSideMax &&
            w % 8 === 0 &&
            h % 8 === 0
          );
        },
        defaultMessage: () =>
          `size must be "WxH" with W and H multiples of 8 between 8 and ${REQUEST_LIMITS.imageSideMax}`,
      },
    },
    options,
  );
}
