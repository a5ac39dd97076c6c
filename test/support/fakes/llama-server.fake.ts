/**
 * Fake llama.cpp `llama-server` (CONTRACTS.md §llama-server).
 * Single-model mode: while loading, `/health` and every route but `/models`, `/v1/models` answer 503
 * `{"error":{"code":503,"message":"Loading model","type":"unavailable_error"}}`; then `/health` is 200
 * `{"status":"ok"}`. Router mode: `GET /models` lists each model with `status.value`
 * loaded/loading/unloaded; `POST /models/load|unload {model}` answer `{success:true}` (loads finish
 * asynchronously) or 400/404 in llama.cpp's error shape.
 */
import type { ServerResponse } from 'node:http';
import { type FakeServerControls, sendJson, startFakeHttp } from './fake-http.js';
import { handleOpenAiWire, newWireState, type OpenAiWireState } from './openai-wire.js';

export type RouterStatus = 'loaded' | 'loading' | 'unloaded';

export interface FakeLlamaServerOptions {
  mode?: 'single' | 'router';
  /** Single mode: the served model's name. */
  model?: string;
  /** Single mode: start while the model is still loading. */
  loading?: boolean;
  /** Router mode: models and their initial status. */
  models?: Record<string, RouterStatus>;
  /** Router mode: how long a load takes, ms. */
  loadDelayMs?: number;
  reply?: string;
}

export interface FakeLlamaServer extends FakeServerControls {
  /** Single mode: model loading (503 Loading model) or loaded. */
  setLoading(loading: boolean): void;
  setModelStatus(model: string, status: RouterStatus): void;
  modelStatus(model: string): RouterStatus | undefined;
  /** Router mode: the next load ends with the child process exiting (status unloaded, failed). */
  failNextLoad(): void;
  wire: OpenAiWireState;
}

function llamaError(res: ServerResponse, status: number, message: string): void {
  const type =
    status === 503
      ? 'unavailable_error'
      : status === 404
        ? 'not_found_error'
        : status === 401
          ? 'authentication_error'
          : status >= 500
            ? 'server_error'
            : 'invalid_request_error';
  sendJson(res, status, { error: { code: status, message, type } });
}

export async function startFakeLlamaServer(opts: FakeLlamaServerOptions = {}): Promise<FakeLlamaServer> {
  const mode = opts.mode ?? 'single';
  const singleModel = opts.model ?? 'qwen2.5-0.5b-instruct-q4_k_m.gguf';
  let loading = opts.loading ?? false;
  const statuses = new Map<string, RouterStatus>(Object.entries(opts.models ?? {}));
  const failed = new Set<string>();
  let failNext = false;
  const loadDelayMs = opts.loadDelayMs ?? 20;
  const wire = newWireState(opts.reply ?? 'Hello from llama-server');
  const created = Math.floor(Date.now() / 1000);

  const singleList = (): unknown => ({
    models: [
      {
        name: singleModel,
        model: singleModel,
        modified_at: '',
        size: '',
        digest: '',
        type: 'model',
        description: '',
        tags: [''],
        capabilities: ['completion'],
        parameters: '',
        details: {
          parent_model: '',
          format: 'gguf',
          family: '',
          families: [''],
          parameter_size: '',
          quantization_level: '',
        },
      },
    ],
    object: 'list',
    data: [
      {
        id: singleModel,
        object: 'model',
        created,
        owned_by: 'llamacpp',
        meta: { vocab_type: 2, n_vocab: 151936, n_ctx_train: 32768, n_embd: 896, n_params: 494032768, size: 397807936 },
      },
    ],
  });

  const routerList = (): unknown => ({
    data: [...statuses.entries()].map(([id, value]) => ({
      id,
      aliases: [],
      tags: [],
      object: 'model',
      owned_by: 'llamacpp',
      created,
      status: {
        value,
        args: ['llama-server', '--model', `/models/${id}.gguf`],
        ...(failed.has(id) ? { exit_code: 1, failed: true } : {}),
      },
      architecture: { input_modalities: ['text'], output_modalities: ['text'] },
      source: 'models_dir',
      can_remove: false,
    })),
    object: 'list',
  });

  const startLoad = (id: string): void => {
    statuses.set(id, 'loading');
    failed.delete(id);
    const fail = failNext;
    failNext = false;
    setTimeout(() => {
      if (statuses.get(id) !== 'loading') return;
      statuses.set(id, fail ? 'unloaded' : 'loaded');
      if (fail) failed.add(id);
    }, loadDelayMs);
  };

  const server = await startFakeHttp(
    async (req, res) => {
      const route = `${req.method} ${req.path}`;
      if (mode === 'single') {
        if (route === 'GET /models' || route === 'GET /v1/models') {
          sendJson(res, 200, singleList());
          return true;
        }
        if (loading) {
          llamaError(res, 503, 'Loading model');
          return true;
        }
        if (route === 'GET /health') {
          sendJson(res, 200, { status: 'ok' });
          return true;
        }
        return handleOpenAiWire(req, res, wire, { idPrefix: 'chatcmpl-', error: llamaError });
      }
      // Router mode.
      if (route === 'GET /health') {
        sendJson(res, 200, { status: 'ok' });
        return true;
      }
      if (route === 'GET /models' || route === 'GET /v1/models') {
        sendJson(res, 200, routerList());
        return true;
      }
      const body = (req.body ?? {}) as Record<string, unknown>;
      const name = typeof body.model === 'string' ? body.model : '';
      if (route === 'POST /models/load') {
        const status = statuses.get(name);
        if (status === undefined) llamaError(res, 404, 'model is not found');
        else if (status !== 'unloaded') llamaError(res, 400, 'model is already running');
        else {
          startLoad(name);
          sendJson(res, 200, { success: true });
        }
        return true;
      }
      if (route === 'POST /models/unload') {
        const status = statuses.get(name);
        if (status === undefined) llamaError(res, 400, 'model is not found');
        else if (status === 'unloaded') llamaError(res, 400, 'model is not running');
        else {
          statuses.set(name, 'unloaded');
          sendJson(res, 200, { success: true });
        }
        return true;
      }
      // Inference is proxied to the model's child; with autoload (the default) an unloaded model loads first.
      return handleOpenAiWire(req, res, wire, {
        idPrefix: 'chatcmpl-',
        error: llamaError,
        refuse: (model) => {
          const status = statuses.get(model);
          if (status === undefined) return { status: 400, message: 'model not found' };
          if (status !== 'loaded') statuses.set(model, 'loaded');
          return null;
        },
      });
    },
    (_req, res) => llamaError(res, 404, 'File Not Found'),
  );

  return Object.assign(server, {
    setLoading: (v: boolean) => {
      loading = v;
    },
    setModelStatus: (model: string, status: RouterStatus) => {
      statuses.set(model, status);
      failed.delete(model);
    },
    modelStatus: (model: string) => statuses.get(model),
    failNextLoad: () => {
      failNext = true;
    },
    wire,
  });
}
