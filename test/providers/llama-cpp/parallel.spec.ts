import { Logger } from '@nestjs/common';
import { InferenceFailedError, ModelOverloadedError } from '../../../src/common/errors.js';
import { LlamaCppProvider } from '../../../src/providers/llama-cpp/llama-cpp.provider.js';
import { LlamaRuntime } from '../../../src/providers/llama-cpp/llama-runtime.js';
import type { ChatCompletionChunk, ChatCompletionRequest, ChatMessage } from '../../../src/providers/openai-types.js';
import { configFrom } from '../../support/config.js';
import { FakeClock } from '../../support/fake-clock.js';
import { ensureLlmTestModels, TINY_CHAT_GGUF } from '../../support/llm-test-models.js';

const never = () => new AbortController().signal;

function chat(content: string, extra: Partial<ChatCompletionRequest> = {}): ChatCompletionRequest {
  return {
    model: 'm',
    messages: [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content },
    ],
    temperature: 0,
    ...extra,
  };
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/** Consumes a stream, recording its text, and resolves `started` once the first content token arrived. */
function consume(
  stream: AsyncIterable<ChatCompletionChunk>,
  started = deferred(),
): { started: Promise<void>; done: Promise<{ text: string; finish: string | null; error: unknown }> } {
  const done = (async () => {
    let text = '';
    let finish: string | null = null;
    try {
      for await (const c of stream) {
        const content = c.choices[0]!.delta.content ?? '';
        text += content;
        if (content) started.resolve();
        finish = c.choices[0]!.finish_reason ?? finish;
      }
      return { text, finish, error: null };
    } catch (error) {
      return { text, finish, error };
    } finally {
      started.resolve();
    }
  })();
  return { started: started.promise, done };
}

async function until(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((r) => setImmediate(r));
}

describe('LlamaCppProvider with parallel sequences (real node-llama-cpp, tiny generated model)', () => {
  let runtime: LlamaRuntime;
  let provider: LlamaCppProvider;
  const clock = new FakeClock();

  beforeAll(async () => {
    Logger.overrideLogger(['error']);
    await ensureLlmTestModels();
    const config = configFrom({
      backends: [
        {
          name: 'local-llm',
          type: 'llama-cpp',
          threads: 1,
          models: [
            { id: 'p4', path: TINY_CHAT_GGUF, parallel: 4 },
            { id: 'p2', path: TINY_CHAT_GGUF, parallel: 2 },
            { id: 'p1', path: TINY_CHAT_GGUF, parallel: 1 },
            { id: 'p3', path: TINY_CHAT_GGUF, parallel: 3 },
            { id: 'turns', path: TINY_CHAT_GGUF, parallel: 2 },
            { id: 'late', path: TINY_CHAT_GGUF, parallel: 4 },
            { id: 'bounded', path: TINY_CHAT_GGUF, parallel: 1, max_queue_wait_s: 5 },
            { id: 'long', path: TINY_CHAT_GGUF, parallel: 1, context_size: 8192 },
          ],
        },
      ],
    });
    runtime = new LlamaRuntime({ gpu: false, threads: 1 });
    provider = new LlamaCppProvider(config.backends[0]!, runtime, config, clock);
    await provider.init();
    // The lifecycle loads a model before any request reaches the provider; here the test does.
    await Promise.all(['p4', 'p2', 'p1', 'p3', 'turns', 'late', 'bounded', 'long'].map((id) => provider.load(id)));
  });

  afterAll(async () => {
    await provider?.dispose();
    await runtime?.dispose();
    Logger.overrideLogger(['log', 'error', 'warn', 'debug', 'verbose']);
  });

  it('counts the KV cache of every sequence in the size estimate', () => {
    const size = (id: string) => provider.descriptors().find((d) => d.id === id)!.expectedSizeBytes!;
    expect(size('p1')).toBeGreaterThan(0);
    expect(size('p2')).toBeGreaterThan(size('p1'));
    expect(size('p4')).toBeGreaterThan(size('p2'));
  });

  it('answers N concurrent chats on a parallel-N model, each exactly as when run alone (greedy and seeded)', async () => {
    const requests = [
      chat('first prompt', { max_tokens: 24 }),
      chat('a second, longer prompt about something else', { max_tokens: 16 }),
      chat('third', { max_tokens: 24, temperature: 0.9, seed: 7 }),
      chat('the fourth asks for more tokens than the others', { max_tokens: 40, temperature: 0.7, seed: 99 }),
    ];
    const alone: string[] = [];
    for (const r of requests) {
      alone.push((await provider.chatCompletion('p4', r, never())).choices[0]!.message.content);
    }
    expect(new Set(alone).size).toBe(4);

    const together = requests.map((r) => provider.chatCompletion('p4', r, never()));
    await until(() => provider.queueStats('p4').active === 4);
    expect(provider.queueStats('p4')).toEqual({ active: 4, queued: 0 });
    const results = await Promise.all(together);
    expect(results.map((r) => r.choices[0]!.message.content)).toEqual(alone);
    expect(provider.queueStats('p4')).toEqual({ active: 0, queued: 0 });
  });

  it('queues requests beyond parallel in arrival order and shows them as queued', async () => {
    const order: string[] = [];
    const run = (name: string) =>
      provider.chatCompletion('p2', chat(name, { max_tokens: 8 }), never()).then(() => order.push(name));
    await provider.load('p2');
    const all = ['a', 'b', 'c', 'd', 'e'].map(run);
    await until(() => provider.queueStats('p2').queued === 3);
    expect(provider.queueStats('p2')).toEqual({ active: 2, queued: 3 });
    await Promise.all(all);
    // Admission is first-come: the three that waited finish after the two that ran first.
    expect(order.slice(2).sort()).toEqual(['c', 'd', 'e']);
    expect(order.indexOf('c')).toBeLessThan(order.indexOf('e'));
  });

  it('frees an aborted stream’s sequence for a queued request without disturbing the other stream', async () => {
    const other = chat('keep going, I am the other one', { max_tokens: 120 });
    const otherAlone = (await provider.chatCompletion('p2', other, never())).choices[0]!.message.content;

    const leaving = new AbortController();
    const a = consume(provider.chatCompletionStream('p2', chat('I will leave', { max_tokens: 400 }), leaving.signal));
    const b = consume(provider.chatCompletionStream('p2', other, never()));
    await Promise.all([a.started, b.started]);
    const queued = provider.chatCompletion('p2', chat('waiting for a sequence', { max_tokens: 6 }), never());
    await until(() => provider.queueStats('p2').queued === 1);

    leaving.abort();
    const res = await queued;
    expect(res.choices[0]!.message.content).toHaveLength(6);
    const left = await a.done;
    expect(left.error).toBeNull();
    expect(left.finish).toBeNull();
    const kept = await b.done;
    expect(kept.error).toBeNull();
    expect(kept.text).toBe(otherAlone);
  });

  it('starts a request on a reused sequence while others generate, instead of after them', async () => {
    // Every sequence holds an earlier conversation, so the late request must trim its sequence's
    // cache first; that once waited until every other generation had ended.
    const warm = ['one', 'two', 'three', 'four'].map((c) => chat(`warm ${c}`, { max_tokens: 4 }));
    await Promise.all(warm.map((r) => provider.chatCompletion('late', r, never())));
    const long = [1, 2, 3].map((i) =>
      consume(provider.chatCompletionStream('late', chat(`long answer ${i}`, { max_tokens: 400 }), never())),
    );
    await Promise.all(long.map((s) => s.started));
    let ended = 0;
    for (const s of long) void s.done.then(() => ended++);

    const late = consume(provider.chatCompletionStream('late', chat('a new conversation', { max_tokens: 4 }), never()));
    await late.started;
    expect(ended).toBe(0);
    expect(await late.done).toMatchObject({ error: null, finish: 'length' });
    for (const s of long) {
      const end = await s.done;
      expect(end).toMatchObject({ error: null, finish: 'length' });
      expect(end.text).toHaveLength(400);
    }
  });

  it('answers 503 model_overloaded with Retry-After to a request that waited max_queue_wait_s for a turn', async () => {
    const first = consume(provider.chatCompletionStream('bounded', chat('hold it', { max_tokens: 60 }), never()));
    await first.started;
    const waiting = provider
      .chatCompletion('bounded', chat('wait', { max_tokens: 4 }), never())
      .catch((e: unknown) => e);
    await until(() => provider.queueStats('bounded').queued === 1);
    clock.advance(4999);
    expect(provider.queueStats('bounded').queued).toBe(1);
    clock.advance(1);
    const err = await waiting;
    expect(err).toBeInstanceOf(ModelOverloadedError);
    expect(err).toMatchObject({ status: 503, code: 'model_overloaded', details: { model: 'bounded', waited_s: 5 } });
    expect((err as ModelOverloadedError).headers).toMatchObject({ 'retry-after': expect.any(String) });
    expect(provider.queueStats('bounded').queued).toBe(0);
    expect((await first.done).error).toBeNull();
  });

  it('drops a waiter that leaves the queue, and the ones behind it still run', async () => {
    const first = consume(
      provider.chatCompletionStream('p1', chat('hold the only sequence', { max_tokens: 60 }), never()),
    );
    await first.started;
    const leaving = new AbortController();
    const gone = provider.chatCompletion('p1', chat('I give up', { max_tokens: 4 }), leaving.signal);
    const stays = provider.chatCompletion('p1', chat('I stay', { max_tokens: 4 }), never());
    await until(() => provider.queueStats('p1').queued === 2);
    expect(provider.queueStats('p1')).toEqual({ active: 1, queued: 2 });
    leaving.abort();
    await expect(gone).rejects.toBeInstanceOf(InferenceFailedError);
    expect(provider.queueStats('p1').queued).toBe(1);
    expect((await stays).choices[0]!.message.content).toHaveLength(4);
    expect((await first.done).error).toBeNull();
  });

  it('unloads only after every sequence’s generation has ended', async () => {
    await provider.load('p3');
    const log: string[] = [];
    const streams = [0, 1, 2].map((i) => {
      const s = consume(provider.chatCompletionStream('p3', chat(`stream ${i}`, { max_tokens: 400 }), never()));
      void s.done.then(() => log.push(`stream ${i} ended`));
      return s;
    });
    await Promise.all(streams.map((s) => s.started));
    expect(provider.queueStats('p3').active).toBe(3);

    const result = await provider.unload('p3');
    log.push('unloaded');
    expect(result.wasLoaded).toBe(true);
    expect(log.slice(0, 3).sort()).toEqual(['stream 0 ended', 'stream 1 ended', 'stream 2 ended']);
    expect(log[3]).toBe('unloaded');
    for (const s of streams) {
      const end = await s.done;
      expect(end.error).toBeInstanceOf(InferenceFailedError);
      expect(end.finish).toBeNull();
    }
    const obs = await provider.observe(never());
    expect(obs.models.find((m) => m.id === 'p3')!.state).toBe('unloaded');
  });

  it('continues a multi-turn chat on the sequence holding its history, even with another chat in between', async () => {
    const history: ChatMessage[] = [
      { role: 'system', content: 'You are a terse assistant in a long conversation.' },
      { role: 'user', content: 'Tell me something about the sea, please.' },
    ];
    const first = await provider.chatCompletion(
      'turns',
      { model: 'turns', messages: history, temperature: 0, max_tokens: 12 },
      never(),
    );
    expect(first.usage).toMatchObject({ prompt_tokens_details: { cached_tokens: 0 } });
    // Another user with the same system prompt must not take over this conversation's sequence.
    await provider.chatCompletion(
      'turns',
      {
        model: 'turns',
        messages: [history[0]!, { role: 'user', content: 'Something else entirely.' }],
        temperature: 0,
        max_tokens: 12,
      },
      never(),
    );
    history.push({ role: 'assistant', content: first.choices[0]!.message.content }, { role: 'user', content: 'More!' });
    const second = await provider.chatCompletion(
      'turns',
      { model: 'turns', messages: history, temperature: 0, max_tokens: 4 },
      never(),
    );
    const cached = (second.usage as { prompt_tokens_details?: { cached_tokens: number } }).prompt_tokens_details!
      .cached_tokens;
    expect(cached).toBeGreaterThanOrEqual(first.usage.prompt_tokens);
    expect(cached).toBeLessThan(second.usage.prompt_tokens);
  });

  it('serves prompts long enough to be tokenised off the event loop, chat and text alike', async () => {
    const long = 'ab cd '.repeat(800);
    const res = await provider.completion(
      'long',
      { model: 'long', prompt: long, max_tokens: 3, temperature: 0 },
      never(),
    );
    expect(res.choices[0]!.text).toHaveLength(3);
    expect(res.usage.prompt_tokens).toBeGreaterThan(1000);
    const again = await provider.completion(
      'long',
      { model: 'long', prompt: long, max_tokens: 3, temperature: 0 },
      never(),
    );
    expect(again.choices[0]!.text).toBe(res.choices[0]!.text);

    const chatRes = await provider.chatCompletion('long', chat(long, { max_tokens: 3 }), never());
    expect(chatRes.usage.prompt_tokens).toBeGreaterThan(res.usage.prompt_tokens);
    expect(chatRes.usage.completion_tokens).toBe(3);
  });
});
