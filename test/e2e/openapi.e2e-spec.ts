import { Validator } from '@seriousme/openapi-schema-validator';
import { Ajv } from 'ajv';
import { getJson, startApp, type RunningApp } from '../support/app-harness.js';
import { closed, pointer } from '../support/openapi-doc.js';

describe('GET /openapi.json', () => {
  let running: RunningApp;
  beforeAll(async () => {
    running = await startApp({ backends: [] });
  });
  afterAll(() => running.close());

  it('is a valid OpenAPI 3 document (checked against the official OpenAPI JSON schema)', async () => {
    const res = await getJson(`${running.url}/openapi.json`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(res.body.openapi).toMatch(/^3\./);
    const result = await new Validator().validate(res.body);
    expect(result).toEqual({ valid: true });
  });

  it('describes every /api, /health and /v1 route, and nothing else', async () => {
    const { body } = await getJson(`${running.url}/openapi.json`);
    const operations = Object.entries(body.paths as Record<string, Record<string, unknown>>).flatMap(([path, ops]) =>
      Object.keys(ops).map((method) => `${method.toUpperCase()} ${path}`),
    );
    expect(operations.sort()).toEqual(
      [
        'GET /api/events',
        'GET /api/eviction/plan',
        'GET /api/fleet/health',
        'GET /api/fleet/models/loaded',
        'GET /api/fleet/node',
        'GET /api/models',
        'GET /api/models/loaded',
        'POST /api/models/unload',
        'POST /api/models/{id}/load',
        'POST /api/models/{id}/unload',
        'GET /health',
        'GET /health/live',
        'GET /health/ready',
        'GET /v1/models',
        'POST /v1/chat/completions',
        'POST /v1/completions',
        'POST /v1/embeddings',
        'POST /v1/images/generations',
      ].sort(),
    );
  });

  it('describes GET /health/live, answered before routing, and its real answer matches, field for field', async () => {
    const { body } = await getJson(`${running.url}/openapi.json`);
    expect(body.paths['/health/live'].get).toMatchObject({ operationId: 'Health_live', tags: ['health'] });
    const ajv = new Ajv({ strict: false, allErrors: true });
    ajv.addSchema(closed(body) as object, 'doc');
    const validate = ajv.getSchema(
      `doc#/${pointer('paths', '/health/live', 'get', 'responses', '200', 'content', 'application/json', 'schema')}`,
    )!;
    const live = await getJson(`${running.url}/health/live`);
    expect(live.status).toBe(200);
    expect(validate(live.body)).toBe(true);
    expect(validate({ ...live.body, extra: 1 })).toBe(false);
  });

  it('describes each /v1 request body: required fields and bounds that a validator enforces', async () => {
    const { body } = await getJson(`${running.url}/openapi.json`);
    const ajv = new Ajv({ strict: false, allErrors: true });
    ajv.addSchema(body, 'doc');
    const bodySchema = (path: string) => {
      const escaped = encodeURIComponent(path.replaceAll('/', '~1'));
      return ajv.getSchema(`doc#/paths/${escaped}/post/requestBody/content/application~1json/schema`)!;
    };
    const chat = bodySchema('/v1/chat/completions');
    const messages = [{ role: 'user', content: 'hi' }];
    expect(chat({ model: 'm', messages, temperature: 0.7, stop: ['a'], stream: true })).toBe(true);
    expect(chat({ model: 'm', messages: [{ role: 'user', content: [{ type: 'text', text: 'hi' }] }] })).toBe(true);
    expect(chat({ model: 'm' })).toBe(false);
    expect(chat({ model: 'm', messages, temperature: 3 })).toBe(false);
    expect(chat({ model: 'm', messages: [{ role: 'robot', content: 'x' }] })).toBe(false);
    const completion = bodySchema('/v1/completions');
    expect(completion({ model: 'm', prompt: 'once' })).toBe(true);
    expect(completion({ model: 'm', prompt: ['a', 'b'] })).toBe(false);
    const embeddings = bodySchema('/v1/embeddings');
    expect(embeddings({ model: 'm', input: ['a', 'b'], encoding_format: 'base64' })).toBe(true);
    expect(embeddings({ model: 'm', input: 3 })).toBe(false);
    const images = bodySchema('/v1/images/generations');
    expect(images({ model: 'm', prompt: 'a fox', size: '512x512', n: 2, steps: 4 })).toBe(true);
    expect(images({ model: 'm', prompt: 'a fox', n: 5 })).toBe(false);
    expect(images({ model: 'm', prompt: 'a fox', size: 'big' })).toBe(false);
  });
});
