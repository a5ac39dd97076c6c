import { Validator } from '@seriousme/openapi-schema-validator';
import { getJson, startApp, type RunningApp } from '../support/app-harness.js';

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
        'GET /health/ready',
        'GET /v1/models',
        'POST /v1/chat/completions',
        'POST /v1/completions',
        'POST /v1/embeddings',
        'POST /v1/images/generations',
      ].sort(),
    );
  });
});
