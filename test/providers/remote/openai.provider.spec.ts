import { SystemClock } from '../../../src/common/clock.js';
import { UnloadUnsupportedError } from '../../../src/common/errors.js';
import { OpenAiProvider } from '../../../src/providers/remote/openai.provider.js';
import { type FakeOpenAi, startFakeOpenAi } from '../../support/fakes/openai.fake.js';
import { probeSignal, remoteBackend } from './backend.js';

describe('OpenAiProvider against the vLLM fake', () => {
  let fake: FakeOpenAi | undefined;
  let provider: OpenAiProvider | undefined;
  afterEach(async () => {
    await provider?.dispose();
    await fake?.close();
  });

  it('reports a healthy server’s listed models as loaded, and configured unlisted ones as unloaded', async () => {
    fake = await startFakeOpenAi({ models: ['Qwen/Qwen2.5-0.5B-Instruct'] });
    provider = new OpenAiProvider(
      remoteBackend('openai', fake.url, {
        models: [{ id: 'qwen', upstreamName: 'Qwen/Qwen2.5-0.5B-Instruct' }, { id: 'other' }],
      }),
      new SystemClock(),
    );
    const obs = await provider.observe(probeSignal());
    expect(obs.models).toEqual([
      expect.objectContaining({ id: 'qwen', state: 'loaded', observedVia: 'GET /health + GET /v1/models' }),
      expect.objectContaining({ id: 'other', state: 'unloaded' }),
    ]);
    await expect(provider.unload('qwen')).rejects.toBeInstanceOf(UnloadUnsupportedError);
  });

  it('falls back to /v1/models when the server has no /health', async () => {
    fake = await startFakeOpenAi({ models: ['m1'], healthRoute: false });
    provider = new OpenAiProvider(remoteBackend('openai', fake.url), new SystemClock());
    const obs = await provider.observe(probeSignal());
    expect(obs.reachable).toBe(true);
    expect(obs.models).toEqual([
      expect.objectContaining({ id: 'm1', state: 'loaded', observedVia: 'GET /v1/models (no /health)' }),
    ]);
  });

  it('reports a dead engine (/health 503) as an error, not as loaded models', async () => {
    fake = await startFakeOpenAi({ models: ['m1'] });
    fake.setHealthy(false);
    provider = new OpenAiProvider(remoteBackend('openai', fake.url), new SystemClock());
    const obs = await provider.observe(probeSignal());
    expect(obs).toMatchObject({ reachable: true, serverState: 'error', models: [] });
    expect(obs.error).toContain('HTTP 503');
    await expect(provider.init()).rejects.toThrow('HTTP 503');
  });

  it('sends the configured bearer key', async () => {
    fake = await startFakeOpenAi({ models: ['m1'], apiKey: 'sekret' });
    provider = new OpenAiProvider(remoteBackend('openai', fake.url, { apiKey: 'sekret' }), new SystemClock());
    await provider.init();
    const res = await provider.chatCompletion(
      'm1',
      { model: 'm1', messages: [{ role: 'user', content: 'hi' }] },
      new AbortController().signal,
    );
    expect(res.choices[0]!.message.content).toBe('Hello from vllm');
    expect(fake.requestsTo('POST /v1/chat/completions')[0]!.headers.authorization).toBe('Bearer sekret');
  });

  it('without the key, the 401 is a probe error with the upstream message', async () => {
    fake = await startFakeOpenAi({ models: ['m1'], apiKey: 'sekret' });
    provider = new OpenAiProvider(remoteBackend('openai', fake.url), new SystemClock());
    const obs = await provider.observe(probeSignal());
    expect(obs).toMatchObject({ serverState: 'error' });
    expect(obs.error).toContain('HTTP 401: Unauthorized');
  });
});
