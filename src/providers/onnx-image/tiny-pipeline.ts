import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import onnxProto from 'onnx-proto';
import { bytesToUnicode, CLIP_BOS, CLIP_EOS, CLIP_MAX_LENGTH } from './clip-tokenizer.js';
import { SeededRandom } from './prng.js';

/**
 * Writes a tiny random-weight text-to-image pipeline in the diffusers ONNX export layout, with the
 * same input/output names and dtypes as a real LCM export, so tests and the demo run the real
 * pipeline code with no downloads. The graphs use every input (tokens, timestep, text embeddings,
 * guidance embedding, latents) so the pipeline math changes the pixels.
 */

const { onnx } = onnxProto;
const DT = onnx.TensorProto.DataType;
/** docs/runtimes.md "Model format": onnxruntime-node 1.30 runs IR 8 / opset 17 (Resize with an empty roi needs opset ≥ 13). */
const IR_VERSION = 8;
const OPSET = 17;
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

/** Words whose BPE merges the tiny vocab learns, so common prompts tokenize into whole words. */
const MERGE_WORDS = [
  'a',
  'an',
  'the',
  'of',
  'photo',
  'cat',
  'dog',
  'red',
  'blue',
  'sky',
  'astronaut',
  'riding',
  'horse',
  'painting',
  'portrait',
  'landscape',
  'mountain',
  'sunset',
  'city',
  'night',
  'hello',
  'world',
  'in',
  'on',
  'with',
  "'s",
];

export interface TinyVocab {
  vocab: Record<string, number>;
  merges: string[];
}

/** A valid CLIP-style BPE vocab: bytes, bytes + `</w>`, learned merges, then the two special tokens (as in CLIP). */
export function buildTinyVocab(): TinyVocab {
  const byteChars = bytesToUnicode();
  // CLIP orders base tokens by the byte→unicode table's construction order, not by byte value.
  const base: string[] = [];
  // bytesToUnicode covers every byte 0..255.
  const order = [...Array(256).keys()].sort((a, b) => byteChars[a]!.codePointAt(0)! - byteChars[b]!.codePointAt(0)!);
  for (const b of order) base.push(byteChars[b]!);
  const tokens = [...base, ...base.map((c) => `${c}</w>`)];
  const known = new Set(tokens);
  const merges: string[] = [];
  for (const word of MERGE_WORDS) {
    const chars = Array.from(Buffer.from(word, 'utf8'), (b) => byteChars[b]);
    const symbols = chars.map((c, i) => (i === chars.length - 1 ? `${c}</w>` : c));
    // Left-to-right merges: each prefix becomes a token, and the last merge yields the whole word.
    let current = symbols[0];
    if (current === undefined) throw new Error('MERGE_WORDS must not contain an empty word');
    for (let i = 1; i < symbols.length; i++) {
      const next = symbols[i]!;
      const merged: string = current + next;
      const rule = `${current} ${next}`;
      if (!known.has(merged)) {
        known.add(merged);
        tokens.push(merged);
        merges.push(rule);
      }
      current = merged;
    }
  }
  tokens.push(CLIP_BOS, CLIP_EOS);
  const vocab: Record<string, number> = {};
  tokens.forEach((t, i) => (vocab[t] = i));
  return { vocab, merges };
}

// ---------- ONNX building helpers ----------

type INode = onnxProto.onnx.INodeProto;
type ITensor = onnxProto.onnx.ITensorProto;
type IValueInfo = onnxProto.onnx.IValueInfoProto;
type IAttribute = onnxProto.onnx.IAttributeProto;
type Dim = number | string;

const AT = onnx.AttributeProto.AttributeType;

function attrInt(name: string, i: number): IAttribute {
  return { name, type: AT.INT, i };
}
function attrInts(name: string, ints: number[]): IAttribute {
  return { name, type: AT.INTS, ints };
}
function attrString(name: string, s: string): IAttribute {
  return { name, type: AT.STRING, s: Buffer.from(s, 'utf8') };
}

function node(opType: string, input: string[], output: string[], attribute: IAttribute[] = []): INode {
  return { opType, input, output, attribute, name: `${opType}_${output[0]}` };
}

function valueInfo(name: string, elemType: number, dims: Dim[]): IValueInfo {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

function floatInit(name: string, dims: number[], data: Float32Array): ITensor {
  return { name, dims, dataType: DT.FLOAT, rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}

function int64Init(name: string, values: number[]): ITensor {
  const data = BigInt64Array.from(values.map((v) => BigInt(v)));
  return { name, dims: [values.length], dataType: DT.INT64, rawData: new Uint8Array(data.buffer) };
}

function randomWeights(rng: SeededRandom, count: number, scale: number): Float32Array {
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = (rng.nextUnit() * 2 - 1) * scale;
  return out;
}

function encodeModel(graph: onnxProto.onnx.IGraphProto, name: string): Uint8Array {
  const model = onnx.ModelProto.create({
    irVersion: IR_VERSION,
    opsetImport: [{ domain: '', version: OPSET }],
    producerName: 'modelplane-tiny-pipeline',
    producerVersion: String(FORMAT_VERSION),
    graph: { ...graph, name },
  });
  return onnx.ModelProto.encode(model).finish();
}

// ---------- the three graphs ----------

/** CLIPTextModel stand-in: token + position embeddings, one projection, tanh; pooled = mean over tokens. */
function textEncoder(o: ResolvedOptions, vocabSize: number, rng: SeededRandom): Uint8Array {
  const h = o.hiddenSize;
  const L = CLIP_MAX_LENGTH;
  return encodeModel(
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
  const initializer: ITensor[] = [
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
  const nodes: INode[] = [
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
  return encodeModel(
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
  return encodeModel(
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

/** A one-node Identity model (a few dozen bytes) that proves the ONNX runtime can create a session. */
export function identityModelBytes(): Uint8Array {
  return encodeModel(
    {
      input: [valueInfo('x', DT.FLOAT, [1])],
      output: [valueInfo('y', DT.FLOAT, [1])],
      node: [node('Identity', ['x'], ['y'])],
    },
    'identity',
  );
}
