/**
 * llama.cpp `llama-server` (behaviour captured from commit f53577432541, see docs/real-servers.md).
 * While it loads its model, every endpoint answers 503 "Loading model". `GET /props` tells the mode
 * (`role: "router"`) and, in single-model mode, whether `--sleep-idle-seconds` freed the weights
 * (`is_sleeping`). Single-model: the served model is loaded unless asleep. Router mode: each
 * `GET /models` entry's `status.value` says loaded/loading/unloaded (`failed` + `exit_code` after a
 * failed load), and `POST /models/load|unload {model}` change it asynchronously.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import {
  ModelLoadFailedError,
  ModelNotFoundError,
  UnloadUnsupportedError,
  UpstreamTimeoutError,
} from '../../common/errors.js';
import type { ObservedState, ProviderCapabilities, UnloadResult } from '../model-provider.js';
import { isRecord, parseJson, upstreamMessage } from './http-client.js';
import { OpenAiCompatibleProvider } from './openai-compatible.provider.js';
import { ProbeAnsweredError, type ProbeSnapshot, type UpstreamModelState } from './remote-provider.js';
import { upstreamHttpError } from './upstream-errors.js';

interface RouterModel {
  id: string;
  status: { value: string; failed?: boolean; exit_code?: number };
}

/** How often a router-mode load or unload is polled until the model reports it done. */
const LOAD_POLL_MS = 250;

export class LlamaServerProvider extends OpenAiCompatibleProvider {
  readonly kind = 'llama-server' as const;
  /** Unknown until the first probe; router mode is the only one where we can load and unload. */
  private routerMode = false;
  /**
   * Router models whose load modelplane gave up on (load_timeout_ms) while the router still said `loading`:
   * shown as failed until the router reports anything else, rather than as a load that is still going.
   */
  private readonly stuckLoads = new Set<string>();

  get capabilities(): ProviderCapabilities {
    return {
      canObserveLoadState: true,
      canUnload: this.routerMode,
      canLoad: this.routerMode,
      // A router with --no-models-autoload refuses an unloaded model (400 "model is not loaded"); with
      // autoload it would load it silently inside the request. Either way modelplane loads it first, visibly.
      loadBeforeUse: this.routerMode,
      remote: true,
    };
  }

  protected defaultPurpose(): string {
    return 'chat';
  }

  protected async probe(signal: AbortSignal): Promise<ProbeSnapshot> {
    // While it loads its model the server answers EVERY endpoint 503 "Loading model" (captured from
    // llama.cpp f53577432541): that is the loading signal, wherever it shows up.
    const props = await this.probeGet('/props', signal, (s) => s === 200 || s === 404 || s === 503);
    if (props.status === 503) return this.loadingOrFailed('/props', props.text);
    const info = props.status === 200 ? parseJson(props.text) : null;
    // `/props` says `role: "router"` in router mode; an empty router answers `/models` with no entries,
    // which must not be taken for a single-model server.
    const router = isRecord(info) && info.role === 'router';
    const models = await this.probeGet('/models', signal, (s) => s === 200 || s === 404 || s === 503);
    if (models.status === 503) return this.loadingOrFailed('/models', models.text);
    const listed = models.status === 200 ? modelList(parseJson(models.text)) : null;
    if (router || (listed !== null && listed.length > 0 && listed.every((m) => isRouterModel(m)))) {
      this.setRouterMode(true);
      return this.routerSnapshot((listed ?? []).filter(isRouterModel));
    }
    this.setRouterMode(false);
    if (props.status === 404) {
      // A server without /props (older builds): /health is the only signal left.
      await this.probeGet('/health', signal, (s) => s === 200);
    }
    // `--sleep-idle-seconds`: the server freed its weights (it wakes on the next request) but /health stays ok.
    const sleeping = isRecord(info) && info.is_sleeping === true;
    const state: ObservedState = sleeping ? 'unloaded' : 'loaded';
    const served = (listed ?? []).map((m) => m.id);
    // The server serves exactly one model; configured ids stand for it when /models said nothing.
    const upstreamNames = served.length > 0 ? served : this.backend.models.map((m) => m.upstreamName ?? m.id);
    return {
      serverState: 'ok',
      discovered: served.map((upstreamName) => ({ upstreamName, purpose: 'chat' })),
      states: upstreamNames.map((upstreamName) => ({
        upstreamName,
        state,
        details: sleeping ? { sleeping: true } : {},
      })),
      defaultState: state,
      observedVia: 'GET /props + GET /models',
      singleModel: true,
    };
  }

  /** A 503: "Loading model" is loading; any other 503 means it cannot serve. */
  private loadingOrFailed(path: string, text: string): ProbeSnapshot {
    const message = upstreamMessage(503, text);
    if (!/loading/i.test(message)) throw new ProbeAnsweredError(`GET ${path} → ${message}`);
    return {
      serverState: 'loading',
      discovered: [],
      states: [],
      defaultState: 'loading',
      observedVia: 'GET /props (503 Loading model)',
    };
  }

  async load(modelId: string, signal?: AbortSignal): Promise<void> {
    if (!this.routerMode) {
      // One model, loaded at server start (or asleep: the request itself wakes it). Say so if it cannot serve.
      const health = await this.http.send('GET', '/health', undefined, signal);
      if (health.status !== 200) throw upstreamHttpError(this.backendName, health.status, health.text);
      return;
    }
    const model = this.upstreamOf(modelId);
    const answer = await this.http.send('POST', '/models/load', { model }, signal);
    // The router answers an unknown model here with its generic 404 "File Not Found": say which model.
    if (answer.status === 404) throw new ModelNotFoundError(modelId);
    // 400 "model is already running": loaded or loading already; wait for it like any other load.
    if (answer.status !== 200 && !(answer.status === 400 && /already running/i.test(answer.text))) {
      throw upstreamHttpError(this.backendName, answer.status, answer.text);
    }
    await this.waitStatus(modelId, model, 'loaded', signal);
  }

  async unload(modelId: string): Promise<UnloadResult> {
    if (!this.routerMode) throw new UnloadUnsupportedError(modelId, this.kind);
    const model = this.upstreamOf(modelId);
    const before = (await this.routerEntry(model))?.status.value ?? null;
    const answer = await this.http.send('POST', '/models/unload', { model });
    // 400 "model is not running": already unloaded, which is what was asked.
    if (answer.status === 400 && /not running/i.test(answer.text))
      return { wasLoaded: false, expectedFreedBytes: null };
    if (answer.status !== 200) throw upstreamHttpError(this.backendName, answer.status, answer.text);
    // The router answers before its child process has exited: the memory is free only once it says so.
    await this.waitStatus(modelId, model, 'unloaded');
    return { wasLoaded: before === 'loaded' || before === 'loading', expectedFreedBytes: null };
  }

  private setRouterMode(router: boolean): void {
    if (router !== this.routerMode)
      this.logger.log(`llama-server at ${this.url} is in ${router ? 'router' : 'single-model'} mode`);
    this.routerMode = router;
  }

  private routerSnapshot(models: RouterModel[]): ProbeSnapshot {
    for (const m of models) if (m.status.value !== 'loading') this.stuckLoads.delete(m.id);
    const states: UpstreamModelState[] = models.map((m) =>
      this.stuckLoads.has(m.id)
        ? {
            upstreamName: m.id,
            state: 'unloaded',
            details: { failed: true, exit_code: null, stuck_loading: true },
          }
        : {
            upstreamName: m.id,
            state: routerState(m.status.value),
            // A failed load leaves the entry `unloaded` with failed/exit_code: kept so every view can show it.
            details: m.status.failed ? { failed: true, exit_code: m.status.exit_code ?? null } : {},
          },
    );
    return {
      serverState: 'ok',
      discovered: models.map((m) => ({ upstreamName: m.id, purpose: 'chat' })),
      states,
      defaultState: 'unloaded',
      observedVia: 'GET /models status',
    };
  }

  private async routerEntry(model: string, signal?: AbortSignal): Promise<RouterModel | null> {
    const list = modelList(await this.http.json<unknown>('GET', '/models', undefined, signal));
    const entry = list?.find((m) => m.id === model);
    return entry && isRouterModel(entry) ? entry : null;
  }

  /**
   * Router loads and unloads are asynchronous upstream: poll `/models` until the model reports `want`,
   * bounded by requestTimeoutMs and the caller's signal. A load whose child process exited
   * (`status.failed`) is a load failure with its exit code; a load still not done after loadTimeoutMs
   * (on the injected clock) is one too: the real router can keep a child that died at start-up `loading`.
   */
  private async waitStatus(
    modelId: string,
    model: string,
    want: 'loaded' | 'unloaded',
    signal?: AbortSignal,
  ): Promise<void> {
    const started = this.clock.nowMs();
    // Real time, not the injectable Clock: this bounds real sleeps between real HTTP polls.
    const deadline = Date.now() + this.backend.requestTimeoutMs;
    if (want === 'loaded') this.stuckLoads.delete(model);
    let sawLoading = false;
    for (let poll = 0; ; poll++) {
      const entry = await this.routerEntry(model, signal);
      if (!entry) throw new ModelNotFoundError(modelId);
      const value = entry.status.value;
      if (value === want) {
        this.logger.log(`'${model}' ${want} in ${Math.round(this.clock.nowMs() - started)} ms`);
        return;
      }
      if (want === 'loaded') {
        if (value === 'loading') sawLoading = true;
        // Right after the request the entry may still carry the previous attempt's status: trust it from the
        // second poll on, or once this attempt was seen loading.
        if ((entry.status.failed || value === 'unloaded') && (sawLoading || poll >= 2)) {
          throw new ModelLoadFailedError(modelId, `llama-server exited with code ${entry.status.exit_code ?? '?'}`);
        }
        if (this.clock.nowMs() - started >= this.backend.loadTimeoutMs) {
          if (value === 'loading') this.stuckLoads.add(model);
          throw new ModelLoadFailedError(
            modelId,
            `llama-server still reports '${value}' after ${this.backend.loadTimeoutMs} ms (load_timeout_ms)`,
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
