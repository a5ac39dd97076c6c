/**
 * Per-request memory check for image generation: refuses, before it runs, a request whose estimated peak
 * memory plus the model's own size exceeds the in-process budget (eviction.memory_budget_mb), or without one
 * the machine's memory: past that the process would be killed, taking every other request with it.
 * The work bound (image-request.ts checkImageWork) caps time; this caps memory, which grows with pixels and
 * images but not with steps.
 */
import { readFileSync } from 'node:fs';
import { machineMemoryBytes } from '../../common/machine.js';
import { join } from 'node:path';
import { ValidationFailedError } from '../../common/errors.js';

/** What the estimate needs to know about one exported pipeline (read from its diffusers config files). */
export interface ImageMemoryShape {
  /** Channels of the VAE decoder at full image resolution (block_out_channels[0]). */
  vaeChannels: number;
  /** Attention heads of the UNet's first (full latent resolution) block, or 0 when that block has none. */
  fullResAttentionHeads: number;
}

/** Stable Diffusion 1.x/2.x: what an export without config files most likely is (and the costly case). */
const SD_SHAPE: ImageMemoryShape = { vaeChannels: 128, fullResAttentionHeads: 8 };

const F32 = 4;
/** A decoder resnet block at full resolution holds its input, two conv outputs and the skip sum. */
const LIVE_VAE_MAPS = 4;
/** Conditional and unconditional halves of classifier-free guidance run as one batch. */
const CFG_BATCH = 2;

function readJson(path: string): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(readFileSync(path, 'utf8'));
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

function positiveInt(value: unknown): number | null {
  return typeof value === 'number' && Number.isInteger(value) && value > 0 ? value : null;
}

/** Reads the two numbers from vae_decoder/ and unet/ config.json; SD's values where a file or field is missing. */
export function readImageMemoryShape(root: string): ImageMemoryShape {
  const vae = readJson(join(root, 'vae_decoder', 'config.json'));
  const unet = readJson(join(root, 'unet', 'config.json'));
  const blockOut = Array.isArray(vae?.block_out_channels) ? (vae.block_out_channels as unknown[]) : [];
  const vaeChannels = positiveInt(blockOut[0]) ?? SD_SHAPE.vaeChannels;
  let fullResAttentionHeads = SD_SHAPE.fullResAttentionHeads;
  if (unet) {
    const downBlocks = Array.isArray(unet.down_block_types) ? (unet.down_block_types as unknown[]) : null;
    // diffusers names the head count attention_head_dim in SD 1.x configs (a known misnomer); a list is per block.
    const heads = Array.isArray(unet.attention_head_dim)
      ? (unet.attention_head_dim as unknown[])[0]
      : unet.attention_head_dim;
    if (downBlocks && !(typeof downBlocks[0] === 'string' && downBlocks[0].includes('Attn'))) fullResAttentionHeads = 0;
    else fullResAttentionHeads = positiveInt(heads) ?? (downBlocks ? SD_SHAPE.fullResAttentionHeads : 0);
  }
  return { vaeChannels, fullResAttentionHeads };
}

/**
 * Estimated peak bytes of one request beyond the model's weights. Images are generated one after another, so
 * activations are counted once; every finished image is kept until the answer is sent.
 */
export function imageRequestBytes(
  req: { width: number; height: number; n: number },
  shape: ImageMemoryShape,
  vaeScaleFactor = 8,
): number {
  const pixels = req.width * req.height;
  const vae = pixels * shape.vaeChannels * F32 * LIVE_VAE_MAPS + pixels * 3 * F32;
  // Self-attention over every latent position is quadratic in the latent area.
  const tokens = pixels / (vaeScaleFactor * vaeScaleFactor);
  const attention = CFG_BATCH * shape.fullResAttentionHeads * tokens * tokens * F32;
  // Each image's PNG (uncompressed RGB at worst) and its base64 text.
  const outputs = req.n * pixels * 3 * (1 + 4 / 3);
  return Math.max(vae, attention) + outputs;
}

const MB = 1024 * 1024;

/**
 * Throws 400 validation_failed when the model plus this request would not fit `budgetBytes` (named in the
 * message as `budgetName`). Names `n` when one image would fit but not n of them, otherwise `size`.
 */
export function checkImageMemory(
  req: { width: number; height: number; n: number },
  memory: {
    shape: ImageMemoryShape;
    modelBytes: number;
    budgetBytes: number;
    budgetName: string;
    vaeScaleFactor?: number;
  },
): void {
  if (memory.budgetBytes <= 0) return;
  const need = memory.modelBytes + imageRequestBytes(req, memory.shape, memory.vaeScaleFactor);
  if (need <= memory.budgetBytes) return;
  const oneFits =
    req.n > 1 &&
    memory.modelBytes + imageRequestBytes({ ...req, n: 1 }, memory.shape, memory.vaeScaleFactor) <= memory.budgetBytes;
  const field = oneFits ? 'n' : 'size';
  throw new ValidationFailedError([
    {
      field,
      value: oneFits ? req.n : `${req.width}x${req.height}`,
      rule: 'maxMemory',
      message:
        `${req.width}x${req.height} × ${req.n} image(s) needs about ${Math.ceil(need / MB)} MB with the model loaded, ` +
        `over ${memory.budgetName} (${Math.floor(memory.budgetBytes / MB)} MB); ` +
        `ask for ${oneFits ? 'fewer images' : 'fewer pixels'}`,
    },
  ]);
}

/** What a loaded image model holds: the shape its activations follow and its own bytes. */
export interface ImageModelMemory {
  shape: ImageMemoryShape;
  modelBytes: number;
}

/**
 * checkImageMemory against the memory budget, or against this machine's memory when there is none
 * (`budgetBytes` 0): an SD 2048² request would otherwise meet the OOM killer instead of a 400.
 */
export function checkImageMemoryWithin(
  req: { width: number; height: number; n: number },
  model: ImageModelMemory,
  budgetBytes: number,
  vaeScaleFactor?: number,
): void {
  const budgeted = budgetBytes > 0;
  checkImageMemory(req, {
    ...model,
    budgetBytes: budgeted ? budgetBytes : machineMemoryBytes(),
    budgetName: budgeted
      ? 'the memory budget (eviction.memory_budget_mb)'
      : "this machine's memory (set eviction.memory_budget_mb to choose)",
    vaeScaleFactor,
  });
}

/** Whether `req` passes checkImageMemoryWithin. */
export function fitsImageMemory(
  req: { width: number; height: number; n: number },
  model: ImageModelMemory,
  budgetBytes: number,
  vaeScaleFactor?: number,
): boolean {
  try {
    checkImageMemoryWithin(req, model, budgetBytes, vaeScaleFactor);
    return true;
  } catch {
    return false;
  }
}

/** RGB frames plus, at worst, PNGs of the same size: what a finished turn holds until its images are encoded. */
export function frameBytes(req: { width: number; height: number; n: number }): number {
  return req.n * req.width * req.height * 3 * 2;
}
