import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { ClipTokenizer } from './clip-tokenizer.js';
import {
  concat,
  floatTensor,
  intTensor,
  isIntType,
  readFloats,
  type Ort,
  type OrtSession,
  type OrtTensor,
} from './ort-tensors.js';
import { COMPONENTS, readPipelineFiles, type Component } from './pipeline-files.js';
import {
  describePipeline,
  discoverIo,
  outputOf,
  timestepTensor,
  type PipelineInfo,
  type PipelineIo,
} from './pipeline-io.js';
import { FrameEncoder, ScanlineBuffers, UpFilteredScanlines, type EncodedImages, type Frame } from './png.js';
import { SeededRandom } from './prng.js';
import { createScheduler, guidanceScaleEmbedding, type SchedulerConfig, type SchedulerKind } from './schedulers.js';

/**
 * A loaded diffusers ONNX export (text_encoder, unet, vae_decoder, tokenizer, scheduler) and the
 * text-to-image loop over it. The files on disk are read by pipeline-files.ts; what each graph takes and
 * returns is discovered by pipeline-io.ts.
 */

/** Time spent in one generation, for benchmarks (seconds). */
export interface ImageGenerationTimings {
  totalSeconds: number;
  /** Waiting for the model's previous run to finish (runs are serialized per model). */
  queueSeconds: number;
  /** Loading sessions as part of this call (0 when the model was already loaded). */
  loadSeconds: number;
  /** The model's serial turn (rendering, without queue and load); PNG encoding may continue after it. */
  turnSeconds: number;
  /** Time inside session.run, per component. */
  textEncoderSeconds: number;
  unetSeconds: number;
  vaeDecoderSeconds: number;
  /** Scheduler arithmetic, noise and tensor conversion outside session.run. */
  schedulerSeconds: number;
  /** The VAE output made into pixels and handed to the PNG encoder (its row filter runs here). */
  postprocessSeconds: number;
  /** The turn as the thread running the pipeline saw it; the rest of turnSeconds is the hand-off to it and back. */
  pipelineSeconds: number;
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
    turnSeconds: 0,
    textEncoderSeconds: 0,
    unetSeconds: 0,
    vaeDecoderSeconds: 0,
    schedulerSeconds: 0,
    postprocessSeconds: 0,
    pipelineSeconds: 0,
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

/** What a model's turn produces: every image rendered, their PNG encoding possibly still under way. */
export interface RenderedImages {
  count: number;
  /** Holds the raw frames until their PNGs exist. */
  encoded: Promise<EncodedImages>;
}

export type { EncodedImages };

/** last_hidden_state of one prompt: [1, seq, hidden]. */
interface EncodedText {
  data: Float32Array;
  dims: readonly [number, number, number];
}

export interface LoadOptions {
  sessionOptions: OrtNamespaceSessionOptions;
  signal?: AbortSignal;
}

type OrtNamespaceSessionOptions = Parameters<Ort['InferenceSession']['create']>[1];

export class DiffusionPipeline {
  private readonly scanlineBuffers = new ScanlineBuffers();

  private constructor(
    private readonly ort: Ort,
    readonly root: string,
    private readonly sessions: Record<Component, OrtSession>,
    private readonly tokenizer: ClipTokenizer,
    private readonly schedulerConfig: SchedulerConfig,
    private readonly io: PipelineIo,
    readonly info: PipelineInfo,
  ) {}

  /**
   * Opens the three sessions and reads tokenizer/scheduler files. Throws plain Errors with the reason
   * (the provider turns them into ModelLoadFailedError); sessions opened before a failure are released.
   */
  static async load(ort: Ort, root: string, options: LoadOptions): Promise<DiffusionPipeline> {
    const files = await readPipelineFiles(root);
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
      const io = discoverIo(sessions);
      const info = describePipeline(files, io);
      return new DiffusionPipeline(ort, root, sessions, files.tokenizer, files.schedulerConfig, io, info);
    } catch (err) {
      await Promise.allSettled(Object.values(opened).map((s) => releaseSession(s)));
      throw err;
    }
  }

  /** The sessions, for release. */
  allSessions(): OrtSession[] {
    return COMPONENTS.map((c) => this.sessions[c]);
  }

  /**
   * Runs text-to-image. Resolves when every image is rendered (the model's turn can end there); the PNGs
   * are encoded as each frame is ready, off the event loop, and `encoded` may settle after the next request
   * started denoising. Checks `signal` between steps.
   */
  async generate(
    params: GenerationParams,
    signal: AbortSignal,
    timings: ImageGenerationTimings,
  ): Promise<RenderedImages> {
    const started = performance.now();
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
    const predictNoise = this.noisePredictor(cond, uncond, wEmbedding, params.guidanceScale, latentH, latentW, timings);

    const encoder = new FrameEncoder(this.scanlineBuffers);
    const latentSize = info.latentChannels * latentH * latentW;
    for (let image = 0; image < params.n; image++) {
      signal.throwIfAborted();
      let t0 = performance.now();
      // One stream per image: image i of seed s is the same whatever n is.
      const rng = new SeededRandom(params.seed, image);
      const scheduler = createScheduler(this.schedulerConfig, params.steps);
      const latents = rng.gaussian(latentSize);
      if (scheduler.initNoiseSigma !== 1) for (let i = 0; i < latentSize; i++) latents[i]! *= scheduler.initNoiseSigma;
      // Every step writes the next sample over `latents` and the estimate into `step.denoised`: no per-step
      // allocation (each value only depends on the same index of the inputs, so in place is exact).
      const step = { prevSample: latents, denoised: new Float32Array(latentSize) };
      const scaled = new Float32Array(latentSize);
      let denoised = latents;
      timings.schedulerSeconds += (performance.now() - t0) / 1000;

      for (let index = 0; index < scheduler.timesteps.length; index++) {
        signal.throwIfAborted();
        const input = scheduler.scaleModelInput(latents, index, scaled);
        const noise = await predictNoise(input, scheduler.timesteps[index]!);
        t0 = performance.now();
        denoised = scheduler.step(noise, index, latents, rng, step).denoised;
        timings.schedulerSeconds += (performance.now() - t0) / 1000;
        timings.unetSteps++;
      }
      signal.throwIfAborted();
      // LCM decodes the consistency estimate; for Euler the last step's sample is the same thing.
      const frame = await this.decode(info.scheduler === 'lcm' ? denoised : latents, latentH, latentW, timings);
      t0 = performance.now();
      encoder.add(frame);
      timings.postprocessSeconds += (performance.now() - t0) / 1000;
      timings.images++;
    }
    timings.pipelineSeconds += (performance.now() - started) / 1000;
    return { count: encoder.count, encoded: encoder.all() };
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
      [this.io.text.ids.name]: intTensor(this.ort, this.io.text.idsType, ids, [1, ids.length]),
    };
    if (this.io.text.mask) {
      const maskType = this.io.text.mask.type ?? 'int64';
      if (!isIntType(maskType)) throw new Error(`text_encoder attention_mask has unsupported dtype ${maskType}`);
      feeds[this.io.text.mask.name] = intTensor(this.ort, maskType, new Array<number>(ids.length).fill(1), [
        1,
        ids.length,
      ]);
    }
    const out = await this.timedRun('text_encoder', feeds, timings);
    const tensor = outputOf(out, this.io.text.output, 'text_encoder');
    const [batch, seq, hidden] = tensor.dims;
    if (tensor.dims.length !== 3 || batch === undefined || seq === undefined || hidden === undefined) {
      throw new Error(`text_encoder returned shape [${tensor.dims.join(',')}], expected [1,seq,hidden]`);
    }
    return { data: readFloats(tensor), dims: [batch, seq, hidden] };
  }

  /**
   * The UNet call for one request, with its buffers allocated once: the text states (batched for CFG), the
   * guidance embedding and the guided output are the same size at every step.
   */
  private noisePredictor(
    cond: EncodedText,
    uncond: EncodedText | null,
    wEmbedding: Float32Array | null,
    guidanceScale: number,
    latentH: number,
    latentW: number,
    timings: ImageGenerationTimings,
  ): (sample: Float32Array, t: number) => Promise<Float32Array> {
    const io = this.io.unet;
    const channels = this.info.latentChannels;
    const latentSize = channels * latentH * latentW;
    const batched = uncond !== null && !io.batchOne;
    const batch = batched ? 2 : 1;
    const condFeed =
      io.cond && wEmbedding
        ? floatTensor(this.ort, io.condType, batch === 1 ? wEmbedding : concat(wEmbedding, wEmbedding), [
            batch,
            wEmbedding.length,
          ])
        : null;
    const hiddenFeed = (hidden: Float32Array, b: number): OrtTensor =>
      floatTensor(this.ort, io.hiddenType, hidden, [b, cond.dims[1], cond.dims[2]]);
    const condHidden = hiddenFeed(cond.data, 1);
    const uncondHidden = uncond && !batched ? hiddenFeed(uncond.data, 1) : null;
    const bothHidden = uncond && batched ? hiddenFeed(concat(uncond.data, cond.data), 2) : null;
    const samples = batched ? new Float32Array(latentSize * 2) : null;
    const guided = uncond ? new Float32Array(latentSize) : null;

    const run = async (samplesIn: Float32Array, hidden: OrtTensor, t: number): Promise<Float32Array> => {
      const b = samplesIn.length / latentSize;
      const feeds: Record<string, OrtTensor> = {
        [io.sample.name]: floatTensor(this.ort, io.sampleType, samplesIn, [b, channels, latentH, latentW]),
        [io.timestep.name]: timestepTensor(this.ort, io, t, b),
        [io.hidden.name]: hidden,
      };
      if (io.cond && condFeed) feeds[io.cond.name] = condFeed;
      const out = await this.timedRun('unet', feeds, timings);
      timings.unetRuns++;
      const noise = readFloats(outputOf(out, io.output, 'unet'));
      if (noise.length !== samplesIn.length) {
        throw new Error(`unet returned ${noise.length} values for ${samplesIn.length} latent values`);
      }
      return noise;
    };

    return async (sample, t) => {
      if (!guided) return run(sample, condHidden, t);
      let noiseUncond: Float32Array;
      let noiseCond: Float32Array;
      if (samples && bothHidden) {
        samples.set(sample, 0);
        samples.set(sample, latentSize);
        const both = await run(samples, bothHidden, t);
        noiseUncond = both.subarray(0, latentSize);
        noiseCond = both.subarray(latentSize);
      } else {
        noiseUncond = await run(sample, uncondHidden!, t);
        noiseCond = await run(sample, condHidden, t);
      }
      for (let i = 0; i < latentSize; i++) {
        guided[i] = noiseUncond[i]! + guidanceScale * (noiseCond[i]! - noiseUncond[i]!);
      }
      return guided;
    };
  }

  private async decode(
    latents: Float32Array,
    latentH: number,
    latentW: number,
    timings: ImageGenerationTimings,
  ): Promise<Frame> {
    // The latents are not read again after decoding: scale them in place.
    const scaled = latents;
    const inv = 1 / this.info.vaeScalingFactor;
    for (let i = 0; i < latents.length; i++) scaled[i] = latents[i]! * inv;
    const feeds = {
      [this.io.vae.input.name]: floatTensor(this.ort, this.io.vae.inputType, scaled, [
        1,
        this.info.latentChannels,
        latentH,
        latentW,
      ]),
    };
    const out = await this.timedRun('vae_decoder', feeds, timings);
    const tensor = outputOf(out, this.io.vae.output, 'vae_decoder');
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
    const t0 = performance.now();
    const data = readFloats(tensor);
    const plane = height * width;
    if (data.length < 3 * plane) {
      throw new Error(`vae_decoder returned ${data.length} values for shape [${tensor.dims.join(',')}]`);
    }
    const frame = vaeFrame(data, width, height, this.scanlineBuffers);
    timings.postprocessSeconds += (performance.now() - t0) / 1000;
    return frame;
  }
}

/**
 * The VAE's planar RGB output ([3, H, W] floats in -1..1) as PNG scanlines, converted and filtered row by row
 * in one pass.
 */
export function vaeFrame(data: Float32Array, width: number, height: number, buffers?: ScanlineBuffers): Frame {
  const plane = width * height;
  const frame = new UpFilteredScanlines(width, height, 3, buffers);
  // Two row buffers in turn: the row pushed last is the next one's "up" (see UpFilteredScanlines.push).
  let row = new Uint8Array(frame.stride);
  let spare = new Uint8Array(frame.stride);
  const red = data.subarray(0, plane);
  const green = data.subarray(plane, 2 * plane);
  const blue = data.subarray(2 * plane, 3 * plane);
  for (let y = 0; y < height; y++) {
    for (let x = 0, p = y * width; x < width; x++, p++) {
      row[3 * x] = toByte(red[p]!);
      row[3 * x + 1] = toByte(green[p]!);
      row[3 * x + 2] = toByte(blue[p]!);
    }
    frame.push(row);
    const pushed = row;
    row = spare;
    spare = pushed;
  }
  return frame;
}

/** diffusers' postprocess of one VAE output value: (x / 2 + 0.5).clamp(0, 1) * 255, rounded half up. */
function toByte(x: number): number {
  const v = x * 0.5 + 0.5;
  // v * 255 is never negative here, so adding 0.5 and truncating rounds as Math.round does.
  return v <= 0 ? 0 : v >= 1 ? 255 : (v * 255 + 0.5) | 0;
}
