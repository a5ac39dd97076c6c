import { SystemClock } from '../../../src/common/clock.js';
import { OllamaProvider } from '../../../src/providers/remote/ollama.provider.js';
import { type FakeOllama, startFakeOllama } from '../../support/fakes/ollama.fake.js';
import { probeSignal, remoteBackend } from './backend.js';

const MB = 1024 * 1024;

describe('OllamaProvider against the Ollama fake', () => {
  let fake: FakeOllama;
  let provider: OllamaProvider;

  beforeEach(async () => {
    fake = await startFakeOllama({
      models: [
        { name: 'qwen2.5:0.5b', size: 400 * MB },
        { name: 'nomic-embed-text', family: 'nomic-bert', size: 270 * MB },
      ],
    });
    provider = new OllamaProvider(
      remoteBackend('ollama', fake.url, { models: [{ id: 'chat-small', upstreamName: 'qwen2.5:0.5b' }] }),
      new SystemClock(),
    );
  });
  afterEach(async () => {
    await provider.dispose();
    await fake.close();
  });

  it('catalogs configured and discovered models, with embedding purpose for embed models', async () => {
    await provider.init();
    expect(provider.descriptors()).toEqual([
      expect.objectContaining({
        id: 'chat-small',
        upstreamName: 'qwen2.5:0.5b',
        purpose: 'chat',
        expectedSizeBytes: 400 * MB,
      }),
      expect.objectContaining({ id: 'nomic-embed-text:latest', purpose: 'embedding' }),
    ]);
  });

  it('reports exactly what /api/ps lists, with size, VRAM, RAM = size - size_vram, expiry and details', async () => {
    fake.addLoadedModel('qwen2.5:0.5b', { size: 600 * MB, sizeVram: 450 * MB, expiresAt: '2026-11-22T12:05:00-07:00' });
    const obs = await provider.observe(probeSignal());
    const byId = Object.fromEntries(obs.models.map((m) => [m.id, m]));
    expect(byId['chat-small']).toMatchObject({
      state: 'loaded',
      sizeBytes: 600 * MB,
      vramBytes: 450 * MB,
      ramBytes: 150 * MB,
      expiresAt: '2026-11-22T19:05:00.000Z',
      observedVia: 'GET /api/ps',
      details: expect.objectContaining({ family: 'qwen2', quantization_level: 'Q4_K_M' }),
    });
    expect(byId['nomic-embed-text:latest']).toMatchObject({ state: 'unloaded', sizeBytes: null });
  });

  it('unloads with keep_alive 0 and reports what was resident', async () => {
    fake.addLoadedModel('qwen2.5:0.5b', { size: 600 * MB });
    await expect(provider.unload('chat-small')).resolves.toEqual({ wasLoaded: true, expectedFreedBytes: 600 * MB });
    expect(fake.requestsTo('POST /api/generate')[0]!.body).toMatchObject({ model: 'qwen2.5:0.5b', keep_alive: 0 });
    expect(fake.loadedNames()).toEqual([]);
    await expect(provider.unload('chat-small')).resolves.toMatchObject({ wasLoaded: false });
  });

  it('loads with a prompt-less POST /api/generate', async () => {
    await provider.load('chat-small');
    const body = fake.requestsTo('POST /api/generate')[0]!.body as Record<string, unknown>;
    expect(body).toMatchObject({ model: 'qwen2.5:0.5b' });
    expect(body).not.toHaveProperty('prompt');
    expect((await provider.observe(probeSignal())).models[0]!.state).toBe('loaded');
  });

  it('passes Ollama’s 404 for an unknown model through as the client’s error, with its message', async () => {
    await expect(provider.load('missing:7b')).rejects.toMatchObject({
      status: 404,
      code: 'upstream_rejected',
      details: { upstream_status: 404 },
      message: expect.stringContaining("model 'missing:7b' not found"),
    });
  });

  it('serves chat through the OpenAI-compatible /v1 routes', async () => {
    const res = await provider.chatCompletion(
      'chat-small',
      { model: 'chat-small', messages: [{ role: 'user', content: 'hi' }] },
      new AbortController().signal,
    );
    expect(res).toMatchObject({ object: 'chat.completion', model: 'chat-small' });
    expect(res.choices[0]!.message.content).toBe('Hello from ollama');
    expect(fake.requestsTo('POST /v1/chat/completions')[0]!.body).toMatchObject({ model: 'qwen2.5:0.5b' });
  });
});
