import { existsSync, readdirSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { ClipTokenizer } from './clip-tokenizer.js';
import {
  floatTensor,
  intTensor,
  isFloatType,
  isIntType,
  readFloats,
  type FloatType,
  type IntType,
  type Ort,
  type OrtSession,
  type OrtTensor,
} from './ort-tensors.js';
import { encodePngAsync } from './png.js';
import { SeededRandom } from './prng.js';
import {
  createScheduler,
  guidanceScaleEmbedding,
  schedulerKindFor,
  type SchedulerConfig,
  type SchedulerKind,
} from './schedulers.js';

/**
 * A loaded diffusers ONNX export (text_encoder, unet, vae_decoder, tokenizer, scheduler) and the
 * text-to-image loop over it. Input names, dtypes and shapes come from the sessions themselves so
 * int64/float timesteps, other channel counts, hidden sizes and fixed/dynamic sizes all work.
 */

export const COMPONENTS = ['text_encoder', 'unet', 'vae_decoder'] as const;
export type Component = (typeof COMPONENTS)[number];

/** The files a usable export must have. */
export const REQUIRED_FILES = [
  'text_encoder/model.onnx',
  'unet/model.onnx',
  'vae_decoder/model.onnx',
  'tokenizer/vocab.json',
  'tokenizer/merges.txt',
  'scheduler/scheduler_config.json',
] as const;

const DEFAULT_VAE_SCALING = 0.18215;

/** Time spent in one generation, for benchmarks (seconds). */
export interface ImageGenerationTimings {
  totalSeconds: number;
  /** Waiting for the model's previous run to finish (runs are serialized per model). */
  queueSeconds: number;
  /** Loading sessions as part of this call (0 when the model was already loaded). */
  loadSeconds: number;
  /** Time inside session.run, per component. */
  textEncoderSeconds: number;
  unetSeconds: number;
  vaeDecoderSeconds: number;
  /** Scheduler arithmetic, noise and tensor conversion outside session.run. */
  schedulerSeconds: number;
  pngSeconds: number;
  /** Denoising steps across all images (n × steps). */
  unetSteps: number;
  /** UNet session.run calls (2 per step when CFG cannot batch). */
  unetRuns: number;
  secondsPerUnetStep: number;
  secondsPerImage: number;
  images: number;
  width: number;
  height: number;
  steps: number;
  scheduler: SchedulerKind;
  guidance: GuidanceMode;
}

/** 'embedding': LCM timestep_cond; 'cfg': classifier-free guidance; 'none': guidance_scale ≤ 1 without embedding. */
export type GuidanceMode = 'embedding' | 'cfg' | 'none';

export function emptyTimings(): ImageGenerationTimings {
  return {
    totalSeconds: 0,
    queueSeconds: 0,
    loadSeconds: 0,
    textEncoderSeconds: 0,
    unetSeconds: 0,
    vaeDecoderSeconds: 0,
    schedulerSeconds: 0,
    pngSeconds: 0,
    unetSteps: 0,
    unetRuns: 0,
    secondsPerUnetStep: 0,
    secondsPerImage: 0,
    images: 0,
    width: 0,
    height: 0,
    steps: 0,
    scheduler: 'lcm',
    guidance: 'none',
  };
}

export interface GenerationParams {
  prompt: string;
  negativePrompt: string;
  n: number;
  width: number;
  height: number;
  steps: number;
  guidanceScale: number;
  seed: number;
}

interface TensorInfo {
  name: string;
  /** null when the runtime does not expose metadata. */
  type: string | null;
  shape: readonly (number | string)[] | null;
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

/** Minimal shape of something releasable: ORT sessions have release(); some wrappers only close(). */
export interface Releasable {
  release?: () => Promise<void> | void;
  close?: () => Promise<void> | void;
}

/** release() when present, close() only as the fallback; never both (double free in some bindings). */
export async function releaseSession(session: Releasable): Promise<void> {
  if (typeof session.release === 'function') await session.release();
  else if (typeof session.close === 'function') await session.close();
}

/** Bytes the weights occupy on disk: every non-JSON file in the component folders (.onnx plus external data). */
export function pipelineFileBytes(root: string): number | null {
  let total = 0;
  let found = false;
  for (const component of COMPONENTS) {
    const dir = join(root, component);
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      continue;
    }
    for (const name of names) {
      if (name.endsWith('.json')) continue;
      try {
        const stat = statSync(join(dir, name));
        if (!stat.isFile()) continue;
        total += stat.size;
        if (name.endsWith('.onnx')) found = true;
      } catch {
        // A file vanishing between readdir and stat only makes the estimate smaller.
      }
    }
  }
  return found ? total : null;
}

async function readJson(path: string): Promise<Record<string, unknown>> {
  const parsed = JSON.parse(await readFile(path, 'utf8')) as unknown;
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new Error(`${path} is not a JSON object`);
  }
  return parsed as Record<string, unknown>;
}

async function readOptionalJson(path: string): Promise<Record<string, unknown> | null> {
  return existsSync(path) ? readJson(path) : null;
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

/** last_hidden_state of one prompt: [1, seq, hidden]. */
interface EncodedText {
  data: Float32Array;
  dims: readonly [number, number, number];
}

interface TextEncoderIo {
  ids: TensorInfo;
  idsType: IntType;
  mask: TensorInfo | undefined;
  output: string;
}

interface UnetIo {
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

interface VaeIo {
  input: TensorInfo;
  inputType: FloatType;
  output: string;
}

export interface LoadOptions {
  sessionOptions: OrtNamespaceSessionOptions;
  signal?: AbortSignal;
}

type OrtNamespaceSessionOptions = Parameters<Ort['InferenceSession']['create']>[1];

export class DiffusionPipeline {
  private constructor(
    private readonly ort: Ort,
    readonly root: string,
    private readonly sessions: Record<Component, OrtSession>,
    private readonly tokenizer: ClipTokenizer,
    private readonly schedulerConfig: SchedulerConfig,
    private readonly textIo: TextEncoderIo,
    private readonly unetIo: UnetIo,
    private readonly vaeIo: VaeIo,
    readonly info: PipelineInfo,
  ) {}

  /**
   * Opens the three sessions and reads tokenizer/scheduler files. Throws plain Errors with the reason
   * (the provider turns them into ModelLoadFailedError); sessions opened before a failure are released.
   */
  static async load(ort: Ort, root: string, options: LoadOptions): Promise<DiffusionPipeline> {
    if (!existsSync(root) || !statSync(root).isDirectory()) throw new Error(`model folder not found: ${root}`);
    const missing = REQUIRED_FILES.filter((f) => !existsSync(join(root, f)));
    if (missing.length > 0) throw new Error(`model folder ${root} is missing ${missing.join(', ')}`);

    const modelIndex = await readOptionalJson(join(root, 'model_index.json'));
    const schedulerConfig = (await readJson(join(root, 'scheduler/scheduler_config.json'))) as SchedulerConfig;
    const indexScheduler = modelIndex?.scheduler;
    if (!schedulerConfig._class_name && Array.isArray(indexScheduler) && typeof indexScheduler[1] === 'string') {
      schedulerConfig._class_name = indexScheduler[1];
    }
    const unetConfig = await readOptionalJson(join(root, 'unet/config.json'));
    const vaeConfig = await readOptionalJson(join(root, 'vae_decoder/config.json'));
    const tokenizer = await ClipTokenizer.fromFolder(join(root, 'tokenizer'));

    const opened: Partial<Record<Component, OrtSession>> = {};
    try {
      for (const component of COMPONENTS) {
        options.signal?.throwIfAborted();
        try {
          opened[component] = await ort.InferenceSession.create(
            join(root, component, 'model.onnx'),
            options.sessionOptions,
          );
        } catch (err) {
          throw new Error(`${component}/model.onnx: ${err instanceof Error ? err.message : String(err)}`);
        }
      }
      options.signal?.throwIfAborted();
      const sessions = opened as Record<Component, OrtSession>;
      const textIo = discoverTextEncoder(sessions.text_encoder);
      const unetIo = discoverUnet(sessions.unet);
      const vaeIo = discoverVae(sessions.vae_decoder);

      const blockOut = vaeConfig?.block_out_channels;
      const vaeScaleFactor = Array.isArray(blockOut) && blockOut.length > 0 ? 2 ** (blockOut.length - 1) : 8;
      const latentH = fixedDim(unetIo.sample, 2);
      const latentW = fixedDim(unetIo.sample, 3);
      const fixedLatentSize = latentH && latentW ? { height: latentH, width: latentW } : null;
      const sampleSize = num(unetConfig?.sample_size) ?? 64;
      const latentChannels = fixedDim(unetIo.sample, 1) ?? num(unetConfig?.in_channels) ?? 4;
      const timestepCondDim = unetIo.cond
        ? (fixedDim(unetIo.cond, 1) ?? num(unetConfig?.time_cond_proj_dim) ?? 256)
        : null;
      const sequenceLength = fixedDim(textIo.ids, 1) ?? tokenizer.maxLength;
      if (sequenceLength !== tokenizer.maxLength) {
        throw new Error(`text_encoder takes ${sequenceLength} tokens but the tokenizer pads to ${tokenizer.maxLength}`);
      }
      const info: PipelineInfo = {
        scheduler: schedulerKindFor(schedulerConfig),
        schedulerClass: schedulerConfig._class_name ?? null,
        pipelineClass: typeof modelIndex?._class_name === 'string' ? modelIndex._class_name : null,
        guidanceEmbedding: unetIo.cond !== undefined,
        latentChannels,
        fixedLatentSize,
        defaultWidth: (fixedLatentSize?.width ?? sampleSize) * vaeScaleFactor,
        defaultHeight: (fixedLatentSize?.height ?? sampleSize) * vaeScaleFactor,
        vaeScaleFactor,
        vaeScalingFactor: num(vaeConfig?.scaling_factor) ?? DEFAULT_VAE_SCALING,
        timestepType: unetIo.timestepType,
        sequenceLength,
        timestepCondDim,
        maxSteps:
          schedulerKindFor(schedulerConfig) === 'lcm'
            ? (schedulerConfig.original_inference_steps ?? 50)
            : (schedulerConfig.num_train_timesteps ?? 1000),
      };
      return new DiffusionPipeline(ort, root, sessions, tokenizer, schedulerConfig, textIo, unetIo, vaeIo, info);
    } catch (err) {
      await Promise.allSettled(Object.values(opened).map((s) => releaseSession(s)));
      throw err;
    }
  }

  /** The sessions, for release. */
  allSessions(): OrtSession[] {
    return COMPONENTS.map((c) => this.sessions[c]);
  }

  /** Runs text-to-image; returns one PNG per image. Checks `signal` between steps. */
  async generate(params: GenerationParams, signal: AbortSignal, timings: ImageGenerationTimings): Promise<Buffer[]> {
    const { info } = this;
    const latentH = params.height / info.vaeScaleFactor;
    const latentW = params.width / info.vaeScaleFactor;
    const useEmbedding = info.guidanceEmbedding;
    const useCfg = !useEmbedding && params.guidanceScale > 1;
    timings.guidance = useEmbedding ? 'embedding' : useCfg ? 'cfg' : 'none';
    timings.scheduler = info.scheduler;
    timings.steps = params.steps;
    timings.width = params.width;
    timings.height = params.height;

    signal.throwIfAborted();
    const cond = await this.encodeText(params.prompt, timings);
    const uncond = useCfg ? await this.encodeText(params.negativePrompt, timings) : null;
    const wEmbedding =
      useEmbedding && info.timestepCondDim
        ? guidanceScaleEmbedding(params.guidanceScale - 1, info.timestepCondDim)
        : null;

    const images: Buffer[] = [];
    const latentSize = info.latentChannels * latentH * latentW;
    for (let image = 0; image < params.n; image++) {
      signal.throwIfAborted();
      let t0 = performance.now();
      // One stream per image: image i of seed s is the same whatever n is.
      const rng = new SeededRandom(params.seed, image);
      const scheduler = createScheduler(this.schedulerConfig, params.steps);
      let latents = rng.gaussian(latentSize);
      if (scheduler.initNoiseSigma !== 1) for (let i = 0; i < latentSize; i++) latents[i]! *= scheduler.initNoiseSigma;
      let denoised = latents;
      timings.schedulerSeconds += (performance.now() - t0) / 1000;

      for (let step = 0; step < scheduler.timesteps.length; step++) {
        signal.throwIfAborted();
        const t = scheduler.timesteps[step]!;
        const input = scheduler.scaleModelInput(latents, step);
        const noise = await this.predictNoise(
          input,
          t,
          cond,
          uncond,
          wEmbedding,
          params.guidanceScale,
          latentH,
          latentW,
          timings,
        );
        t0 = performance.now();
        const result = scheduler.step(noise, step, latents, rng);
        latents = result.prevSample;
        denoised = result.denoised;
        timings.schedulerSeconds += (performance.now() - t0) / 1000;
        timings.unetSteps++;
      }
      signal.throwIfAborted();
      // LCM decodes the consistency estimate; for Euler the last step's sample is the same thing.
      const { pixels, width, height } = await this.decode(
        info.scheduler === 'lcm' ? denoised : latents,
        latentH,
        latentW,
        timings,
      );
      t0 = performance.now();
      images.push(await encodePngAsync(pixels, width, height));
      timings.pngSeconds += (performance.now() - t0) / 1000;
      timings.images++;
    }
    return images;
  }

  private async timedRun(
    component: Component,
    feeds: Record<string, OrtTensor>,
    timings: ImageGenerationTimings,
  ): Promise<Record<string, OrtTensor>> {
    const t0 = performance.now();
    const out = (await this.sessions[component].run(feeds)) as Record<string, OrtTensor>;
    const seconds = (performance.now() - t0) / 1000;
    if (component === 'text_encoder') timings.textEncoderSeconds += seconds;
    else if (component === 'unet') timings.unetSeconds += seconds;
    else timings.vaeDecoderSeconds += seconds;
    return out;
  }

  /** last_hidden_state for one prompt: [1, seq, hidden] as float32. */
  private async encodeText(text: string, timings: ImageGenerationTimings): Promise<EncodedText> {
    const ids = this.tokenizer.encode(text);
    const feeds: Record<string, OrtTensor> = {
      [this.textIo.ids.name]: intTensor(this.ort, this.textIo.idsType, ids, [1, ids.length]),
    };
    if (this.textIo.mask) {
      const maskType = this.textIo.mask.type ?? 'int64';
      if (!isIntType(maskType)) throw new Error(`text_encoder attention_mask has unsupported dtype ${maskType}`);
      feeds[this.textIo.mask.name] = intTensor(this.ort, maskType, new Array<number>(ids.length).fill(1), [
        1,
        ids.length,
      ]);
    }
    const out = await this.timedRun('text_encoder', feeds, timings);
    const tensor = outputOf(out, this.textIo.output, 'text_encoder');
    const [batch, seq, hidden] = tensor.dims;
    if (tensor.dims.length !== 3 || batch === undefined || seq === undefined || hidden === undefined) {
      throw new Error(`text_encoder returned shape [${tensor.dims.join(',')}], expected [1,seq,hidden]`);
    }
    return { data: readFloats(tensor), dims: [batch, seq, hidden] };
  }

  private async predictNoise(
    sample: Float32Array,
    t: number,
    cond: EncodedText,
    uncond: EncodedText | null,
    wEmbedding: Float32Array | null,
    guidanceScale: number,
    latentH: number,
    latentW: number,
    timings: ImageGenerationTimings,
  ): Promise<Float32Array> {
    const io = this.unetIo;
    const channels = this.info.latentChannels;
    const run = async (batch: number, samples: Float32Array, hidden: Float32Array): Promise<Float32Array> => {
      const feeds: Record<string, OrtTensor> = {
        [io.sample.name]: floatTensor(this.ort, io.sampleType, samples, [batch, channels, latentH, latentW]),
        [io.timestep.name]: this.timestepTensor(t, batch),
        [io.hidden.name]: floatTensor(this.ort, io.hiddenType, hidden, [batch, cond.dims[1], cond.dims[2]]),
      };
      if (io.cond && wEmbedding) {
        const cond = new Float32Array(batch * wEmbedding.length);
        for (let b = 0; b < batch; b++) cond.set(wEmbedding, b * wEmbedding.length);
        feeds[io.cond.name] = floatTensor(this.ort, io.condType, cond, [batch, wEmbedding.length]);
      }
      const out = await this.timedRun('unet', feeds, timings);
      timings.unetRuns++;
      const noise = readFloats(outputOf(out, io.output, 'unet'));
      if (noise.length !== samples.length) {
        throw new Error(`unet returned ${noise.length} values for ${samples.length} latent values`);
      }
      return noise;
    };
    if (!uncond) return run(1, sample, cond.data);
    let noiseUncond: Float32Array;
    let noiseCond: Float32Array;
    if (io.batchOne) {
      noiseUncond = await run(1, sample, uncond.data);
      noiseCond = await run(1, sample, cond.data);
    } else {
      const samples = new Float32Array(sample.length * 2);
      samples.set(sample, 0);
      samples.set(sample, sample.length);
      const hidden = new Float32Array(uncond.data.length + cond.data.length);
      hidden.set(uncond.data, 0);
      hidden.set(cond.data, uncond.data.length);
      const both = await run(2, samples, hidden);
      noiseUncond = both.subarray(0, sample.length);
      noiseCond = both.subarray(sample.length);
    }
    const guided = new Float32Array(sample.length);
    for (let i = 0; i < guided.length; i++) {
      guided[i] = noiseUncond[i]! + guidanceScale * (noiseCond[i]! - noiseUncond[i]!);
    }
    return guided;
  }

  private timestepTensor(t: number, batch: number): OrtTensor {
    const io = this.unetIo;
    const shape = io.timestep.shape;
    // Exports declare a scalar, [1] or [batch]; follow the declaration so the graph's broadcast works.
    const scalar = shape !== null && shape.length === 0;
    const count = scalar ? 1 : (fixedDim(io.timestep, 0) ?? batch);
    const dims = scalar ? [] : [count];
    const values = new Array<number>(count).fill(t);
    if (isIntType(io.timestepType)) return intTensor(this.ort, io.timestepType, values, dims);
    return floatTensor(this.ort, io.timestepType, Float32Array.from(values), dims);
  }

  private async decode(
    latents: Float32Array,
    latentH: number,
    latentW: number,
    timings: ImageGenerationTimings,
  ): Promise<{ pixels: Uint8Array; width: number; height: number }> {
    const scaled = new Float32Array(latents.length);
    const inv = 1 / this.info.vaeScalingFactor;
    for (let i = 0; i < latents.length; i++) scaled[i] = latents[i]! * inv;
    const feeds = {
      [this.vaeIo.input.name]: floatTensor(this.ort, this.vaeIo.inputType, scaled, [
        1,
        this.info.latentChannels,
        latentH,
        latentW,
      ]),
    };
    const out = await this.timedRun('vae_decoder', feeds, timings);
    const tensor = outputOf(out, this.vaeIo.output, 'vae_decoder');
    const [, channels, height, width] = tensor.dims;
    if (
      tensor.dims.length !== 4 ||
      channels === undefined ||
      height === undefined ||
      width === undefined ||
      channels < 3
    ) {
      throw new Error(`vae_decoder returned shape [${tensor.dims.join(',')}], expected [1,3,H,W]`);
    }
    const data = readFloats(tensor);
    const plane = height * width;
    if (data.length < 3 * plane) {
      throw new Error(`vae_decoder returned ${data.length} values for shape [${tensor.dims.join(',')}]`);
    }
    const pixels = new Uint8Array(plane * 3);
    for (let c = 0; c < 3; c++) {
      for (let p = 0; p < plane; p++) {
        // diffusers postprocess: (x / 2 + 0.5).clamp(0, 1) * 255, rounded.
        const v = data[c * plane + p]! / 2 + 0.5;
        pixels[p * 3 + c] = Math.round((v < 0 ? 0 : v > 1 ? 1 : v) * 255);
      }
    }
    return { pixels, width, height };
  }
}

/** A session output the pipeline needs; a clear error instead of a crash when the runtime omits it. */
function outputOf(out: Record<string, OrtTensor>, name: string, component: Component): OrtTensor {
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
