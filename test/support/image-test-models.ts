/** Writes the tiny ONNX image pipelines into TEST_MODELS_DIR (idempotent, atomic: safe from parallel workers). */
import { join } from 'node:path';
import { writeTinyPipeline } from '../../src/demo/tiny-image-pipeline.js';
import { TEST_MODELS_DIR } from './test-paths.js';

/** LCM export: int64 timestep, timestep_cond guidance embedding, LCMScheduler. Default image 64x64. */
export const TINY_LCM_DIR = join(TEST_MODELS_DIR, 'tiny-lcm');
/** Plain SD-style export: float32 timestep, no timestep_cond (classifier-free guidance), EulerDiscreteScheduler. */
export const TINY_EULER_DIR = join(TEST_MODELS_DIR, 'tiny-euler');

export interface ImageTestModels {
  lcm: string;
  euler: string;
}

export async function ensureImageTestModels(): Promise<ImageTestModels> {
  return {
    lcm: writeTinyPipeline(TINY_LCM_DIR, { scheduler: 'lcm' }),
    euler: writeTinyPipeline(TINY_EULER_DIR, { scheduler: 'euler', timestepCond: false, timestepType: 'float32' }),
  };
}
