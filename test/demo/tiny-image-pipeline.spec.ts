import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { writeTinyPipeline } from '../../src/demo/tiny-image-pipeline.js';

type Meta = { name: string; isTensor: boolean; type?: string; shape?: readonly (number | string)[] };

async function describeModel(path: string) {
  const session = await ort.InferenceSession.create(path);
  const io = {
    inputs: (session.inputMetadata as readonly Meta[]).map((m) => ({ name: m.name, type: m.type, shape: m.shape })),
    outputs: session.outputNames,
  };
  return { session, io };
}

describe('writeTinyPipeline', () => {
  let root: string;
  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), 'tiny-pipeline-'));
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('writes the diffusers ONNX layout with LCM scheduler config', () => {
    const dir = writeTinyPipeline(join(root, 'lcm'));
    for (const file of [
      'model_index.json',
      'text_encoder/model.onnx',
      'unet/model.onnx',
      'unet/config.json',
      'vae_decoder/model.onnx',
      'vae_decoder/config.json',
      'tokenizer/vocab.json',
      'tokenizer/merges.txt',
      'scheduler/scheduler_config.json',
    ]) {
      expect(existsSync(join(dir, file))).toBe(true);
    }
    const scheduler = JSON.parse(readFileSync(join(dir, 'scheduler/scheduler_config.json'), 'utf8'));
    expect(scheduler).toMatchObject({
      _class_name: 'LCMScheduler',
      original_inference_steps: 50,
      beta_schedule: 'scaled_linear',
    });
    expect(readFileSync(join(dir, 'tokenizer/merges.txt'), 'utf8').startsWith('#version: 0.2\n')).toBe(true);
  });

  it('has the input/output names, dtypes and shapes of a real LCM export', async () => {
    const dir = writeTinyPipeline(join(root, 'lcm'));
    const text = await describeModel(join(dir, 'text_encoder/model.onnx'));
    expect(text.io.inputs).toEqual([{ name: 'input_ids', type: 'int32', shape: ['batch', 77] }]);
    expect(text.io.outputs).toEqual(['last_hidden_state', 'pooler_output']);
    const unet = await describeModel(join(dir, 'unet/model.onnx'));
    expect(unet.io.inputs).toEqual([
      { name: 'sample', type: 'float32', shape: ['batch', 4, 'height', 'width'] },
      { name: 'timestep', type: 'int64', shape: [1] },
      { name: 'encoder_hidden_states', type: 'float32', shape: ['batch', 77, 32] },
      { name: 'timestep_cond', type: 'float32', shape: ['batch', 256] },
    ]);
    expect(unet.io.outputs).toEqual(['out_sample']);
    const vae = await describeModel(join(dir, 'vae_decoder/model.onnx'));
    expect(vae.io.inputs).toEqual([
      { name: 'latent_sample', type: 'float32', shape: ['batch', 4, 'latent_height', 'latent_width'] },
    ]);
    expect(vae.io.outputs).toEqual(['sample']);
    await Promise.all([text.session.release(), unet.session.release(), vae.session.release()]);
  });

  it('Euler variant: float32 timestep, no timestep_cond, EulerDiscreteScheduler', async () => {
    const dir = writeTinyPipeline(join(root, 'euler'), {
      scheduler: 'euler',
      timestepCond: false,
      timestepType: 'float32',
    });
    const unet = await describeModel(join(dir, 'unet/model.onnx'));
    expect(unet.io.inputs.map((i) => [i.name, i.type])).toEqual([
      ['sample', 'float32'],
      ['timestep', 'float32'],
      ['encoder_hidden_states', 'float32'],
    ]);
    await unet.session.release();
    expect(JSON.parse(readFileSync(join(dir, 'scheduler/scheduler_config.json'), 'utf8'))._class_name).toBe(
      'EulerDiscreteScheduler',
    );
  });

  it('VAE decodes any latent size to 8× pixels, and its output depends on the latents', async () => {
    const dir = writeTinyPipeline(join(root, 'lcm'));
    const vae = await ort.InferenceSession.create(join(dir, 'vae_decoder/model.onnx'));
    const run = async (fill: (i: number) => number) => {
      const data = Float32Array.from({ length: 4 * 5 * 7 }, (_, i) => fill(i));
      const out = await vae.run({ latent_sample: new ort.Tensor('float32', data, [1, 4, 5, 7]) });
      if (!out.sample) throw new Error('vae_decoder returned no sample');
      return out.sample;
    };
    const a = await run((i) => Math.sin(i));
    expect(a.dims).toEqual([1, 3, 40, 56]);
    const values = a.data as Float32Array;
    expect(Math.max(...values) - Math.min(...values)).toBeGreaterThan(0.1);
    const b = await run((i) => Math.cos(i));
    expect(Array.from(b.data as Float32Array)).not.toEqual(Array.from(values));
    await vae.release();
  });

  it('UNet output depends on timestep, text embeddings and guidance embedding', async () => {
    const dir = writeTinyPipeline(join(root, 'lcm'));
    const unet = await ort.InferenceSession.create(join(dir, 'unet/model.onnx'));
    const base = {
      sample: new ort.Tensor('float32', new Float32Array(4 * 8 * 8).fill(0.5), [1, 4, 8, 8]),
      timestep: new ort.Tensor('int64', BigInt64Array.of(999n), [1]),
      encoder_hidden_states: new ort.Tensor('float32', new Float32Array(77 * 32).fill(0.1), [1, 77, 32]),
      timestep_cond: new ort.Tensor('float32', new Float32Array(256).fill(0.2), [1, 256]),
    };
    const run = async (feeds: Record<string, ort.Tensor>) =>
      Array.from((await unet.run(feeds)).out_sample!.data as Float32Array);
    const reference = await run(base);
    expect(await run({ ...base, timestep: new ort.Tensor('int64', BigInt64Array.of(259n), [1]) })).not.toEqual(
      reference,
    );
    expect(
      await run({
        ...base,
        encoder_hidden_states: new ort.Tensor('float32', new Float32Array(77 * 32).fill(-0.3), [1, 77, 32]),
      }),
    ).not.toEqual(reference);
    expect(
      await run({ ...base, timestep_cond: new ort.Tensor('float32', new Float32Array(256).fill(-0.5), [1, 256]) }),
    ).not.toEqual(reference);
    await unet.release();
  });

  it('is idempotent, rewrites when options change, and leaves no temporary folders', () => {
    const dir = join(root, 'idem');
    writeTinyPipeline(dir);
    const unetPath = join(dir, 'unet/model.onnx');
    const before = statSync(unetPath).mtimeMs;
    const bytes = readFileSync(unetPath);
    writeTinyPipeline(dir);
    expect(statSync(unetPath).mtimeMs).toBe(before);
    writeTinyPipeline(dir, { hiddenSize: 16 });
    expect(readFileSync(unetPath).equals(bytes)).toBe(false);
    // A damaged folder (no marker) is replaced with a complete one.
    rmSync(join(dir, '.tiny-pipeline.json'));
    writeFileSync(unetPath, 'garbage');
    writeTinyPipeline(dir);
    expect(readFileSync(unetPath).equals(bytes)).toBe(true);
    expect(readdirSync(root).filter((n) => n.includes('.tmp-'))).toEqual([]);
  });
});
