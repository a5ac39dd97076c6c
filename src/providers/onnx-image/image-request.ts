import { ValidationFailedError, type FieldIssue } from '../../common/errors.js';
import { REQUEST_LIMITS } from '../../common/request-limits.js';
import type { GenerationParams } from './pipeline.js';
import type { PipelineInfo } from './pipeline-io.js';

/**
 * Request validation for image generation. The HTTP DTO validates too, but the provider is also
 * called from the bus and from code, so it must refuse bad values on its own with the field named.
 */

// The same bounds as the HTTP DTOs: one table (common/request-limits.ts) for every door.
export const MAX_IMAGES = REQUEST_LIMITS.imagesMax;
export const MAX_STEPS = REQUEST_LIMITS.imageStepsMax;
export const MAX_GUIDANCE = REQUEST_LIMITS.imageGuidanceMax;
export const MAX_SIDE = REQUEST_LIMITS.imageSideMax;
export const MAX_PROMPT_CHARS = REQUEST_LIMITS.imagePromptMaxChars;
export const MAX_SEED = REQUEST_LIMITS.seedMax;

export const DEFAULTS = {
  lcm: { steps: 4, guidanceScale: 8 },
  euler: { steps: 20, guidanceScale: 7.5 },
} as const;

/** The request after type/range checks, before model-specific defaults. */
export interface ParsedImageRequest {
  prompt: string;
  negativePrompt: string;
  n: number;
  size: { width: number; height: number } | null;
  steps: number | null;
  guidanceScale: number | null;
  seed: number | null;
}

function isInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v);
}

/** Checks every field and reports all problems at once. */
export function parseImageRequest(req: unknown): ParsedImageRequest {
  const issues: FieldIssue[] = [];
  if (typeof req !== 'object' || req === null || Array.isArray(req)) {
    throw new ValidationFailedError([{ field: 'body', value: req, rule: 'isObject', message: 'must be an object' }]);
  }
  const r = req as Record<string, unknown>;
  const issue = (field: string, rule: string, message: string): void => {
    issues.push({ field, value: r[field], rule, message });
  };

  if (r.model !== undefined && typeof r.model !== 'string') issue('model', 'isString', 'must be a string');

  let prompt = '';
  if (typeof r.prompt !== 'string') issue('prompt', 'isString', 'must be a string');
  else if (r.prompt.trim().length === 0) issue('prompt', 'isNotEmpty', 'must not be empty');
  else if (r.prompt.length > MAX_PROMPT_CHARS)
    issue('prompt', 'maxLength', `must be at most ${MAX_PROMPT_CHARS} characters`);
  else prompt = r.prompt;

  let negativePrompt = '';
  if (r.negative_prompt !== undefined && r.negative_prompt !== null) {
    if (typeof r.negative_prompt !== 'string') issue('negative_prompt', 'isString', 'must be a string');
    else if (r.negative_prompt.length > MAX_PROMPT_CHARS) {
      issue('negative_prompt', 'maxLength', `must be at most ${MAX_PROMPT_CHARS} characters`);
    } else negativePrompt = r.negative_prompt;
  }

  let n = 1;
  if (r.n !== undefined && r.n !== null) {
    if (!isInt(r.n) || r.n < 1 || r.n > MAX_IMAGES) issue('n', 'range', `must be an integer from 1 to ${MAX_IMAGES}`);
    else n = r.n;
  }

  let size: ParsedImageRequest['size'] = null;
  if (r.size !== undefined && r.size !== null) {
    const match = typeof r.size === 'string' ? /^(\d{1,5})x(\d{1,5})$/.exec(r.size) : null;
    if (!match) issue('size', 'format', 'must be "WIDTHxHEIGHT", e.g. "512x512"');
    else {
      const width = Number(match[1]);
      const height = Number(match[2]);
      if (width % 8 !== 0 || height % 8 !== 0 || width < 8 || height < 8) {
        issue('size', 'multipleOf8', 'width and height must be positive multiples of 8');
      } else if (width > MAX_SIDE || height > MAX_SIDE) {
        issue('size', 'max', `width and height must be at most ${MAX_SIDE}`);
      } else size = { width, height };
    }
  }

  if (r.response_format !== undefined && r.response_format !== null && r.response_format !== 'b64_json') {
    issue('response_format', 'isIn', 'only "b64_json" is supported');
  }

  let steps: number | null = null;
  if (r.steps !== undefined && r.steps !== null) {
    if (!isInt(r.steps) || r.steps < 1 || r.steps > MAX_STEPS)
      issue('steps', 'range', `must be an integer from 1 to ${MAX_STEPS}`);
    else steps = r.steps;
  }

  let guidanceScale: number | null = null;
  if (r.guidance_scale !== undefined && r.guidance_scale !== null) {
    const g = r.guidance_scale;
    if (typeof g !== 'number' || !Number.isFinite(g) || g < 0 || g > MAX_GUIDANCE) {
      issue('guidance_scale', 'range', `must be a number from 0 to ${MAX_GUIDANCE}`);
    } else guidanceScale = g;
  }

  let seed: number | null = null;
  if (r.seed !== undefined && r.seed !== null) {
    if (!isInt(r.seed) || r.seed < 0 || r.seed > MAX_SEED)
      issue('seed', 'range', `must be an integer from 0 to ${MAX_SEED}`);
    else seed = r.seed;
  }

  if (issues.length > 0) throw new ValidationFailedError(issues);
  return { prompt, negativePrompt, n, size, steps, guidanceScale, seed };
}

/** Fills defaults from the loaded model and checks what only the model knows (fixed export sizes). */
export function resolveGenerationParams(
  parsed: ParsedImageRequest,
  info: PipelineInfo,
  seed: number,
): GenerationParams {
  const defaults = DEFAULTS[info.scheduler];
  const width = parsed.size?.width ?? info.defaultWidth;
  const height = parsed.size?.height ?? info.defaultHeight;
  const issues: FieldIssue[] = [];
  if (width % info.vaeScaleFactor !== 0 || height % info.vaeScaleFactor !== 0) {
    issues.push({
      field: 'size',
      value: `${width}x${height}`,
      rule: 'multipleOf',
      message: `width and height must be multiples of ${info.vaeScaleFactor} for this model`,
    });
  } else if (
    info.fixedLatentSize &&
    (height / info.vaeScaleFactor !== info.fixedLatentSize.height ||
      width / info.vaeScaleFactor !== info.fixedLatentSize.width)
  ) {
    issues.push({
      field: 'size',
      value: `${width}x${height}`,
      rule: 'isIn',
      message: `this export only supports ${info.defaultWidth}x${info.defaultHeight}`,
    });
  }
  const steps = parsed.steps ?? Math.min(defaults.steps, info.maxSteps);
  if (steps > info.maxSteps) {
    issues.push({
      field: 'steps',
      value: steps,
      rule: 'max',
      message: `must be at most ${info.maxSteps} for this model`,
    });
  }
  if (issues.length > 0) throw new ValidationFailedError(issues);
  return {
    prompt: parsed.prompt,
    negativePrompt: parsed.negativePrompt,
    n: parsed.n,
    width,
    height,
    steps,
    guidanceScale: parsed.guidanceScale ?? defaults.guidanceScale,
    seed,
  };
}

/**
 * Refuses a request whose pixels × steps × images exceed `maxWork` (limits.image_max_work): time and memory of
 * one request grow with all three (2048² × 50 steps × 4 images once took 50 s and 1.1 GB, and held the queue).
 * Before the model is loaded only what the request states is known (`steps` then defaults to 1).
 */
export function checkImageWork(
  req: { width: number; height: number; steps: number | null; n: number },
  maxWork: number,
): void {
  const work = req.width * req.height * (req.steps ?? 1) * req.n;
  if (work <= maxWork) return;
  throw new ValidationFailedError([
    {
      field: 'size',
      value: `${req.width}x${req.height}, steps ${req.steps ?? 'default'}, n ${req.n}`,
      rule: 'maxWork',
      message: `width × height × steps × n is ${work}, over this server's limit of ${maxWork} (limits.image_max_work); ask for fewer pixels, steps or images`,
    },
  ]);
}
