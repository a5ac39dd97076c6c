/**
 * Issue 16 item 6, memory: an image request whose estimated peak (full-resolution VAE maps, kept PNGs) plus the
 * model would not fit eviction.memory_budget_mb is refused before it runs, naming the field.
 * The tiny LCM export (8 VAE channels, no attention, 0.1 MB) needs about 140 bytes per pixel plus 7 per kept
 * image pixel: 512² is ~38.6 MB for one image and ~44 MB for four, 1024² ~154 MB.
 */
import { ensureImageTestModels, TINY_LCM_DIR } from '../support/image-test-models.js';
import { getJson, postJson, startApp, type RunningApp } from '../support/app-harness.js';

describe('image requests fit the memory budget', () => {
  let running: RunningApp;
  beforeAll(async () => {
    await ensureImageTestModels();
    running = await startApp({
      eviction: { memory_budget_mb: 40 },
      backends: [{ name: 'local-image', type: 'onnx-image', models: [{ id: 'tiny-lcm', path: TINY_LCM_DIR }] }],
    });
  });
  afterAll(() => running.close());

  const generate = (body: Record<string, unknown>) =>
    postJson(`${running.url}/v1/images/generations`, { model: 'tiny-lcm', prompt: 'a fox', steps: 1, ...body });

  const loaded = async (): Promise<string[]> =>
    ((await getJson(`${running.url}/api/models/loaded`)).body as { loaded: { name: string }[] }).loaded.map(
      (m) => m.name,
    );

  it('an image too large for the budget is refused 400 naming size and the budget', async () => {
    const res = await generate({ size: '1024x1024' });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('validation_failed');
    expect(res.body.error.request_id).toBe(res.headers.get('x-request-id'));
    const issue = (res.body.error.details as { field: string; rule: string; message: string }[])[0];
    expect(issue).toMatchObject({ field: 'size', rule: 'maxMemory' });
    expect(issue?.message).toContain('eviction.memory_budget_mb');
  });

  it('one image of a size fits, four of them do not: the refusal names n', async () => {
    const res = await generate({ size: '512x512', n: 4 });
    expect(res.status).toBe(400);
    expect(res.body.error.details[0]).toMatchObject({ field: 'n', rule: 'maxMemory', value: 4 });
  });

  it('a request within the budget is served', async () => {
    const res = await generate({ size: '256x256', n: 2 });
    expect(res.status).toBe(200);
    expect(res.body.data).toHaveLength(2);
    expect(await loaded()).toContain('tiny-lcm');
  });
});
