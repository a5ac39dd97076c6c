/**
 * Ollama. `GET /api/ps` lists exactly the models in memory (with resident and VRAM sizes and when
 * keep_alive will drop them); `GET /api/tags` lists what is on disk (the catalog). Load is
 * `POST /api/generate {model}` with no prompt, unload the same with `keep_alive: 0`. Inference goes
 * through Ollama's OpenAI-compatible `/v1` routes.
 */
import type { ModelPurpose, ProviderCapabilities, UnloadResult } from '../model-provider.js';
import { isRecord, parseJson } from './http-client.js';
import { OpenAiCompatibleProvider } from './openai-compatible.provider.js';
import {
  ProbeAnsweredError,
  type DiscoveredModel,
  type ProbeSnapshot,
  type UpstreamModelState,
} from './remote-provider.js';

interface OllamaDetails {
  format?: string;
  family?: string;
  families?: string[] | null;
  parameter_size?: string;
  quantization_level?: string;
}

interface OllamaPsModel {
  name: string;
  model?: string;
  size?: number;
  digest?: string;
  details?: OllamaDetails;
  expires_at?: string;
  size_vram?: number;
}

interface OllamaTagModel {
  name: string;
  size?: number;
  digest?: string;
  details?: OllamaDetails;
}

export class OllamaProvider extends OpenAiCompatibleProvider {
  readonly kind = 'ollama' as const;
  readonly capabilities: ProviderCapabilities = {
    canObserveLoadState: true,
    canUnload: true,
    canLoad: true,
    remote: true,
  };

  protected defaultPurpose(): string {
    return 'chat';
  }

  /** `llama3` and `llama3:latest` are the same model to Ollama. */
  protected override sameUpstream(a: string, b: string): boolean {
    return withTag(a) === withTag(b);
  }

  protected async probe(signal: AbortSignal): Promise<ProbeSnapshot> {
    const [ps, tags] = await Promise.all([
      this.probeGet('/api/ps', signal, (s) => s === 200),
      this.probeGet('/api/tags', signal, (s) => s === 200),
    ]);
    const running = listOf<OllamaPsModel>(parseJson(ps.text));
    const onDisk = listOf<OllamaTagModel>(parseJson(tags.text));
    if (running === null || onDisk === null)
      throw new ProbeAnsweredError('GET /api/ps or /api/tags answered without models');
    const discovered: DiscoveredModel[] = onDisk.map((m) => ({
      upstreamName: m.name,
      purpose: purposeOf(m.name, m.details),
      sizeBytes: typeof m.size === 'number' ? m.size : null,
      details: detailsOf(m.details, m.digest),
    }));
    const states: UpstreamModelState[] = running.map((m) => {
      const size = typeof m.size === 'number' ? m.size : null;
      const vram = typeof m.size_vram === 'number' ? m.size_vram : null;
      return {
        upstreamName: m.name,
        state: 'loaded',
        sizeBytes: size,
        vramBytes: vram,
        ramBytes: size !== null && vram !== null ? Math.max(0, size - vram) : null,
        expiresAt: isoOrNull(m.expires_at),
        details: detailsOf(m.details, m.digest),
      };
    });
    // A model can be in memory without being on disk any more (deleted while loaded): still report it.
    for (const m of running) {
      if (!discovered.some((d) => this.sameUpstream(d.upstreamName, m.name))) {
        discovered.push({
          upstreamName: m.name,
          purpose: purposeOf(m.name, m.details),
          details: detailsOf(m.details, m.digest),
        });
      }
    }
    return { serverState: 'ok', discovered, states, defaultState: 'unloaded', observedVia: 'GET /api/ps' };
  }

  async load(modelId: string, signal?: AbortSignal): Promise<void> {
    await this.generate({ model: this.upstreamOf(modelId) }, signal);
  }

  async unload(modelId: string): Promise<UnloadResult> {
    const model = this.upstreamOf(modelId);
    const ps = listOf<OllamaPsModel>(await this.http.json<unknown>('GET', '/api/ps', undefined));
    const resident = ps?.find((m) => this.sameUpstream(m.name, model));
    await this.generate({ model, keep_alive: 0 });
    return {
      wasLoaded: resident !== undefined,
      expectedFreedBytes: typeof resident?.size === 'number' ? resident.size : null,
    };
  }

  /** `/api/generate` may answer NDJSON even for these prompt-less calls; any 2xx body is fine. */
  private async generate(body: Record<string, unknown>, signal?: AbortSignal): Promise<void> {
    await this.http.json<unknown>('POST', '/api/generate', { ...body, stream: false }, signal);
  }
}

function withTag(name: string): string {
  return name.includes(':') ? name : `${name}:latest`;
}

function listOf<T extends { name: string }>(body: unknown): T[] | null {
  if (!isRecord(body) || !Array.isArray(body.models)) return null;
  return body.models.filter((m): m is T => isRecord(m) && typeof m.name === 'string');
}

/** Embedding models announce themselves by name (nomic-embed-text, all-minilm) or BERT family. */
function purposeOf(name: string, details: OllamaDetails | undefined): ModelPurpose {
  const families = [details?.family ?? '', ...(details?.families ?? [])].join(' ');
  return /embed|minilm/i.test(name) || /bert|embed/i.test(families) ? 'embedding' : 'chat';
}

function detailsOf(details: OllamaDetails | undefined, digest: string | undefined): Record<string, unknown> {
  return { ...details, ...(digest ? { digest } : {}) };
}

function isoOrNull(value: string | undefined): string | null {
  if (!value) return null;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? null : new Date(ms).toISOString();
}
