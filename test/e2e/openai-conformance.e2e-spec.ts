/**
 * Real responses of the running app (tiny generated chat, embedding and image models), validated twice:
 * - /v1 against the response schemas of the official OpenAI API description (test/fixtures, spec version in the
 *   file and below): clients generated from that spec, and strict SDKs, reject what fails here;
 * - every /v1, /api and /health answer against its own schema in our generated /openapi.json, with objects
 *   closed, so an undocumented field fails too.
 */
import { Ajv } from 'ajv';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { BackendStartupService } from '../../src/models/backend-startup.service.js';
import { OPENAI_SPEC_VERSION, openaiSchemas } from '../fixtures/openai-openapi-2.3.0.schemas.js';
import { getJson, postJson, startApp, type RunningApp } from '../support/app-harness.js';
import { ensureImageTestModels, TINY_LCM_DIR } from '../support/image-test-models.js';
import { ensureLlmTestModels, TINY_CHAT_GGUF, TINY_EMBED_GGUF } from '../support/llm-test-models.js';

/**
 * The spec is OpenAPI 3.1 (JSON Schema 2020-12) but still marks some fields with 3.0's `nullable: true` (stream
 * `finish_reason`, `usage`); read it as meant, "or null", as OpenAI's own API answers.
 */
function nullableAsAnyOf(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(nullableAsAnyOf);
  if (typeof node !== 'object' || node === null) return node;
  const { nullable, ...rest } = node as Record<string, unknown>;
  const converted = Object.fromEntries(Object.entries(rest).map(([k, v]) => [k, nullableAsAnyOf(v)]));
  return nullable === true ? { anyOf: [converted, { type: 'null' }] } : converted;
}

// Its own keywords (format: unixtime, discriminator) are annotations here.
const ajv = new Ajv2020({ strict: false, validateFormats: false, allErrors: true });
ajv.addSchema(nullableAsAnyOf(openaiSchemas) as object, 'openai');

function problems(schema: string, body: unknown): string[] {
  const validate = ajv.getSchema(`openai#/components/schemas/${schema}`);
  if (!validate) throw new Error(`no schema ${schema} in the fixture`);
  return validate(body) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message}`);
}

/** Every `data:` payload of an SSE body except the final [DONE]. */
function sseChunks(text: string): unknown[] {
  const lines = text.split('\n').filter((l) => l.startsWith('data: '));
  expect(lines.at(-1)).toBe('data: [DONE]');
  return lines.slice(0, -1).map((l) => JSON.parse(l.slice('data: '.length)) as unknown);
}

/** Every object schema that lists its properties and says nothing of others gets `additionalProperties: false`. */
function closed(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(closed);
  if (typeof node !== 'object' || node === null) return node;
  const out = Object.fromEntries(Object.entries(node).map(([k, v]) => [k, closed(v)]));
  if ('properties' in out && !('additionalProperties' in out)) out.additionalProperties = false;
  return out;
}

const pointer = (...parts: string[]): string =>
  parts.map((p) => encodeURIComponent(p.replaceAll('~', '~0').replaceAll('/', '~1'))).join('/');

describe(`/v1 responses conform to the OpenAI API description ${OPENAI_SPEC_VERSION}`, () => {
  let running: RunningApp;
  beforeAll(async () => {
    await Promise.all([ensureLlmTestModels(), ensureImageTestModels()]);
    running = await startApp({
      backends: [
        {
          name: 'local-llm',
          type: 'llama-cpp',
          threads: 1,
          models: [
            { id: 'chat', path: TINY_CHAT_GGUF },
            { id: 'embed', path: TINY_EMBED_GGUF, embeddings: true },
          ],
        },
        { name: 'local-image', type: 'onnx-image', models: [{ id: 'tiny-lcm', path: TINY_LCM_DIR }] },
      ],
    });
    await running.app.get(BackendStartupService).settled();
  });
  afterAll(() => running.close());

  it('GET /v1/models is a ListModelsResponse', async () => {
    const res = await getJson(`${running.url}/v1/models`);
    expect(res.status).toBe(200);
    expect(problems('ListModelsResponse', res.body)).toEqual([]);
  });

  it('a chat completion is a CreateChatCompletionResponse, with message.refusal null', async () => {
    const res = await postJson(`${running.url}/v1/chat/completions`, {
      model: 'chat',
      messages: [{ role: 'user', content: 'hi' }],
      max_tokens: 4,
    });
    expect(res.status).toBe(200);
    expect(problems('CreateChatCompletionResponse', res.body)).toEqual([]);
    expect(res.body.choices[0].message.refusal).toBeNull();
  });

  it('every chunk of a chat stream (usage chunk included) is a CreateChatCompletionStreamResponse', async () => {
    const res = await fetch(`${running.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'chat',
        messages: [{ role: 'user', content: 'hi' }],
        max_tokens: 4,
        stream: true,
        stream_options: { include_usage: true },
      }),
    });
    expect(res.status).toBe(200);
    const chunks = sseChunks(await res.text());
    expect(chunks.length).toBeGreaterThan(1);
    expect(
      chunks.flatMap((c, i) => problems('CreateChatCompletionStreamResponse', c).map((p) => `#${i} ${p}`)),
    ).toEqual([]);
  });

  it('a completion is a CreateCompletionResponse', async () => {
    const res = await postJson(`${running.url}/v1/completions`, { model: 'chat', prompt: 'once', max_tokens: 4 });
    expect(res.status).toBe(200);
    expect(problems('CreateCompletionResponse', res.body)).toEqual([]);
  });

  it('embeddings are a CreateEmbeddingResponse', async () => {
    const res = await postJson(`${running.url}/v1/embeddings`, { model: 'embed', input: ['a', 'b'] });
    expect(res.status).toBe(200);
    expect(problems('CreateEmbeddingResponse', res.body)).toEqual([]);
  });

  it("an image generation is an ImagesResponse, usage in OpenAI's token shape", async () => {
    const res = await postJson(`${running.url}/v1/images/generations`, {
      model: 'tiny-lcm',
      prompt: 'a fox',
      size: '64x64',
      steps: 1,
      seed: 5,
      response_format: 'b64_json',
    });
    expect(res.status).toBe(200);
    expect(problems('ImagesResponse', res.body)).toEqual([]);
    expect(problems('ImageGenUsage', res.body.usage)).toEqual([]);
    expect(res.body.timings).toMatchObject({ seed: 5 });
  });

  it.each<[string, () => Promise<Awaited<ReturnType<typeof getJson>>>, number]>([
    ['a validation failure', () => postJson(`${running.url}/v1/chat/completions`, { model: 'chat' }), 400],
    [
      'an unknown model',
      () =>
        postJson(`${running.url}/v1/chat/completions`, { model: 'nope', messages: [{ role: 'user', content: 'x' }] }),
      404,
    ],
    ['an unknown route', () => getJson(`${running.url}/v1/nothing-here`), 404],
  ])('%s answers an ErrorResponse', async (_what, call, status) => {
    const res = await call();
    expect(res.status).toBe(status);
    expect(problems('ErrorResponse', res.body)).toEqual([]);
  });
});

describe('every response matches its schema in /openapi.json', () => {
  let running: RunningApp;
  let docAjv: Ajv;
  const admin = { authorization: 'Bearer test-admin-token' };

  /** What is wrong with `body` as the `status` answer of `method path`, per the generated document. */
  function docProblems(method: string, path: string, status: string, body: unknown, type = 'application/json') {
    const at = `doc#/${pointer('paths', path, method, 'responses', status, 'content', type, 'schema')}`;
    const validate = docAjv.getSchema(at);
    if (!validate) return [`no schema for ${method.toUpperCase()} ${path} ${status} ${type}`];
    return validate(body)
      ? []
      : (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message} ${JSON.stringify(e.params)}`);
  }

  beforeAll(async () => {
    await Promise.all([ensureLlmTestModels(), ensureImageTestModels()]);
    running = await startApp(
      {
        backends: [
          {
            name: 'local-llm',
            type: 'llama-cpp',
            threads: 1,
            models: [
              { id: 'chat', path: TINY_CHAT_GGUF },
              { id: 'embed', path: TINY_EMBED_GGUF, embeddings: true },
            ],
          },
          { name: 'local-image', type: 'onnx-image', models: [{ id: 'tiny-lcm', path: TINY_LCM_DIR }] },
        ],
      },
      { env: { MODELPLANE_ADMIN_TOKEN: 'test-admin-token' } },
    );
    await running.app.get(BackendStartupService).settled();
    const doc = await getJson(`${running.url}/openapi.json`);
    docAjv = new Ajv({ strict: false, validateFormats: false, allErrors: true });
    docAjv.addSchema(closed(doc.body) as object, 'doc');
  });
  afterAll(() => running.close());

  type Answer = Awaited<ReturnType<typeof getJson>>;
  /** Each call is made in turn; its answer is checked against the schema of `status` ('default': errors). */
  async function check(cases: [string, string, () => Promise<Answer>, number, string][]): Promise<void> {
    for (const [method, path, call, status, schemaStatus] of cases) {
      const res = await call();
      const problems = res.status === status ? docProblems(method, path, schemaStatus, res.body) : [res.body];
      expect({ method, path, status: res.status, problems }).toEqual({ method, path, status, problems: [] });
    }
  }

  it('/v1: models, chat, completion, embeddings, images and an error', async () => {
    const chat = { model: 'chat', messages: [{ role: 'user', content: 'hi' }], max_tokens: 3 };
    const image = { model: 'tiny-lcm', prompt: 'x', size: '64x64', steps: 1 };
    await check([
      ['get', '/v1/models', () => getJson(`${running.url}/v1/models`), 200, '200'],
      ['post', '/v1/chat/completions', () => postJson(`${running.url}/v1/chat/completions`, chat), 200, '200'],
      [
        'post',
        '/v1/completions',
        () => postJson(`${running.url}/v1/completions`, { model: 'chat', prompt: 'a', max_tokens: 3 }),
        200,
        '200',
      ],
      [
        'post',
        '/v1/embeddings',
        () => postJson(`${running.url}/v1/embeddings`, { model: 'embed', input: 'a' }),
        200,
        '200',
      ],
      ['post', '/v1/images/generations', () => postJson(`${running.url}/v1/images/generations`, image), 200, '200'],
      [
        'post',
        '/v1/chat/completions',
        () => postJson(`${running.url}/v1/chat/completions`, { model: 'chat' }),
        400,
        'default',
      ],
    ]);
  });

  it('/api/models*, /api/eviction/plan and /health*, with models loaded and unloaded', async () => {
    const post = (path: string) => () => postJson(`${running.url}${path}`, {}, admin);
    const get = (path: string) => () => getJson(`${running.url}${path}`);
    await check([
      ['post', '/api/models/{id}/load', post('/api/models/tiny-lcm/load'), 200, '200'],
      ['post', '/api/models/{id}/load', post('/api/models/chat/load'), 200, '200'],
      ['get', '/api/models', get('/api/models'), 200, '200'],
      ['get', '/api/models/loaded', get('/api/models/loaded'), 200, '200'],
      ['get', '/api/eviction/plan', get('/api/eviction/plan?load=embed'), 200, '200'],
      ['get', '/api/eviction/plan', get('/api/eviction/plan?load=nope'), 404, 'default'],
      ['get', '/health', get('/health'), 200, '200'],
      ['get', '/health/ready', get('/health/ready'), 200, '200'],
      ['post', '/api/models/{id}/unload', post('/api/models/tiny-lcm/unload'), 200, '200'],
      ['post', '/api/models/{id}/unload', () => postJson(`${running.url}/api/models/chat/unload`, {}), 401, 'default'],
      ['post', '/api/models/unload', post('/api/models/unload'), 200, '200'],
    ]);
  });
});
