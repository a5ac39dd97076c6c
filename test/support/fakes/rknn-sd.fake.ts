/**
 * Fake tinyagentos `rknn_sd_server` (docs/real-servers.md): `/health` always 200 with `pipeline_loaded`,
 * `/v1/models` always lists the model (loaded or not), generation lazy-loads the pipeline and refuses
 * n != 1 with 400, `/admin/unload` answers `{ok, was_loaded}`. FastAPI error shapes (`{detail}`).
 */
import { type FakeServerControls, sendJson, startFakeHttp } from './fake-http.js';
import { TINY_PNG_B64 } from './images.js';

export interface FakeRknnSdOptions {
  model?: string;
  pipelineLoaded?: boolean;
  idleSeconds?: number;
  /** null disables idle unload upstream. */
  idleUnloadThresholdS?: number | null;
}

export interface FakeRknnSd extends FakeServerControls {
  readonly model: string;
  setPipelineLoaded(loaded: boolean): void;
  pipelineLoaded(): boolean;
  /** The next lazy load fails: generate answers 503 and /health reports load_error. null clears it. */
  setLoadFailure(message: string | null): void;
  setIdleSeconds(seconds: number): void;
}

export async function startFakeRknnSd(opts: FakeRknnSdOptions = {}): Promise<FakeRknnSd> {
  const model = opts.model ?? 'lcm-dreamshaper-v7-rknn';
  let loaded = opts.pipelineLoaded ?? false;
  let loadFailure: string | null = null;
  let loadError: string | null = null;
  let idleSeconds = opts.idleSeconds ?? 0;
  const threshold = opts.idleUnloadThresholdS === undefined ? 600 : opts.idleUnloadThresholdS;
  const created = Math.floor(Date.now() / 1000);

  const server = await startFakeHttp(
    (req, res) => {
      const route = `${req.method} ${req.path}`;
      if (route === 'GET /health') {
        sendJson(res, 200, {
          status: 'ok',
          model,
          backend: 'rknn2',
          runtime: 'rknn-toolkit-lite2',
          pipeline_loaded: loaded,
          load_error: loadError,
          idle_seconds: idleSeconds,
          idle_unload_threshold_s: threshold,
        });
        return true;
      }
      if (route === 'GET /v1/models') {
        sendJson(res, 200, {
          object: 'list',
          data: [{ id: model, object: 'model', created, owned_by: 'tinyagentos' }],
        });
        return true;
      }
      if (route === 'POST /admin/unload') {
        const was = loaded;
        loaded = false;
        sendJson(res, 200, { ok: true, was_loaded: was });
        return true;
      }
      if (route === 'POST /v1/images/generations') {
        const body = (req.body ?? {}) as Record<string, unknown>;
        if (typeof body.prompt !== 'string') {
          sendJson(res, 422, {
            detail: [{ type: 'missing', loc: ['body', 'prompt'], msg: 'Field required', input: body }],
          });
          return true;
        }
        const n = body.n ?? 1;
        if (n !== 1) {
          sendJson(res, 400, { detail: 'only n=1 is supported' });
          return true;
        }
        const size = typeof body.size === 'string' ? body.size : '512x512';
        if (!/^\d+x\d+$/.test(size)) {
          sendJson(res, 400, { detail: `invalid size '${size}'` });
          return true;
        }
        if (!loaded) {
          if (loadFailure !== null) {
            loadError = loadFailure;
            sendJson(res, 503, { detail: `pipeline failed to load: ${loadFailure}` });
            return true;
          }
          loaded = true;
          loadError = null;
        }
        idleSeconds = 0;
        const seed = typeof body.seed === 'number' ? body.seed : 1234;
        sendJson(res, 200, {
          created: Math.floor(Date.now() / 1000),
          data: [{ b64_json: TINY_PNG_B64, revised_prompt: body.prompt }],
          model,
          usage: { elapsed_seconds: 0.01, seed },
        });
        return true;
      }
      return false;
    },
    (_req, res) => sendJson(res, 404, { detail: 'Not Found' }),
  );

  return Object.assign(server, {
    model,
    setPipelineLoaded: (v: boolean) => {
      loaded = v;
    },
    pipelineLoaded: () => loaded,
    setLoadFailure: (message: string | null) => {
      loadFailure = message;
      if (message === null) loadError = null;
    },
    setIdleSeconds: (s: number) => {
      idleSeconds = s;
    },
  });
}
