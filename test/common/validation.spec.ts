import 'reflect-metadata';
import { ValidationFailedError } from '../../src/common/errors.js';
import { createValidationPipe } from '../../src/common/validation.js';
import { ChatCompletionDto } from '../../src/inference/inference.dto.js';

const body = { type: 'body' as const, metatype: ChatCompletionDto, data: '' };

/** A value that fails the test the moment anything reads into it (a key, a length, a prototype). */
function untouchable(): object {
  return new Proxy(
    {},
    {
      get: () => {
        throw new Error('an unknown field was walked');
      },
      ownKeys: () => {
        throw new Error('an unknown field was walked');
      },
      getPrototypeOf: () => {
        throw new Error('an unknown field was walked');
      },
      has: () => {
        throw new Error('an unknown field was walked');
      },
    },
  );
}

describe('request validation', () => {
  const pipe = createValidationPipe();

  it('never reads into an unknown top-level field', async () => {
    const raw = { model: 'm', messages: [{ role: 'user', content: 'hi' }], temperature: 0.5, vendor: untouchable() };
    const dto = (await pipe.transform(raw, body)) as ChatCompletionDto;
    expect(dto).toBeInstanceOf(ChatCompletionDto);
    expect(dto).toMatchObject({ model: 'm', temperature: 0.5, messages: [{ role: 'user', content: 'hi' }] });
    expect(Object.keys(dto)).not.toContain('vendor');
    // The raw body is left whole: the controller forwards unknown fields from it.
    expect(Object.keys(raw)).toContain('vendor');
  });

  it('still validates the declared fields, inherited ones included', async () => {
    const raw = { model: 'm', messages: [], temperature: 'hot', vendor: untouchable() };
    const err = (await pipe.transform(raw, body).catch((e: unknown) => e)) as ValidationFailedError;
    expect(err).toBeInstanceOf(ValidationFailedError);
    expect([...new Set(err.issues.map((i) => i.field))].sort()).toEqual(['messages', 'temperature']);
  });

  it('leaves bodies of routes without a DTO class alone', async () => {
    const raw = { anything: { nested: [1, 2] } };
    expect(await pipe.transform(raw, { type: 'body', metatype: Object, data: '' })).toBe(raw);
  });
});
