/**
 * Another modelplane node as a backend (a fleet peer). Observed like every remote kind, from the peer's own
 * views: GET /health/ready (can it serve), /api/fleet/node (its name), /api/models (catalog with states) and
 * /api/models/loaded (its entries, kept whole for the fleet view). Only the peer's OWN models count: models
 * it sees on its peers are left out, so two nodes that are each other's peer never echo each other.
 * Every request carries `x-modelplane-forwarded`, so the peer serves it itself and never forwards it again.
 */
import type { Clock } from '../../common/clock.js';
import { UpstreamError } from '../../common/errors.js';
import type { BackendConfig } from '../../config/app-config.js';
import type { ImageGenerationRequest, ImageGenerationResponse } from '../openai-types.js';
import type {
  Observation,
  ObservedState,
  PeerObservation,
  ProviderCapabilities,
  UnloadResult,
} from '../model-provider.js';
import { isRecord, parseJson, RemoteHttpClient } from './http-client.js';
import { OpenAiCompatibleProvider } from './openai-compatible.provider.js';
import { ProbeAnsweredError, type ProbeSnapshot, type UpstreamModelState } from './remote-provider.js';

/** Marks a request that one node already routed: the receiver serves it locally, whatever its own routing says. */
export const FORWARDED_HEADER = 'x-modelplane-forwarded';
/** The node that served an answer. */
export const NODE_HEADER = 'x-modelplane-node';

const MB = 1024 * 1024;

export interface ModelplanePeerOptions {
  /** This node's name, sent in the forwarded header (the peer logs who relayed). */
  selfNode: string;
}

export class ModelplaneProvider extends OpenAiCompatibleProvider {
  readonly kind = 'modelplane' as const;
  readonly capabilities: ProviderCapabilities = {
    canObserveLoadState: true,
    canUnload: true,
    canLoad: true,
    remote: true,
  };
  /** Admin routes of the peer take the admin token, inference routes the API key: two clients. */
  private readonly admin: RemoteHttpClient;
  private peer: PeerObservation | undefined;

  constructor(backend: BackendConfig, clock: Clock, options: ModelplanePeerOptions) {
    const headers = { ...backend.headers, [FORWARDED_HEADER]: options.selfNode };
    super({ ...backend, headers }, clock);
    this.admin = new RemoteHttpClient({ ...backend, headers, apiKey: backend.adminToken ?? null });
  }

  /** The peer's node name from the last probe that reached it (its url's host before that). */
  get nodeName(): string {
    return this.peer?.node ?? new URL(this.url).host;
  }

  protected defaultPurpose(): string {
    return 'chat';
  }

  override async observe(signal: AbortSignal): Promise<Observation> {
    const observation = await super.observe(signal);
    return observation.reachable && observation.serverState === 'ok' && this.peer
      ? { ...observation, peer: this.peer }
      : observation;
  }

  protected async probe(signal: AbortSignal): Promise<ProbeSnapshot> {
    const [ready, node, catalog, loaded] = await Promise.all([
      this.http.probe('GET', '/health/ready', signal),
      this.probeGet('/api/fleet/node', signal, (s) => s === 200),
      this.probeGet('/api/models', signal, (s) => s === 200),
      this.probeGet('/api/models/loaded', signal, (s) => s === 200),
    ]);
    const nodeBody = parseJson(node.text);
    const name = isRecord(nodeBody) && typeof nodeBody.node === 'string' ? nodeBody.node : null;
    if (name === null) throw new ProbeAnsweredError('GET /api/fleet/node answered without a node name');
    const own = (body: unknown, key: string): Record<string, unknown>[] => {
      const list = isRecord(body) && Array.isArray(body[key]) ? body[key] : null;
      if (list === null) throw new ProbeAnsweredError(`GET /api/models answered without ${key}`);
      return list.filter((m): m is Record<string, unknown> => isRecord(m) && m.backend_type !== 'modelplane');
    };
    const models = own(parseJson(catalog.text), 'models');
    const entries = own(parseJson(loaded.text), 'loaded');
    this.peer = { node: name, loaded: entries };
    // The peer's readiness is its own verdict: not ready (starting, draining, every backend down) is not
    // able to serve, counted as a failed probe like any remote server answering 503.
    if (ready.status !== 200) throw new ProbeAnsweredError(`GET /health/ready → ${ready.status}`);
    const states: UpstreamModelState[] = models.flatMap((m) =>
      typeof m.id === 'string'
        ? [
            {
              upstreamName: m.id,
              state: observedState(m.state),
              sizeBytes: typeof m.size_mb === 'number' ? Math.round(m.size_mb * MB) : null,
              // Each node idle-unloads its own models; to this node a peer's model is never idle.
              backendIdleSeconds: 0,
              details: { node: name },
            },
          ]
        : [],
    );
    return {
      serverState: 'ok',
      discovered: models.flatMap((m) =>
        typeof m.id === 'string'
          ? [{ upstreamName: m.id, purpose: typeof m.purpose === 'string' ? m.purpose : undefined }]
          : [],
      ),
      states,
      defaultState: 'unloaded',
      observedVia: 'GET /health/ready + /api/models + /api/models/loaded',
    };
  }

  async load(modelId: string, signal?: AbortSignal): Promise<void> {
    const path = `/api/models/${encodeURIComponent(this.upstreamOf(modelId))}/load`;
    const answer = await this.admin.json<{ state?: unknown }>('POST', path, undefined, signal);
    if (answer.state !== 'loaded' && answer.state !== 'unknown') {
      throw new UpstreamError(this.backendName, `peer ${this.nodeName} answered state '${String(answer.state)}'`);
    }
  }

  async unload(modelId: string): Promise<UnloadResult> {
    const path = `/api/models/${encodeURIComponent(this.upstreamOf(modelId))}/unload`;
    const answer = await this.admin.json<{ was_loaded?: unknown; expected_freed_mb?: unknown }>(
      'POST',
      path,
      undefined,
    );
    return {
      wasLoaded: answer.was_loaded === true,
      expectedFreedBytes: typeof answer.expected_freed_mb === 'number' ? answer.expected_freed_mb * MB : null,
    };
  }

  async generateImages(
    modelId: string,
    req: ImageGenerationRequest,
    signal: AbortSignal,
  ): Promise<ImageGenerationResponse> {
    const body = { ...req, model: this.upstreamOf(modelId) };
    return this.http.json<ImageGenerationResponse>('POST', '/v1/images/generations', body, signal);
  }

  override async dispose(): Promise<void> {
    await Promise.all([super.dispose(), this.admin.close()]);
  }
}

function observedState(state: unknown): ObservedState {
  if (state === 'loaded' || state === 'loading' || state === 'unknown') return state;
  // unloaded, unloading, failed: not resident there (a failed load left nothing behind).
  return 'unloaded';
}
