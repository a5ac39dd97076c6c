import { SystemClock } from '../../../src/common/clock.js';
import { UnsupportedParameterError } from '../../../src/common/errors.js';
import { UpstreamRejectedError } from '../../../src/providers/remote/upstream-errors.js';
import { RknnSdProvider } from '../../../src/providers/remote/rknn-sd.provider.js';
import { type FakeRknnSd, startFakeRknnSd } from '../../support/fakes/rknn-sd.fake.js';
import { pngSize } from '../../support/png.js';
import { waitFor } from '../../support/wait-for.js';
import { probeSignal, remoteBackend } from './backend.js';

describe('RknnSdProvider against the rknn_sd_server fake', () => {
  let fake: FakeRknnSd;
  let provider: RknnSdProvider;

  beforeEach(async () => {
    fake = await startFakeRknnSd({ idleSeconds: 42 });
    provider = new RknnSdProvider(remoteBackend('rknn-sd', fake.url), new SystemClock());
  });
  afterEach(async () => {
    await provider.dispose();
    await fake.close();
  });

  it('reports the model unloaded while /v1/models lists it but pipeline_loaded is false, and never asks /v1/models', async () => {
    const obs = await provider.observe(probeSignal());
    expect(obs).toMatchObject({ reachable: true, error: null, serverState: 'ok' });
    expect(obs.models).toEqual([
      expect.objectContaining({ id: fake.model, state: 'unloaded', observedVia: 'GET /health pipeline_loaded' }),
    ]);
    expect(fake.hits('GET /v1/models')).toBe(0);
    expect(fake.hits('GET /health')).toBe(1);
  });

  it('flips to loaded with the backend idle seconds once the pipeline is loaded', async () => {
    fake.setPipelineLoaded(true);
    const obs = await provider.observe(probeSignal());
    expect(obs.models[0]).toMatchObject({
      id: fake.model,
      state: 'loaded',
      backendIdleSeconds: 42,
      details: expect.objectContaining({ backend: 'rknn2', load_error: null, idle_unload_threshold_s: 600 }),
    });
  });

  it('surfaces load_error in the details after a failed lazy load', async () => {
    fake.setLoadFailure('NPU core busy');
    await expect(
      provider.generateImages(fake.model, { model: fake.model, prompt: 'a cat' }, new AbortController().signal),
    ).rejects.toMatchObject({ status: 502, details: { upstream_status: 503 } });
    const obs = await provider.observe(probeSignal());
    expect(obs.models[0]).toMatchObject({
      state: 'unloaded',
      details: expect.objectContaining({ load_error: 'NPU core busy' }),
    });
  });

  it('catalogs the model as image-generation, and cannot load (lazy-loads on generate)', async () => {
    await provider.init();
    expect(provider.descriptors()).toEqual([
      expect.objectContaining({ id: fake.model, upstreamName: fake.model, purpose: 'image-generation' }),
    ]);
    expect(provider.capabilities).toMatchObject({
      canLoad: false,
      canUnload: true,
      canObserveLoadState: true,
      remote: true,
    });
  });

  it('forwards unload to POST /admin/unload and reports was_loaded', async () => {
    fake.setPipelineLoaded(true);
    await expect(provider.unload(fake.model)).resolves.toEqual({ wasLoaded: true, expectedFreedBytes: null });
    expect(fake.pipelineLoaded()).toBe(false);
    await expect(provider.unload(fake.model)).resolves.toMatchObject({ wasLoaded: false });
    expect(fake.hits('POST /admin/unload')).toBe(2);
  });

  it('proxies image generation, one upstream call per image since upstream refuses n != 1', async () => {
    const res = await provider.generateImages(
      fake.model,
      { model: fake.model, prompt: 'a red fox', n: 2, size: '256x256', seed: 7, steps: 4 },
      new AbortController().signal,
    );
    expect(res.data).toHaveLength(2);
    expect(res.data[0]!.b64_json.length).toBeGreaterThan(0);
    expect(res.usage.seed).toBe(7);
    const bodies = fake.requestsTo('POST /v1/images/generations').map((r) => r.body);
    expect(bodies).toEqual([
      expect.objectContaining({ n: 1, seed: 7, size: '256x256', steps: 4, response_format: 'b64_json' }),
      expect.objectContaining({ n: 1, seed: 8 }),
    ]);
    // The generate lazy-loaded the pipeline, and the probe says so.
    expect((await provider.observe(probeSignal())).models[0]!.state).toBe('loaded');
  });

  it('passes an upstream 400 through as the client’s error with the upstream message', async () => {
    const err = await provider
      .generateImages(fake.model, { model: fake.model, prompt: 'x', size: 'big' }, new AbortController().signal)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UpstreamRejectedError);
    expect(err).toMatchObject({ status: 400, code: 'upstream_rejected', details: { upstream_status: 400 } });
    expect((err as Error).message).toContain('invalid size: big');
  });

  it('asks for HEIGHTxWIDTH upstream, so a landscape request comes back landscape', async () => {
    const res = await provider.generateImages(
      fake.model,
      { model: fake.model, prompt: 'a wide valley', size: '384x256' },
      new AbortController().signal,
    );
    expect(pngSize(Buffer.from(res.data[0]!.b64_json, 'base64'))).toEqual({ width: 384, height: 256 });
    expect(fake.requestsTo('POST /v1/images/generations')[0]!.body).toMatchObject({ size: '256x384' });
  });

  it('refuses steps above the server’s 20 as a 400 naming steps, without calling it', async () => {
    const err = await provider
      .generateImages(fake.model, { model: fake.model, prompt: 'x', steps: 30 }, new AbortController().signal)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnsupportedParameterError);
    expect(err).toMatchObject({ status: 400, param: 'steps' });
    expect(fake.hits('POST /v1/images/generations')).toBe(0);
  });

  it('reads an unanswered /health during its own generate as busy and loaded, not unreachable', async () => {
    const release = fake.holdGenerations();
    const image = provider.generateImages(
      fake.model,
      { model: fake.model, prompt: 'slow' },
      new AbortController().signal,
    );
    await waitFor(() => fake.hits('POST /v1/images/generations') === 1, 'the generate to reach the server');
    const probe = new AbortController();
    const observation = provider.observe(probe.signal);
    await waitFor(() => fake.hits('GET /health') === 1, 'the probe to reach the busy server');
    probe.abort(); // the probe's deadline passes with the server still generating
    const obs = await observation;
    expect(obs).toMatchObject({ reachable: true, error: null, serverState: 'ok' });
    expect(obs.models).toEqual([expect.objectContaining({ id: fake.model, state: 'loaded' })]);
    release();
    await expect(image).resolves.toMatchObject({ data: [expect.anything()] });
    // With nothing of ours in flight, silence is silence again.
    fake.setHang(true);
    const quiet = new AbortController();
    const after = provider.observe(quiet.signal);
    await waitFor(() => fake.hits('GET /health') === 2, 'the second probe');
    quiet.abort();
    await expect(after).resolves.toMatchObject({ reachable: false });
  });
});
