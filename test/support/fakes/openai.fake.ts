/**
 * Fake OpenAI-compatible server as vLLM answers (docs/real-servers.md): `/health` 200 with
 * an empty body when the engine is up, `/v1/models` lists exactly the served models, `--api-key`
 * guards `/v1/*` with 401 `{"error":"Unauthorized"}`. FastAPI 404 for unknown routes.
 */
import type { ServerResponse } from 'node:http';
import { type FakeServerControls, sendJson, sendText, startFakeHttp } from './fake-http.js';
import { handleOpenAiWire, newWireState, type OpenAiWireState } from './openai-wire.js';

export interface FakeOpenAiOptions {
  models?: string[];
  /** false: no /health route (404), like servers that only speak /v1. */
  healthRoute?: boolean;
  apiKey?: string;
  reply?: string;
}

export interface FakeOpenAi extends FakeServerControls {
  setModels(ids: string[]): void;
  /** false: /health answers 503 (engine dead). */
  setHealthy(healthy: boolean): void;
  wire: OpenAiWireState;
}

/** vLLM's create_error_response (entrypoints/openai/engine/serving.py); an unknown model names param `model`. */
function vllmError(res: ServerResponse, status: number, message: string): void {
  const type = status === 404 ? 'NotFoundError' : status === 400 ? 'BadRequestError' : 'InternalServerError';
  sendJson(res, status, { error: { message, type, param: status === 404 ? 'model' : null, code: status } });
}

export async function startFakeOpenAi(opts: FakeOpenAiOptions = {}): Promise<FakeOpenAi> {
  let models = opts.models ?? ['Qwen/Qwen2.5-0.5B-Instruct'];
  let healthy = true;
  const wire = newWireState(opts.reply ?? 'Hello from vllm');
  const created = Math.floor(Date.now() / 1000);
  const server = await startFakeHttp(
    async (req, res) => {
      const route = `${req.method} ${req.path}`;
      if (route === 'GET /health' && opts.healthRoute !== false) {
        sendText(res, healthy ? 200 : 503, '');
        return true;
      }
      if (!req.path.startsWith('/v1/')) return false;
      if (opts.apiKey && req.headers.authorization !== `Bearer ${opts.apiKey}`) {
        sendJson(res, 401, { error: 'Unauthorized' });
        return true;
      }
      if (route === 'GET /v1/models') {
        sendJson(res, 200, {
          object: 'list',
          data: models.map((id) => ({
            id,
            object: 'model',
            created,
            owned_by: 'vllm',
            root: id,
            parent: null,
            max_model_len: 32768,
            permission: [{ id: `modelperm-${id}`, object: 'model_permission', allow_sampling: true }],
          })),
        });
        return true;
      }
      return handleOpenAiWire(req, res, wire, {
        idPrefix: 'chatcmpl-',
        error: vllmError,
        refuse: (model) =>
          models.includes(model) ? null : { status: 404, message: `The model \`${model}\` does not exist.` },
      });
    },
    (_req, res) => sendJson(res, 404, { detail: 'Not Found' }),
  );
  return Object.assign(server, {
    setModels: (ids: string[]) => {
      models = ids;
    },
    setHealthy: (v: boolean) => {
      healthy = v;
    },
    wire,
  });
}
