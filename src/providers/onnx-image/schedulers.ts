/**
 * The two samplers a diffusers export usually ships with, following the published diffusers formulas:
 * LCMScheduler (latent consistency models, few steps) and EulerDiscreteScheduler (plain SD models).
 * Arithmetic is float64; the latents the ONNX sessions see are float32.
 */

/** The subset of diffusers' scheduler_config.json that these samplers read. */
export interface SchedulerConfig {
  _class_name?: string;
  num_train_timesteps?: number;
  beta_start?: number;
  beta_end?: number;
  beta_schedule?: string;
  trained_betas?: number[] | null;
  prediction_type?: string;
  set_alpha_to_one?: boolean;
  steps_offset?: number;
  timestep_spacing?: string;
  original_inference_steps?: number;
  timestep_scaling?: number;
  clip_sample?: boolean;
  clip_sample_range?: number;
}

export type SchedulerKind = 'lcm' | 'euler';

/** LCMScheduler → 'lcm'; every other class (Euler, PNDM, DDIM, ... from a plain SD export) → Euler discrete. */
export function schedulerKindFor(config: SchedulerConfig): SchedulerKind {
  return config._class_name === 'LCMScheduler' ? 'lcm' : 'euler';
}

/** Betas per the config's schedule; scaled_linear is linear in sqrt(beta), as SD was trained. */
export function betasFor(config: SchedulerConfig): Float64Array {
  const n = config.num_train_timesteps ?? 1000;
  if (config.trained_betas && config.trained_betas.length > 0) return Float64Array.from(config.trained_betas);
  const start = config.beta_start ?? 0.00085;
  const end = config.beta_end ?? 0.012;
  const schedule = config.beta_schedule ?? 'scaled_linear';
  const betas = new Float64Array(n);
  const lerp = (a: number, b: number, i: number): number => (n === 1 ? a : a + ((b - a) * i) / (n - 1));
  if (schedule === 'linear') {
    for (let i = 0; i < n; i++) betas[i] = lerp(start, end, i);
  } else if (schedule === 'scaled_linear') {
    for (let i = 0; i < n; i++) betas[i] = lerp(Math.sqrt(start), Math.sqrt(end), i) ** 2;
  } else if (schedule === 'squaredcos_cap_v2') {
    const alphaBar = (t: number): number => Math.cos(((t + 0.008) / 1.008) * (Math.PI / 2)) ** 2;
    for (let i = 0; i < n; i++) betas[i] = Math.min(1 - alphaBar((i + 1) / n) / alphaBar(i / n), 0.999);
  } else {
    throw new Error(`unsupported beta_schedule '${schedule}'`);
  }
  return betas;
}

export function alphasCumprodFor(config: SchedulerConfig): Float64Array {
  const betas = betasFor(config);
  const out = new Float64Array(betas.length);
  let product = 1;
  for (let i = 0; i < betas.length; i++) {
    product *= 1 - betas[i]!;
    out[i] = product;
  }
  return out;
}

/** Where multistep LCM draws its re-noising samples (SeededRandom in production). */
export interface GaussianSource {
  /** Writes the next `out.length` standard normal samples into `out`. */
  fillGaussian(out: Float32Array): void;
}

export interface StepResult {
  prevSample: Float32Array;
  /** The model's current estimate of the clean latents (what LCM decodes). */
  denoised: Float32Array;
}

export interface DiffusionScheduler {
  readonly kind: SchedulerKind;
  /** Timesteps handed to the UNet, one per step (floats for Euler linspace spacing). */
  readonly timesteps: readonly number[];
  readonly initNoiseSigma: number;
  /** `out`, when given, receives the scaled sample (it may be returned unused when no scaling applies). */
  scaleModelInput(sample: Float32Array, stepIndex: number, out?: Float32Array): Float32Array;
  /**
   * `out`, when given, receives the results instead of fresh arrays; out.prevSample may be `sample` itself
   * (every value depends only on the same index). The returned denoised is then out.denoised.
   */
  step(
    modelOutput: Float32Array,
    stepIndex: number,
    sample: Float32Array,
    rng: GaussianSource,
    out?: StepResult,
  ): StepResult;
}

function predictionType(config: SchedulerConfig): 'epsilon' | 'v_prediction' | 'sample' {
  const p = config.prediction_type ?? 'epsilon';
  if (p === 'epsilon' || p === 'v_prediction' || p === 'sample') return p;
  throw new Error(`unsupported prediction_type '${p}'`);
}

/** Latent consistency model sampler (diffusers LCMScheduler, multistep). */
export class LcmScheduler implements DiffusionScheduler {
  readonly kind = 'lcm' as const;
  readonly initNoiseSigma = 1;
  readonly timesteps: readonly number[];
  private readonly alphasCumprod: Float64Array;
  private readonly finalAlphaCumprod: number;
  private readonly timestepScaling: number;
  private readonly prediction: 'epsilon' | 'v_prediction' | 'sample';
  /** diffusers fixes sigma_data at 0.5 for the consistency boundary condition. */
  static readonly SIGMA_DATA = 0.5;

  constructor(
    private readonly config: SchedulerConfig,
    numInferenceSteps: number,
  ) {
    this.alphasCumprod = alphasCumprodFor(config);
    this.finalAlphaCumprod = (config.set_alpha_to_one ?? true) ? 1 : this.alphaCumprodAt(0);
    this.timestepScaling = config.timestep_scaling ?? 10;
    this.prediction = predictionType(config);
    this.timesteps = LcmScheduler.timestepsFor(config, numInferenceSteps);
  }

  /**
   * The LCM schedule: the `original_inference_steps` (50) evenly skipped training timesteps
   * k-1, 2k-1, ... (k = train/original), reversed, then `steps` of them picked at floor(linspace) indices.
   */
  static timestepsFor(config: SchedulerConfig, steps: number): number[] {
    const train = config.num_train_timesteps ?? 1000;
    const original = config.original_inference_steps ?? 50;
    if (!Number.isInteger(steps) || steps < 1) throw new RangeError('steps must be a positive integer');
    if (steps > original) {
      throw new RangeError(`LCM steps (${steps}) cannot exceed original_inference_steps (${original})`);
    }
    const k = Math.floor(train / original);
    const origin: number[] = [];
    for (let i = original; i >= 1; i--) origin.push(i * k - 1);
    const out: number[] = [];
    // i < steps <= original = origin.length, so the index stays in range.
    for (let i = 0; i < steps; i++) out.push(origin[Math.floor((i * origin.length) / steps)]!);
    return out;
  }

  /** Consistency-model boundary condition: c_skip → 1 and c_out → 0 as t → 0. */
  boundaryScalings(timestep: number): { cSkip: number; cOut: number } {
    const scaled = timestep * this.timestepScaling;
    const sd2 = LcmScheduler.SIGMA_DATA ** 2;
    return { cSkip: sd2 / (scaled ** 2 + sd2), cOut: scaled / Math.sqrt(scaled ** 2 + sd2) };
  }

  scaleModelInput(sample: Float32Array): Float32Array {
    return sample;
  }

  /** alphas_cumprod[t]; throws when the schedule does not reach t (a config whose timesteps exceed its betas). */
  private alphaCumprodAt(t: number): number {
    const alpha = this.alphasCumprod[t];
    if (alpha === undefined) {
      throw new RangeError(`timestep ${t} is outside the ${this.alphasCumprod.length}-entry training schedule`);
    }
    return alpha;
  }

  step(
    modelOutput: Float32Array,
    stepIndex: number,
    sample: Float32Array,
    rng: GaussianSource,
    out?: StepResult,
  ): StepResult {
    checkStep(stepIndex, this.timesteps.length, modelOutput, sample);
    checkOut(out, sample);
    const t = this.timesteps[stepIndex]!;
    const isLast = stepIndex === this.timesteps.length - 1;
    const prevT = isLast ? t : this.timesteps[stepIndex + 1]!;
    const alphaT = this.alphaCumprodAt(t);
    const alphaPrev = prevT >= 0 ? this.alphaCumprodAt(prevT) : this.finalAlphaCumprod;
    const sqrtAlpha = Math.sqrt(alphaT);
    const sqrtBeta = Math.sqrt(1 - alphaT);
    const { cSkip, cOut } = this.boundaryScalings(t);
    const clip = this.config.clip_sample ? (this.config.clip_sample_range ?? 1) : Infinity;
    const denoised = out?.denoised ?? new Float32Array(sample.length);
    for (let i = 0; i < sample.length; i++) {
      const x = sample[i]!;
      const m = modelOutput[i]!;
      let x0: number;
      if (this.prediction === 'epsilon') x0 = (x - sqrtBeta * m) / sqrtAlpha;
      else if (this.prediction === 'v_prediction') x0 = sqrtAlpha * x - sqrtBeta * m;
      else x0 = m;
      if (x0 > clip) x0 = clip;
      else if (x0 < -clip) x0 = -clip;
      denoised[i] = cOut * x0 + cSkip * x;
    }
    if (isLast) return { prevSample: denoised, denoised };
    // Multistep LCM re-noises the estimate to the next timestep with fresh noise.
    const a = Math.sqrt(alphaPrev);
    const b = Math.sqrt(1 - alphaPrev);
    const prevSample = out?.prevSample ?? new Float32Array(sample.length);
    rng.fillGaussian(prevSample);
    for (let i = 0; i < sample.length; i++) prevSample[i] = a * denoised[i]! + b * prevSample[i]!;
    return { prevSample, denoised };
  }
}

/** Euler discrete sampler (diffusers EulerDiscreteScheduler, s_churn = 0, linear sigma interpolation). */
export class EulerDiscreteScheduler implements DiffusionScheduler {
  readonly kind = 'euler' as const;
  readonly timesteps: readonly number[];
  /** One more than timesteps: the final sigma is 0. */
  readonly sigmas: readonly number[];
  readonly initNoiseSigma: number;
  private readonly prediction: 'epsilon' | 'v_prediction' | 'sample';

  constructor(config: SchedulerConfig, numInferenceSteps: number) {
    this.prediction = predictionType(config);
    const alphas = alphasCumprodFor(config);
    const trainSigmas = Array.from(alphas, (a) => Math.sqrt((1 - a) / a));
    this.timesteps = EulerDiscreteScheduler.timestepsFor(config, numInferenceSteps);
    this.sigmas = [...this.timesteps.map((t) => interpolate(t, trainSigmas)), 0];
    const maxSigma = Math.max(...this.sigmas);
    const spacing = config.timestep_spacing ?? 'linspace';
    this.initNoiseSigma = spacing === 'linspace' || spacing === 'trailing' ? maxSigma : Math.sqrt(maxSigma ** 2 + 1);
  }

  /** diffusers' three timestep spacings, highest timestep first. */
  static timestepsFor(config: SchedulerConfig, steps: number): number[] {
    const train = config.num_train_timesteps ?? 1000;
    const spacing = config.timestep_spacing ?? 'linspace';
    if (!Number.isInteger(steps) || steps < 1) throw new RangeError('steps must be a positive integer');
    const out: number[] = [];
    if (spacing === 'linspace') {
      for (let i = 0; i < steps; i++) out.push(steps === 1 ? 0 : ((train - 1) * i) / (steps - 1));
      return out.reverse();
    }
    if (spacing === 'leading') {
      const ratio = Math.floor(train / steps);
      for (let i = 0; i < steps; i++) out.push(Math.round(i * ratio) + (config.steps_offset ?? 0));
      return out.reverse();
    }
    if (spacing === 'trailing') {
      const ratio = train / steps;
      for (let i = 0; train - i * ratio > 0; i++) out.push(roundHalfEven(train - i * ratio) - 1);
      return out.slice(0, steps);
    }
    throw new Error(`unsupported timestep_spacing '${spacing}'`);
  }

  scaleModelInput(sample: Float32Array, stepIndex: number, into?: Float32Array): Float32Array {
    checkStepIndex(stepIndex, this.timesteps.length);
    if (into && into.length !== sample.length) throw new RangeError('scaleModelInput: output buffer size differs');
    const scale = 1 / Math.sqrt(this.sigmas[stepIndex]! ** 2 + 1);
    const out = into ?? new Float32Array(sample.length);
    for (let i = 0; i < sample.length; i++) out[i] = sample[i]! * scale;
    return out;
  }

  step(
    modelOutput: Float32Array,
    stepIndex: number,
    sample: Float32Array,
    _rng?: GaussianSource,
    out?: StepResult,
  ): StepResult {
    checkStep(stepIndex, this.timesteps.length, modelOutput, sample);
    checkOut(out, sample);
    // sigmas has one entry more than timesteps, so stepIndex + 1 is in range too.
    const sigma = this.sigmas[stepIndex]!;
    const dt = this.sigmas[stepIndex + 1]! - sigma;
    const vScale = -sigma / Math.sqrt(sigma ** 2 + 1);
    const vSkip = 1 / (sigma ** 2 + 1);
    const denoised = out?.denoised ?? new Float32Array(sample.length);
    const prevSample = out?.prevSample ?? new Float32Array(sample.length);
    for (let i = 0; i < sample.length; i++) {
      const x = sample[i]!;
      const m = modelOutput[i]!;
      let x0: number;
      if (this.prediction === 'epsilon') x0 = x - sigma * m;
      else if (this.prediction === 'v_prediction') x0 = m * vScale + x * vSkip;
      else x0 = m;
      denoised[i] = x0;
      const derivative = (x - x0) / sigma;
      prevSample[i] = x + derivative * dt;
    }
    return { prevSample, denoised };
  }
}

/** numpy.interp over integer abscissae 0..n-1. */
function interpolate(t: number, values: readonly number[]): number {
  if (values.length === 0) throw new RangeError('cannot interpolate an empty training schedule');
  if (t <= 0) return values[0]!;
  if (t >= values.length - 1) return values[values.length - 1]!;
  // 0 < t < n - 1, so lo and lo + 1 both lie in 0..n-1.
  const lo = Math.floor(t);
  const frac = t - lo;
  return values[lo]! * (1 - frac) + values[lo + 1]! * frac;
}

function checkStepIndex(stepIndex: number, steps: number): void {
  if (!Number.isInteger(stepIndex) || stepIndex < 0 || stepIndex >= steps) {
    throw new RangeError(`step index ${stepIndex} is outside 0..${steps - 1}`);
  }
}

/** A valid step index, and a model output that covers every sample element. */
function checkStep(stepIndex: number, steps: number, modelOutput: Float32Array, sample: Float32Array): void {
  checkStepIndex(stepIndex, steps);
  if (modelOutput.length !== sample.length) {
    throw new RangeError(`model output has ${modelOutput.length} values for a sample of ${sample.length}`);
  }
}

/** Reusable result buffers must match the sample, and the estimate cannot share the sample's memory. */
function checkOut(out: StepResult | undefined, sample: Float32Array): void {
  if (!out) return;
  if (out.prevSample.length !== sample.length || out.denoised.length !== sample.length) {
    throw new RangeError('step: output buffers differ in size from the sample');
  }
  if (out.denoised === sample || out.denoised === out.prevSample) {
    throw new RangeError('step: denoised must be its own buffer');
  }
}

/** numpy's round() rounds halves to even. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

export function createScheduler(config: SchedulerConfig, steps: number): DiffusionScheduler {
  return schedulerKindFor(config) === 'lcm'
    ? new LcmScheduler(config, steps)
    : new EulerDiscreteScheduler(config, steps);
}

/**
 * LCM's guidance-scale embedding (diffusers get_guidance_scale_embedding), fed to the UNet as
 * `timestep_cond`: sinusoidal features of w*1000 where the pipeline passes w = guidance_scale - 1.
 */
export function guidanceScaleEmbedding(w: number, dim: number): Float32Array {
  const scaled = w * 1000;
  const half = Math.floor(dim / 2);
  const out = new Float32Array(dim);
  const base = half > 1 ? Math.log(10000) / (half - 1) : 0;
  for (let i = 0; i < half; i++) {
    const arg = scaled * Math.exp(-base * i);
    out[i] = Math.sin(arg);
    out[half + i] = Math.cos(arg);
  }
  return out;
}
