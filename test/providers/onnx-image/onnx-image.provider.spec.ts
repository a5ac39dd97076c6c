import { jest } from '@jest/globals';
import { Logger } from '@nestjs/common';
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import {
  InferenceFailedError,
  ModelLoadFailedError,
  ModelNotFoundError,
  ValidationFailedError,
} from '../../../src/common/errors.js';
import { OnnxImageProvider } from '../../../src/providers/onnx-image/onnx-image.provider.js';
import { releaseSession } from '../../../src/providers/onnx-image/pipeline.js';
import type { ImageGenerationRequest } from '../../../src/providers/openai-types.js';
import { ensureImageTestModels, TINY_EULER_DIR, TINY_LCM_DIR } from '../../support/image-test-models.js';
import { TEST_MODELS_DIR } from '../../support/test-paths.js';
import { appConfig, imageBackend, modelConfig } from './fixtures.js';
import { readPng } from './png-reader.js';

const signal = () => new AbortController().signal;

type Session = ort.InferenceSession;
type RunArgs = Parameters<Session['run']>;
/** Sessions are instances of this class; the typings only expose the factory, so reach the prototype here. */
const sessionProto = (ort.InferenceSession as unknown as { prototype: Session }).prototype;
const realRun = sessionProto.run;

function makeProvider(extra: ReturnType<typeof modelConfig>[] = []): OnnxImageProvider {
  // Relative paths resolve against baseDir, like a config file's folder.
  const backend = imageBackend([
    modelConfig('tiny-lcm', 'tiny-lcm'),
    modelConfig('tiny-euler', 'tiny-euler'),
    ...extra,
  ]);
  return new OnnxImageProvider(backend, appConfig(TEST_MODELS_DIR, [backend]));
}

function decode(b64: string) {
  return readPng(Buffer.from(b64, 'base64'));
}

async function stateOf(provider: OnnxImageProvider, id: string) {
  const observation = await provider.observe(signal());
  return observation.models.find((m) => m.id === id)!;
}

function onnxBytes(dir: string): number {
  return ['text_encoder', 'unet', 'vae_decoder'].reduce((sum, c) => sum + statSync(join(dir, c, 'model.onnx')).size, 0);
}

describe('OnnxImageProvider', () => {
  let provider: OnnxImageProvider;

  beforeAll(async () => {
    // Load-failure warnings are expected here; keep the test output readable.
    Logger.overrideLogger(['error']);
    await ensureImageTestModels();
  });

  beforeEach(async () => {
    provider = makeProvider();
    await provider.init();
  });

  afterEach(async () => {
    jest.restoreAllMocks();
    await provider.dispose();
  });

  describe('catalog and load state', () => {
    it('describes itself as an in-process, observable, unloadable image backend', () => {
      expect(provider.kind).toBe('onnx-image');
      expect(provider.url).toBeNull();
      expect(provider.capabilities).toEqual({
        canObserveLoadState: true,
        canUnload: true,
        canLoad: true,
        remote: false,
      });
    });

    it('lists models as image-generation with the size of their .onnx files', () => {
      const lcm = provider.descriptors().find((d) => d.id === 'tiny-lcm')!;
      expect(lcm.purpose).toBe('image-generation');
      expect(lcm.upstreamName).toBe('tiny-lcm');
      expect(lcm.expectedSizeBytes).toBe(onnxBytes(TINY_LCM_DIR));
    });

    it('observes unloaded, then loaded with its size via the handle, then unloaded again', async () => {
      expect((await stateOf(provider, 'tiny-lcm')).state).toBe('unloaded');
      await provider.load('tiny-lcm');
      const loaded = await stateOf(provider, 'tiny-lcm');
      expect(loaded).toMatchObject({ state: 'loaded', sizeBytes: onnxBytes(TINY_LCM_DIR), observedVia: 'handle' });
      expect(loaded.details).toMatchObject({ scheduler: 'lcm', guidanceEmbedding: true, timestepType: 'int64' });
      expect((await stateOf(provider, 'tiny-euler')).state).toBe('unloaded');
      expect(await provider.unload('tiny-lcm')).toEqual({
        wasLoaded: true,
        expectedFreedBytes: onnxBytes(TINY_LCM_DIR),
      });
      expect((await stateOf(provider, 'tiny-lcm')).state).toBe('unloaded');
      expect(await provider.unload('tiny-lcm')).toEqual({ wasLoaded: false, expectedFreedBytes: null });
    });

    it('discovers the Euler export: float32 timestep, no guidance embedding', async () => {
      await provider.load('tiny-euler');
      expect((await stateOf(provider, 'tiny-euler')).details).toMatchObject({
        scheduler: 'euler',
        guidanceEmbedding: false,
        timestepType: 'float32',
      });
    });

    it('single-flight: concurrent loads share one set of sessions', async () => {
      const create = jest.spyOn(ort.InferenceSession, 'create');
      await Promise.all([provider.load('tiny-lcm'), provider.load('tiny-lcm'), provider.load('tiny-lcm')]);
      expect(create).toHaveBeenCalledTimes(3); // text_encoder, unet, vae_decoder — once
      await provider.load('tiny-lcm');
      expect(create).toHaveBeenCalledTimes(3);
      expect((await stateOf(provider, 'tiny-lcm')).state).toBe('loaded');
    });

    it('unload releases every session exactly once', async () => {
      await provider.load('tiny-lcm');
      const release = jest.spyOn(sessionProto, 'release');
      await provider.unload('tiny-lcm');
      expect(release).toHaveBeenCalledTimes(3);
    });

    it('unload clears the handle even when a release throws, and the model can be loaded again', async () => {
      await provider.load('tiny-lcm');
      jest.spyOn(sessionProto, 'release').mockRejectedValueOnce(new Error('native release failed'));
      expect(await provider.unload('tiny-lcm')).toMatchObject({ wasLoaded: true });
      expect((await stateOf(provider, 'tiny-lcm')).state).toBe('unloaded');
      // A request never loads: the lifecycle does, and until it has, a request is refused as a bug.
      const early = await provider
        .generateImages('tiny-lcm', { model: 'tiny-lcm', prompt: 'a cat', seed: 1 }, signal())
        .catch((e: unknown) => e);
      expect(early).toBeInstanceOf(InferenceFailedError);
      expect((early as Error).message).toContain('not loaded');
      expect((await stateOf(provider, 'tiny-lcm')).state).toBe('unloaded');
      await provider.load('tiny-lcm');
      const res = await provider.generateImages('tiny-lcm', { model: 'tiny-lcm', prompt: 'a cat', seed: 1 }, signal());
      expect(res.data).toHaveLength(1);
      expect((await stateOf(provider, 'tiny-lcm')).state).toBe('loaded');
    });

    it('unknown model ids are model_not_found', async () => {
      await expect(provider.load('nope')).rejects.toBeInstanceOf(ModelNotFoundError);
      await expect(provider.generateImages('nope', { model: 'nope', prompt: 'x' }, signal())).rejects.toBeInstanceOf(
        ModelNotFoundError,
      );
    });
  });

  describe('load failures are request-scoped', () => {
    let scratch: string;
    beforeAll(() => {
      scratch = mkdtempSync(join(tmpdir(), 'onnx-image-bad-'));
      cpSync(TINY_LCM_DIR, join(scratch, 'broken'), { recursive: true });
      writeFileSync(join(scratch, 'broken', 'unet', 'model.onnx'), 'not an onnx model');
      mkdirSync(join(scratch, 'partial', 'unet'), { recursive: true });
    });
    afterAll(() => rmSync(scratch, { recursive: true, force: true }));

    function badProvider(): OnnxImageProvider {
      const backend = imageBackend([
        modelConfig('missing', 'does-not-exist'),
        modelConfig('broken', 'broken'),
        modelConfig('partial', 'partial'),
        modelConfig('no-path', null),
      ]);
      return new OnnxImageProvider(backend, appConfig(scratch, [backend]));
    }

    it.each([
      ['missing', /model folder not found/],
      ['partial', /missing text_encoder\/model\.onnx/],
      ['broken', /unet\/model\.onnx/],
      ['no-path', /no model folder configured/],
    ])('%s → ModelLoadFailedError naming the cause; backend keeps serving', async (id, reason) => {
      const bad = badProvider();
      const error = await bad.load(id).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ModelLoadFailedError);
      expect((error as Error).message).toMatch(reason);
      const observation = await bad.observe(signal());
      expect(observation).toMatchObject({ reachable: true, error: null, serverState: 'ok' });
      expect(observation.models.find((m) => m.id === id)!.state).toBe('unloaded');
      await bad.dispose();
    });

    it('a broken model file releases the sessions it already opened', async () => {
      const bad = badProvider();
      const release = jest.spyOn(sessionProto, 'release');
      await expect(bad.load('broken')).rejects.toBeInstanceOf(ModelLoadFailedError);
      expect(release).toHaveBeenCalledTimes(1); // text_encoder opened before unet failed
    });

    it('descriptors report unknown size for a folder without models', () => {
      const bad = badProvider();
      expect(bad.descriptors().find((d) => d.id === 'missing')!.expectedSizeBytes).toBeNull();
    });
  });

  describe('generateImages', () => {
    const req = (extra: Partial<ImageGenerationRequest> = {}): ImageGenerationRequest => ({
      model: 'tiny-lcm',
      prompt: 'a photo of a cat',
      seed: 1234,
      ...extra,
    });

    describe('on a loaded model', () => {
      // The lifecycle loads a model before any request reaches the provider; here the test does.
      beforeEach(() => Promise.all([provider.load('tiny-lcm'), provider.load('tiny-euler')]));

      it('returns PNGs of the asked size in the rknn-sd response shape', async () => {
        const res = await provider.generateImages('tiny-lcm', req({ size: '96x64', n: 2 }), signal());
        expect(res.model).toBe('tiny-lcm');
        expect(res.usage.seed).toBe(1234);
        expect(res.usage.elapsed_seconds).toBeGreaterThan(0);
        expect(Math.abs(res.created - Date.now() / 1000)).toBeLessThan(60);
        expect(res.data).toHaveLength(2);
        for (const image of res.data) {
          expect(image.revised_prompt).toBe('a photo of a cat');
          const png = decode(image.b64_json);
          expect(png).toMatchObject({ width: 96, height: 64, colorType: 2, bitDepth: 8 });
          expect(new Set(png.pixels).size).toBeGreaterThan(16);
        }
        expect(res.data[0]!.b64_json).not.toBe(res.data[1]!.b64_json);
      });

      it('defaults to the UNet sample size × VAE factor (tiny: 8 × 8 = 64)', async () => {
        const res = await provider.generateImages('tiny-lcm', req(), signal());
        expect(decode(res.data[0]!.b64_json)).toMatchObject({ width: 64, height: 64 });
      });

      it('same seed → same bytes; another seed → other bytes', async () => {
        const a = await provider.generateImages('tiny-lcm', req({ seed: 7 }), signal());
        const b = await provider.generateImages('tiny-lcm', req({ seed: 7 }), signal());
        const c = await provider.generateImages('tiny-lcm', req({ seed: 8 }), signal());
        expect(b.data[0]!.b64_json).toBe(a.data[0]!.b64_json);
        expect(c.data[0]!.b64_json).not.toBe(a.data[0]!.b64_json);
      });

      it('image i of a seed does not depend on n', async () => {
        const one = await provider.generateImages('tiny-lcm', req({ seed: 99 }), signal());
        const three = await provider.generateImages('tiny-lcm', req({ seed: 99, n: 3 }), signal());
        expect(three.data[0]!.b64_json).toBe(one.data[0]!.b64_json);
      });

      it('without a seed, a random one is reported and reproduces the image', async () => {
        const first = await provider.generateImages('tiny-lcm', req({ seed: undefined }), signal());
        expect(Number.isSafeInteger(first.usage.seed)).toBe(true);
        const again = await provider.generateImages('tiny-lcm', req({ seed: first.usage.seed }), signal());
        expect(again.data[0]!.b64_json).toBe(first.data[0]!.b64_json);
      });

      it('prompt, steps and guidance (LCM w-embedding) all change the image', async () => {
        const base = (await provider.generateImages('tiny-lcm', req(), signal())).data[0]!.b64_json;
        const prompt = await provider.generateImages('tiny-lcm', req({ prompt: 'a red dog on the sky' }), signal());
        const steps = await provider.generateImages('tiny-lcm', req({ steps: 2 }), signal());
        const guidance = await provider.generateImages('tiny-lcm', req({ guidance_scale: 2 }), signal());
        expect(prompt.data[0]!.b64_json).not.toBe(base);
        expect(steps.data[0]!.b64_json).not.toBe(base);
        expect(guidance.data[0]!.b64_json).not.toBe(base);
      });

      it('reports per-run timings for benchmarks', async () => {
        const { response, timings } = await provider.generateWithTimings('tiny-lcm', req({ n: 2, steps: 3 }), signal());
        expect(response.data).toHaveLength(2);
        expect(timings).toMatchObject({
          images: 2,
          steps: 3,
          unetSteps: 6,
          unetRuns: 6,
          scheduler: 'lcm',
          guidance: 'embedding',
        });
        expect(timings.unetSeconds).toBeGreaterThan(0);
        expect(timings.textEncoderSeconds).toBeGreaterThan(0);
        expect(timings.vaeDecoderSeconds).toBeGreaterThan(0);
        expect(timings.loadSeconds).toBe(0); // loaded before the request, by the lifecycle
        expect(timings.totalSeconds).toBeGreaterThanOrEqual(timings.unetSeconds + timings.vaeDecoderSeconds);
        expect(timings.secondsPerUnetStep).toBeCloseTo(timings.unetSeconds / 6, 9);
      });

      it("starts the next request's denoising before the previous request's PNG is encoded, same bytes", async () => {
        const alone = await Promise.all(
          [7, 8].map(async (seed) => provider.generateImages('tiny-lcm', req({ seed, steps: 2 }), signal())),
        );
        // Ordering, not timing: every session.run and every PNG assembled (the step after deflate on the
        // thread pool) is logged when it is called. One 2-step LCM image is 4 runs: text, 2 × UNet, VAE.
        const events: string[] = [];
        jest.spyOn(sessionProto, 'run').mockImplementation(function (this: Session, ...args: RunArgs) {
          events.push('run');
          return realRun.apply(this, args);
        });
        const realConcat = Buffer.concat.bind(Buffer);
        jest.spyOn(Buffer, 'concat').mockImplementation((list, total) => {
          if (list[0]?.[0] === 0x89 && list[0][1] === 0x50) events.push('png');
          return realConcat(list, total);
        });
        const both = await Promise.all(
          [7, 8].map(async (seed) => provider.generateImages('tiny-lcm', req({ seed, steps: 2 }), signal())),
        );
        expect(events.filter((e) => e === 'run')).toHaveLength(8);
        const firstPng = events.indexOf('png');
        const secondRequestStarts = events.findIndex(
          (_, i) => events.slice(0, i + 1).filter((e) => e === 'run').length === 5,
        );
        expect(secondRequestStarts).toBeGreaterThan(-1);
        expect(firstPng).toBeGreaterThan(secondRequestStarts);
        expect(both.map((r) => r.data[0]!.b64_json)).toEqual(alone.map((r) => r.data[0]!.b64_json));
      });

      it('Euler model: 20 default steps with classifier-free guidance batched, negative_prompt matters', async () => {
        const eulerReq = { model: 'tiny-euler', prompt: 'a photo of a cat', seed: 5, size: '64x48' };
        const { response, timings } = await provider.generateWithTimings('tiny-euler', eulerReq, signal());
        expect(decode(response.data[0]!.b64_json)).toMatchObject({ width: 64, height: 48 });
        expect(timings).toMatchObject({ steps: 20, unetSteps: 20, unetRuns: 20, scheduler: 'euler', guidance: 'cfg' });
        const negative = await provider.generateImages(
          'tiny-euler',
          { ...eulerReq, negative_prompt: 'blue sky' },
          signal(),
        );
        expect(negative.data[0]!.b64_json).not.toBe(response.data[0]!.b64_json);
        const noCfg = await provider.generateWithTimings('tiny-euler', { ...eulerReq, guidance_scale: 1 }, signal());
        expect(noCfg.timings.guidance).toBe('none');
        expect(noCfg.response.data[0]!.b64_json).not.toBe(response.data[0]!.b64_json);
      });
    });

    it.each<[string, Partial<ImageGenerationRequest> | Record<string, unknown>]>([
      ['prompt', { prompt: '' }],
      ['prompt', { prompt: 42 }],
      ['n', { n: 0 }],
      ['n', { n: 5 }],
      ['n', { n: 1.5 }],
      ['size', { size: '100x100' }],
      ['size', { size: 'large' }],
      ['size', { size: '4096x4096' }],
      ['response_format', { response_format: 'url' }],
      ['steps', { steps: 0 }],
      ['steps', { steps: 51 }],
      ['steps', { steps: 2.5 }],
      ['guidance_scale', { guidance_scale: -1 }],
      ['guidance_scale', { guidance_scale: 21 }],
      ['seed', { seed: -1 }],
      ['seed', { seed: 1.5 }],
      ['negative_prompt', { negative_prompt: 3 }],
    ])('rejects an invalid %s (%j) naming the field, before loading anything', async (field, bad) => {
      const error = await provider.generateImages('tiny-lcm', { ...req(), ...bad }, signal()).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ValidationFailedError);
      expect((error as ValidationFailedError).param).toBe(field);
      expect((error as ValidationFailedError).issues.map((i) => i.field)).toEqual([field]);
      expect((error as ValidationFailedError).status).toBe(400);
      expect((await stateOf(provider, 'tiny-lcm')).state).toBe('unloaded');
    });

    it('reports every invalid field at once', async () => {
      const error = (await provider
        .generateImages('tiny-lcm', { ...req(), n: 9, steps: 0, size: '7x7' }, signal())
        .catch((e: unknown) => e)) as ValidationFailedError;
      expect(error.issues.map((i) => i.field).sort()).toEqual(['n', 'size', 'steps']);
      expect(error.message).toMatch(/n: .*size: .*steps: /);
    });

    it('an aborted request stops between steps', async () => {
      await provider.load('tiny-lcm');
      const controller = new AbortController();
      let calls = 0;
      jest.spyOn(sessionProto, 'run').mockImplementation(function (this: Session, ...args: RunArgs) {
        calls++;
        if (calls === 3) controller.abort(); // text encoder, then 2 UNet steps
        return realRun.apply(this, args);
      });
      await expect(provider.generateImages('tiny-lcm', req({ steps: 8 }), controller.signal)).rejects.toThrow(/abort/i);
      expect(calls).toBe(3);
      const pre = new AbortController();
      pre.abort();
      await expect(provider.generateImages('tiny-lcm', req(), pre.signal)).rejects.toThrow(/abort/i);
    });

    it('a runtime error inside a run fails that request only (inference_failed); the model keeps serving', async () => {
      await provider.load('tiny-lcm');
      jest.spyOn(sessionProto, 'run').mockRejectedValueOnce(new Error('invalid dimensions'));
      const error = await provider.generateImages('tiny-lcm', req(), signal()).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(InferenceFailedError);
      expect((error as InferenceFailedError).message).toMatch(/invalid dimensions/);
      expect((await stateOf(provider, 'tiny-lcm')).state).toBe('loaded');
      expect((await provider.generateImages('tiny-lcm', req(), signal())).data).toHaveLength(1);
    });

    it('serializes runs per model: never two session.run calls at once', async () => {
      await provider.load('tiny-lcm');
      let active = 0;
      let maxActive = 0;
      const run = jest.spyOn(sessionProto, 'run').mockImplementation(async function (this: Session, ...args: RunArgs) {
        active++;
        maxActive = Math.max(maxActive, active);
        try {
          return await realRun.apply(this, args);
        } finally {
          active--;
        }
      });
      const results = await Promise.all([
        provider.generateWithTimings('tiny-lcm', req({ seed: 1 }), signal()),
        provider.generateWithTimings('tiny-lcm', req({ seed: 2 }), signal()),
        provider.generateWithTimings('tiny-lcm', req({ seed: 3 }), signal()),
      ]);
      expect(run).toHaveBeenCalledTimes(3 * (1 + 4 + 1)); // per image: text encoder, 4 LCM steps, VAE
      expect(maxActive).toBe(1);
      expect(results.map((r) => r.response.data)).toHaveLength(3);
      expect(results[2].timings.queueSeconds).toBeGreaterThan(0);
    });
  });
});

describe('releaseSession', () => {
  it('calls release() and never close() when both exist', async () => {
    const session = { release: jest.fn(async () => undefined), close: jest.fn(async () => undefined) };
    await releaseSession(session);
    expect(session.release).toHaveBeenCalledTimes(1);
    expect(session.close).not.toHaveBeenCalled();
  });

  it('falls back to close() only when release() is absent', async () => {
    const session = { close: jest.fn(async () => undefined) };
    await releaseSession(session);
    expect(session.close).toHaveBeenCalledTimes(1);
  });

  it('does not try close() after release() throws', async () => {
    const session = {
      release: jest.fn(async () => {
        throw new Error('boom');
      }),
      close: jest.fn(async () => undefined),
    };
    await expect(releaseSession(session)).rejects.toThrow('boom');
    expect(session.close).not.toHaveBeenCalled();
  });
});

describe('ensureImageTestModels', () => {
  it('writes tiny-lcm and tiny-euler under TEST_MODELS_DIR', async () => {
    expect(await ensureImageTestModels()).toEqual({ lcm: TINY_LCM_DIR, euler: TINY_EULER_DIR });
    expect(TINY_LCM_DIR.startsWith(TEST_MODELS_DIR)).toBe(true);
  });
});
