/**
 * Issue 16 item 6 over HTTP: image requests are bounded like chat. Past the per-model queue bound a request is
 * refused 503 model_overloaded with Retry-After (200 concurrent ones were all accepted before), and one request's
 * pixels × steps × n is capped by limits.image_max_work.
 */
import { ensureImageTestModels, TINY_LCM_DIR } from '../support/image-test-models.js';
import { getJson, postJson, startApp, type RunningApp } from '../support/app-harness.js';

describe('image requests are bounded', () => {
  let running: RunningApp;
  beforeAll(async () => {
    await ensureImageTestModels();
    running = await startApp({
      limits: { image_queue: 2, image_max_work: 256 * 256 * 4 },
      backends: [{ name: 'local-image', type: 'onnx-image', models: [{ id: 'tiny-lcm', path: TINY_LCM_DIR }] }],
    });
  });
  afterAll(() => running.close());

  const generate = (body: Record<string, unknown>) =>
    postJson(`${running.url}/v1/images/generations`, { model: 'tiny-lcm', prompt: 'a fox', ...body });

  it('a request over the bounds for a model not in memory is refused without loading it', async () => {
    const res = await generate({ size: '512x512', steps: 4 });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('validation_failed');
    const models = (await getJson(`${running.url}/api/models`)).body.models as { id: string; state: string }[];
    expect(models.find((m) => m.id === 'tiny-lcm')?.state).toBe('unloaded');
    expect((await getJson(`${running.url}/api/models/loaded`)).body.loaded).toEqual([]);
  });

  it('past the queue bound requests are refused 503 model_overloaded with Retry-After; the others succeed', async () => {
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) => generate({ size: '64x64', steps: 2, seed: i })),
    );
    const statuses = results.map((r) => r.status);
    // One runs and two wait; the rest are refused at once, whatever order they arrive in.
    expect(statuses.filter((s) => s === 200)).toHaveLength(3);
    const refused = results.filter((r) => r.status === 503);
    expect(refused).toHaveLength(5);
    for (const r of refused) {
      expect(r.body.error).toMatchObject({ code: 'model_overloaded', model: 'tiny-lcm', queued: 2 });
      expect(r.headers.get('retry-after')).toBe('1');
    }
    // Once the queue drains, the model serves again.
    expect((await generate({ size: '64x64', steps: 1 })).status).toBe(200);
  });

  it.each([
    ['2048x2048, 50 steps, n 4', { size: '2048x2048', steps: 50, n: 4 }],
    ['512x512, 4 steps', { size: '512x512', steps: 4 }],
    ['256x256, 2 steps, n 3', { size: '256x256', steps: 2, n: 3 }],
  ])('%s is over image_max_work and refused 400 before any work', async (_name, body) => {
    const started = Date.now();
    const res = await generate(body);
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('validation_failed');
    expect(res.body.error.message).toContain('limits.image_max_work');
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('a request at the limit is served', async () => {
    const res = await generate({ size: '256x256', steps: 4, n: 1 });
    expect(res.status).toBe(200);
  });
});
