/**
 * stable-diffusion.cpp style server (A1111-compatible API). Nothing in its API says whether the
 * weights are in memory, so every model's state is `unknown` (never `loaded`) and unload is
 * unsupported. The catalog comes from `GET /sdapi/v1/options` `sd_model_checkpoint`.
 */
import { UnloadUnsupportedError } from '../../common/errors.js';
import type { ProviderCapabilities, UnloadResult } from '../model-provider.js';
import type { ImageGenerationRequest, ImageGenerationResponse } from '../openai-types.js';
import { isRecord, parseJson } from './http-client.js';
import { ProbeAnsweredError, type ProbeSnapshot, RemoteProvider } from './remote-provider.js';

interface Txt2ImgResponse {
  images?: string[];
  parameters?: Record<string, unknown>;
  /** A JSON string (A1111) carrying the seed actually used. */
  info?: string;
}

export class SdCppProvider extends RemoteProvider {
  readonly kind = 'sd-cpp' as const;
  readonly capabilities: ProviderCapabilities = {
    canObserveLoadState: false,
    canUnload: false,
    canLoad: false,
    remote: true,
  };

  protected defaultPurpose(): string {
    return 'image-generation';
  }

  /**
   * sd-server reports its checkpoint as the model file's name without the extension
   * (`sd-v1-5-pruned-emaonly`); a config naming the file (`….safetensors`) means the same model.
   */
  protected override sameUpstream(a: string, b: string): boolean {
    return withoutWeightsExtension(a) === withoutWeightsExtension(b);
  }

  protected async probe(signal: AbortSignal): Promise<ProbeSnapshot> {
    const answer = await this.probeGet('/sdapi/v1/options', signal, (s) => s === 200);
    const options = parseJson(answer.text);
    if (!isRecord(options)) throw new ProbeAnsweredError('GET /sdapi/v1/options answered a body that is not JSON');
    const checkpoint = typeof options.sd_model_checkpoint === 'string' ? options.sd_model_checkpoint : null;
    return {
      serverState: 'ok',
      discovered: checkpoint
        ? [{ upstreamName: checkpoint, purpose: 'image-generation', details: { checkpoint } }]
        : [],
      states: [],
      defaultState: 'unknown',
      observedVia: 'GET /sdapi/v1/options (load state not observable)',
      singleModel: true,
    };
  }

  /** The server loads its checkpoint itself; there is nothing to ask for. Resolves when it answers. */
  async load(_modelId: string, signal?: AbortSignal): Promise<void> {
    await this.http.json<unknown>('GET', '/sdapi/v1/options', undefined, signal);
  }

  async unload(modelId: string): Promise<UnloadResult> {
    throw new UnloadUnsupportedError(modelId, this.kind);
  }

  async generateImages(
    modelId: string,
    req: ImageGenerationRequest,
    signal: AbortSignal,
  ): Promise<ImageGenerationResponse> {
    const [width, height] = parseSize(req.size);
    const body = {
      prompt: req.prompt,
      negative_prompt: req.negative_prompt ?? '',
      ...(req.steps !== undefined ? { steps: req.steps } : {}),
      ...(req.guidance_scale !== undefined ? { cfg_scale: req.guidance_scale } : {}),
      width,
      height,
      seed: req.seed ?? -1,
      batch_size: Math.max(1, req.n ?? 1),
    };
    const started = this.clock.nowMs();
    const res = await this.http.json<Txt2ImgResponse>('POST', '/sdapi/v1/txt2img', body, signal);
    const images = Array.isArray(res.images) ? res.images : [];
    return {
      created: Math.floor(this.clock.epochMs() / 1000),
      data: images.map((b64) => ({ b64_json: b64, revised_prompt: req.prompt })),
      model: modelId,
      usage: {
        elapsed_seconds: Math.round(this.clock.nowMs() - started) / 1000,
        seed: seedFromInfo(res.info) ?? req.seed ?? -1,
      },
    };
  }
}

function parseSize(size: string | undefined): [number, number] {
  const m = /^(\d+)x(\d+)$/.exec(size ?? '');
  return m ? [Number(m[1]), Number(m[2])] : [512, 512];
}

function seedFromInfo(info: string | undefined): number | null {
  if (typeof info !== 'string') return null;
  const parsed = parseJson(info);
  return isRecord(parsed) && typeof parsed.seed === 'number' ? parsed.seed : null;
}

function withoutWeightsExtension(name: string): string {
  return name.replace(/\.(safetensors|ckpt|gguf|pt|pth|bin)$/i, '');
}
