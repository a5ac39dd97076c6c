/**
 * Real /v1 responses of the running app (tiny generated chat, embedding and image models) validated against the
 * response schemas of the official OpenAI API description (test/fixtures, spec version in the file and below).
 * Clients generated from that spec (and strict SDKs) reject what fails here.
 */
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
