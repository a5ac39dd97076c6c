import { jest } from '@jest/globals';
import { Logger } from '@nestjs/common';
import { join } from 'node:path';
import type { Llama } from 'node-llama-cpp';
import {
  AppError,
  InferenceFailedError,
  ModelLoadFailedError,
  ModelNotFoundError,
} from '../../../src/common/errors.js';
import type { BackendConfig } from '../../../src/config/app-config.js';
import { TINY_CHAT } from '../../../src/demo/tiny-llama.js';
import { LlamaCppProvider } from '../../../src/providers/llama-cpp/llama-cpp.provider.js';
import { LlamaRuntime } from '../../../src/providers/llama-cpp/llama-runtime.js';
import type { ChatCompletionChunk, ChatCompletionRequest } from '../../../src/providers/openai-types.js';
import { configFrom } from '../../support/config.js';
import {
  ensureLlmTestModels,
  TINY_CHAT_GGUF,
  TINY_EMBED_GGUF,
  writeBadGguf,
  writeRandomBytesGguf,
} from '../../support/llm-test-models.js';
import { TEST_MODELS_DIR } from '../../support/test-paths.js';

const SMALL_CONTEXT = 64;
const PRINTABLE = /^[\x21-\x7e]*$/;

const never = () => new AbortController().signal;

function chat(content: string, extra: Partial<ChatCompletionRequest> = {}): ChatCompletionRequest {
  return {
    model: 'tiny-chat',
    messages: [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content },
    ],
    temperature: 0,
    ...extra,
  };
}

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}

function contentOf(chunks: ChatCompletionChunk[]): string {
  return chunks.map((c) => c.choices[0]!.delta.content ?? '').join('');
}

describe('LlamaCppProvider (real node-llama-cpp, tiny generated models)', () => {
  let runtime: LlamaRuntime;
  let provider: LlamaCppProvider;
  let llama: Llama;
  let backend: BackendConfig;

  beforeAll(async () => {
    Logger.overrideLogger(['error']);
    await ensureLlmTestModels();
    const bad = writeBadGguf();
    const random = writeRandomBytesGguf();
    const config = configFrom({
      backends: [
        {
          name: 'local-llm',
          type: 'llama-cpp',
          threads: 1,
          models: [
            { id: 'tiny-chat', path: TINY_CHAT_GGUF },
            { id: 'tiny-small-ctx', path: TINY_CHAT_GGUF, context_size: SMALL_CONTEXT },
            { id: 'tiny-embed', path: TINY_EMBED_GGUF, embeddings: true },
            { id: 'bad-ffn', path: bad },
            { id: 'random-bytes', path: random },
            { id: 'missing', path: join(TEST_MODELS_DIR, 'does-not-exist.gguf') },
          ],
        },
      ],
    });
    backend = config.backends[0]!;
    runtime = new LlamaRuntime({ gpu: false, threads: 1 });
    provider = new LlamaCppProvider(backend, runtime, config);
    await provider.init();
    llama = await runtime.get();
  });

  afterAll(async () => {
    await provider?.dispose();
    await runtime?.dispose();
    Logger.overrideLogger(['log', 'error', 'warn', 'debug', 'verbose']);
  });

  it('describes every configured model, with purposes and size estimates from the GGUF header', () => {
    const byId = new Map(provider.descriptors().map((d) => [d.id, d]));

    expect(provider.kind).toBe('llama-cpp');
    expect(provider.capabilities).toEqual({ canObserveLoadState: true, canUnload: true, canLoad: true, remote: false });
    expect([...byId.keys()]).toEqual([
      'tiny-chat',
      'tiny-small-ctx',
      'tiny-embed',
      'bad-ffn',
      'random-bytes',
      'missing',
    ]);
    expect(byId.get('tiny-chat')?.purpose).toBe('chat');
    expect(byId.get('tiny-embed')?.purpose).toBe('embedding');
    // Model weights plus the KV cache of the context: more than the file, and more for the larger context.
    const chatSize = byId.get('tiny-chat')?.expectedSizeBytes ?? 0;
    expect(chatSize).toBeGreaterThan(460_000);
    expect(chatSize).toBeGreaterThan(byId.get('tiny-small-ctx')?.expectedSizeBytes ?? Infinity);
    expect(byId.get('missing')?.expectedSizeBytes).toBeNull();
  });

  it('shares one load between concurrent callers and reports the loaded model with its real memory', async () => {
    const loadModel = jest.spyOn(llama, 'loadModel');
    try {
      await Promise.all([provider.load('tiny-chat'), provider.load('tiny-chat'), provider.load('tiny-chat')]);
      expect(loadModel).toHaveBeenCalledTimes(1);

      const obs = await provider.observe(never());
      expect(obs).toMatchObject({ reachable: true, error: null, serverState: 'ok' });
      const chatModel = obs.models.find((m) => m.id === 'tiny-chat');
      expect(chatModel).toMatchObject({ state: 'loaded', observedVia: 'handle', vramBytes: 0 });
      // What llama.cpp itself has allocated equals what the provider reports for its only loaded model.
      const usage = await llama.getLlamaMemoryUsage();
      expect(chatModel?.sizeBytes).toBe(usage.cpuRam);
      expect(chatModel?.ramBytes).toBe(usage.cpuRam);
      expect(obs.models.filter((m) => m.state === 'loaded').map((m) => m.id)).toEqual(['tiny-chat']);
    } finally {
      loadModel.mockRestore();
    }
  });

  it('answers a chat with exactly max_tokens printable tokens, finish_reason length and real usage', async () => {
    const res = await provider.chatCompletion('tiny-chat', chat('Hello there', { max_tokens: 16 }), never());

    expect(res.object).toBe('chat.completion');
    expect(res.model).toBe('tiny-chat');
    expect(res.choices).toHaveLength(1);
    const choice = res.choices[0]!;
    expect(choice.finish_reason).toBe('length');
    expect(choice.message.role).toBe('assistant');
    expect(choice.message.content).toHaveLength(16);
    expect(choice.message.content).toMatch(PRINTABLE);
    // The byte vocabulary gives at least one token per prompt character, plus the chat template.
    expect(res.usage.prompt_tokens).toBeGreaterThan('Be brief.Hello there'.length);
    expect(res.usage.completion_tokens).toBe(16);
    expect(res.usage.total_tokens).toBe(res.usage.prompt_tokens + 16);
  });

  it('never loads a model for a request: one that finds it unloaded fails as a bug, and the model stays unloaded', async () => {
    await provider.unload('tiny-small-ctx');
    const req = { model: 'tiny-small-ctx', prompt: 'abc', max_tokens: 4, temperature: 0 };
    const err = await provider.completion('tiny-small-ctx', req, never()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InferenceFailedError);
    expect((err as AppError).message).toContain('not loaded');
    const obs = await provider.observe(never());
    expect(obs.models.find((m) => m.id === 'tiny-small-ctx')?.state).toBe('unloaded');

    await provider.load('tiny-small-ctx');
    const res = await provider.completion('tiny-small-ctx', req, never());
    expect(res.choices[0]!.text).toHaveLength(4);
  });

  /** llama.cpp rounds a context up (to 256 tokens here); the provider reports the real one. */
  async function realContextSize(id: string): Promise<number> {
    await provider.load(id);
    const obs = await provider.observe(never());
    return obs.models.find((m) => m.id === id)?.details.context_size as number;
  }

  it('caps max_tokens at what the context holds and says length', async () => {
    const contextSize = await realContextSize('tiny-small-ctx');
    expect(contextSize).toBeGreaterThanOrEqual(SMALL_CONTEXT);
    expect(contextSize).toBeLessThan(TINY_CHAT.contextLength);

    const res = await provider.completion(
      'tiny-small-ctx',
      { model: 'tiny-small-ctx', prompt: 'Once upon a time', max_tokens: 10_000, temperature: 0 },
      never(),
    );
    expect(res.choices[0]!.finish_reason).toBe('length');
    expect(res.usage.prompt_tokens + res.usage.completion_tokens).toBe(contextSize);
    expect(res.choices[0]!.text).toHaveLength(res.usage.completion_tokens);
  });

  it('refuses a prompt longer than the context with a 400, and the model keeps serving', async () => {
    const long = 'x'.repeat((await realContextSize('tiny-small-ctx')) + 10);
    const err = await provider
      .completion('tiny-small-ctx', { model: 'tiny-small-ctx', prompt: long }, never())
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AppError);
    expect(err).toMatchObject({ status: 400, code: 'context_length_exceeded' });

    const ok = await provider.completion(
      'tiny-small-ctx',
      { model: 'tiny-small-ctx', prompt: 'hi', max_tokens: 3, temperature: 0 },
      never(),
    );
    expect(ok.choices[0]!.text).toHaveLength(3);
  });

  it('streams a role chunk, content deltas and a final chunk with finish_reason and usage, same text as non-stream', async () => {
    const req = chat('Stream me', { max_tokens: 12, stream: true });
    const chunks = await collect(provider.chatCompletionStream('tiny-chat', req, never()));
    const whole = await provider.chatCompletion('tiny-chat', { ...req, stream: false }, never());

    expect(chunks[0]!.choices[0]!.delta).toEqual({ role: 'assistant', content: '' });
    expect(chunks.every((c) => c.object === 'chat.completion.chunk' && c.id === chunks[0]!.id)).toBe(true);
    const last = chunks[chunks.length - 1]!;
    expect(last.choices[0]!.finish_reason).toBe('length');
    // Same counts; cached_tokens differs, since the second request finds its prompt already evaluated.
    const { prompt_tokens, completion_tokens, total_tokens } = whole.usage;
    expect(last.usage).toMatchObject({ prompt_tokens, completion_tokens, total_tokens });
    expect(chunks.slice(0, -1).every((c) => c.choices[0]!.finish_reason === null)).toBe(true);
    expect(chunks.length).toBeGreaterThanOrEqual(3);
    expect(contentOf(chunks)).toBe(whole.choices[0]!.message.content);
  });

  it('stops at a stop sequence, leaves it out of the text and says stop', async () => {
    // Random weights loop on one character for a while; this prompt's greedy answer changes
    // character within 40 tokens, so stopping at that character leaves a known, non-empty prefix.
    const abc = (extra: Partial<ChatCompletionRequest>) =>
      chat('', { messages: [{ role: 'user', content: 'abc' }], max_tokens: 40, ...extra });
    const base = await provider.chatCompletion('tiny-chat', abc({}), never());
    const text = base.choices[0]!.message.content;
    const cut = [...text].findIndex((ch) => ch !== text[0]);
    expect(cut).toBeGreaterThan(0);

    const stopped = await provider.chatCompletion('tiny-chat', abc({ stop: ['\u2603', text[cut]!] }), never());
    expect(stopped.choices[0]!.finish_reason).toBe('stop');
    expect(stopped.choices[0]!.message.content).toBe(text.slice(0, cut));
    expect(stopped.usage.completion_tokens).toBe(cut + 1);

    const streamed = await collect(provider.chatCompletionStream('tiny-chat', abc({ stop: text[cut] }), never()));
    expect(contentOf(streamed)).toBe(text.slice(0, cut));
    expect(streamed[streamed.length - 1]!.choices[0]!.finish_reason).toBe('stop');
  });

  it('keeps text held back as a possible stop sequence when max_tokens ends the answer, as llama-server does', async () => {
    const req = chat('Hold the last one', { max_tokens: 8 });
    const base = (await provider.chatCompletion('tiny-chat', req, never())).choices[0]!.message.content;
    expect(base).toMatch(PRINTABLE);
    expect(base).toHaveLength(8);
    // A stop sequence that starts with the last character and can never complete (control bytes
    // are never generated): that character is held back until the limit ends the generation.
    const stop = [`${base[7]}\u0001`];
    const whole = await provider.chatCompletion('tiny-chat', { ...req, stop }, never());
    expect(whole.choices[0]!.message.content).toBe(base);
    expect(whole.choices[0]!.finish_reason).toBe('length');
    const streamed = await collect(provider.chatCompletionStream('tiny-chat', { ...req, stop, stream: true }, never()));
    expect(contentOf(streamed)).toBe(base);
  });

  it('reproduces a sampled answer with the same seed and varies it with another', async () => {
    const req = (seed: number) => chat('Random please', { max_tokens: 24, temperature: 1, seed });
    const a = await provider.chatCompletion('tiny-chat', req(42), never());
    const b = await provider.chatCompletion('tiny-chat', req(42), never());
    const c = await provider.chatCompletion('tiny-chat', req(43), never());

    expect(a.choices[0]!.message.content).toBe(b.choices[0]!.message.content);
    expect(a.choices[0]!.message.content).not.toBe(c.choices[0]!.message.content);
    expect(a.choices[0]!.message.content).toHaveLength(24);
  });

  it('serves concurrent requests without mixing their outputs', async () => {
    const prompts = ['first prompt', 'second one', 'and a third'];
    const sequential: string[] = [];
    for (const p of prompts) {
      sequential.push(
        (await provider.chatCompletion('tiny-chat', chat(p, { max_tokens: 10 }), never())).choices[0]!.message.content,
      );
    }
    const parallel = await Promise.all(
      prompts.map((p) => provider.chatCompletion('tiny-chat', chat(p, { max_tokens: 10 }), never())),
    );
    expect(parallel.map((r) => r.choices[0]!.message.content)).toEqual(sequential);
  });

  it('completes text prompts, one choice per prompt, with summed usage', async () => {
    const res = await provider.completion(
      'tiny-chat',
      { model: 'tiny-chat', prompt: ['abc', 'defgh'], max_tokens: 5, temperature: 0 },
      never(),
    );
    expect(res.object).toBe('text_completion');
    expect(res.choices.map((c) => [c.index, c.text.length, c.finish_reason])).toEqual([
      [0, 5, 'length'],
      [1, 5, 'length'],
    ]);
    expect(res.usage.completion_tokens).toBe(10);
    expect(res.usage.prompt_tokens).toBeGreaterThanOrEqual('abc'.length + 'defgh'.length);

    const chunks = await collect(
      provider.completionStream(
        'tiny-chat',
        { model: 'tiny-chat', prompt: 'abc', max_tokens: 5, temperature: 0 },
        never(),
      ),
    );
    expect(chunks.map((c) => c.choices[0]!.text).join('')).toBe(res.choices[0]!.text);
    expect(chunks[chunks.length - 1]!.choices[0]!.finish_reason).toBe('length');
  });

  it('stops a stream when the signal aborts, and the model serves the next request at once', async () => {
    const controller = new AbortController();
    const received: ChatCompletionChunk[] = [];
    for await (const c of provider.chatCompletionStream(
      'tiny-chat',
      chat('Go on', { max_tokens: 400 }),
      controller.signal,
    )) {
      received.push(c);
      if (received.length === 4) controller.abort();
    }
    // Role chunk plus a few deltas; never the 400 tokens nor a finish chunk.
    expect(received.length).toBeLessThan(10);
    expect(received.every((c) => c.choices[0]!.finish_reason === null)).toBe(true);

    const started = Date.now();
    const next = await provider.chatCompletion('tiny-chat', chat('Next', { max_tokens: 4 }), never());
    expect(next.choices[0]!.message.content).toHaveLength(4);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('stops generating when the consumer stops reading', async () => {
    const stream = provider.chatCompletionStream('tiny-chat', chat('Go on', { max_tokens: 400 }), never());
    let n = 0;
    for await (const _ of stream) {
      if (++n === 3) break;
    }
    const next = await provider.chatCompletion('tiny-chat', chat('Next', { max_tokens: 4 }), never());
    expect(next.usage.completion_tokens).toBe(4);
  });

  it('rejects a non-stream request whose signal is already aborted, without touching the model', async () => {
    const controller = new AbortController();
    controller.abort();
    await expect(provider.chatCompletion('tiny-chat', chat('x'), controller.signal)).rejects.toBeInstanceOf(
      InferenceFailedError,
    );
  });

  it('returns embeddings of nEmbd floats, as arrays or base64', async () => {
    await provider.load('tiny-embed');
    const res = await provider.embeddings('tiny-embed', { model: 'tiny-embed', input: ['hello', 'world!'] }, never());
    expect(res.object).toBe('list');
    expect(res.data.map((d) => d.index)).toEqual([0, 1]);
    const [a, b] = res.data.map((d) => d.embedding as number[]) as [number[], number[]];
    expect(a).toHaveLength(TINY_CHAT.nEmbd);
    expect(a.every(Number.isFinite)).toBe(true);
    expect(a).not.toEqual(b);
    expect(res.usage.prompt_tokens).toBeGreaterThanOrEqual('hello'.length + 'world!'.length);

    const b64 = await provider.embeddings(
      'tiny-embed',
      { model: 'tiny-embed', input: 'hello', encoding_format: 'base64' },
      never(),
    );
    const bytes = Buffer.from(b64.data[0]!.embedding as string, 'base64');
    const floats = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
    expect(floats).toHaveLength(TINY_CHAT.nEmbd);
    expect(floats[1]).toBeCloseTo(a[1]!, 5);

    // The embedding model is a full LLM too: it can chat.
    const chatRes = await provider.chatCompletion('tiny-embed', chat('hi', { max_tokens: 3 }), never());
    expect(chatRes.usage.completion_tokens).toBe(3);
  });

  it('refuses embeddings from a model without embeddings enabled with a 400', async () => {
    const err = await provider
      .embeddings('tiny-chat', { model: 'tiny-chat', input: 'hello' }, never())
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AppError);
    expect(err).toMatchObject({ status: 400, code: 'embeddings_not_supported' });
  });

  it('fails the load of a GGUF missing llama.feed_forward_length with a clear error, and the process survives', async () => {
    const err = await provider.load('bad-ffn').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelLoadFailedError);
    expect((err as Error).message).toContain('missing key llama.feed_forward_length');

    // A request for that model fails request-scoped and does not try the load again.
    await expect(provider.chatCompletion('bad-ffn', chat('hi'), never())).rejects.toBeInstanceOf(InferenceFailedError);
    const obs = await provider.observe(never());
    expect(obs.models.find((m) => m.id === 'bad-ffn')?.state).toBe('unloaded');

    const res = await provider.chatCompletion('tiny-chat', chat('still alive?', { max_tokens: 5 }), never());
    expect(res.choices[0]!.message.content).toHaveLength(5);
  });

  it('fails loads of a missing file and of a non-GGUF file with ModelLoadFailedError', async () => {
    const missing = await provider.load('missing').catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(ModelLoadFailedError);
    expect((missing as Error).message).toMatch(/ENOENT/);

    const random = await provider.load('random-bytes').catch((e: unknown) => e);
    expect(random).toBeInstanceOf(ModelLoadFailedError);
    expect((random as Error).message).toMatch(/not a readable GGUF file.*GGUF magic/);
  });

  it('throws ModelNotFoundError for an id that is not configured', async () => {
    await expect(provider.load('nope')).rejects.toBeInstanceOf(ModelNotFoundError);
    await expect(provider.chatCompletion('nope', chat('x'), never())).rejects.toBeInstanceOf(ModelNotFoundError);
    await expect(provider.unload('nope')).rejects.toBeInstanceOf(ModelNotFoundError);
  });

  it('fails a stream in flight when its model is unloaded, and the unload completes', async () => {
    await provider.load('tiny-chat');
    const stream = provider.chatCompletionStream('tiny-chat', chat('long answer', { max_tokens: 400 }), never());
    const iterator = stream[Symbol.asyncIterator]();
    await iterator.next();
    await iterator.next();

    const unloaded = await provider.unload('tiny-chat');
    expect(unloaded.wasLoaded).toBe(true);
    let error: unknown = null;
    try {
      for (;;) {
        const step = await iterator.next();
        if (step.done) break;
      }
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(InferenceFailedError);
    expect((error as Error).message).toContain('unloaded');
  });

  it('unloads idempotently, frees the native memory and shows the models as unloaded', async () => {
    await provider.load('tiny-chat');
    const first = await provider.unload('tiny-chat');
    const second = await provider.unload('tiny-chat');
    await provider.unload('tiny-small-ctx');
    await provider.unload('tiny-embed');

    expect(first.wasLoaded).toBe(true);
    expect(first.expectedFreedBytes).toBeGreaterThan(460_000);
    expect(second).toEqual({ wasLoaded: false, expectedFreedBytes: null });
    const obs = await provider.observe(never());
    expect(obs.models.every((m) => m.state === 'unloaded' && m.sizeBytes === null)).toBe(true);
    expect((await llama.getLlamaMemoryUsage()).cpuRam).toBe(0);
  });

  it('clears the handle even when disposing the model throws', async () => {
    await provider.load('tiny-small-ctx');
    const obsBefore = await provider.observe(never());
    expect(obsBefore.models.find((m) => m.id === 'tiny-small-ctx')?.state).toBe('loaded');

    const { LlamaModel } = await import('node-llama-cpp');
    const realDispose = LlamaModel.prototype.dispose;
    const dispose = jest.spyOn(LlamaModel.prototype, 'dispose').mockImplementationOnce(async function (this: unknown) {
      await realDispose.call(this);
      throw new Error('native dispose failed');
    });
    try {
      const res = await provider.unload('tiny-small-ctx');
      expect(res.wasLoaded).toBe(true);
      expect(dispose).toHaveBeenCalled();
    } finally {
      dispose.mockRestore();
    }
    const obs = await provider.observe(never());
    expect(obs.models.find((m) => m.id === 'tiny-small-ctx')?.state).toBe('unloaded');
    expect((await provider.unload('tiny-small-ctx')).wasLoaded).toBe(false);
  });
});
