import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import {
  attrInt,
  attrInts,
  attrString,
  DT,
  encodeModel,
  floatInit,
  int64Init,
  node,
  valueInfo,
  type OnnxGraph,
  type OnnxNode,
  type OnnxTensor,
} from '../formats/onnx-writer.js';
import { CLIP_BOS, CLIP_EOS, CLIP_MAX_LENGTH } from '../providers/onnx-image/clip-tokenizer.js';
import { SeededRandom } from '../providers/onnx-image/prng.js';
import { buildTinyVocab } from './tiny-clip-vocab.js';

/**
 * Writes a tiny random-weight text-to-image pipeline in the diffusers ONNX export layout, with the
 * same input/output names and dtypes as a real LCM export, so tests and the demo run the real
 * pipeline code with no downloads. The graphs use every input (tokens, timestep, text embeddings,
 * guidance embedding, latents) so the pipeline math changes the pixels. A recipe, not runtime code:
 * production code reaches it only in demo mode.
 */

const FORMAT_VERSION = 1;
const MARKER = '.tiny-pipeline.json';

export interface TinyPipelineOptions {
  /** Scheduler class written to scheduler_config.json. Default 'lcm'. */
  scheduler?: 'lcm' | 'euler';
  /** UNet takes LCM's guidance embedding `timestep_cond` [b,256]. Default: true for lcm, false for euler. */
  timestepCond?: boolean;
  /** UNet timestep dtype; real exports use int64 or float32. Default 'int64'. */
  timestepType?: 'int64' | 'float32';
  /** Text encoder hidden size (real SD 1.x: 768). Default 32. */
  hiddenSize?: number;
  /** UNet / VAE inner channels. Default 8. */
  channels?: number;
  /** unet/config.json sample_size (latent pixels); the default image is 8× this. Default 8. */
  sampleSize?: number;
  /** Weight seed. Default 1. */
  seed?: number;
}

type ResolvedOptions = Required<TinyPipelineOptions>;

function resolveOptions(opts: TinyPipelineOptions): ResolvedOptions {
  const scheduler = opts.scheduler ?? 'lcm';
  return {
    scheduler,
    timestepCond: opts.timestepCond ?? scheduler === 'lcm',
    timestepType: opts.timestepType ?? 'int64',
    hiddenSize: opts.hiddenSize ?? 32,
    channels: opts.channels ?? 8,
    sampleSize: opts.sampleSize ?? 8,
    seed: opts.seed ?? 1,
  };
}

function randomWeights(rng: SeededRandom, count: number, scale: number): Float32Array {
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = (rng.nextUnit() * 2 - 1) * scale;
  return out;
}

const PRODUCER = { name: 'modelplane-tiny-pipeline', version: String(FORMAT_VERSION) };

function encodeGraph(graph: OnnxGraph, name: string): Uint8Array {
  return encodeModel(graph, name, PRODUCER);
}

// ---------- the three graphs ----------

/** CLIPTextModel stand-in: token + position embeddings, one projection, tanh; pooled = mean over tokens. */
function textEncoder(o: ResolvedOptions, vocabSize: number, rng: SeededRandom): Uint8Array {
  const h = o.hiddenSize;
  const L = CLIP_MAX_LENGTH;
  return encodeGraph(
    {
      input: [valueInfo('input_ids', DT.INT32, ['batch', L])],
      output: [
        valueInfo('last_hidden_state', DT.FLOAT, ['batch', L, h]),
        valueInfo('pooler_output', DT.FLOAT, ['batch', h]),
      ],
      initializer: [
        floatInit('token_embedding', [vocabSize, h], randomWeights(rng, vocabSize * h, 1)),
        floatInit('position_embedding', [L, h], randomWeights(rng, L * h, 0.2)),
        floatInit('proj', [h, h], randomWeights(rng, h * h, 1 / Math.sqrt(h))),
      ],
      node: [
        node('Gather', ['token_embedding', 'input_ids'], ['tok'], [attrInt('axis', 0)]),
        node('Add', ['tok', 'position_embedding'], ['emb']),
        node('MatMul', ['emb', 'proj'], ['projected']),
        node('Tanh', ['projected'], ['last_hidden_state']),
        node('ReduceMean', ['last_hidden_state'], ['pooler_output'], [attrInts('axes', [1]), attrInt('keepdims', 0)]),
      ],
    },
    'text_encoder',
  );
}

/**
 * UNet2DConditionModel stand-in predicting epsilon ≈ sample + conv(tanh(conv(sample) + emb(t) + emb(text) [+ emb(w)])),
 * so the residual is near the injected noise (as a trained UNet's is) and every conditioning input shifts it.
 */
function unet(o: ResolvedOptions, rng: SeededRandom): Uint8Array {
  const c = o.channels;
  const h = o.hiddenSize;
  const condDim = 256;
  const inputs = [
    valueInfo('sample', DT.FLOAT, ['batch', 4, 'height', 'width']),
    valueInfo('timestep', o.timestepType === 'int64' ? DT.INT64 : DT.FLOAT, [1]),
    valueInfo('encoder_hidden_states', DT.FLOAT, ['batch', CLIP_MAX_LENGTH, h]),
  ];
  const initializer: OnnxTensor[] = [
    floatInit('conv_in_w', [c, 4, 3, 3], randomWeights(rng, c * 4 * 9, 0.3)),
    floatInit('conv_in_b', [c], randomWeights(rng, c, 0.1)),
    floatInit('time_w', [1, c], randomWeights(rng, c, 3)),
    floatInit('text_w', [h, c], randomWeights(rng, h * c, 2 / Math.sqrt(h))),
    floatInit('conv_out_w', [4, c, 3, 3], randomWeights(rng, 4 * c * 9, 0.15)),
    floatInit('conv_out_b', [4], randomWeights(rng, 4, 0.05)),
    floatInit('inv_1000', [1], Float32Array.of(1 / 1000)),
    int64Init('col_shape', [-1, 1]),
    int64Init('emb_shape', [-1, c, 1, 1]),
  ];
  const nodes: OnnxNode[] = [
    node(
      'Conv',
      ['sample', 'conv_in_w', 'conv_in_b'],
      ['h0'],
      [attrInts('kernel_shape', [3, 3]), attrInts('pads', [1, 1, 1, 1])],
    ),
    node('Cast', ['timestep'], ['t_float'], [attrInt('to', DT.FLOAT)]),
    node('Reshape', ['t_float', 'col_shape'], ['t_col']),
    node('Mul', ['t_col', 'inv_1000'], ['t_scaled']),
    node('MatMul', ['t_scaled', 'time_w'], ['t_proj']),
    node('Sin', ['t_proj'], ['t_sin']),
    node('Reshape', ['t_sin', 'emb_shape'], ['t_emb']),
    node('ReduceMean', ['encoder_hidden_states'], ['text_mean'], [attrInts('axes', [1]), attrInt('keepdims', 0)]),
    node('MatMul', ['text_mean', 'text_w'], ['text_proj']),
    node('Reshape', ['text_proj', 'emb_shape'], ['text_emb']),
    node('Add', ['h0', 't_emb'], ['h1']),
    node('Add', ['h1', 'text_emb'], ['h2']),
  ];
  let last = 'h2';
  if (o.timestepCond) {
    inputs.push(valueInfo('timestep_cond', DT.FLOAT, ['batch', condDim]));
    initializer.push(floatInit('cond_w', [condDim, c], randomWeights(rng, condDim * c, 1 / Math.sqrt(condDim))));
    nodes.push(
      node('MatMul', ['timestep_cond', 'cond_w'], ['cond_proj']),
      node('Reshape', ['cond_proj', 'emb_shape'], ['cond_emb']),
      node('Add', ['h2', 'cond_emb'], ['h3']),
    );
    last = 'h3';
  }
  nodes.push(
    node('Tanh', [last], ['act']),
    node(
      'Conv',
      ['act', 'conv_out_w', 'conv_out_b'],
      ['residual'],
      [attrInts('kernel_shape', [3, 3]), attrInts('pads', [1, 1, 1, 1])],
    ),
    node('Add', ['sample', 'residual'], ['out_sample']),
  );
  return encodeGraph(
    {
      input: inputs,
      output: [valueInfo('out_sample', DT.FLOAT, ['batch', 4, 'height', 'width'])],
      initializer,
      node: nodes,
    },
    'unet',
  );
}

/** AutoencoderKL decoder stand-in: conv, tanh, 8× bilinear upsample, conv to RGB, tanh into [-1, 1]. */
function vaeDecoder(o: ResolvedOptions, rng: SeededRandom): Uint8Array {
  const c = o.channels;
  return encodeGraph(
    {
      input: [valueInfo('latent_sample', DT.FLOAT, ['batch', 4, 'latent_height', 'latent_width'])],
      output: [valueInfo('sample', DT.FLOAT, ['batch', 3, 'height', 'width'])],
      initializer: [
        floatInit('conv1_w', [c, 4, 3, 3], randomWeights(rng, c * 4 * 9, 0.08)),
        floatInit('conv1_b', [c], randomWeights(rng, c, 0.1)),
        floatInit('conv2_w', [3, c, 3, 3], randomWeights(rng, 3 * c * 9, 0.4)),
        floatInit('conv2_b', [3], randomWeights(rng, 3, 0.1)),
        floatInit('up_scales', [4], Float32Array.of(1, 1, 8, 8)),
      ],
      node: [
        node(
          'Conv',
          ['latent_sample', 'conv1_w', 'conv1_b'],
          ['v0'],
          [attrInts('kernel_shape', [3, 3]), attrInts('pads', [1, 1, 1, 1])],
        ),
        node('Tanh', ['v0'], ['v1']),
        node('Resize', ['v1', '', 'up_scales'], ['v2'], [attrString('mode', 'linear')]),
        node(
          'Conv',
          ['v2', 'conv2_w', 'conv2_b'],
          ['v3'],
          [attrInts('kernel_shape', [3, 3]), attrInts('pads', [1, 1, 1, 1])],
        ),
        node('Tanh', ['v3'], ['sample']),
      ],
    },
    'vae_decoder',
  );
}

function json(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

function schedulerConfig(o: ResolvedOptions): Record<string, unknown> {
  const common = {
    _diffusers_version: '0.31.0',
    beta_end: 0.012,
    beta_schedule: 'scaled_linear',
    beta_start: 0.00085,
    num_train_timesteps: 1000,
    prediction_type: 'epsilon',
    steps_offset: 1,
    trained_betas: null,
  };
  if (o.scheduler === 'lcm') {
    return {
      _class_name: 'LCMScheduler',
      ...common,
      clip_sample: false,
      clip_sample_range: 1.0,
      original_inference_steps: 50,
      rescale_betas_zero_snr: false,
      set_alpha_to_one: true,
      thresholding: false,
      timestep_scaling: 10.0,
      timestep_spacing: 'leading',
    };
  }
  return {
    _class_name: 'EulerDiscreteScheduler',
    ...common,
    interpolation_type: 'linear',
    timestep_spacing: 'linspace',
    use_karras_sigmas: false,
  };
}

function files(o: ResolvedOptions): Record<string, string | Uint8Array> {
  const rng = new SeededRandom(o.seed);
  const { vocab, merges } = buildTinyVocab();
  const vocabSize = Object.keys(vocab).length;
  const lcm = o.scheduler === 'lcm';
  return {
    'model_index.json': json({
      _class_name: lcm ? 'ORTLatentConsistencyModelPipeline' : 'ORTStableDiffusionPipeline',
      _diffusers_version: '0.31.0',
      scheduler: ['diffusers', lcm ? 'LCMScheduler' : 'EulerDiscreteScheduler'],
      text_encoder: ['optimum', 'ORTModelTextEncoder'],
      tokenizer: ['transformers', 'CLIPTokenizer'],
      unet: ['optimum', 'ORTModelUnet'],
      vae_decoder: ['optimum', 'ORTModelVaeDecoder'],
    }),
    'scheduler/scheduler_config.json': json(schedulerConfig(o)),
    'tokenizer/vocab.json': JSON.stringify(vocab),
    'tokenizer/merges.txt': `#version: 0.2\n${merges.join('\n')}\n`,
    'tokenizer/tokenizer_config.json': json({
      bos_token: CLIP_BOS,
      eos_token: CLIP_EOS,
      pad_token: CLIP_EOS,
      unk_token: CLIP_EOS,
      model_max_length: CLIP_MAX_LENGTH,
      tokenizer_class: 'CLIPTokenizer',
    }),
    'text_encoder/config.json': json({
      hidden_size: o.hiddenSize,
      max_position_embeddings: CLIP_MAX_LENGTH,
      vocab_size: vocabSize,
    }),
    'text_encoder/model.onnx': textEncoder(o, vocabSize, rng),
    'unet/config.json': json({
      sample_size: o.sampleSize,
      in_channels: 4,
      out_channels: 4,
      cross_attention_dim: o.hiddenSize,
      time_cond_proj_dim: o.timestepCond ? 256 : null,
    }),
    'unet/model.onnx': unet(o, rng),
    'vae_decoder/config.json': json({
      block_out_channels: [o.channels, o.channels, o.channels, o.channels],
      latent_channels: 4,
      scaling_factor: 0.18215,
    }),
    'vae_decoder/model.onnx': vaeDecoder(o, rng),
  };
}

/**
 * Writes the pipeline to `dir` unless the same version/options are already there. The files go to a
 * temporary sibling folder that is renamed into place, so parallel test workers never see half a model.
 */
export function writeTinyPipeline(dir: string, opts: TinyPipelineOptions = {}): string {
  const options = resolveOptions(opts);
  const fingerprint = createHash('sha256')
    .update(JSON.stringify({ version: FORMAT_VERSION, options }))
    .digest('hex');
  const markerPath = join(dir, MARKER);
  const upToDate = (): boolean => {
    try {
      const marker = JSON.parse(readFileSync(markerPath, 'utf8')) as { fingerprint?: string };
      return marker.fingerprint === fingerprint;
    } catch {
      // Missing or unreadable marker: an unknown folder, rewrite it.
      return false;
    }
  };
  if (upToDate()) return dir;
  mkdirSync(dirname(dir), { recursive: true });
  const tmp = `${dir}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    for (const [relative, content] of Object.entries(files(options))) {
      const path = join(tmp, relative);
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, content);
    }
    writeFileSync(join(tmp, MARKER), json({ fingerprint, version: FORMAT_VERSION, options }));
    // Another writer may have finished meanwhile; never pull a good copy from under its readers.
    if (upToDate()) return dir;
    if (existsSync(dir)) rmSync(dir, { recursive: true, force: true });
    try {
      renameSync(tmp, dir);
    } catch (err) {
      // Lost the rename race to an identical copy; theirs is as good as ours.
      if (upToDate()) return dir;
      throw err;
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return dir;
}
