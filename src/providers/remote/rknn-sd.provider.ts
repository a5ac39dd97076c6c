/**
 * RKNN Stable Diffusion server (tinyagentos rknn_sd_server). Load state comes ONLY from
 * `GET /health` `pipeline_loaded`: its `/v1/models` always lists the model, loaded or not.
 * There is no load endpoint (the pipeline lazy-loads on the first generate); unload is
 * `POST /admin/unload`.
 */
import type { ProviderCapabilities, UnloadResult } from '../model-provider.js';
import type { ImageGenerationRequest, ImageGenerationResponse } from '../openai-types.js';
import { isRecord, parseJson } from './http-client.js';
import { ProbeAnsweredError, type ProbeSnapshot, RemoteProvider } from './remote-provider.js';

interface RknnHealth {
  status?: string;
  model?: string;
  backend?: string;
  runtime?: string;
  pipeline_loaded?: boolean;
  load_error?: string | null;
  idle_seconds?: number | null;
  idle_unload_threshold_s?: number | null;
}

export class RknnSdProvider extends RemoteProvider {
  readonly kind = 'rknn-sd' as const;
  readonly capabilities: ProviderCapabilities = {
    canObserveLoadState: true,
    canUnload: true,
    canLoad: false,
    remote: true,
  };

  protected defaultPurpose(): string {
    return 'image-generation';
  }

  protected async probe(signal: AbortSignal): Promise<ProbeSnapshot> {
    const answer = await this.probeGet('/health', signal, (s) => s === 200);
    const health = parseJson(answer.text);
    if (!isRecord(health) || typeof health.pipeline_loaded !== 'boolean') {
      throw new ProbeAnsweredError('GET /health answered without pipeline_loaded');
    }
    const h = health as RknnHealth;
    const details: Record<string, unknown> = {
      backend: h.backend ?? null,
      runtime: h.runtime ?? null,
      load_error: h.load_error ?? null,
      idle_unload_threshold_s: h.idle_unload_threshold_s ?? null,
    };
    const name = typeof h.model === 'string' ? h.model : null;
    return {
      serverState: 'ok',
      discovered: name ? [{ upstreamName: name, purpose: 'image-generation', details }] : [],
      states: name
        ? [
            {
              upstreamName: name,
              state: h.pipeline_loaded ? 'loaded' : 'unloaded',
              backendIdleSeconds: h.pipeline_loaded && typeof h.idle_seconds === 'number' ? h.idle_seconds : null,
              details,
            },
          ]
        : [],
      defaultState: h.pipeline_loaded ? 'loaded' : 'unloaded',
      observedVia: 'GET /health pipeline_loaded',
      singleModel: true,
    };
  }

  /** No load endpoint upstream: the pipeline loads on the first generate. Resolves when the server answers. */
  async load(_modelId: string, signal?: AbortSignal): Promise<void> {
    await this.http.json<unknown>('GET', '/health', undefined, signal);
  }

  async unload(_modelId: string): Promise<UnloadResult> {
    const res = await this.http.json<{ ok?: boolean; was_loaded?: boolean }>('POST', '/admin/unload', {});
    return { wasLoaded: res.was_loaded === true, expectedFreedBytes: null };
  }

  /** Upstream refuses n != 1 (HTTP 400), so n images are n sequential calls (seeds step by one when given). */
  async generateImages(
    modelId: string,
    req: ImageGenerationRequest,
    signal: AbortSignal,
  ): Promise<ImageGenerationResponse> {
    const n = Math.max(1, req.n ?? 1);
    const out: ImageGenerationResponse = {
      created: 0,
      data: [],
      model: modelId,
      usage: { elapsed_seconds: 0, seed: 0 },
    };
    for (let i = 0; i < n; i++) {
      const body = {
        prompt: req.prompt,
        model: this.upstreamOf(modelId),
        size: req.size ?? '512x512',
        n: 1,
        response_format: 'b64_json',
        ...(req.steps !== undefined ? { steps: req.steps } : {}),
        ...(req.guidance_scale !== undefined ? { guidance_scale: req.guidance_scale } : {}),
        ...(req.seed !== undefined ? { seed: req.seed + i } : {}),
      };
      const res = await this.http.json<ImageGenerationResponse>('POST', '/v1/images/generations', body, signal);
      if (i === 0) {
        out.created = res.created;
        out.usage.seed = res.usage?.seed ?? req.seed ?? 0;
      }
      out.data.push(...res.data);
      out.usage.elapsed_seconds += res.usage?.elapsed_seconds ?? 0;
    }
    out.usage.elapsed_seconds = Math.round(out.usage.elapsed_seconds * 1000) / 1000;
    return out;
  }
}
