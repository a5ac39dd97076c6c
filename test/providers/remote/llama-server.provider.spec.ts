import { SystemClock } from '../../../src/common/clock.js';
import { UnloadUnsupportedError } from '../../../src/common/errors.js';
import type { ChatCompletionChunk } from '../../../src/providers/openai-types.js';
import { LlamaServerProvider } from '../../../src/providers/remote/llama-server.provider.js';
import { FakeClock } from '../../support/fake-clock.js';
import { type FakeLlamaServer, startFakeLlamaServer } from '../../support/fakes/llama-server.fake.js';
import { waitFor } from '../../support/wait-for.js';
import { probeSignal, remoteBackend } from './backend.js';

const chat = { model: 'm', messages: [{ role: 'user' as const, content: 'hi' }] };

describe('LlamaServerProvider, single-model mode', () => {
  let fake: FakeLlamaServer;
  let provider: LlamaServerProvider;

  beforeEach(async () => {
    fake = await startFakeLlamaServer({ model: 'qwen.gguf', loading: true, reply: 'one two three four' });
    provider = new LlamaServerProvider(
      remoteBackend('llama-server', fake.url, { models: [{ id: 'qwen', upstreamName: 'qwen.gguf' }] }),
      new SystemClock(),
    );
  });
  afterEach(async () => {
    await provider.dispose();
    await fake.close();
  });

  it('reports loading (model and server) while /health answers 503 Loading model, then loaded', async () => {
    const loading = await provider.observe(probeSignal());
    expect(loading).toMatchObject({ reachable: true, serverState: 'loading' });
    expect(loading.models).toEqual([
      expect.objectContaining({ id: 'qwen', state: 'loading', observedVia: 'GET /props (503 Loading model)' }),
    ]);
    fake.setLoading(false);
    const ready = await provider.observe(probeSignal());
    expect(ready).toMatchObject({ serverState: 'ok' });
    expect(ready.models).toEqual([expect.objectContaining({ id: 'qwen', state: 'loaded' })]);
    expect(provider.capabilities).toMatchObject({ canLoad: false, canUnload: false });
  });

  it('refuses unload in single-model mode', async () => {
    fake.setLoading(false);
    await provider.observe(probeSignal());
    await expect(provider.unload('qwen')).rejects.toBeInstanceOf(UnloadUnsupportedError);
  });

  it('proxies a chat completion under the upstream name and answers with the modelplane id', async () => {
    fake.setLoading(false);
    await provider.observe(probeSignal());
    const res = await provider.chatCompletion('qwen', { ...chat, model: 'qwen' }, new AbortController().signal);
    expect(res.choices[0]!.message.content).toBe('one two three four');
    expect(res.model).toBe('qwen');
    expect(fake.requestsTo('POST /v1/chat/completions')[0]!.body).toMatchObject({ model: 'qwen.gguf', stream: false });
  });

  it('streams chat chunks in order and ends at [DONE]', async () => {
    fake.setLoading(false);
    fake.wire.chunkDelayMs = 5;
    const chunks: ChatCompletionChunk[] = [];
    for await (const c of provider.chatCompletionStream(
      'qwen',
      { ...chat, model: 'qwen' },
      new AbortController().signal,
    )) {
      chunks.push(c);
    }
    const text = chunks.map((c) => c.choices[0]!.delta.content ?? '').join('');
    expect(text).toBe('one two three four');
    expect(chunks.at(-1)!.choices[0]!.finish_reason).toBe('stop');
    expect(chunks.every((c) => c.object === 'chat.completion.chunk' && c.model === 'qwen')).toBe(true);
  });

  it('aborts the upstream stream when the client goes away', async () => {
    fake.setLoading(false);
    fake.wire.reply = Array.from({ length: 50 }, (_, i) => `w${i}`).join(' ');
    fake.wire.chunkDelayMs = 20;
    const client = new AbortController();
    const seen: string[] = [];
    await expect(
      (async () => {
        for await (const c of provider.chatCompletionStream('qwen', { ...chat, model: 'qwen' }, client.signal)) {
          seen.push(c.choices[0]!.delta.content ?? '');
          if (seen.length === 3) client.abort();
        }
      })(),
    ).rejects.toMatchObject({ name: 'AbortError' });
    // The fake sees the closed connection a moment after our abort: wait for that event.
    await waitFor(() => fake.wire.streamsAbandoned > 0, 'the upstream stream to be abandoned');
    expect(fake.wire.streamsAbandoned).toBe(1);
    expect(seen.length).toBeLessThan(10);
  });

  it('proxies completions (plain and streamed) and embeddings', async () => {
    fake.setLoading(false);
    const signal = new AbortController().signal;
    const done = await provider.completion('qwen', { model: 'qwen', prompt: 'x' }, signal);
    expect(done.choices[0]!.text).toBe('one two three four');
    const parts: string[] = [];
    for await (const c of provider.completionStream('qwen', { model: 'qwen', prompt: 'x' }, signal))
      parts.push(c.choices[0]!.text);
    expect(parts.join('')).toBe('one two three four');
    const emb = await provider.embeddings('qwen', { model: 'qwen', input: ['a', 'bb'] }, signal);
    expect(emb.data).toHaveLength(2);
    expect(emb.model).toBe('qwen');
  });
});

describe('LlamaServerProvider, router mode', () => {
  let fake: FakeLlamaServer;
  let provider: LlamaServerProvider;

  beforeEach(async () => {
    fake = await startFakeLlamaServer({
      mode: 'router',
      models: { a: 'loaded', b: 'unloaded', c: 'loading' },
      loadDelayMs: 30,
    });
    provider = new LlamaServerProvider(remoteBackend('llama-server', fake.url), new SystemClock());
  });
  afterEach(async () => {
    await provider.dispose();
    await fake.close();
  });

  it('reports each model from GET /models status.value and enables load/unload', async () => {
    const obs = await provider.observe(probeSignal());
    expect(obs.serverState).toBe('ok');
    expect(Object.fromEntries(obs.models.map((m) => [m.id, m.state]))).toEqual({
      a: 'loaded',
      b: 'unloaded',
      c: 'loading',
    });
    expect(obs.models[0]!.observedVia).toBe('GET /models status');
    expect(provider.capabilities).toMatchObject({ canLoad: true, canUnload: true });
  });

  it('loads through POST /models/load and resolves only once the model reports loaded', async () => {
    await provider.observe(probeSignal());
    await provider.load('b');
    expect(fake.requestsTo('POST /models/load').map((r) => r.body)).toEqual([{ model: 'b' }]);
    expect(fake.modelStatus('b')).toBe('loaded');
  });

  it('rejects a load whose child process fails', async () => {
    await provider.observe(probeSignal());
    fake.failNextLoad();
    await expect(provider.load('b')).rejects.toMatchObject({
      status: 500,
      code: 'model_load_failed',
      message: expect.stringContaining('failed to load'),
    });
  });

  it('forwards unload to POST /models/unload, idempotently', async () => {
    await provider.observe(probeSignal());
    await expect(provider.unload('a')).resolves.toEqual({ wasLoaded: true, expectedFreedBytes: null });
    expect(fake.requestsTo('POST /models/unload').map((r) => r.body)).toEqual([{ model: 'a' }]);
    expect(fake.modelStatus('a')).toBe('unloaded');
    await expect(provider.unload('a')).resolves.toMatchObject({ wasLoaded: false });
  });

  it('gives up on a load the router never finishes after load_timeout_ms, and shows the model failed', async () => {
    const clock = new FakeClock();
    const stuck = new LlamaServerProvider(
      // The whole-request bound far away: only load_timeout_ms (on the injected clock) can end this load.
      remoteBackend('llama-server', fake.url, { loadTimeoutMs: 60_000, requestTimeoutMs: 3_600_000 }),
      clock,
    );
    try {
      await stuck.observe(probeSignal());
      fake.setStuckLoad(true);
      let settled = false;
      const load = stuck.load('b').finally(() => {
        settled = true;
      });
      load.catch(() => undefined);
      // Polled twice and still waiting: the router says loading and the bound has not passed.
      await waitFor(() => fake.hits('GET /models') >= 3, 'the load to be polled');
      clock.advance(59_999);
      const polls = fake.hits('GET /models');
      await waitFor(() => fake.hits('GET /models') >= polls + 2, 'two more polls');
      expect(settled).toBe(false);
      clock.advance(1);
      await expect(load).rejects.toMatchObject({
        status: 500,
        code: 'model_load_failed',
        message: expect.stringContaining("still reports 'loading' after 60000 ms (load_timeout_ms)"),
      });
      expect(fake.modelStatus('b')).toBe('loading');
      // Not shown as a load still going: failed, until the router says anything else.
      const after = await stuck.observe(probeSignal());
      expect(after.models.find((m) => m.id === 'b')).toMatchObject({
        state: 'unloaded',
        details: { failed: true, stuck_loading: true },
      });
      fake.setModelStatus('b', 'unloaded');
      const reset = await stuck.observe(probeSignal());
      expect(reset.models.find((m) => m.id === 'b')).toMatchObject({ state: 'unloaded', details: {} });
    } finally {
      await stuck.dispose();
    }
  });
});
