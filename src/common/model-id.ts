import { ValidationFailedError } from './errors.js';

/**
 * Model ids travel in URLs and may name files, so they are restricted: letters, digits and
 * `._:-/@+` (Ollama tags like `llama3.2:1b`, HF-style `org/name`), no `..` segment, no leading
 * slash, no backslash or control characters, at most 200 characters.
 */
export const MODEL_ID_PATTERN = /^(?!\/)(?!.*(?:^|\/)\.\.(?:\/|$))[A-Za-z0-9._:@+\-/]{1,200}$/;

export function isValidModelId(id: unknown): id is string {
  return typeof id === 'string' && MODEL_ID_PATTERN.test(id) && !id.endsWith('/');
}

export function assertValidModelId(id: unknown, field = 'model'): string {
  if (!isValidModelId(id)) {
    throw new ValidationFailedError([
      {
        field,
        value: id,
        rule: 'model_id',
        message: 'must be 1-200 characters of letters, digits and ._:@+-/ with no ".." segment',
      },
    ]);
  }
  return id;
}
