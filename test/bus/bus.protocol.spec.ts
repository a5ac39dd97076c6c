import { Readiness } from '../../src/backend-state/readiness.js';
import {
  BackendUnavailableError,
  InsufficientMemoryError,
  InferenceFailedError,
  ModelNotFoundError,
  ServiceShuttingDownError,
  ValidationFailedError,
} from '../../src/common/errors.js';
import { errorFields, parseBusRequest } from '../../src/bus/bus.protocol.js';

const buf = (value: unknown): Buffer => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value));

describe('parseBusRequest', () => {
  const valid = { request_id: 'r1', model: 'qwen', messages: [{ role: 'user', content: 'hi' }] };

  it('applies the contract defaults max_tokens 256 and temperature 0.7', () => {
    expect(parseBusRequest(buf(valid))).toEqual({
      ok: true,
      request: { ...valid, max_tokens: 256, temperature: 0.7 },
    });
  });

  it('keeps explicit sampling values and numeric request ids', () => {
    const result = parseBusRequest(buf({ ...valid, request_id: 7, max_tokens: 12, temperature: 0 }));
    expect(result).toEqual({ ok: true, request: { ...valid, request_id: 7, max_tokens: 12, temperature: 0 } });
  });

  it('drops payloads without a readable request_id (nothing to address a reply to)', () => {
    for (const payload of ['not json', '[1,2]', 'null', '42', '{"model":"m"}', '{"request_id":""}', '\u0000\u00ff']) {
      const result = parseBusRequest(buf(payload));
      expect(result).toMatchObject({ ok: false, requestId: null });
    }
  });

  it.each([
    [{ request_id: 'x' }, 'model must be a non-empty string'],
    [{ request_id: 'x', model: '  ', messages: [] }, 'model must be a non-empty string'],
    [{ request_id: 'x', model: 'm' }, 'messages must be a non-empty array'],
    [{ request_id: 'x', model: 'm', messages: [] }, 'messages must be a non-empty array'],
    [{ request_id: 'x', model: 'm', messages: ['hi'] }, 'messages[0] must be an object'],
    [{ request_id: 'x', model: 'm', messages: [{ role: 'robot', content: 'x' }] }, 'messages[0].role must be one of'],
    [{ request_id: 'x', model: 'm', messages: [{ role: 'user', content: 5 }] }, 'messages[0].content must be a string'],
    [{ ...valid, max_tokens: 0 }, 'max_tokens must be an integer from 1 to 1000000'],
    [{ ...valid, max_tokens: 1.5 }, 'max_tokens must be an integer from 1 to 1000000'],
    [{ ...valid, max_tokens: '10' }, 'max_tokens must be an integer from 1 to 1000000'],
    [{ ...valid, max_tokens: 1_000_001 }, 'max_tokens must be an integer from 1 to 1000000'],
    [{ ...valid, model: 'm'.repeat(201) }, 'model must be at most 200 characters'],
    [{ ...valid, messages: Array.from({ length: 1001 }, () => valid.messages[0]) }, 'at most 1000 messages'],
    [{ ...valid, temperature: 3 }, 'temperature must be a number between 0 and 2'],
    [{ ...valid, temperature: 'hot' }, 'temperature must be a number between 0 and 2'],
  ])('names the bad field of %j', (payload, message) => {
    const result = parseBusRequest(buf(payload));
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.requestId).toBe(payload.request_id);
    expect(result.message).toContain(message);
  });
});

describe('errorFields', () => {
  it('maps an admission refusal to backend_unavailable with reason and readiness', () => {
    const err = new BackendUnavailableError('local-llm', Readiness.Unavailable, 'all preloads failed: qwen (bad file)');
    expect(errorFields(err)).toEqual({
      error: 'backend_unavailable',
      reason: 'all preloads failed: qwen (bad file)',
      readiness: 'unavailable',
      message: err.message,
    });
  });

  it('keeps a null reason (initializing has none)', () => {
    expect(errorFields(new BackendUnavailableError('b', Readiness.Initializing, null))).toMatchObject({
      error: 'backend_unavailable',
      reason: null,
      readiness: 'initializing',
    });
  });

  it('maps unknown models, client errors, shutdown and everything else', () => {
    expect(errorFields(new ModelNotFoundError('nope'))).toMatchObject({ error: 'model_not_found' });
    expect(errorFields(new ValidationFailedError([{ field: 'model', rule: 'x', message: 'bad' }]))).toMatchObject({
      error: 'invalid_request',
    });
    expect(errorFields(new ServiceShuttingDownError())).toMatchObject({ error: 'shutting_down' });
    expect(errorFields(new InferenceFailedError('m', 'decode error'))).toMatchObject({
      error: 'inference failed',
      message: "Inference on 'm' failed: decode error",
    });
    expect(errorFields(new InsufficientMemoryError('m', 'no room'))).toMatchObject({
      error: 'inference failed',
    });
    expect(errorFields(new Error('boom'))).toEqual({ error: 'inference failed', message: 'boom' });
    expect(errorFields('weird')).toEqual({ error: 'inference failed', message: 'weird' });
  });
});
