import { BadRequestException, HttpException, NotFoundException } from '@nestjs/common';
import { BackendUnavailableError, ValidationFailedError } from '../../src/common/errors.js';
import { envelopeFor, toAppError } from '../../src/common/exception.filter.js';
import { isValidModelId } from '../../src/common/model-id.js';

describe(toAppError.name, () => {
  it('keeps domain errors with their code, status and details', () => {
    const err = toAppError(new BackendUnavailableError('npu', 'unavailable', 'connect ECONNREFUSED'));
    expect(err.status).toBe(503);
    const body = envelopeFor(err, 'req-1');
    expect(body.error).toMatchObject({
      code: 'backend_unavailable',
      backend: 'npu',
      readiness: 'unavailable',
      reason: 'connect ECONNREFUSED',
      request_id: 'req-1',
    });
    expect(err.headers['retry-after']).toBe('5');
  });

  it('maps unknown routes to not_found', () => {
    const err = toAppError(new NotFoundException(), 'GET', '/x');
    expect(err).toMatchObject({ status: 404, code: 'not_found' });
    expect(err.message).toContain('GET /x');
  });

  it('maps other HttpExceptions by status', () => {
    expect(toAppError(new BadRequestException('nope'))).toMatchObject({
      status: 400,
      code: 'bad_request',
      message: 'nope',
    });
    expect(toAppError(new HttpException('gone', 405))).toMatchObject({ status: 405, code: 'method_not_allowed' });
  });

  it('hides unexpected errors behind internal_error with no stack', () => {
    const err = toAppError(new TypeError('secret internals at foo.js:12'));
    expect(err).toMatchObject({ status: 500, code: 'internal_error', message: 'Internal server error' });
  });

  it('names every invalid field in validation_failed', () => {
    const err = new ValidationFailedError([
      { field: 'size', value: '7x7', rule: 'isImageSize', message: 'bad size' },
      { field: 'n', value: 9, rule: 'max', message: 'n must not be greater than 4' },
    ]);
    const body = envelopeFor(err, null);
    expect(body.error).toMatchObject({ code: 'validation_failed', param: 'size' });
    expect(body.error.details).toEqual([
      expect.objectContaining({ field: 'size' }),
      expect.objectContaining({ field: 'n' }),
    ]);
  });
});

describe(isValidModelId.name, () => {
  it.each([
    ['qwen2.5-0.5b', true],
    ['llama3.2:1b', true],
    ['org/model-name', true],
    ['../etc/passwd', false],
    ['a/../b', false],
    ['/abs', false],
    ['a\\b', false],
    ['', false],
    ['x'.repeat(201), false],
    ['bad\nid', false],
  ])('%j → %s', (id, ok) => {
    expect(isValidModelId(id)).toBe(ok);
  });
});
