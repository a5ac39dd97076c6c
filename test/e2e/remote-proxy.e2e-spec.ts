/**
 * Inference proxied to remote backends through the same admission door, with the official `openai`
 * client against the real app: chat (plain and streamed), completions, embeddings, images; upstream
 * failures mapped to the error envelope and kept request-scoped; a client leaving mid-stream stops the
 * upstream generation and releases the lease.
 */
import { BackendStartupService } from '../../src/models/backend-startup.service.js';
import OpenAI from 'openai';
import { performance } from 'node:perf_hooks';
import { getJson, observeNow, postJson, startApp, type RunningApp } from '../support/app-harness.js';
import { FakeClock } from '../support/fake-clock.js';
import { waitFor } from '../support/wait-for.js';
import {
  closedPortUrl,
  type FakeLlamaServer,
  type FakeOllama,
  type FakeOpenAi,
  type FakeRknnSd,
  type FakeSdCpp,
  type FakeServerControls,
  HTML_ERROR_PAGE,
  sendJson,
  sendText,
  startFakeHttp,
  startFakeLlamaServer,
  startFakeOllama,
  startFakeOpenAi,
  startFakeRknnSd,
  startFakeSdCpp,
} from '../support/fakes/index.js';
import { pngSize } from '../support/png.js';

/** A JSON body as the harness returns it (untyped on purpose: assertions say what it holds). */
type Json = Awaited<ReturnType<typeof getJson>>['body'];

const NO_BACKGROUND = 3_600_000;
const REQUEST_TIMEOUT_MS = 500;
const common = { probe_cache_ms: 1000, probe_interval_ms: NO_BACKGROUND, failure_threshold: 3 };
const hello = [{ role: 'user' as const, content: 'hello' }];

/** vLLM behind nginx whose worker died: probes answer, inference gets nginx's HTML 500 page. */
async function startHtmlInferenceServer(): Promise<FakeServerControls> {
  return startFakeHttp(
    (req, res) => {
      if (req.method === 'GET' && req.path === '/health') {
        sendText(res, 200, '');
        return true;
      }
      if (req.method === 'GET' && req.path === '/v1/models') {
        sendJson(res, 200, { object: 'list', data: [{ id: 'html-model', object: 'model', owned_by: 'vllm' }] });
        return true;
      }
      sendText(res, 500, HTML_ERROR_PAGE, 'text/html');
      return true;
    },
    (_req, res) => sendText(res, 404, 'not found'),
  );
}

describe('proxying to remote backends (openai client, real app)', () => {
  let clock: FakeClock;
  let llama: FakeLlamaServer;
  let gone: FakeLlamaServer;
  let ollama: FakeOllama;
  let vllm: FakeOpenAi;
  let rknn: FakeRknnSd;
  let sdcpp: FakeSdCpp;
  let html: FakeServerControls;
  let running: RunningApp;
  let client: OpenAI;

  const health = async (): Promise<Json> => (await getJson(`${running.url}/health`)).body;

  beforeAll(async () => {
    clock = new FakeClock();
    llama = await startFakeLlamaServer({ model: 'qwen.gguf', reply: 'The quick brown fox jumps' });
    gone = await startFakeLlamaServer({ model: 'gone.gguf' });
    ollama = await startFakeOllama({
      models: [{ name: 'qwen2.5:0.5b' }, { name: 'nomic-embed-text', family: 'nomic-bert' }],
      reply: 'Hello from ollama',
    });
    vllm = await startFakeOpenAi({ models: ['Qwen/Qwen2.5-0.5B-Instruct'], reply: 'Hello from vllm' });
    rknn = await startFakeRknnSd();
    sdcpp = await startFakeSdCpp();
    html = await startHtmlInferenceServer();
    running = await startApp(
      {
        backends: [
          {
            name: 'llama',
            type: 'llama-server',
            url: llama.url,
            ...common,
            request_timeout_ms: REQUEST_TIMEOUT_MS,
            models: [{ id: 'llama-chat', upstream: 'qwen.gguf' }],
          },
          { name: 'gone', type: 'llama-server', url: gone.url, ...common, models: [{ id: 'gone-chat' }] },
          {
            name: 'ollama',
            type: 'ollama',
            url: ollama.url,
            ...common,
            models: [
              { id: 'qwen', upstream: 'qwen2.5:0.5b' },
              { id: 'embed', upstream: 'nomic-embed-text', purpose: 'embedding' },
            ],
          },
          {
            name: 'vllm',
            type: 'openai',
            url: vllm.url,
            ...common,
            models: [{ id: 'vllm-chat', upstream: 'Qwen/Qwen2.5-0.5B-Instruct' }],
          },
          {
            name: 'npu',
            type: 'rknn-sd',
            url: rknn.url,
            ...common,
            models: [{ id: 'sd-npu', upstream: rknn.model }],
          },
          {
            name: 'sdcpp',
            type: 'sd-cpp',
            url: sdcpp.url,
            ...common,
            models: [{ id: 'sd15', upstream: 'sd-v1-5-pruned-emaonly' }],
          },
          {
            name: 'html',
            type: 'openai',
            url: html.url,
            ...common,
            models: [{ id: 'html-chat', upstream: 'html-model' }],
          },
          {
            name: 'closed',
            type: 'llama-server',
            url: await closedPortUrl(),
            ...common,
            models: [{ id: 'closed-chat' }],
          },
        ],
      },
      { clock },
    );
    await running.app.get(BackendStartupService).settled();
    client = new OpenAI({ baseURL: `${running.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  });
  afterAll(async () => {
    await running.close();
    await Promise.all([llama, gone, ollama, vllm, rknn, sdcpp, html].map((f) => f.close()));
  });

  it.each<[string, string, () => FakeServerControls, string, string]>([
    ['llama-server', 'llama-chat', () => llama, 'qwen.gguf', 'The quick brown fox jumps'],
    ['ollama', 'qwen', () => ollama, 'qwen2.5:0.5b', 'Hello from ollama'],
    ['openai (vLLM)', 'vllm-chat', () => vllm, 'Qwen/Qwen2.5-0.5B-Instruct', 'Hello from vllm'],
  ])(
    'chat (non-stream) through %s: the upstream name goes out, our id comes back',
    async (_k, id, fake, upstream, reply) => {
      const before = fake().hits('POST /v1/chat/completions');
      const res = await client.chat.completions.create({ model: id, messages: hello });
      expect(res.model).toBe(id);
      expect(res.choices[0]!.message.content).toBe(reply);
      expect(fake().hits('POST /v1/chat/completions')).toBe(before + 1);
      expect(fake().requestsTo('POST /v1/chat/completions').at(-1)!.body).toMatchObject({
        model: upstream,
        stream: false,
      });
    },
  );

  it('chat stream: chunks arrive in order and the stream ends', async () => {
    llama.wire.chunkDelayMs = 5;
    try {
      const stream = await client.chat.completions.create({ model: 'llama-chat', messages: hello, stream: true });
      const pieces: string[] = [];
      let finish: string | null = null;
      for await (const chunk of stream) {
        expect(chunk.model).toBe('llama-chat');
        pieces.push(chunk.choices[0]?.delta.content ?? '');
        finish = chunk.choices[0]?.finish_reason ?? finish;
      }
      expect(pieces.filter((p) => p !== '')).toEqual(['The', ' quick', ' brown', ' fox', ' jumps']);
      expect(finish).toBe('stop');
    } finally {
      llama.wire.chunkDelayMs = 0;
    }
    expect((await health()).models['llama-chat'].in_flight).toBe(0);
  });

  it('streams through ollama and vLLM too', async () => {
    for (const [id, reply] of [
      ['qwen', 'Hello from ollama'],
      ['vllm-chat', 'Hello from vllm'],
    ] as const) {
      const stream = await client.chat.completions.create({ model: id, messages: hello, stream: true });
      let text = '';
      for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
      expect(text).toBe(reply);
    }
  });

  it('completions, plain and streamed', async () => {
    const res = await client.completions.create({ model: 'llama-chat', prompt: 'Once' });
    expect(res.choices[0]!.text).toBe('The quick brown fox jumps');
    expect(res.model).toBe('llama-chat');
    const stream = await client.completions.create({ model: 'vllm-chat', prompt: 'Once', stream: true });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.text ?? '';
    expect(text).toBe('Hello from vllm');
  });

  it('embeddings through ollama', async () => {
    const res = await client.embeddings.create({ model: 'embed', input: ['a', 'bb'], encoding_format: 'float' });
    expect(res.model).toBe('embed');
    expect(res.data.map((d) => d.index)).toEqual([0, 1]);
    for (const d of res.data) expect(d.embedding).toHaveLength(8);
    expect(ollama.requestsTo('POST /v1/embeddings').at(-1)!.body).toMatchObject({ model: 'nomic-embed-text' });
  });

  it('images through rknn-sd (one upstream call per image) and sd-cpp (txt2img)', async () => {
    const npu = await client.images.generate({ model: 'sd-npu', prompt: 'a fox', n: 2, size: '512x512' });
    expect(npu.data!.map((d) => pngSize(Buffer.from(d.b64_json!, 'base64')))).toEqual([
      { width: 512, height: 512 },
      { width: 512, height: 512 },
    ]);
    expect(rknn.requestsTo('POST /v1/images/generations').map((r) => r.body)).toEqual([
      expect.objectContaining({ prompt: 'a fox', n: 1, model: rknn.model }),
      expect.objectContaining({ prompt: 'a fox', n: 1, model: rknn.model }),
    ]);

    const sd = await client.images.generate({ model: 'sd15', prompt: 'a cat', size: '256x256' });
    expect(pngSize(Buffer.from(sd.data![0]!.b64_json!, 'base64'))).toEqual({ width: 256, height: 256 });
    expect(sd.data![0]!.revised_prompt).toBe('a cat');
    expect(sdcpp.requestsTo('POST /sdapi/v1/txt2img').at(-1)!.body).toMatchObject({
      prompt: 'a cat',
      width: 256,
      height: 256,
    });
  });

  it('a hung upstream → 504 upstream_timeout after request_timeout_ms; readiness unchanged', async () => {
    llama.setHang(true);
    const started = performance.now();
    try {
      await expect(client.chat.completions.create({ model: 'llama-chat', messages: hello })).rejects.toMatchObject({
        status: 504,
        code: 'upstream_timeout',
      });
    } finally {
      llama.setHang(false);
    }
    const elapsed = performance.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(REQUEST_TIMEOUT_MS - 20);
    expect(elapsed).toBeLessThan(REQUEST_TIMEOUT_MS + 3000);
    const h = await health();
    expect(h.backends.llama).toMatchObject({ readiness: 'ready', reason: null });
    expect(h.models['llama-chat'].in_flight).toBe(0);
    // And the next request is served.
    expect((await client.chat.completions.create({ model: 'llama-chat', messages: hello })).choices).toHaveLength(1);
  });

  it('an HTML 500 from upstream → 502 upstream_error with its status and title; readiness unchanged', async () => {
    const res = await postJson(`${running.url}/v1/chat/completions`, { model: 'html-chat', messages: hello });
    expect(res.status).toBe(502);
    expect(res.body.error).toMatchObject({ code: 'upstream_error', backend: 'html', upstream_status: 500 });
    expect(res.body.error.message).toContain('HTTP 500: 500 Internal Server Error');
    expect(res.body.error.message).not.toContain('<html>');
    expect((await health()).backends.html.readiness).toBe('ready');
  });

  it('a backend whose port closed: 503 backend_unavailable for the request at once, readiness follows the probes', async () => {
    expect((await postJson(`${running.url}/v1/chat/completions`, { model: 'gone-chat', messages: hello })).status).toBe(
      200,
    );
    await gone.close();
    const res = await postJson(`${running.url}/v1/chat/completions`, { model: 'gone-chat', messages: hello });
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(res.body.error).toMatchObject({ code: 'backend_unavailable', backend: 'gone' });
    expect(res.body.error.message).toMatch(/refused/);
    // One failed request does not move readiness: only probes do.
    expect((await health()).backends.gone.readiness).toBe('ready');

    for (let i = 0; i < 3; i++) {
      clock.advance(1000);
      await observeNow(running);
    }
    expect((await health()).backends.gone.readiness).toBe('unavailable');
    const refused = await postJson(`${running.url}/v1/chat/completions`, { model: 'gone-chat', messages: hello });
    expect(refused.status).toBe(503);
    expect(refused.body.error).toMatchObject({ code: 'backend_unavailable', backend: 'gone' });
    expect(refused.body.error.reason).toMatch(/refused/);
  });

  it('a backend unreachable from the start: requests get 503 backend_unavailable with the reason', async () => {
    await expect(client.chat.completions.create({ model: 'closed-chat', messages: hello })).rejects.toMatchObject({
      status: 503,
      code: 'backend_unavailable',
    });
    const res = await postJson(`${running.url}/v1/chat/completions`, { model: 'closed-chat', messages: hello });
    expect(res.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(res.body.error.reason).toMatch(/refused/);
  });

  it('a client leaving mid-stream: the upstream stream is abandoned and the lease released', async () => {
    llama.wire.chunkDelayMs = 100;
    llama.wire.reply = Array.from({ length: 40 }, (_, i) => `w${i}`).join(' ');
    const abandoned = llama.wire.streamsAbandoned;
    const abort = new AbortController();
    try {
      const res = await fetch(`${running.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'llama-chat', messages: hello, stream: true }),
        signal: abort.signal,
      });
      expect(res.status).toBe(200);
      const reader = res.body!.getReader();
      const first = new TextDecoder().decode((await reader.read()).value);
      expect(first).toMatch(/^data: /);
      expect((await health()).models['llama-chat'].in_flight).toBe(1);
      abort.abort();

      // Real network events: wait for the upstream to see the client gone and the lease to be released.
      await waitFor(
        async () => llama.wire.streamsAbandoned > abandoned && (await health()).models['llama-chat'].in_flight === 0,
        'the upstream stream abandoned and the lease released',
      );
      expect(llama.wire.streamsAbandoned).toBe(abandoned + 1);
      expect((await health()).models['llama-chat'].in_flight).toBe(0);
    } finally {
      llama.wire.chunkDelayMs = 0;
      llama.wire.reply = 'The quick brown fox jumps';
    }
  });
});
