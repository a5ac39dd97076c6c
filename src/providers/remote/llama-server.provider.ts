/**
 * llama.cpp `llama-server`. Single-model mode: `GET /health` 200 `{"status":"ok"}` means its model is
 * loaded, 503 "Loading model" means it is loading and the server cannot serve yet. Router mode (several
 * models, detected by `GET /models` entries carrying `status.value`): each model's status says
 * loaded/loading/unloaded, and `POST /models/load|unload {model}` change it.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { UnloadUnsupportedError, UpstreamError, UpstreamTimeoutError } from '../../common/errors.js';
import type { ObservedState, ProviderCapabilities, UnloadResult } from '../model-provider.js';
import { isRecord, parseJson, upstreamMessage } from './http-client.js';
import { OpenAiCompatibleProvider } from './openai-compatible.provider.js';
import { ProbeAnsweredError, type ProbeSnapshot, type UpstreamModelState } from './remote-provider.js';

interface RouterModel {
  id: string;
  status: { value: string; failed?: boolean; exit_code?: number };
}

/** How often a router-mode load is polled until the model reports `loaded`. */
const LOAD_POLL_MS = 250;

export class LlamaServerProvider extends OpenAiCompatibleProvider {
  readonly kind = 'llama-server' as const;
  /** Unknown until the first probe; router mode is the only one where we can load and unload. */
  private routerMode = false;

  get capabilities(): ProviderCapabilities {
    return { canObserveLoadState: true, canUnload: this.routerMode, canLoad: this.routerMode, remote: true };
  }

  protected defaultPurpose(): string {
    return 'chat';
  }

  protected async probe(signal: AbortSignal): Promise<ProbeSnapshot> {
    // `/models` answers during loading too; in single-model mode it lists the one served model.
    const models = await this.probeGet('/models', signal, (s) => s === 200 || s === 404);
    const listed = models.status === 200 ? modelList(parseJson(models.text)) : null;
    const router = listed !== null && listed.length > 0 && listed.every((m) => isRouterModel(m));
    if (router) {
      this.setRouterMode(true);
      return this.routerSnapshot(listed);
    }
    this.setRouterMode(false);
    const names = listed ?? modelList(parseJson((await this.probeGet('/v1/models', signal, (s) => s === 200)).text));
    const health = await this.probeGet('/health', signal, (s) => s === 200 || s === 503);
    const loading = health.status === 503 && /loading/i.test(upstreamMessage(503, health.text));
    if (health.status === 503 && !loading) {
      throw new ProbeAnsweredError(`GET /health → ${upstreamMessage(health.status, health.text)}`);
    }
    const state: ObservedState = loading ? 'loading' : 'loaded';
    const served = (names ?? []).map((m) => m.id);
    // The server serves exactly one model; configured ids stand for it when /v1/models said nothing.
    const upstreamNames = served.length > 0 ? served : this.backend.models.map((m) => m.upstreamName ?? m.id);
    return {
      serverState: loading ? 'loading' : 'ok',
      discovered: served.map((upstreamName) => ({ upstreamName, purpose: 'chat' })),
      states: upstreamNames.map((upstreamName) => ({ upstreamName, state })),
      defaultState: state,
      observedVia: 'GET /health',
    };
  }

  async load(modelId: string, signal?: AbortSignal): Promise<void> {
    if (!this.routerMode) {
      // One model, loaded at server start: nothing to ask for, but say so if it cannot serve.
      const health = await this.http.send('GET', '/health', undefined, signal);
      if (health.status !== 200) {
        throw new UpstreamError(this.backendName, upstreamMessage(health.status, health.text), health.status);
      }
      return;
    }
    const model = this.upstreamOf(modelId);
    const answer = await this.http.send('POST', '/models/load', { model }, signal);
    // 400 "model is already running": loaded or loading already; wait for it like any other load.
    if (answer.status !== 200 && !(answer.status === 400 && /already running/i.test(answer.text))) {
      throw new UpstreamError(this.backendName, upstreamMessage(answer.status, answer.text), answer.status);
    }
    await this.waitLoaded(model, signal);
  }

  async unload(modelId: string): Promise<UnloadResult> {
    if (!this.routerMode) throw new UnloadUnsupportedError(modelId, this.kind);
    const model = this.upstreamOf(modelId);
    const before = await this.routerStatus(model);
    const answer = await this.http.send('POST', '/models/unload', { model });
    // 400 "model is not running": already unloaded, which is what was asked.
    if (answer.status === 400 && /not running/i.test(answer.text))
      return { wasLoaded: false, expectedFreedBytes: null };
    if (answer.status !== 200) {
      throw new UpstreamError(this.backendName, upstreamMessage(answer.status, answer.text), answer.status);
    }
    return { wasLoaded: before === 'loaded' || before === 'loading', expectedFreedBytes: null };
  }

  private setRouterMode(router: boolean): void {
    if (router !== this.routerMode)
      this.logger.log(`llama-server at ${this.url} is in ${router ? 'router' : 'single-model'} mode`);
    this.routerMode = router;
  }

  private routerSnapshot(models: RouterModel[]): ProbeSnapshot {
    const states: UpstreamModelState[] = models.map((m) => ({
      upstreamName: m.id,
      state: routerState(m.status.value),
      details: m.status.failed ? { failed: true, exit_code: m.status.exit_code ?? null } : {},
    }));
    return {
      serverState: 'ok',
      discovered: models.map((m) => ({ upstreamName: m.id, purpose: 'chat' })),
      states,
      defaultState: 'unloaded',
      observedVia: 'GET /models status',
    };
  }

  private async routerStatus(model: string, signal?: AbortSignal): Promise<string | null> {
    const list = modelList(await this.http.json<unknown>('GET', '/models', undefined, signal));
    const entry = list?.find((m) => m.id === model);
    return entry && isRouterModel(entry) ? entry.status.value : null;
  }

  /** Router loads are asynchronous upstream: poll until `loaded`, bounded by requestTimeoutMs and the caller's signal. */
  private async waitLoaded(model: string, signal?: AbortSignal): Promise<void> {
    const started = this.clock.nowMs();
    // Real time, not the injectable Clock: this bounds real sleeps between real HTTP polls.
    const deadline = Date.now() + this.backend.requestTimeoutMs;
    let sawLoading = false;
    for (;;) {
      const list = modelList(await this.http.json<unknown>('GET', '/models', undefined, signal));
      const entry = list?.find((m) => m.id === model);
      if (entry && isRouterModel(entry)) {
        if (entry.status.value === 'loaded') {
          this.logger.log(`'${model}' loaded in ${Math.round(this.clock.nowMs() - started)} ms`);
          return;
        }
        if (entry.status.value === 'loading') sawLoading = true;
        // 'unloaded' right after the request may only mean the router has not picked it up yet.
        if (entry.status.failed || (sawLoading && entry.status.value === 'unloaded')) {
          throw new UpstreamError(
            this.backendName,
            `model '${model}' failed to load (exit code ${entry.status.exit_code ?? '?'})`,
          );
        }
      }
      if (Date.now() >= deadline) throw new UpstreamTimeoutError(this.backendName, this.backend.requestTimeoutMs);
      await sleep(LOAD_POLL_MS, undefined, { signal });
    }
  }
}

function modelList(body: unknown): { id: string; status?: unknown }[] | null {
  if (!isRecord(body) || !Array.isArray(body.data)) return null;
  return body.data.filter((m): m is { id: string } => isRecord(m) && typeof m.id === 'string');
}

function isRouterModel(m: { status?: unknown }): m is RouterModel {
  return isRecord(m.status) && typeof m.status.value === 'string';
}

function routerState(value: string): ObservedState {
  if (value === 'loaded') return 'loaded';
  if (value === 'loading' || value === 'downloading') return 'loading';
  return 'unloaded';
}
