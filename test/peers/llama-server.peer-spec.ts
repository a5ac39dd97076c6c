/**
 * modelplane against a real llama.cpp `llama-server` (LLAMA_SERVER_BIN): each case is one place where
 * the fakes and the real server used to disagree. Background probes are off (a long interval): the
 * test drives probes with probeNow, the way the interval would, so nothing depends on timer speed.
 */
import { ProbeService } from '../../src/models/probe.service.js';
import { getJson, postJson, startApp, type RunningApp } from '../support/app-harness.js';
import { waitFor } from '../support/wait-for.js';
import { type Peer, type PeerModels, peerModels, startLlamaServer, until } from './support/llama-server-peer.js';

// Probes only when a test asks; a generous probe timeout, so a busy 2-core machine never turns a slow answer
// of the real server into "unavailable".
const NO_BACKGROUND_PROBES = { probe_interval_ms: 3_600_000, probe_timeout_ms: 10_000 };
const hi = [{ role: 'user', content: 'hi' }];

let models: PeerModels;
const peers: Peer[] = [];
const apps: RunningApp[] = [];

async function server(args: string[], opts?: Parameters<typeof startLlamaServer>[1]): Promise<Peer> {
  const peer = await startLlamaServer(args, opts);
  peers.push(peer);
  return peer;
}

async function app(peer: Peer, backend: Record<string, unknown> = {}): Promise<RunningApp> {
  const running = await startApp({
    backends: [{ name: 'peer', type: 'llama-server', url: peer.url, ...NO_BACKGROUND_PROBES, ...backend }],
  });
  apps.push(running);
  // What the background observer does on its first rounds: learn the server's catalog and mode. On a
  // machine so busy that a probe misses its deadline, the observer simply probes again, and so does this.
  await waitFor(
    async () => {
      await running.app.get(ProbeService).probeNow('peer');
      return (await getJson(`${running.url}/health`)).body.backends.peer.readiness !== 'initializing';
    },
    'a first observation of the peer',
    { timeoutMs: 120_000 },
  );
  return running;
}

/**
 * Restarts the single-model server on `port` until a probe of modelplane's sees it loading its model, and
 * leaves it stopped (SIGSTOP) right there. A huge context makes each load last long enough (KV cache
 * allocation) to be caught within a few tries.
 */
async function restartIntoLoading(running: RunningApp, port: number): Promise<Peer> {
  for (let attempt = 1; attempt <= 10; attempt++) {
    const restarted = await server(['-m', models.chat, '-c', '262144'], { port, waitFor: 'answering' });
    await probe(running);
    const seen = (await getJson(`${running.url}/health`)).body.backends.peer as { reason: string | null };
    if (seen.reason === 'loading model') {
      restarted.process.kill('SIGSTOP');
      return restarted;
    }
    await restarted.stop('SIGKILL');
  }
  throw new Error('no probe saw the restarted server loading in 10 restarts');
}

/**
 * A router, modelplane in front of it, and a chat to `broken` (its child exits with code 1). Now and then
 * (1 in 6 here) the real router loses that child and reports `loading` for ever: modelplane then answers
 * the same 500 model_load_failed at load_timeout_ms, and the test starts a fresh router to see the exit code.
 */
async function failedRouterLoad(): Promise<{ peer: Peer; running: RunningApp; res: Awaited<ReturnType<typeof chat>> }> {
  for (let attempt = 1; attempt <= 3; attempt++) {
    const peer = await server(['--models-dir', models.routerDir, '--no-models-autoload']);
    const running = await app(peer, { load_timeout_ms: 15_000 });
    await probe(running);
    const res = await chat(running, { model: 'broken' });
    expect(res).toMatchObject({ status: 500, body: { error: { code: 'model_load_failed' } } });
    if (!String(res.body.error.message).includes("still reports 'loading'")) return { peer, running, res };
    await running.close();
    apps.splice(apps.indexOf(running), 1);
    await peer.stop('SIGKILL');
  }
  throw new Error('the router lost the failed child in 3 routers out of 3');
}

const probe = (running: RunningApp): Promise<void> => running.app.get(ProbeService).probeNow('peer');

/** `work`, or a rejection naming `what` after 60 s. */
async function within<T>(what: string, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: still waiting after 60 s`)), 60_000);
  });
  try {
    return await Promise.race([work, limit]);
  } finally {
    clearTimeout(timer);
  }
}
const chat = (running: RunningApp, body: Record<string, unknown>) =>
  postJson(`${running.url}/v1/chat/completions`, { messages: hi, max_tokens: 4, ...body });
const loadedIds = async (running: RunningApp): Promise<string[]> =>
  ((await getJson(`${running.url}/api/models/loaded`)).body.loaded as { name: string }[]).map((m) => m.name);

beforeAll(async () => {
  models = await peerModels();
});

afterAll(() => models.remove());

afterEach(async () => {
  await Promise.all(apps.splice(0).map((a) => a.close()));
  await Promise.all(peers.splice(0).map((p) => p.stop('SIGKILL')));
});

describe('real llama-server, single-model mode', () => {
  it('1+2: a restart into loading is "loading model" at once, and the first chat after it is healthy is admitted', async () => {
    const first = await server(['-m', models.chat]);
    const running = await app(first, { models: [{ id: 'tiny-chat.gguf' }] });
    expect((await chat(running, { model: 'tiny-chat.gguf' })).status).toBe(200);
    await first.stop('SIGKILL');

    // The real load lasts a fraction of a second: restart until a probe lands inside it, then freeze the server
    // (SIGSTOP) so what modelplane believes cannot change while we look at it from outside.
    const restarted = await restartIntoLoading(running, first.port);
    try {
      const during = await chat(running, { model: 'tiny-chat.gguf' });
      expect(during).toMatchObject({ status: 503, body: { error: { code: 'backend_unavailable' } } });
      expect(during.body.error.message).toContain('loading model');
      expect(during.headers.get('retry-after')).toBeTruthy();
      expect((await getJson(`${running.url}/health`)).body.backends.peer).toMatchObject({
        readiness: 'unavailable',
        reason: 'loading model',
      });
    } finally {
      restarted.process.kill('SIGCONT');
    }
    await until(async () => (await getJson(`${restarted.url}/health`)).status === 200, 'the restarted server');
    // The probe the refused chat started (held by the frozen server) has finished; no other probe in between:
    // the request itself looks again before refusing.
    await running.app.get(ProbeService).whenIdle();
    expect((await chat(running, { model: 'tiny-chat.gguf' })).status).toBe(200);
  });

  it('2: a dead server answers 503 backend_unavailable with Retry-After, not 502', async () => {
    const peer = await server(['-m', models.chat]);
    const running = await app(peer);
    expect((await chat(running, { model: 'tiny-chat.gguf' })).status).toBe(200);
    await peer.stop('SIGKILL');
    const res = await chat(running, { model: 'tiny-chat.gguf' });
    expect(res).toMatchObject({ status: 503, body: { error: { code: 'backend_unavailable' } } });
    expect(res.headers.get('retry-after')).toBeTruthy();
    expect(res.body.error.message).toContain('connection refused');
  });

  it('3: OpenAI fields reach the server: logit_bias, logprobs, response_format (an invalid schema is its 400)', async () => {
    const peer = await server(['-m', models.chat]);
    const running = await app(peer);
    const base = { model: 'tiny-chat.gguf', temperature: 0, max_tokens: 6 };
    const direct = async (body: Record<string, unknown>) =>
      postJson(`${peer.url}/v1/chat/completions`, { messages: hi, ...base, ...body });
    const ours = async (body: Record<string, unknown>) => chat(running, { ...base, ...body });

    const biased = { logit_bias: { '70': 100 } };
    const viaUs = await ours(biased);
    expect(viaUs.status).toBe(200);
    expect(viaUs.body.choices[0].message.content).toBe((await direct(biased)).body.choices[0].message.content);
    expect(viaUs.body.choices[0].message.content).not.toBe((await ours({})).body.choices[0].message.content);

    const probs = await ours({ logprobs: true, top_logprobs: 2 });
    expect(probs.body.choices[0].logprobs.content[0].top_logprobs).toHaveLength(2);

    const schema = { type: 'object', properties: { a: { type: 'integer' } }, required: ['a'] };
    const json = await ours({ response_format: { type: 'json_schema', json_schema: { name: 'x', schema } } });
    expect(json.status).toBe(200);
    // The grammar allows a ```json fence before the object: what counts is that it constrained the answer.
    expect(json.body.choices[0].message.content).toMatch(/^\s*(```(json?)?\s*)?\{?/);
    expect(json.body.choices[0].message.content).toBe(
      (await direct({ response_format: { type: 'json_schema', json_schema: { name: 'x', schema } } })).body.choices[0]
        .message.content,
    );
    expect(json.body.choices[0].message.content).not.toBe((await ours({})).body.choices[0].message.content);

    const bad = await ours({ response_format: { type: 'json_schema', json_schema: { schema: { type: 'bogus' } } } });
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toContain('JSON schema');

    // A field we do not model at all still reaches the server (llama.cpp's `n_probs`).
    const vendor = await ours({ n_probs: 1 });
    expect(vendor.body.choices[0].logprobs).toBeTruthy();
  });

  it('4: a prompt over the context is 400 context_length_exceeded, streamed or not', async () => {
    const peer = await server(['-m', models.chat]);
    const running = await app(peer);
    expect((await getJson(`${running.url}/health`)).body.backends.peer.readiness).toBe('ready');
    const long = [{ role: 'user', content: 'hello world '.repeat(400) }];
    const plain = await chat(running, { model: 'tiny-chat.gguf', messages: long });
    expect(plain).toMatchObject({ status: 400, body: { error: { code: 'context_length_exceeded', n_ctx: 512 } } });
    const streamed = await chat(running, { model: 'tiny-chat.gguf', messages: long, stream: true });
    expect(streamed).toMatchObject({ status: 400, body: { error: { code: 'context_length_exceeded' } } });
  });

  it('5b: a server asleep (--sleep-idle-seconds) has freed its model: not loaded; a chat wakes it', async () => {
    const peer = await server(['-m', models.chat, '--sleep-idle-seconds', '1']);
    const running = await app(peer);
    await until(async () => (await getJson(`${peer.url}/props`)).body.is_sleeping === true, 'the server to sleep');
    await probe(running);
    expect(await loadedIds(running)).not.toContain('tiny-chat.gguf');
    expect((await chat(running, { model: 'tiny-chat.gguf' })).status).toBe(200);
    await probe(running);
    expect(await loadedIds(running)).toContain('tiny-chat.gguf');
  });

  it('7: a stream whose server stops answering is cut with an error event once probes mark it unavailable', async () => {
    const peer = await server(['-m', models.chat]);
    // The probe that finds the stopped server waits its whole timeout (10 s): slow, but never a false alarm.
    const running = await app(peer, { failure_threshold: 1, stream_idle_timeout_ms: 600_000 });
    const res = await fetch(`${running.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'tiny-chat.gguf',
        messages: hi,
        stream: true,
        max_tokens: 100_000,
        ignore_eos: true,
      }),
    });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    await reader.read();
    // Hung, like a server stuck in its own shutdown: the socket stays open, nothing more comes.
    peer.process.kill('SIGSTOP');
    try {
      // Each step bounded and named (generously: a busy machine is slow, never this slow), so a hang says
      // where it hung instead of running into jest's timeout (seen once in a full CI run, not reproduced).
      await within('the probe of the stopped server', probe(running));
      const readiness = (await getJson(`${running.url}/health`)).body.backends.peer.readiness as string;
      expect(readiness).toBe('unavailable');
      const text = await within(
        'the cut stream to end',
        (async () => {
          let all = '';
          for (;;) {
            const { done, value } = await reader.read();
            if (done) return all;
            all += Buffer.from(value).toString();
          }
        })(),
      );
      expect(text).toContain('backend_unavailable');
      expect(text).not.toContain('[DONE]');
    } finally {
      peer.process.kill('SIGCONT');
    }
  }, 150_000);

  it('5a: a configured id without upstream on a single-model server is one model, not two', async () => {
    const peer = await server(['-m', models.chat]);
    const running = await app(peer, { models: [{ id: 'my-chat' }] });
    await probe(running);
    const catalog = (await getJson(`${running.url}/v1/models`)).body.data.map((m: { id: string }) => m.id);
    expect(catalog).toEqual(['my-chat']);
    expect((await chat(running, { model: 'my-chat' })).status).toBe(200);
  });

  it('5c: GET /health per-model summary says loaded for what the server has loaded', async () => {
    const peer = await server(['-m', models.chat]);
    const running = await app(peer);
    await probe(running);
    const health = (await getJson(`${running.url}/health`)).body;
    expect(JSON.stringify(health)).toMatch(/"tiny-chat\.gguf"[^}]*"state":"loaded"/);
  });
});

describe('real llama-server, router mode', () => {
  it('5d: an empty router is a router: a configured model is not loaded, and a chat to it is 404 model_not_found', async () => {
    const peer = await server(['--models-dir', models.emptyDir]);
    const running = await app(peer, { models: [{ id: 'ghost' }] });
    await probe(running);
    expect(await loadedIds(running)).not.toContain('ghost');
    // Loaded before forwarding (router): the router's load answers 404 for it, our model_not_found.
    const res = await chat(running, { model: 'ghost' });
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('model_not_found');
    expect(res.body.error.message).toContain("'ghost'");
  });

  it('6+8: --no-models-autoload: a chat (streamed too) lazy-loads through /models/load; admin unload returns once unloaded', async () => {
    const peer = await server(['--models-dir', models.routerDir, '--no-models-autoload']);
    const running = await app(peer);
    await probe(running);
    expect((await chat(running, { model: 'tiny-chat' })).status).toBe(200);
    const status = async (): Promise<string> =>
      String(
        ((await getJson(`${peer.url}/models`)).body.data as { id: string; status: { value: string } }[]).find(
          (m) => m.id === 'tiny-chat',
        )?.status.value,
      );
    expect(await status()).toBe('loaded');
    expect((await postJson(`${running.url}/api/models/tiny-chat/unload`, {})).status).toBe(200);
    const streamed = await fetch(`${running.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'tiny-chat', messages: hi, max_tokens: 3, stream: true }),
    });
    expect(streamed.status).toBe(200);
    expect(await streamed.text()).toContain('[DONE]');
    expect((await postJson(`${running.url}/api/models/tiny-chat/unload`, {})).status).toBe(200);
    expect(await status()).toBe('unloaded');
  });

  it('8: a model whose load fails is model_load_failed with the exit code, and shows as failed in every view', async () => {
    const { peer, running, res } = await failedRouterLoad();
    expect(res.body.error.message).toContain('exited with code 1');
    await probe(running);
    // The router's own record: failed, with the child's exit code.
    const upstream = (await getJson(`${peer.url}/models`)).body.data as {
      id: string;
      status: Record<string, unknown>;
    }[];
    expect(upstream.find((m) => m.id === 'broken')?.status).toMatchObject({ failed: true, exit_code: 1 });
    const listed = ((await getJson(`${running.url}/api/models`)).body.models as Record<string, unknown>[]).find(
      (m) => m.id === 'broken',
    );
    expect(listed).toMatchObject({ state: 'failed', reason: expect.stringContaining('code 1') });
    expect(await loadedIds(running)).not.toContain('broken');
    expect((await getJson(`${running.url}/health`)).body.models.broken).toMatchObject({
      state: 'failed',
      reason: expect.stringContaining('code 1'),
    });
  }, 180_000);
});
