/**
 * What every remote provider shares: the HTTP client, the catalog (configured models merged with
 * what the server reports), init as one probe, and observe() that never throws. Each kind only says
 * how to read its server's OWN load-state signal (`probe`).
 */
import { Logger } from '@nestjs/common';
import type { Clock } from '../../common/clock.js';
import type { BackendConfig } from '../../config/app-config.js';
import type {
  BackendKind,
  ModelDescriptor,
  ModelProvider,
  ModelPurpose,
  Observation,
  ObservedModel,
  ObservedState,
  ProviderCapabilities,
  UnloadResult,
} from '../model-provider.js';
import { type HttpAnswer, networkErrorText, RemoteHttpClient, upstreamMessage } from './http-client.js';

/** A model the server says it can serve (catalog), independent of load state. */
export interface DiscoveredModel {
  upstreamName: string;
  purpose?: ModelPurpose;
  sizeBytes?: number | null;
  details?: Record<string, unknown>;
}

/** The load state the server reports for one of its models. */
export interface UpstreamModelState {
  upstreamName: string;
  state: ObservedState;
  sizeBytes?: number | null;
  vramBytes?: number | null;
  ramBytes?: number | null;
  expiresAt?: string | null;
  backendIdleSeconds?: number | null;
  details?: Record<string, unknown>;
}

/** What one probe of the server found. */
export interface ProbeSnapshot {
  serverState: 'ok' | 'loading';
  discovered: DiscoveredModel[];
  states: UpstreamModelState[];
  /** State of catalog models the server said nothing about. */
  defaultState: ObservedState;
  observedVia: string;
  /**
   * The server holds exactly one model (rknn-sd, sd-cpp, a single-model llama-server): a configured id
   * without `upstream` is that model (an alias), listed once under the configured id, never a second one.
   */
  singleModel?: boolean;
}

/** The server answered, but with something that says it cannot serve (HTTP 500 on /health, ...). */
export class ProbeAnsweredError extends Error {}

export abstract class RemoteProvider implements ModelProvider {
  abstract readonly kind: BackendKind;
  abstract readonly capabilities: ProviderCapabilities;
  readonly backendName: string;
  readonly url: string;
  protected readonly http: RemoteHttpClient;
  protected readonly logger: Logger;
  private catalog: ModelDescriptor[];

  constructor(
    protected readonly backend: BackendConfig,
    protected readonly clock: Clock,
  ) {
    this.backendName = backend.name;
    this.http = new RemoteHttpClient(backend);
    this.url = this.http.baseUrl;
    this.logger = new Logger(`${new.target.name}:${backend.name}`);
    this.catalog = this.mergeCatalog([]);
  }

  /** Purpose of a model nobody configured a purpose for (a method: it is needed during construction). */
  protected abstract defaultPurpose(): ModelPurpose;

  /** Reads the server's own load-state signal. Throws on network failure or an answer that means "cannot serve". */
  protected abstract probe(signal: AbortSignal): Promise<ProbeSnapshot>;

  async init(): Promise<void> {
    const observation = await this.observe(AbortSignal.timeout(this.backend.probeTimeoutMs));
    if (!observation.reachable || observation.serverState === 'error') {
      throw new Error(`${this.kind} backend at ${this.url}: ${observation.error ?? 'unreachable'}`);
    }
    // Reachable but still loading its model (llama-server 503 "Loading model"): cannot serve yet. The same
    // reason a probe gives; the next good probe makes the backend ready.
    if (observation.serverState === 'loading') throw new Error('loading model');
  }

  descriptors(): ModelDescriptor[] {
    return this.catalog;
  }

  async observe(signal: AbortSignal): Promise<Observation> {
    let snapshot: ProbeSnapshot;
    try {
      snapshot = await this.probe(signal);
    } catch (err) {
      if (err instanceof ProbeAnsweredError) {
        return { reachable: true, error: err.message, models: [], serverState: 'error' };
      }
      return { reachable: false, error: networkErrorText(err), models: [], serverState: 'error' };
    }
    this.catalog = this.mergeCatalog(
      [...snapshot.discovered, ...snapshot.states.map((s) => ({ upstreamName: s.upstreamName }))],
      snapshot.singleModel === true,
    );
    return {
      reachable: true,
      error: null,
      serverState: snapshot.serverState,
      models: this.catalog.map((d) => this.observed(d, snapshot)),
    };
  }

  abstract load(modelId: string, signal?: AbortSignal): Promise<void>;
  abstract unload(modelId: string): Promise<UnloadResult>;

  async dispose(): Promise<void> {
    await this.http.close();
  }

  /** Name of a modelplane model at the server. */
  protected upstreamOf(modelId: string): string {
    const known = this.catalog.find((d) => d.id === modelId);
    if (known) return known.upstreamName;
    const configured = this.backend.models.find((m) => m.id === modelId);
    return configured?.upstreamName ?? modelId;
  }

  /** modelplane id for a name the server reports. */
  protected idOf(upstreamName: string): string {
    return this.catalog.find((d) => this.sameUpstream(d.upstreamName, upstreamName))?.id ?? upstreamName;
  }

  /** Whether two server-side names denote the same model (Ollama: `llama3` is `llama3:latest`). */
  protected sameUpstream(a: string, b: string): boolean {
    return a === b;
  }

  /** GET for a probe, throwing ProbeAnsweredError for a status outside `accept`. */
  protected async probeGet(
    path: string,
    signal: AbortSignal,
    accept: (status: number) => boolean,
  ): Promise<HttpAnswer> {
    const answer = await this.http.probe('GET', path, signal);
    if (!accept(answer.status))
      throw new ProbeAnsweredError(`GET ${path} → ${upstreamMessage(answer.status, answer.text)}`);
    return answer;
  }

  /** The response `model` field names the model the client asked for, not the server's alias. */
  protected renamed<T extends { model: string }>(modelId: string, body: T): T {
    return body.model === modelId ? body : { ...body, model: modelId };
  }

  private observed(d: ModelDescriptor, snapshot: ProbeSnapshot): ObservedModel {
    const s = snapshot.states.find((x) => this.sameUpstream(x.upstreamName, d.upstreamName));
    return {
      id: d.id,
      state: s?.state ?? snapshot.defaultState,
      sizeBytes: s?.sizeBytes ?? null,
      vramBytes: s?.vramBytes ?? null,
      ramBytes: s?.ramBytes ?? null,
      expiresAt: s?.expiresAt ?? null,
      backendIdleSeconds: s?.backendIdleSeconds ?? null,
      details: s?.details ?? {},
      observedVia: snapshot.observedVia,
    };
  }

  /** Configured models first (with their id mapping), then every discovered model not configured. */
  private mergeCatalog(discovered: DiscoveredModel[], singleModel = false): ModelDescriptor[] {
    const only = new Set(discovered.map((d) => d.upstreamName));
    const aliasOf = singleModel && only.size === 1 ? [...only][0] : undefined;
    const aliasId = aliasOf === undefined ? undefined : this.backend.models.find((m) => !m.upstreamName)?.id;
    const out: ModelDescriptor[] = this.backend.models.map((m) => {
      const upstreamName = m.upstreamName ?? (m.id === aliasId ? aliasOf! : m.id);
      const found = discovered.find((d) => this.sameUpstream(d.upstreamName, upstreamName));
      return {
        id: m.id,
        upstreamName,
        purpose: m.purpose ?? found?.purpose ?? this.defaultPurpose(),
        expectedSizeBytes: found?.sizeBytes ?? null,
        details: { ...found?.details },
      };
    });
    for (const d of discovered) {
      if (out.some((o) => this.sameUpstream(o.upstreamName, d.upstreamName) || o.id === d.upstreamName)) continue;
      out.push({
        id: d.upstreamName,
        upstreamName: d.upstreamName,
        purpose: d.purpose ?? this.defaultPurpose(),
        expectedSizeBytes: d.sizeBytes ?? null,
        details: { ...d.details },
      });
    }
    return out;
  }
}
