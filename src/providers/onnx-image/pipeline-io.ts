/**
 * What the three ONNX graphs of an export take and return, read from the sessions themselves (names, dtypes,
 * fixed or dynamic axes), so int64/float timesteps, other channel counts, hidden sizes and fixed/dynamic sizes
 * all work; and the pipeline facts that follow from them and the configs (PipelineInfo).
 */
import {
  floatTensor,
  intTensor,
  isFloatType,
  isIntType,
  type FloatType,
  type IntType,
  type Ort,
  type OrtSession,
  type OrtTensor,
} from './ort-tensors.js';
import type { Component, PipelineFiles } from './pipeline-files.js';
import { schedulerKindFor, type SchedulerKind } from './schedulers.js';

const DEFAULT_VAE_SCALING = 0.18215;

export interface TensorInfo {
  name: string;
  /** null when the runtime does not expose metadata. */
  type: string | null;
  shape: readonly (number | string)[] | null;
}

export interface TextEncoderIo {
  ids: TensorInfo;
  idsType: IntType;
  mask: TensorInfo | undefined;
  output: string;
}

export interface UnetIo {
  sample: TensorInfo;
  sampleType: FloatType;
  timestep: TensorInfo;
  timestepType: IntType | FloatType;
  hidden: TensorInfo;
  hiddenType: FloatType;
  cond: TensorInfo | undefined;
  condType: FloatType;
  output: string;
  /** The export fixes batch to 1, so CFG needs two runs per step. */
  batchOne: boolean;
}

export interface VaeIo {
  input: TensorInfo;
  inputType: FloatType;
  output: string;
}

/** The inputs and outputs of the three graphs. */
export interface PipelineIo {
  text: TextEncoderIo;
  unet: UnetIo;
  vae: VaeIo;
}

/** Reads each session's inputs and outputs; throws a plain Error on an input the pipeline cannot feed. */
export function discoverIo(sessions: Record<Component, OrtSession>): PipelineIo {
  return {
    text: discoverTextEncoder(sessions.text_encoder),
    unet: discoverUnet(sessions.unet),
    vae: discoverVae(sessions.vae_decoder),
  };
}

/** What the sessions say about themselves; reported in model details. */
export interface PipelineInfo {
  scheduler: SchedulerKind;
  schedulerClass: string | null;
  pipelineClass: string | null;
  /** The UNet takes LCM's guidance embedding (timestep_cond). */
  guidanceEmbedding: boolean;
  latentChannels: number;
  /** Latent spatial size when the export fixes it, else null (any multiple of 8 works). */
  fixedLatentSize: { height: number; width: number } | null;
  defaultWidth: number;
  defaultHeight: number;
  vaeScaleFactor: number;
  vaeScalingFactor: number;
  timestepType: string;
  sequenceLength: number;
  timestepCondDim: number | null;
  /** LCM cannot take more steps than original_inference_steps; Euler not more than training timesteps. */
  maxSteps: number;
}

/** The facts reported in model details and used by the loop; throws when the encoder and tokenizer disagree. */
export function describePipeline(files: PipelineFiles, io: PipelineIo): PipelineInfo {
  const { modelIndex, schedulerConfig, unetConfig, vaeConfig, tokenizer } = files;
  const blockOut = vaeConfig?.block_out_channels;
  const vaeScaleFactor = Array.isArray(blockOut) && blockOut.length > 0 ? 2 ** (blockOut.length - 1) : 8;
  const latentH = fixedDim(io.unet.sample, 2);
  const latentW = fixedDim(io.unet.sample, 3);
  const fixedLatentSize = latentH && latentW ? { height: latentH, width: latentW } : null;
  const sampleSize = num(unetConfig?.sample_size) ?? 64;
  const latentChannels = fixedDim(io.unet.sample, 1) ?? num(unetConfig?.in_channels) ?? 4;
  const timestepCondDim = io.unet.cond
    ? (fixedDim(io.unet.cond, 1) ?? num(unetConfig?.time_cond_proj_dim) ?? 256)
    : null;
  const sequenceLength = fixedDim(io.text.ids, 1) ?? tokenizer.maxLength;
  if (sequenceLength !== tokenizer.maxLength) {
    throw new Error(`text_encoder takes ${sequenceLength} tokens but the tokenizer pads to ${tokenizer.maxLength}`);
  }
  return {
    scheduler: schedulerKindFor(schedulerConfig),
    schedulerClass: schedulerConfig._class_name ?? null,
    pipelineClass: typeof modelIndex?._class_name === 'string' ? modelIndex._class_name : null,
    guidanceEmbedding: io.unet.cond !== undefined,
    latentChannels,
    fixedLatentSize,
    defaultWidth: (fixedLatentSize?.width ?? sampleSize) * vaeScaleFactor,
    defaultHeight: (fixedLatentSize?.height ?? sampleSize) * vaeScaleFactor,
    vaeScaleFactor,
    vaeScalingFactor: num(vaeConfig?.scaling_factor) ?? DEFAULT_VAE_SCALING,
    timestepType: io.unet.timestepType,
    sequenceLength,
    timestepCondDim,
    maxSteps:
      schedulerKindFor(schedulerConfig) === 'lcm'
        ? (schedulerConfig.original_inference_steps ?? 50)
        : (schedulerConfig.num_train_timesteps ?? 1000),
  };
}

/** The timestep in the dtype and shape the UNet declares. */
export function timestepTensor(ort: Ort, io: UnetIo, t: number, batch: number): OrtTensor {
  const shape = io.timestep.shape;
  // Exports declare a scalar, [1] or [batch]; follow the declaration so the graph's broadcast works.
  const scalar = shape !== null && shape.length === 0;
  const count = scalar ? 1 : (fixedDim(io.timestep, 0) ?? batch);
  const dims = scalar ? [] : [count];
  const values = new Array<number>(count).fill(t);
  if (isIntType(io.timestepType)) return intTensor(ort, io.timestepType, values, dims);
  return floatTensor(ort, io.timestepType, Float32Array.from(values), dims);
}

function num(value: unknown): number | null {
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}

function describe(session: OrtSession, which: 'input' | 'output'): Map<string, TensorInfo> {
  const names = which === 'input' ? session.inputNames : session.outputNames;
  // Older bindings have no metadata; then dtypes fall back to the diffusers defaults.
  const metadata = (which === 'input' ? session.inputMetadata : session.outputMetadata) as
    OrtSession['inputMetadata'] | undefined;
  const out = new Map<string, TensorInfo>();
  names.forEach((name, i) => {
    const meta = metadata?.find((m) => m.name === name) ?? metadata?.[i];
    if (meta && meta.isTensor) out.set(name, { name, type: meta.type, shape: meta.shape });
    else out.set(name, { name, type: null, shape: null });
  });
  return out;
}

function pick(infos: Map<string, TensorInfo>, candidates: readonly string[]): TensorInfo | undefined {
  for (const name of candidates) {
    const info = infos.get(name);
    if (info) return info;
  }
  return undefined;
}

function fixedDim(info: TensorInfo | undefined, axis: number): number | null {
  const d = info?.shape?.[axis];
  return typeof d === 'number' && d > 0 ? d : null;
}

function floatTypeOf(info: TensorInfo, component: string): FloatType {
  const type = info.type ?? 'float32';
  if (!isFloatType(type)) throw new Error(`${component} input '${info.name}' has unsupported dtype ${type}`);
  return type;
}

/** A session output the pipeline needs; a clear error instead of a crash when the runtime omits it. */
export function outputOf(out: Record<string, OrtTensor>, name: string, component: Component): OrtTensor {
  const tensor = out[name];
  if (!tensor) throw new Error(`${component} returned no output '${name}'`);
  return tensor;
}

function discoverTextEncoder(session: OrtSession): TextEncoderIo {
  const inputs = describe(session, 'input');
  const ids = pick(inputs, ['input_ids']) ?? inputs.values().next().value;
  if (!ids) throw new Error('text_encoder has no inputs');
  const idsType = ids.type ?? 'int32';
  if (!isIntType(idsType)) throw new Error(`text_encoder input '${ids.name}' has unsupported dtype ${idsType}`);
  const mask = pick(inputs, ['attention_mask']);
  const unknown = [...inputs.keys()].filter((n) => n !== ids.name && n !== mask?.name);
  if (unknown.length > 0) throw new Error(`text_encoder has unsupported inputs: ${unknown.join(', ')}`);
  const outputs = session.outputNames;
  const output = outputs.includes('last_hidden_state') ? 'last_hidden_state' : outputs[0];
  if (!output) throw new Error('text_encoder has no outputs');
  return { ids, idsType, mask, output };
}

function discoverUnet(session: OrtSession): UnetIo {
  const inputs = describe(session, 'input');
  const sample = pick(inputs, ['sample', 'latent_model_input', 'x']);
  const timestep = pick(inputs, ['timestep', 'timesteps', 't']);
  const hidden = pick(inputs, ['encoder_hidden_states', 'text_embeddings', 'context']);
  const cond = pick(inputs, ['timestep_cond', 'w_embedding', 'guidance_embedding']);
  if (!sample || !timestep || !hidden) {
    throw new Error(`unet inputs [${session.inputNames.join(', ')}] lack sample, timestep or encoder_hidden_states`);
  }
  const known = new Set([sample.name, timestep.name, hidden.name, cond?.name]);
  const unknown = [...inputs.keys()].filter((n) => !known.has(n));
  // SDXL-style added conditions (text_embeds, time_ids) would silently be wrong if fed zeros.
  if (unknown.length > 0) throw new Error(`unet has unsupported inputs: ${unknown.join(', ')}`);
  const timestepType = timestep.type ?? 'int64';
  if (!isIntType(timestepType) && !isFloatType(timestepType)) {
    throw new Error(`unet input '${timestep.name}' has unsupported dtype ${timestepType}`);
  }
  const outputs = session.outputNames;
  const output = outputs.includes('out_sample') ? 'out_sample' : outputs[0];
  if (!output) throw new Error('unet has no outputs');
  return {
    sample,
    sampleType: floatTypeOf(sample, 'unet'),
    timestep,
    timestepType,
    hidden,
    hiddenType: floatTypeOf(hidden, 'unet'),
    cond,
    condType: cond ? floatTypeOf(cond, 'unet') : 'float32',
    output,
    batchOne: fixedDim(sample, 0) === 1,
  };
}

function discoverVae(session: OrtSession): VaeIo {
  const inputs = describe(session, 'input');
  const input = pick(inputs, ['latent_sample', 'latent', 'z']) ?? inputs.values().next().value;
  if (!input) throw new Error('vae_decoder has no inputs');
  if (inputs.size > 1) throw new Error(`vae_decoder has unsupported inputs: ${session.inputNames.join(', ')}`);
  const outputs = session.outputNames;
  const output = outputs.includes('sample') ? 'sample' : outputs[0];
  if (!output) throw new Error('vae_decoder has no outputs');
  return { input, inputType: floatTypeOf(input, 'vae_decoder'), output };
}
