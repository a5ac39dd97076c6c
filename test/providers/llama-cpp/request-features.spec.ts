import { Logger } from '@nestjs/common';
import { AppError } from '../../../src/common/errors.js';
import { LlamaCppProvider } from '../../../src/providers/llama-cpp/llama-cpp.provider.js';
import { LlamaRuntime } from '../../../src/providers/llama-cpp/llama-runtime.js';
import type { ChatCompletionRequest } from '../../../src/providers/openai-types.js';
import { configFrom } from '../../support/config.js';
import { ensureLlmTestModels, TINY_CHAT_GGUF } from '../../support/llm-test-models.js';

const never = () => new AbortController().signal;

function chat(extra: Partial<ChatCompletionRequest> = {}): ChatCompletionRequest {
  return {
    model: 'tiny-chat',
    messages: [{ role: 'user', content: 'Answer me.' }],
    temperature: 0,
    max_tokens: 12,
    ...extra,
  };
}

describe('LlamaCppProvider: OpenAI fields beyond sampling (real node-llama-cpp, tiny generated model)', () => {
  let runtime: LlamaRuntime;
  let provider: LlamaCppProvider;
  const text = async (req: ChatCompletionRequest) =>
    (await provider.chatCompletion('tiny-chat', req, never())).choices[0]!.message.content;
  const refusal = async (req: ChatCompletionRequest) => {
    const err: unknown = await provider.chatCompletion('tiny-chat', req, never()).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(AppError);
    return err as AppError;
  };

  beforeAll(async () => {
    Logger.overrideLogger(['error']);
    await ensureLlmTestModels();
    const config = configFrom({
      backends: [
        {
          name: 'local-llm',
          type: 'llama-cpp',
          threads: 1,
          models: [{ id: 'tiny-chat', path: TINY_CHAT_GGUF, parallel: 2 }],
        },
      ],
    });
    runtime = new LlamaRuntime({ gpu: false, threads: 1 });
    provider = new LlamaCppProvider(config.backends[0]!, runtime, config);
    await provider.init();
    // The lifecycle loads a model before any request reaches the provider; here the test does.
    await provider.load('tiny-chat');
  });

  afterAll(async () => {
    await provider?.dispose();
    await runtime?.dispose();
    Logger.overrideLogger(['log', 'error', 'warn', 'debug', 'verbose']);
  });

  it('constrains the answer to a JSON schema', async () => {
    const schema = {
      type: 'object',
      properties: { answer: { enum: ['yes', 'no'] }, sure: { type: 'boolean' } },
      required: ['answer', 'sure'],
    };
    for (const seed of [1, 2, 3]) {
      const out = await text(
        chat({
          max_tokens: 200,
          temperature: 1,
          seed,
          response_format: { type: 'json_schema', json_schema: { name: 'verdict', schema } },
        }),
      );
      const parsed = JSON.parse(out) as { answer: string; sure: boolean };
      expect(['yes', 'no']).toContain(parsed.answer);
      expect(typeof parsed.sure).toBe('boolean');
    }
  });

  it('constrains a json_object answer to JSON, which free text is not', async () => {
    expect((await text(chat({ max_tokens: 20 }))).trimStart().startsWith('{')).toBe(false);
    const out = await text(chat({ max_tokens: 20, response_format: { type: 'json_object' } }));
    expect(out.trimStart().startsWith('{')).toBe(true);
  });

  it.each<[string, Record<string, unknown>, string]>([
    ['an unknown type', { type: 'wizard' }, 'schema.type'],
    [
      'a pattern',
      { type: 'object', properties: { a: { type: 'string', pattern: '^x' } } },
      'schema.properties.a.pattern',
    ],
    ['a non-array enum', { enum: 'x' }, 'schema.enum'],
    ['a remote $ref', { $ref: 'https://example.com/s.json' }, 'schema.$ref'],
  ])('refuses a JSON schema with %s with a 400 naming where', async (_name, schema, where) => {
    const err = await refusal(chat({ response_format: { type: 'json_schema', json_schema: { name: 'x', schema } } }));
    expect(err.status).toBe(400);
    expect(err.param).toBe('response_format.json_schema.schema');
    expect(err.message).toContain(where);
  });

  it('applies logit_bias: +100 on one token makes the greedy answer that token repeated, ids outside the vocabulary are refused', async () => {
    const out = await text(chat({ logit_bias: { '100': 100 } }));
    expect(out.length).toBeGreaterThan(0);
    expect(new Set(out).size).toBe(1);
    const free = await text(chat());
    expect(out).not.toBe(free);

    const err = await refusal(chat({ logit_bias: { '999999': 5 } }));
    expect([err.status, err.param]).toEqual([400, 'logit_bias']);
  });

  it('applies top_k and min_p: top_k 1 or min_p 1 turns hot sampling into the greedy answer', async () => {
    const greedy = await text(chat({ max_tokens: 24 }));
    const hot = { temperature: 1.5, seed: 5, max_tokens: 24 };
    expect(await text(chat(hot))).not.toBe(greedy);
    expect(await text(chat({ ...hot, top_k: 1 }))).toBe(greedy);
    expect(await text(chat({ ...hot, min_p: 1 }))).toBe(greedy);
  });

  it('applies repetition penalties, which change a greedy answer that repeats itself', async () => {
    const greedy = await text(chat({ max_tokens: 48 }));
    expect(new Set(greedy).size).toBeLessThan(greedy.length);
    for (const penalty of [{ repeat_penalty: 2 }, { frequency_penalty: 2 }, { presence_penalty: 2 }]) {
      expect(await text(chat({ max_tokens: 48, ...penalty }))).not.toBe(greedy);
    }
  });

  it('honours max_completion_tokens like max_tokens', async () => {
    const res = await provider.chatCompletion(
      'tiny-chat',
      chat({ max_tokens: undefined, max_completion_tokens: 5 }),
      never(),
    );
    expect(res.usage.completion_tokens).toBe(5);
  });

  it.each<[string, Partial<ChatCompletionRequest>, string]>([
    ['logprobs', { logprobs: true }, 'logprobs'],
    ['top_logprobs', { top_logprobs: 3 }, 'top_logprobs'],
    [
      'tools',
      { tools: [{ type: 'function', function: { name: 'weather', parameters: { type: 'object' } } }] },
      'tools',
    ],
    ['a vendor extension', { passthrough: { mirostat: 2 } }, 'mirostat'],
    ['n > 1', { passthrough: { n: 2 } }, 'n'],
  ])('refuses %s with 400 unsupported_parameter naming the field', async (_name, extra, param) => {
    const err = await refusal(chat(extra));
    expect(err.status).toBe(400);
    expect(err.code).toBe('unsupported_parameter');
    expect(err.param).toBe(param);
  });

  it('accepts caller metadata it has no use for (user, store, n: 1)', async () => {
    const out = await text(chat({ passthrough: { user: 'u-1', store: false, n: 1 } }));
    expect(out).toBe(await text(chat()));
  });
});
