import { BackendStartupService } from '../../src/models/backend-startup.service.js';
import { EvictionService } from '../../src/eviction/eviction.service.js';
import { getJson, postJson, startApp, type RunningApp } from '../support/app-harness.js';
import { FakeClock } from '../support/fake-clock.js';
import { ensureImageTestModels, TINY_LCM_DIR } from '../support/image-test-models.js';

const image = (model: string) => ({ model, prompt: 'a boat', size: '64x64', steps: 1, seed: 1 });
const loadedNames = async (url: string): Promise<string[]> => {
  const { body } = await getJson(`${url}/api/models/loaded`);
  return (body as { loaded: { name: string }[] }).loaded.map((m) => m.name).sort();
};

describe('idle eviction and memory budget (real onnx-image models, fake clock)', () => {
  let running: RunningApp;
  let clock: FakeClock;
  let eviction: EvictionService;

  beforeAll(async () => {
    await ensureImageTestModels();
    clock = new FakeClock();
    running = await startApp(
      {
        eviction: { idle_unload_s: 30, check_interval_s: 3600, max_loaded_models: 2 },
        backends: [
          {
            name: 'img',
            type: 'onnx-image',
            models: [
              { id: 'a', path: TINY_LCM_DIR },
              { id: 'b', path: TINY_LCM_DIR },
              { id: 'c', path: TINY_LCM_DIR },
              { id: 'pinned', path: TINY_LCM_DIR, pin: true, preload: true },
              { id: 'never', path: TINY_LCM_DIR, idle_unload_s: 0 },
            ],
          },
        ],
      },
      { clock },
    );
    await running.app.get(BackendStartupService).settled();
    eviction = running.app.get(EvictionService);
  });
  afterAll(() => running.close());

  beforeEach(async () => {
    await postJson(`${running.url}/api/models/unload`, {});
  });

  it('unloads a model once idle past its threshold, and the next request reloads it', async () => {
    expect((await postJson(`${running.url}/v1/images/generations`, image('a'))).status).toBe(200);
    expect(await loadedNames(running.url)).toEqual(['a', 'pinned']);

    let health = (await getJson(`${running.url}/health`)).body;
    expect(health.models.a).toMatchObject({
      state: 'loaded',
      idle_seconds: 0,
      idle_unload_threshold_s: 30,
      unloads_in_s: 30,
    });

    clock.advance(29_000);
    expect(await eviction.tick()).toEqual([]);
    health = (await getJson(`${running.url}/health`)).body;
    expect(health.models.a).toMatchObject({ idle_seconds: 29, unloads_in_s: 1 });

    clock.advance(1_000);
    const outcomes = await eviction.tick();
    expect(outcomes).toEqual([expect.objectContaining({ model: 'a', was_loaded: true, reason: 'idle' })]);
    expect(await loadedNames(running.url)).toEqual(['pinned']);

    expect((await postJson(`${running.url}/v1/images/generations`, image('a'))).status).toBe(200);
    expect(await loadedNames(running.url)).toEqual(['a', 'pinned']);
  });

  it('never evicts a pinned model or one with idle_unload_s 0', async () => {
    expect((await postJson(`${running.url}/v1/images/generations`, image('never'))).status).toBe(200);
    clock.advance(365 * 24 * 3_600_000);
    await eviction.tick();
    expect(await loadedNames(running.url)).toEqual(['never', 'pinned']);
    const health = (await getJson(`${running.url}/health`)).body;
    expect(health.models.pinned).toMatchObject({ idle_unload_threshold_s: null, unloads_in_s: null });
    expect(health.models.never).toMatchObject({ idle_unload_threshold_s: null, unloads_in_s: null });
  });

  it('max_loaded_models evicts the least recently used idle model first', async () => {
    // The pinned model counts toward the budget but is never a victim.
    await postJson(`${running.url}/v1/images/generations`, image('a'));
    expect(await loadedNames(running.url)).toEqual(['a', 'pinned']);
    clock.advance(1_000);
    const plan = (await getJson(`${running.url}/api/eviction/plan?load=b`)).body;
    expect(plan).toMatchObject({ model: 'b', fits: true, evict: ['a'] });
    expect(plan.candidates).toEqual(
      expect.arrayContaining([expect.objectContaining({ id: 'pinned', action: 'keep', reason: 'pinned' })]),
    );
    await postJson(`${running.url}/v1/images/generations`, image('b'));
    expect(await loadedNames(running.url)).toEqual(['b', 'pinned']);
    clock.advance(1_000);
    await postJson(`${running.url}/v1/images/generations`, image('c'));
    expect(await loadedNames(running.url)).toEqual(['c', 'pinned']);
  });

  it('the eviction plan names unknown models with 404 and bad ids with 400', async () => {
    expect((await getJson(`${running.url}/api/eviction/plan?load=nope`)).status).toBe(404);
    const bad = await getJson(`${running.url}/api/eviction/plan?load=..%2Fetc`);
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatchObject({ code: 'validation_failed', param: 'load' });
  });
});

describe('admin auth', () => {
  let running: RunningApp;
  beforeAll(async () => {
    await ensureImageTestModels();
    running = await startApp(
      { backends: [{ name: 'img', type: 'onnx-image', models: [{ id: 'a', path: TINY_LCM_DIR }] }] },
      { env: { MODELPLANE_ADMIN_TOKEN: 'correct-horse-battery' } },
    );
  });
  afterAll(() => running.close());

  it.each<[string, Record<string, string>, number, string | null]>([
    ['no token', {}, 401, 'unauthorized'],
    ['a wrong token', { authorization: 'Bearer wrong-token-xyz' }, 401, 'unauthorized'],
    ['a token with another scheme', { authorization: 'Basic correct-horse-battery' }, 401, 'unauthorized'],
    ['the right token', { authorization: 'Bearer correct-horse-battery' }, 200, null],
  ])('unload with %s → %i', async (_name, headers, status, code) => {
    const res = await postJson(`${running.url}/api/models/a/unload`, {}, headers);
    expect(res.status).toBe(status);
    if (code) expect(res.body.error.code).toBe(code);
    else expect(res.body).toMatchObject({ ok: true, model: 'a', was_loaded: false });
  });

  it('load requires the token too, and reports the state', async () => {
    expect((await postJson(`${running.url}/api/models/a/load`, {})).status).toBe(401);
    const res = await postJson(
      `${running.url}/api/models/a/load`,
      {},
      { authorization: 'Bearer correct-horse-battery' },
    );
    expect(res.body).toEqual({ ok: true, model: 'a', state: 'loaded' });
  });

  it('unknown model ids are 404 model_not_found for an authorized admin', async () => {
    const res = await postJson(
      `${running.url}/api/models/ghost/unload`,
      {},
      { authorization: 'Bearer correct-horse-battery' },
    );
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('model_not_found');
  });
});

describe('admin auth without a configured token', () => {
  let running: RunningApp;
  beforeAll(async () => {
    running = await startApp({ backends: [] });
  });
  afterAll(() => running.close());

  it('answers loopback clients', async () => {
    const res = await postJson(`${running.url}/api/models/unload`, {});
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ ok: true, unloaded: [], skipped: [] });
  });
});
