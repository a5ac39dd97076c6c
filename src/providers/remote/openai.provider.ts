/**
 * OpenAI-compatible servers (vLLM and others). Such a server serves exactly the models it was
 * started with, so "healthy and listed in /v1/models" means loaded. It cannot load or unload.
 */
import { UnloadUnsupportedError, UpstreamError } from '../../common/errors.js';
import type { ProviderCapabilities, UnloadResult } from '../model-provider.js';
import { isRecord, parseJson } from './http-client.js';
import { OpenAiCompatibleProvider } from './openai-compatible.provider.js';
import { ProbeAnsweredError, type ProbeSnapshot } from './remote-provider.js';

export class OpenAiProvider extends OpenAiCompatibleProvider {
  readonly kind = 'openai' as const;
  readonly capabilities: ProviderCapabilities = {
    canObserveLoadState: true,
    canUnload: false,
    canLoad: false,
    remote: true,
  };

  protected defaultPurpose(): string {
    return 'chat';
  }

  protected async probe(signal: AbortSignal): Promise<ProbeSnapshot> {
    // Not every OpenAI-compatible server has /health; a 404 there leaves /v1/models as the liveness signal.
    const health = await this.probeGet('/health', signal, (s) => s === 200 || s === 404);
    const models = await this.probeGet('/v1/models', signal, (s) => s === 200);
    const body = parseJson(models.text);
    if (!isRecord(body) || !Array.isArray(body.data))
      throw new ProbeAnsweredError('GET /v1/models answered without data');
    const served = body.data
      .filter((m): m is { id: string } => isRecord(m) && typeof m.id === 'string')
      .map((m) => m.id);
    return {
      serverState: 'ok',
      discovered: served.map((upstreamName) => ({ upstreamName })),
      states: served.map((upstreamName) => ({ upstreamName, state: 'loaded' })),
      // Configured but not served: this server will not serve it until restarted with it.
      defaultState: 'unloaded',
      observedVia: health.status === 200 ? 'GET /health + GET /v1/models' : 'GET /v1/models (no /health)',
    };
  }

  /** Nothing to load: resolves when the model is served. */
  async load(modelId: string, signal?: AbortSignal): Promise<void> {
    const body = await this.http.json<{ data?: { id?: string }[] }>('GET', '/v1/models', undefined, signal);
    const upstream = this.upstreamOf(modelId);
    if (!body.data?.some((m) => m.id === upstream)) {
      throw new UpstreamError(this.backendName, `model '${upstream}' is not served by ${this.url}`);
    }
  }

  async unload(modelId: string): Promise<UnloadResult> {
    throw new UnloadUnsupportedError(modelId, this.kind);
  }
}
