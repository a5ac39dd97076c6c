import {
  alphasCumprodFor,
  betasFor,
  createScheduler,
  EulerDiscreteScheduler,
  guidanceScaleEmbedding,
  LcmScheduler,
  type SchedulerConfig,
} from '../../../src/providers/onnx-image/schedulers.js';

/** The published SD 1.x / LCM Dreamshaper v7 scheduler settings. */
const LCM: SchedulerConfig = {
  _class_name: 'LCMScheduler',
  beta_start: 0.00085,
  beta_end: 0.012,
  beta_schedule: 'scaled_linear',
  num_train_timesteps: 1000,
  original_inference_steps: 50,
  timestep_scaling: 10,
  set_alpha_to_one: true,
  prediction_type: 'epsilon',
};
const EULER: SchedulerConfig = { ...LCM, _class_name: 'EulerDiscreteScheduler', timestep_spacing: 'linspace' };

/** Reference values computed by hand (float64) from the diffusers formulas. */
const AC = {
  0: 0.99915,
  1: 0.9982960278384514,
  259: 0.658975526890813,
  759: 0.05221292829431003,
  999: 0.004660098513077234,
};
const SIGMA = { 0: 0.029167158151720367, 666: 2.9183071154268285, 751: 4.116696479276066, 999: 14.614641229333646 };

const fixedNoise = (value: number) => ({ fillGaussian: (out: Float32Array) => void out.fill(value) });

describe('noise schedule', () => {
  it('scaled_linear betas run from beta_start to beta_end, linear in sqrt(beta)', () => {
    const betas = betasFor(LCM);
    expect(betas).toHaveLength(1000);
    expect(betas[0]).toBeCloseTo(0.00085, 12);
    expect(betas[999]).toBeCloseTo(0.012, 12);
    expect(Math.sqrt(betas[500]!) - Math.sqrt(betas[499]!)).toBeCloseTo(
      (Math.sqrt(0.012) - Math.sqrt(0.00085)) / 999,
      12,
    );
  });

  it('alphas_cumprod is the running product of 1 - beta', () => {
    const ac = alphasCumprodFor(LCM);
    for (const [t, expected] of Object.entries(AC)) expect(ac[Number(t)]).toBeCloseTo(expected, 10);
  });
});

describe('LCMScheduler', () => {
  it('picks timesteps from the 50 skipped original steps (999, 979, ..., 19)', () => {
    expect(LcmScheduler.timestepsFor(LCM, 1)).toEqual([999]);
    expect(LcmScheduler.timestepsFor(LCM, 2)).toEqual([999, 499]);
    expect(LcmScheduler.timestepsFor(LCM, 4)).toEqual([999, 759, 499, 259]);
    expect(LcmScheduler.timestepsFor(LCM, 8)).toEqual([999, 879, 759, 639, 499, 379, 259, 139]);
    expect(LcmScheduler.timestepsFor(LCM, 50)).toEqual(Array.from({ length: 50 }, (_, i) => 999 - 20 * i));
  });

  it('refuses more steps than original_inference_steps', () => {
    expect(() => LcmScheduler.timestepsFor(LCM, 51)).toThrow(/original_inference_steps/);
  });

  it('boundary condition: c_skip = σd²/((10t)²+σd²), c_out = 10t/sqrt((10t)²+σd²)', () => {
    const s = new LcmScheduler(LCM, 4);
    expect(s.boundaryScalings(0)).toEqual({ cSkip: 1, cOut: 0 });
    const at999 = s.boundaryScalings(999);
    expect(at999.cSkip).toBeCloseTo(2.5050075037374525e-9, 18);
    expect(at999.cOut).toBeCloseTo(0.9999999987474963, 14);
    expect(s.boundaryScalings(19).cSkip).toBeCloseTo(0.25 / (190 ** 2 + 0.25), 15);
  });

  it('first step: x0 from epsilon, consistency mix, re-noised to the next timestep', () => {
    const s = new LcmScheduler(LCM, 4);
    expect(s.initNoiseSigma).toBe(1);
    const sample = Float32Array.of(1);
    expect(s.scaleModelInput(sample)).toBe(sample);
    const { denoised, prevSample } = s.step(Float32Array.of(0.5), 0, sample, fixedNoise(0.3));
    // x0 = (1 - sqrt(1-ᾱ999)·0.5)/sqrt(ᾱ999); denoised = c_out·x0 + c_skip·1
    expect(denoised[0]).toBeCloseTo(7.341492923163835, 4);
    // prev = sqrt(ᾱ759)·denoised + sqrt(1-ᾱ759)·noise
    expect(prevSample[0]).toBeCloseTo(1.9696050986986995, 4);
  });

  it('last step returns the denoised estimate without noise', () => {
    const s = new LcmScheduler(LCM, 4);
    const { denoised, prevSample } = s.step(Float32Array.of(0.5), 3, Float32Array.of(1), fixedNoise(100));
    expect(denoised[0]).toBeCloseTo(0.8721815670165284, 5);
    expect(prevSample[0]).toBe(denoised[0]);
  });

  it('is chosen from scheduler_config _class_name', () => {
    expect(createScheduler(LCM, 4).kind).toBe('lcm');
    expect(createScheduler(EULER, 4).kind).toBe('euler');
    expect(createScheduler({ _class_name: 'PNDMScheduler' }, 4).kind).toBe('euler');
  });
});

describe('EulerDiscreteScheduler', () => {
  it('linspace spacing: timesteps from 999 to 0, sigmas from alphas_cumprod, init_noise_sigma = max sigma', () => {
    const s = new EulerDiscreteScheduler(EULER, 4);
    expect(s.timesteps).toEqual([999, 666, 333, 0]);
    expect(s.sigmas[0]).toBeCloseTo(SIGMA[999], 9);
    expect(s.sigmas[1]).toBeCloseTo(SIGMA[666], 9);
    expect(s.sigmas[3]).toBeCloseTo(SIGMA[0], 9);
    expect(s.sigmas[4]).toBe(0);
    expect(s.initNoiseSigma).toBeCloseTo(SIGMA[999], 9);
  });

  it('interpolates sigma linearly between integer timesteps', () => {
    const s = new EulerDiscreteScheduler(EULER, 3);
    expect(s.timesteps).toEqual([999, 499.5, 0]);
    expect(s.sigmas[1]).toBeCloseTo(1.6155825101612464, 9);
  });

  it('leading spacing adds steps_offset and scales init noise by sqrt(σmax²+1)', () => {
    const s = new EulerDiscreteScheduler({ ...EULER, timestep_spacing: 'leading', steps_offset: 1 }, 4);
    expect(s.timesteps).toEqual([751, 501, 251, 1]);
    expect(s.initNoiseSigma).toBeCloseTo(Math.sqrt(SIGMA[751] ** 2 + 1), 9);
  });

  it('trailing spacing counts down from the last training step', () => {
    expect(EulerDiscreteScheduler.timestepsFor({ ...EULER, timestep_spacing: 'trailing' }, 4)).toEqual([
      999, 749, 499, 249,
    ]);
  });

  it('scale_model_input divides by sqrt(σ²+1)', () => {
    const s = new EulerDiscreteScheduler(EULER, 4);
    const scaled = s.scaleModelInput(Float32Array.of(2, -4), 0);
    const k = Math.sqrt(SIGMA[999] ** 2 + 1);
    expect(scaled[0]).toBeCloseTo(2 / k, 6);
    expect(scaled[1]).toBeCloseTo(-4 / k, 6);
  });

  it('step is x + ε·(σ_next − σ); the final step lands on x0 = x − σ·ε', () => {
    const s = new EulerDiscreteScheduler(EULER, 4);
    const first = s.step(Float32Array.of(0.5), 0, Float32Array.of(1));
    expect(first.prevSample[0]).toBeCloseTo(1 + 0.5 * (SIGMA[666] - SIGMA[999]), 5);
    expect(first.denoised[0]).toBeCloseTo(1 - SIGMA[999] * 0.5, 5);
    const last = s.step(Float32Array.of(0.5), 3, Float32Array.of(1));
    expect(last.prevSample[0]).toBeCloseTo(1 - SIGMA[0] * 0.5, 6);
  });
});

describe('guidance-scale embedding (LCM timestep_cond)', () => {
  it('is [sin(w·1000·f_i), cos(w·1000·f_i)] with f_i = exp(-i·ln(10000)/(half-1))', () => {
    const e = guidanceScaleEmbedding(7, 256);
    expect(e).toHaveLength(256);
    expect(e[0]).toBeCloseTo(Math.sin(7000), 3);
    expect(e[128]).toBeCloseTo(Math.cos(7000), 3);
    expect(e[127]).toBeCloseTo(Math.sin(0.7), 6);
    expect(e[255]).toBeCloseTo(Math.cos(0.7), 6);
  });

  it('guidance 1 (w = 0) gives zeros then ones', () => {
    const e = guidanceScaleEmbedding(0, 8);
    expect(Array.from(e)).toEqual([0, 0, 0, 0, 1, 1, 1, 1]);
  });
});
