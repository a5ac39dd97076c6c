/**
 * RKNN Stable Diffusion server (tinyagentos rknn_sd_server). Load state comes ONLY from
 * `GET /health` `pipeline_loaded`: its `/v1/models` always lists the model, loaded or not.
 * There is no load endpoint (the pipeline lazy-loads on the first generate); unload is
 * `POST /admin/unload`. What its source says and how this adapter meets it: docs/real-servers.md.
 */
import { UnsupportedParameterError } from '../../common/errors.js';
import type { ProviderCapabilities, UnloadResult } from '../model-provider.js';
import type { ImageGenerationRequest, ImageGenerationResponse } from '../openai-types.js';
import { isRecord, parseJson } from './http-client.js';
import { ProbeAnsweredError, type ProbeSnapshot, RemoteProvider } from './remote-provider.js';
import { isConnectionFailure } from './upstream-errors.js';

/** The server's pydantic bounds (`GenerateRequest.steps`): outside them it answers 422. */
const STEPS_MAX = 20;

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
  /** Upstream names of the generates this provider has in flight: while one runs, the server answers nothing else. */
  private readonly generating = new Map<string, number>();

  protected defaultPurpose(): string {
    return 'image-generation';
  }

  protected async probe(signal: AbortSignal): Promise<ProbeSnapshot> {
    let answer;
    try {
      answer = await this.probeGet('/health', signal, (s) => s === 200);
    } catch (err) {
      // The server runs the pipeline on its event loop, so /health goes unanswered for the whole of a
      // generate (15-35 s on an RK3588). A probe that connected but got no answer while our own generate
      // is running has seen a busy server with its pipeline loaded, not a dead one. A refused connection
      // or an answered error still counts.
      if (this.generating.size > 0 && !(err instanceof ProbeAnsweredError) && !isConnectionFailure(err)) {
        return this.busySnapshot();
      }
      throw err;
    }
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

  private busySnapshot(): ProbeSnapshot {
    const names = [...this.generating.keys()];
    return {
      serverState: 'ok',
      discovered: names.map((upstreamName) => ({ upstreamName, purpose: 'image-generation' })),
      states: names.map((upstreamName) => ({ upstreamName, state: 'loaded', backendIdleSeconds: 0 })),
      defaultState: 'loaded',
      observedVia: 'POST /v1/images/generations in flight (GET /health unanswered while it generates)',
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
    if (req.steps !== undefined && req.steps > STEPS_MAX) {
      throw new UnsupportedParameterError(modelId, 'steps', `steps must be at most ${STEPS_MAX} on rknn-sd`);
    }
    const upstream = this.upstreamOf(modelId);
    this.generating.set(upstream, (this.generating.get(upstream) ?? 0) + 1);
    try {
      return await this.generateSequentially(modelId, req, signal);
    } finally {
      const left = (this.generating.get(upstream) ?? 1) - 1;
      if (left > 0) this.generating.set(upstream, left);
      else this.generating.delete(upstream);
    }
  }

  private async generateSequentially(
    modelId: string,
    req: ImageGenerationRequest,
    signal: AbortSignal,
  ): Promise<ImageGenerationResponse> {
    const n = Math.max(1, req.n ?? 1);
    // The server splits `size` as HEIGHTxWIDTH (`height_s, width_s = body.size.split("x")`), the
    // reverse of OpenAI's WIDTHxHEIGHT: swapped here so a 768x512 request comes back landscape.
    const size = req.size ?? '512x512';
    const wh = /^(\d+)x(\d+)$/.exec(size);
    const upstreamSize = wh ? `${wh[2]}x${wh[1]}` : size;
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
        size: upstreamSize,
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
