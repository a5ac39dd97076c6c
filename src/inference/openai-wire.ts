/**
 * The last step before a response leaves /v1: the shapes the official OpenAI API description requires, whatever
 * the provider built. Providers keep their internal shapes (tests and remote peers rely on them); only the edge
 * conforms. Our own measurements go in extra fields (`timings`), never in place of a field OpenAI defines.
 */
import { base64Bytes } from '../providers/image-data.js';
import type { ChatCompletionResponse, ImageGenerationResponse } from '../providers/openai-types.js';

export interface ImagesUsage {
  input_tokens: number;
  output_tokens: number;
  total_tokens: number;
  input_tokens_details: { text_tokens: number; image_tokens: number };
}

export interface ImagesWireResponse {
  created: number;
  data: { b64_json: string; revised_prompt: string }[];
  model: string;
  usage: ImagesUsage;
  /** What the run measured; OpenAI has no field for it. */
  timings: { elapsed_seconds: number; seed: number };
}

export type ChatWireResponse = Omit<ChatCompletionResponse, 'choices'> & {
  choices: (ChatCompletionResponse['choices'][number] & {
    message: ChatCompletionResponse['choices'][number]['message'] & { refusal: string | null };
  })[];
};

/** `message.refusal` is required (null when the model did not refuse); remote answers may lack it. */
export function chatWire(res: ChatCompletionResponse): ChatWireResponse {
  return {
    ...res,
    choices: res.choices.map((choice) => ({
      ...choice,
      message: { ...choice.message, refusal: (choice.message as { refusal?: string | null }).refusal ?? null },
    })),
  };
}

/**
 * OpenAI's image `usage` counts tokens. Diffusion models here are not metered in tokens, so every count is 0 (the
 * shape clients parse, and no made-up numbers); the time taken and the seed to reproduce the image are `timings`.
 */
export function imagesWire(res: ImageGenerationResponse | ImagesWireResponse): ImagesWireResponse {
  // A modelplane peer already answers in this shape.
  if ('timings' in res) return res;
  const { usage, ...rest } = res;
  return {
    ...rest,
    usage: {
      input_tokens: 0,
      output_tokens: 0,
      total_tokens: 0,
      input_tokens_details: { text_tokens: 0, image_tokens: 0 },
    },
    timings: { elapsed_seconds: usage.elapsed_seconds, seed: usage.seed },
  };
}

/**
 * The answer's JSON as bytes, assembled around each image's base64 bytes, when every image has them (in-process
 * images); null otherwise. Base64 needs no JSON escaping, so the bytes go in as they are and the event loop never
 * builds, measures or UTF-8-encodes the megabyte-sized string.
 */
export function imagesBody(wire: ImagesWireResponse): Buffer | null {
  const images = wire.data.map(base64Bytes);
  if (images.length === 0 || images.some((b) => b === undefined)) return null;
  const { data, ...rest } = wire;
  const head = JSON.stringify(rest);
  const parts: Buffer[] = [Buffer.from(`${head === '{}' ? '{' : `${head.slice(0, -1)},`}"data":[`)];
  data.forEach((datum, i) => {
    parts.push(Buffer.from(`${i > 0 ? ',' : ''}{"b64_json":"`), images[i]!);
    parts.push(Buffer.from(`","revised_prompt":${JSON.stringify(datum.revised_prompt)}}`));
  });
  parts.push(Buffer.from(']}'));
  return Buffer.concat(parts);
}
