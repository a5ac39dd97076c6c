import { BackendStartupService } from '../../src/models/backend-startup.service.js';
import OpenAI from 'openai';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { EvictionService } from '../../src/eviction/eviction.service.js';
import { BENCH, writeTinyLlamaGguf } from '../../src/demo/tiny-llama.js';
import { getJson, postJson, startApp, type RunningApp } from '../support/app-harness.js';
import { FakeClock } from '../support/fake-clock.js';
import { waitFor } from '../support/wait-for.js';
import { ensureLlmTestModels, TINY_CHAT_GGUF, TINY_EMBED_GGUF } from '../support/llm-test-models.js';
import { TEST_MODELS_DIR } from '../support/test-paths.js';

const user = (content: string) => [{ role: 'user' as const, content }];

describe('OpenAI-compatible inference on the in-process llama-cpp backend', () => {
  let running: RunningApp;
  let client: OpenAI;

  beforeAll(async () => {
    await ensureLlmTestModels();
    running = await startApp({
      backends: [
        {
          name: 'local-llm',
          type: 'llama-cpp',
          threads: 1,
          models: [
            { id: 'chat', path: TINY_CHAT_GGUF, preload: true },
            { id: 'embed', path: TINY_EMBED_GGUF, embeddings: true },
            { id: 'missing', path: join(TEST_MODELS_DIR, 'does-not-exist.gguf') },
          ],
        },
      ],
    });
    await running.app.get(BackendStartupService).settled();
    client = new OpenAI({ baseURL: `${running.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  });
  afterAll(() => running.close());

  it('lists servable models in /v1/models', async () => {
    const models = await client.models.list();
    expect(models.data.map((m) => m.id).sort()).toEqual(['chat', 'embed', 'missing']);
  });

  it('answers a chat completion with max_tokens tokens, finish_reason length and usage', async () => {
    const res = await client.chat.completions.create({ model: 'chat', messages: user('Say hi'), max_tokens: 12 });
    expect(res.object).toBe('chat.completion');
    expect(res.model).toBe('chat');
    expect(res.choices[0]!.message.role).toBe('assistant');
    expect(res.choices[0]!.message.content!.length).toBeGreaterThan(0);
    expect(res.choices[0]!.finish_reason).toBe('length');
    expect(res.usage).toMatchObject({ completion_tokens: 12 });
    expect(res.usage!.total_tokens).toBe(res.usage!.prompt_tokens + 12);
  });

  it('is deterministic with temperature 0, and honours seed with temperature > 0', async () => {
    const greedy = () =>
      client.chat.completions.create({ model: 'chat', messages: user('x'), max_tokens: 8, temperature: 0 });
    expect((await greedy()).choices[0]!.message.content).toBe((await greedy()).choices[0]!.message.content);
    const seeded = (seed: number) =>
      client.chat.completions.create({ model: 'chat', messages: user('x'), max_tokens: 16, temperature: 1, seed });
    expect((await seeded(7)).choices[0]!.message.content).toBe((await seeded(7)).choices[0]!.message.content);
  });

  it('streams chat as SSE chunks that add up to the text, ending with [DONE]', async () => {
    const stream = await client.chat.completions.create({
      model: 'chat',
      messages: user('stream please'),
      max_tokens: 10,
      stream: true,
    });
    let text = '';
    let chunks = 0;
    let finish: string | null = null;
    for await (const chunk of stream) {
      chunks++;
      text += chunk.choices[0]?.delta.content ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    expect(chunks).toBeGreaterThan(2);
    expect(text.length).toBeGreaterThan(0);
    expect(finish).toBe('length');

    const raw = await fetch(`${running.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'chat', messages: user('x'), max_tokens: 3, stream: true }),
    });
    expect(raw.headers.get('content-type')).toContain('text/event-stream');
    expect((await raw.text()).trimEnd().endsWith('data: [DONE]')).toBe(true);
  });

  it('honours stop sequences', async () => {
    const free = await client.chat.completions.create({
      model: 'chat',
      messages: user('x'),
      max_tokens: 12,
      temperature: 0,
    });
    const text = free.choices[0]!.message.content!;
    const stop = text.slice(3, 5);
    const stopped = await client.chat.completions.create({
      model: 'chat',
      messages: user('x'),
      max_tokens: 12,
      temperature: 0,
      stop: [stop],
    });
    expect(stopped.choices[0]!.message.content).toBe(text.slice(0, text.indexOf(stop)));
    expect(stopped.choices[0]!.finish_reason).toBe('stop');
  });

  it('answers text completions, streamed and not', async () => {
    // Greedy on both sides: the same text is only promised for the same sampling (0.8 is the default).
    const res = await client.completions.create({ model: 'chat', prompt: 'Once upon', max_tokens: 6, temperature: 0 });
    expect(res.object).toBe('text_completion');
    expect(res.choices[0]!.text.length).toBeGreaterThan(0);
    expect(res.usage!.completion_tokens).toBe(6);
    const stream = await client.completions.create({
      model: 'chat',
      prompt: 'Once upon',
      max_tokens: 6,
      temperature: 0,
      stream: true,
    });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.text ?? '';
    expect(text).toBe(res.choices[0]!.text);
  });

  it('returns embeddings with one vector per input', async () => {
    const res = await client.embeddings.create({ model: 'embed', input: ['hello', 'world'] });
    expect(res.data).toHaveLength(2);
    expect(res.data[0]!.embedding.length).toBe(64);
    expect(res.data[0]!.embedding).not.toEqual(res.data[1]!.embedding);
    expect(res.usage.prompt_tokens).toBeGreaterThan(0);
  });

  it('unknown model → 404 model_not_found through the client', async () => {
    await expect(client.chat.completions.create({ model: 'ghost', messages: user('x') })).rejects.toMatchObject({
      status: 404,
      code: 'model_not_found',
    });
  });

  it.each<[string, Record<string, unknown>, string]>([
    ['no messages', { model: 'chat', messages: [] }, 'messages'],
    ['a bad role', { model: 'chat', messages: [{ role: 'wizard', content: 'x' }] }, 'messages[0].role'],
    ['temperature > 2', { model: 'chat', messages: user('x'), temperature: 3 }, 'temperature'],
    ['max_tokens 0', { model: 'chat', messages: user('x'), max_tokens: 0 }, 'max_tokens'],
    ['stop as a number', { model: 'chat', messages: user('x'), stop: 5 }, 'stop'],
    ['no model', { messages: user('x') }, 'model'],
  ])('refuses %s with 400 validation_failed naming the field', async (_name, body, field) => {
    const res = await postJson(`${running.url}/v1/chat/completions`, body);
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('validation_failed');
    expect(res.body.error.details.map((d: { field: string }) => d.field)).toContain(field);
  });

  it('embeddings on a chat-only model are refused with 400', async () => {
    const res = await postJson(`${running.url}/v1/embeddings`, { model: 'chat', input: 'x' });
    expect(res.status).toBe(400);
  });

  it('a request-scoped failure (missing model file) fails that request and leaves readiness ready', async () => {
    const res = await postJson(`${running.url}/v1/chat/completions`, { model: 'missing', messages: user('x') });
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.body.error.code).toBe('model_load_failed');
    expect(res.body.error.message).toContain('missing');
    const health = (await getJson(`${running.url}/health`)).body;
    expect(health.readiness).toBe('ready');
    expect(health.backends['local-llm'].readiness).toBe('ready');
    expect(health.models.missing.state).toBe('failed');
    // Every view says why, /health too (the same reason as /api/models).
    const listed = (await getJson(`${running.url}/api/models`)).body.models.find(
      (m: { id: string }) => m.id === 'missing',
    );
    expect(health.models.missing.reason).toEqual(expect.stringContaining('missing'));
    expect(health.models.missing.reason).toBe(listed.reason);
    // And the other models still serve.
    expect(
      (await postJson(`${running.url}/v1/chat/completions`, { model: 'chat', messages: user('x'), max_tokens: 2 }))
        .status,
    ).toBe(200);
  });

  it('answers 4 concurrent chats on a parallel-4 model, each exactly as when asked alone', async () => {
    const ask = (i: number) =>
      client.chat.completions.create({
        model: 'chat',
        messages: user(`question number ${i}, please answer`),
        max_tokens: 20,
        temperature: 0.8,
        seed: 100 + i,
      });
    const alone: string[] = [];
    for (let i = 0; i < 4; i++) alone.push((await ask(i)).choices[0]!.message.content!);
    const together = await Promise.all([0, 1, 2, 3].map(ask));
    expect(together.map((r) => r.choices[0]!.message.content)).toEqual(alone);
  });

  it.each<[string, string, Record<string, unknown>, string]>([
    [
      'a 1 MB chat content',
      '/v1/chat/completions',
      { model: 'chat', messages: user('a'.repeat(1_000_000)) },
      'messages',
    ],
    ['a 1 MB completion prompt', '/v1/completions', { model: 'chat', prompt: 'a'.repeat(1_000_000) }, 'prompt'],
    ['a 1 MB embeddings input', '/v1/embeddings', { model: 'embed', input: ['ok', 'a'.repeat(1_000_000)] }, 'input'],
  ])(
    'refuses %s with 400 context_length_exceeded before tokenising it, /health/live answering meanwhile',
    async (_name, path, body, param) => {
      let done = false;
      const live: number[] = [];
      const probe = (async () => {
        while (!done) {
          const started = performance.now();
          const res = await fetch(`${running.url}/health/live`);
          await res.arrayBuffer();
          live.push(res.status === 200 ? performance.now() - started : Infinity);
          // Back to back, no pause: each ping waits for the previous answer, so pings never pile up.
        }
      })();
      const started = performance.now();
      const res = await postJson(`${running.url}${path}`, body);
      const elapsed = performance.now() - started;
      done = true;
      await probe;
      expect(res.status).toBe(400);
      expect(res.body.error).toMatchObject({ code: 'context_length_exceeded', param });
      // Generous bounds for a busy 2-core machine: tokenising this input took minutes before the bound.
      expect(elapsed).toBeLessThan(5000);
      expect(live.length).toBeGreaterThan(0);
      expect(Math.max(...live)).toBeLessThan(2000);
    },
  );

  it('a client disconnecting mid-stream releases the lease', async () => {
    const abort = new AbortController();
    const res = await fetch(`${running.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'chat', messages: user('x'), max_tokens: 400, stream: true }),
      signal: abort.signal,
    });
    const reader = res.body!.getReader();
    await reader.read();
    abort.abort();
    await reader.cancel().catch(() => undefined);
    // The server learns of the disconnect from its socket a moment later: wait for that, not for a guessed time.
    await waitFor(
      async () => (await getJson(`${running.url}/health`)).body.models.chat.in_flight === 0,
      'the lease of the abandoned stream to be released',
    );
  });
});

describe('preload failure', () => {
  let running: RunningApp;
  beforeAll(async () => {
    await ensureLlmTestModels();
    running = await startApp({
      backends: [
        {
          name: 'broken-llm',
          type: 'llama-cpp',
          threads: 1,
          models: [{ id: 'ghost', path: join(TEST_MODELS_DIR, 'nope.gguf'), preload: true }],
        },
        {
          name: 'good-llm',
          type: 'llama-cpp',
          threads: 1,
          models: [{ id: 'chat', path: TINY_CHAT_GGUF, preload: true }],
        },
      ],
    });
    await running.app.get(BackendStartupService).settled();
  });
  afterAll(() => running.close());

  it('marks that backend unavailable with the model id in the reason; the service is degraded', async () => {
    const health = (await getJson(`${running.url}/health`)).body;
    expect(health.backends['broken-llm']).toMatchObject({ readiness: 'unavailable', backend_initialized: true });
    expect(health.backends['broken-llm'].reason).toContain('ghost');
    expect(health.backends['good-llm'].readiness).toBe('ready');
    expect(health).toMatchObject({ readiness: 'degraded', status: 'degraded' });
    expect((await getJson(`${running.url}/health/ready`)).status).toBe(200);
  });

  it('refuses requests for it at once with 503 backend_unavailable, readiness, reason and Retry-After', async () => {
    const res = await postJson(`${running.url}/v1/chat/completions`, { model: 'ghost', messages: user('x') });
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('5');
    expect(res.body.error).toMatchObject({
      code: 'backend_unavailable',
      backend: 'broken-llm',
      readiness: 'unavailable',
    });
    expect(res.body.error.reason).toContain('ghost');
    // The runtime was never asked to load it again.
    expect((await getJson(`${running.url}/health`)).body.models.ghost.state).toBe('failed');
  });

  it('one broken backend never blocks another', async () => {
    expect(
      (await postJson(`${running.url}/v1/chat/completions`, { model: 'chat', messages: user('x'), max_tokens: 2 }))
        .status,
    ).toBe(200);
  });
});

describe('eviction never interrupts a long stream', () => {
  let running: RunningApp;
  let clock: FakeClock;
  const benchPath = join(TEST_MODELS_DIR, 'bench-26m.gguf');

  beforeAll(async () => {
    writeTinyLlamaGguf(benchPath, BENCH);
    clock = new FakeClock();
    running = await startApp(
      {
        eviction: { idle_unload_s: 1, check_interval_s: 3600 },
        backends: [
          { name: 'llm', type: 'llama-cpp', threads: 1, models: [{ id: 'big', path: benchPath, context_size: 2048 }] },
        ],
      },
      { clock },
    );
    await running.app.get(BackendStartupService).settled();
  });
  afterAll(() => running.close());

  it('keeps the model through the stream, then evicts it once idle', async () => {
    const eviction = running.app.get(EvictionService);
    const res = await fetch(`${running.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'big', messages: user('tell me a long story'), max_tokens: 600, stream: true }),
    });
    const reader = res.body!.getReader();
    await reader.read();
    clock.advance(3_600_000);
    expect(await eviction.tick()).toEqual([]);
    expect((await getJson(`${running.url}/health`)).body.models.big).toMatchObject({
      state: 'loaded',
      in_flight: 1,
      unloads_in_s: null,
    });
    let body = '';
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      body += new TextDecoder().decode(value);
    }
    expect(body.trimEnd().endsWith('data: [DONE]')).toBe(true);
    expect(body).not.toContain('"error"');
    clock.advance(999);
    expect(await eviction.tick()).toEqual([]);
    clock.advance(1);
    expect((await eviction.tick()).map((o) => o.model)).toEqual(['big']);
  });
});
