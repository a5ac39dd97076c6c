/**
 * The files of a diffusers ONNX export on disk: which must be there, how many bytes the weights take, and the
 * JSON configs and tokenizer the pipeline reads before it opens any session.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ClipTokenizer } from './clip-tokenizer.js';
import type { SchedulerConfig } from './schedulers.js';

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

/** Everything the pipeline reads from the folder besides the three graphs. */
export interface PipelineFiles {
  /** model_index.json, when the export has one (optimum writes it; hand-made folders may not). */
  modelIndex: Record<string, unknown> | null;
  schedulerConfig: SchedulerConfig;
  unetConfig: Record<string, unknown> | null;
  vaeConfig: Record<string, unknown> | null;
  tokenizer: ClipTokenizer;
}

/** Checks the folder and reads its configs and tokenizer; throws a plain Error naming what is missing or bad. */
export async function readPipelineFiles(root: string): Promise<PipelineFiles> {
  if (!existsSync(root) || !statSync(root).isDirectory()) throw new Error(`model folder not found: ${root}`);
  const missing = REQUIRED_FILES.filter((f) => !existsSync(join(root, f)));
  if (missing.length > 0) throw new Error(`model folder ${root} is missing ${missing.join(', ')}`);

  const modelIndex = await readOptionalJson(join(root, 'model_index.json'));
  const schedulerConfig = (await readJson(join(root, 'scheduler/scheduler_config.json'))) as SchedulerConfig;
  const indexScheduler = modelIndex?.scheduler;
  // Some exports name the scheduler class only in model_index.json.
  if (!schedulerConfig._class_name && Array.isArray(indexScheduler) && typeof indexScheduler[1] === 'string') {
    schedulerConfig._class_name = indexScheduler[1];
  }
  const unetConfig = await readOptionalJson(join(root, 'unet/config.json'));
  const vaeConfig = await readOptionalJson(join(root, 'vae_decoder/config.json'));
  const tokenizer = await ClipTokenizer.fromFolder(join(root, 'tokenizer'));
  return { modelIndex, schedulerConfig, unetConfig, vaeConfig, tokenizer };
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
