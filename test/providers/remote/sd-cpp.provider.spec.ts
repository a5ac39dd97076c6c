import { SystemClock } from '../../../src/common/clock.js';
import { UnloadUnsupportedError } from '../../../src/common/errors.js';
import { SdCppProvider } from '../../../src/providers/remote/sd-cpp.provider.js';
import { type FakeSdCpp, startFakeSdCpp } from '../../support/fakes/sd-cpp.fake.js';
import { pngSize } from '../../support/png.js';
import { probeSignal, remoteBackend } from './backend.js';

describe('SdCppProvider against the A1111-style fake', () => {
  let fake: FakeSdCpp;
  let provider: SdCppProvider;

  beforeEach(async () => {
    fake = await startFakeSdCpp({ model: 'sd-turbo' });
    provider = new SdCppProvider(remoteBackend('sd-cpp', fake.url), new SystemClock());
  });
  afterEach(async () => {
    await provider.dispose();
    await fake.close();
  });

  it('catalogs the checkpoint under the name the server gives (the file stem) with state unknown, never loaded, even after a generate', async () => {
    await provider.init();
    expect(provider.descriptors()).toEqual([expect.objectContaining({ id: 'sd-turbo', purpose: 'image-generation' })]);
    await provider.generateImages('sd-turbo', { model: 'sd-turbo', prompt: 'p' }, new AbortController().signal);
    const obs = await provider.observe(probeSignal());
    expect(obs).toMatchObject({ reachable: true, serverState: 'ok' });
    expect(obs.models).toEqual([expect.objectContaining({ id: 'sd-turbo', state: 'unknown' })]);
    expect(provider.capabilities).toMatchObject({ canObserveLoadState: false, canUnload: false });
  });

  it('takes a configured upstream naming the weights file as the checkpoint the server reports, not a second model', async () => {
    const named = new SdCppProvider(
      remoteBackend('sd-cpp', fake.url, { models: [{ id: 'turbo', upstreamName: 'sd-turbo.safetensors' }] }),
      new SystemClock(),
    );
    try {
      await named.init();
      expect(named.descriptors().map((d) => d.id)).toEqual(['turbo']);
    } finally {
      await named.dispose();
    }
  });

  it('refuses unload with unload_unsupported (409)', async () => {
    await expect(provider.unload('sd-turbo')).rejects.toBeInstanceOf(UnloadUnsupportedError);
    await expect(provider.unload('sd-turbo')).rejects.toMatchObject({
      status: 409,
      code: 'unload_unsupported',
    });
  });

  it('maps an OpenAI image request to txt2img and the images back to the OpenAI shape', async () => {
    const res = await provider.generateImages(
      'sd-turbo',
      {
        model: 'sd-turbo',
        prompt: 'a lighthouse',
        negative_prompt: 'blurry',
        n: 3,
        size: '640x384',
        steps: 2,
        guidance_scale: 1.5,
        seed: 99,
      },
      new AbortController().signal,
    );
    expect(fake.requestsTo('POST /sdapi/v1/txt2img')[0]!.body).toEqual({
      prompt: 'a lighthouse',
      negative_prompt: 'blurry',
      steps: 2,
      cfg_scale: 1.5,
      width: 640,
      height: 384,
      seed: 99,
      batch_size: 3,
    });
    expect(res.model).toBe('sd-turbo');
    expect(res.data).toHaveLength(3);
    expect(res.data[0]).toEqual({ b64_json: expect.any(String), revised_prompt: 'a lighthouse' });
    expect(res.usage.seed).toBe(99);
  });

  it('reports the seed the server drew when none was asked, and a failed generate as a 502 with its message', async () => {
    const res = await provider.generateImages(
      'sd-turbo',
      { model: 'sd-turbo', prompt: 'p', n: 2 },
      new AbortController().signal,
    );
    expect(fake.requestsTo('POST /sdapi/v1/txt2img')[0]!.body).toMatchObject({ seed: -1, batch_size: 2 });
    expect(res.usage.seed).toBe(1804289383);
    expect(res.data.map((d) => pngSize(Buffer.from(d.b64_json, 'base64')))).toEqual([
      { width: 512, height: 512 },
      { width: 512, height: 512 },
    ]);
    fake.failNextGeneration();
    await expect(
      provider.generateImages('sd-turbo', { model: 'sd-turbo', prompt: 'p' }, new AbortController().signal),
    ).rejects.toMatchObject({ status: 502, message: expect.stringContaining('generate_image returned no results') });
  });

  it('is unreachable when /sdapi/v1/options does not answer', async () => {
    await fake.close();
    const obs = await provider.observe(probeSignal());
    expect(obs).toMatchObject({ reachable: false, models: [] });
    expect(obs.error).toMatch(/refused/);
    await expect(provider.init()).rejects.toThrow(/refused/);
  });
});
