/**
 * Fake Ollama (docs/real-servers.md): `/api/tags` lists what is on disk, `/api/ps` exactly what is in
 * memory (size, size_vram, expires_at, details), `POST /api/generate {model}` with no prompt loads it and
 * with `keep_alive: 0` unloads it. The OpenAI-compatible `/v1` routes serve (and so load) models.
 * Errors as Ollama sends them: `{"error":"..."}` natively, OpenAI-shaped on /v1, plain-text 404 for unknown routes.
 */
import type { ServerResponse } from 'node:http';
import { type FakeServerControls, sendJson, sendText, startFakeHttp } from './fake-http.js';
import { handleOpenAiWire, newWireState, type OpenAiWireState } from './openai-wire.js';

export interface FakeOllamaModel {
  name: string;
  /** Bytes on disk. */
  size?: number;
  family?: string;
  parameterSize?: string;
  quantization?: string;
}

export interface LoadedOptions {
  /** Resident bytes. */
  size?: number;
  /** Bytes of `size` in VRAM. */
  sizeVram?: number;
  expiresAt?: string;
}

export interface FakeOllama extends FakeServerControls {
  /** Put a model on disk (in /api/tags). */
  addModel(model: FakeOllamaModel): void;
  /** Put a model in memory (in /api/ps); it is also put on disk when it is not there. */
  addLoadedModel(name: string, opts?: LoadedOptions): void;
  removeLoadedModel(name: string): void;
  loadedNames(): string[];
  wire: OpenAiWireState;
}

const tagged = (name: string): string => (name.includes(':') ? name : `${name}:latest`);

/** Ollama's openai.NewError: the type follows the status (400, 404, anything else). */
function openAiError(res: ServerResponse, status: number, message: string): void {
  const type = status === 400 ? 'invalid_request_error' : status === 404 ? 'not_found_error' : 'api_error';
  sendJson(res, status, { error: { message, type, param: null, code: null } });
}

export async function startFakeOllama(opts: { models?: FakeOllamaModel[]; reply?: string } = {}): Promise<FakeOllama> {
  const disk = new Map<string, Required<FakeOllamaModel>>();
  const memory = new Map<string, Required<LoadedOptions>>();
  const wire = newWireState(opts.reply ?? 'Hello from ollama');
  const digest = (name: string): string => Buffer.from(name).toString('hex').padEnd(64, '0').slice(0, 64);

  const addModel = (m: FakeOllamaModel): void => {
    disk.set(tagged(m.name), {
      name: tagged(m.name),
      size: m.size ?? 397_821_319,
      family: m.family ?? 'qwen2',
      parameterSize: m.parameterSize ?? '494.03M',
      quantization: m.quantization ?? 'Q4_K_M',
    });
  };
  const details = (m: Required<FakeOllamaModel>): Record<string, unknown> => ({
    parent_model: '',
    format: 'gguf',
    family: m.family,
    families: [m.family],
    parameter_size: m.parameterSize,
    quantization_level: m.quantization,
  });
  const load = (name: string, o: LoadedOptions = {}): void => {
    const key = tagged(name);
    if (!disk.has(key)) addModel({ name: key });
    const size = o.size ?? Math.round(disk.get(key)!.size * 1.3);
    memory.set(key, {
      size,
      sizeVram: o.sizeVram ?? size,
      expiresAt: o.expiresAt ?? new Date(Date.now() + 5 * 60_000).toISOString(),
    });
  };
  for (const m of opts.models ?? [{ name: 'qwen2.5:0.5b' }]) addModel(m);

  const server = await startFakeHttp(
    async (req, res) => {
      const route = `${req.method} ${req.path}`;
      if (route === 'GET /api/version') {
        sendJson(res, 200, { version: '0.12.6' });
        return true;
      }
      if (route === 'GET /api/tags') {
        sendJson(res, 200, {
          models: [...disk.values()].map((m) => ({
            name: m.name,
            model: m.name,
            modified_at: '2026-11-01T10:00:00.000000000Z',
            size: m.size,
            digest: digest(m.name),
            details: details(m),
          })),
        });
        return true;
      }
      if (route === 'GET /api/ps') {
        sendJson(res, 200, {
          models: [...memory.entries()].map(([name, l]) => ({
            name,
            model: name,
            size: l.size,
            digest: digest(name),
            details: details(disk.get(name)!),
            expires_at: l.expiresAt,
            size_vram: l.sizeVram,
            context_length: 4096,
          })),
        });
        return true;
      }
      if (route === 'POST /api/generate') {
        const body = (req.body ?? {}) as Record<string, unknown>;
        const name = typeof body.model === 'string' ? tagged(body.model) : '';
        if (!disk.has(name)) {
          sendJson(res, 404, { error: `model '${String(body.model)}' not found` });
          return true;
        }
        const createdAt = new Date().toISOString();
        if (body.keep_alive === 0 || body.keep_alive === '0') {
          memory.delete(name);
          sendJson(res, 200, {
            model: body.model,
            created_at: createdAt,
            response: '',
            done: true,
            done_reason: 'unload',
          });
          return true;
        }
        load(name);
        sendJson(res, 200, { model: body.model, created_at: createdAt, response: '', done: true, done_reason: 'load' });
        return true;
      }
      return handleOpenAiWire(req, res, wire, {
        idPrefix: 'chatcmpl-',
        error: openAiError,
        refuse: (model) => {
          if (!disk.has(tagged(model))) {
            // ChatHandler's first check; "try pulling it first" is only for a manifest whose blob is gone.
            return { status: 404, message: `model '${model}' not found` };
          }
          if (!memory.has(tagged(model))) load(model);
          return null;
        },
      });
    },
    (_req, res) => sendText(res, 404, '404 page not found'),
  );

  return Object.assign(server, {
    addModel,
    addLoadedModel: (name: string, o?: LoadedOptions) => load(name, o),
    removeLoadedModel: (name: string) => {
      memory.delete(tagged(name));
    },
    loadedNames: () => [...memory.keys()],
    wire,
  });
}
