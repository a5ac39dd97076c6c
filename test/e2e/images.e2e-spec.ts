import { BackendStartupService } from '../../src/models/backend-startup.service.js';
import OpenAI from 'openai';
import { ensureImageTestModels, TINY_LCM_DIR } from '../support/image-test-models.js';
import { getJson, postJson, startApp, type RunningApp } from '../support/app-harness.js';
import { pngSize } from '../support/png.js';

/** Image params beyond OpenAI's typed ones (steps, seed, sizes any multiple of 8). */
type ImageParams = OpenAI.Images.ImageGenerateParamsNonStreaming & {
  steps?: number;
  seed?: number;
  guidance_scale?: number;
};

describe('POST /v1/images/generations (in-process onnx-image)', () => {
  let running: RunningApp;
  let client: OpenAI;

  beforeAll(async () => {
    await ensureImageTestModels();
    running = await startApp({
      backends: [{ name: 'local-image', type: 'onnx-image', models: [{ id: 'tiny-lcm', path: TINY_LCM_DIR }] }],
    });
    await running.app.get(BackendStartupService).settled();
    client = new OpenAI({ baseURL: `${running.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  });
  afterAll(() => running.close());

  const generate = (params: Partial<ImageParams>) =>
    client.images.generate({
      model: 'tiny-lcm',
      prompt: 'a red fox in snow',
      response_format: 'b64_json',
      ...params,
    } as ImageParams);

  it('returns a PNG of the asked size, through the official openai client', async () => {
    const res = await generate({ size: '96x64', seed: 3, steps: 2 });
    expect(res.data).toHaveLength(1);
    const png = Buffer.from(res.data![0]!.b64_json!, 'base64');
    expect(pngSize(png)).toEqual({ width: 96, height: 64 });
    expect(res.data![0]!.revised_prompt).toBe('a red fox in snow');
    // OpenAI's usage shape (token counts); what the run measured, seed included, is in `timings`.
    expect(res.usage).toEqual({
      input_tokens: 0,
      output_tokens: 0,
      total_tokens: 0,
      input_tokens_details: { text_tokens: 0, image_tokens: 0 },
    });
    expect((res as unknown as { timings: { seed: number } }).timings.seed).toBe(3);
  });

  it('returns n images', async () => {
    const res = await generate({ n: 3, size: '64x64', seed: 1, steps: 1 });
    expect(res.data).toHaveLength(3);
  });

  it('same seed → same bytes; another seed → other bytes', async () => {
    const a = await generate({ size: '64x64', seed: 42, steps: 2 });
    const b = await generate({ size: '64x64', seed: 42, steps: 2 });
    const c = await generate({ size: '64x64', seed: 43, steps: 2 });
    expect(b.data![0]!.b64_json).toBe(a.data![0]!.b64_json);
    expect(c.data![0]!.b64_json).not.toBe(a.data![0]!.b64_json);
  });

  it.each<[string, Record<string, unknown>, string]>([
    ['size not a multiple of 8', { size: '30x30' }, 'size'],
    ['n over 4', { n: 5 }, 'n'],
    ['steps over 50', { steps: 51 }, 'steps'],
    ['guidance_scale over 20', { guidance_scale: 25 }, 'guidance_scale'],
    ['url response format', { response_format: 'url' }, 'response_format'],
    ['empty prompt', { prompt: '' }, 'prompt'],
  ])('refuses %s with 400 validation_failed naming the field', async (_name, body, field) => {
    const res = await postJson(`${running.url}/v1/images/generations`, { model: 'tiny-lcm', prompt: 'x', ...body });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('validation_failed');
    expect(res.body.error.details.map((d: { field: string }) => d.field)).toContain(field);
  });

  it('the openai client surfaces the validation error message', async () => {
    await expect(generate({ size: '30x30' })).rejects.toMatchObject({
      status: 400,
      code: 'validation_failed',
    });
  });

  it('is listed in /api/models/loaded with purpose image-generation and its size, and unload releases it', async () => {
    await generate({ size: '64x64', steps: 1 });
    const loaded = await getJson(`${running.url}/api/models/loaded`);
    const entry = loaded.body.loaded.find((m: { name: string }) => m.name === 'tiny-lcm');
    expect(entry).toMatchObject({
      backend: 'local-image',
      backend_type: 'onnx-image',
      purpose: 'image-generation',
      observed_via: 'handle',
    });
    expect(entry.size_mb).toBeGreaterThan(0);

    const unload = await postJson(`${running.url}/api/models/tiny-lcm/unload`, {});
    expect(unload.status).toBe(200);
    expect(unload.body).toMatchObject({ ok: true, model: 'tiny-lcm', was_loaded: true });
    expect(typeof unload.body.rss_freed_mb).toBe('number');
    const after = await getJson(`${running.url}/api/models/loaded`);
    expect(after.body.loaded.map((m: { name: string }) => m.name)).not.toContain('tiny-lcm');

    // The next request reloads it transparently.
    const again = await generate({ size: '64x64', steps: 1 });
    expect(again.data).toHaveLength(1);
  });
});
