/**
 * Fake llama.cpp `llama-server`, corrected against answers captured from the real server (llama.cpp
 * f53577432541; test/peers runs the same cases against it, docs/real-servers.md lists them).
 * Single-model mode: while loading, EVERY route (`/models` and `/props` included) answers 503
 * `{"error":{"message":"Loading model","type":"unavailable_error","code":503}}`; then `/health` is 200
 * `{"status":"ok"}` and `/props` carries `is_sleeping` (no `role`). Router mode: `/props` says
 * `role: "router"`; `GET /models` lists each model with `status.value` loaded/loading/unloaded (plus
 * `failed`/`exit_code` after a failed load); `POST /models/load|unload {model}` answer `{success:true}`
 * (both finish asynchronously) or 400 in llama.cpp's error shape (load of an unknown model: 404
 * "File Not Found", type `not_found_error`). Without autoload a chat to an
 * unloaded model is 400 "model is not loaded"; an unknown one is 400 "model 'x' not found".
 */
import type { ServerResponse } from 'node:http';
import { readFixture } from '../../fixtures/llama-server/exchanges.js';
import { type FakeRequest, type FakeServerControls, sendJson, startFakeHttp } from './fake-http.js';
import { handleOpenAiWire, newWireState, type OpenAiWireState, replyPieces } from './openai-wire.js';

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
  /** Router mode: `--no-models-autoload` (a chat to an unloaded model is refused, not loaded). */
  autoload?: boolean;
  reply?: string;
  /** Context size in tokens (the real server's `n_ctx`); a longer prompt is 400 exceed_context_size_error. */
  contextSize?: number;
}

export interface FakeLlamaServer extends FakeServerControls {
  /** Single mode: model loading (503 Loading model) or loaded. */
  setLoading(loading: boolean): void;
  /** Single mode: `--sleep-idle-seconds` freed the weights (`/props` is_sleeping; a request wakes it). */
  setSleeping(sleeping: boolean): void;
  setModelStatus(model: string, status: RouterStatus): void;
  modelStatus(model: string): RouterStatus | undefined;
  /** Router mode: the next load ends with the child process exiting (status unloaded, failed). */
  failNextLoad(): void;
  /**
   * Router mode: while on, a load never finishes (status stays `loading`), as the real router does when the
   * child dies at start-up and is never reaped (seen with a random-bytes GGUF, docs/real-servers.md).
   */
  setStuckLoad(on: boolean): void;
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

/**
 * Prompt tokens as the generated GGUFs count them (byte-level vocab: one token per character) plus the chat
 * template around one user message (52 tokens): 'hi' is 54, as the real server reports.
 */
function promptTokens(body: Record<string, unknown>): number {
  const messages = Array.isArray(body.messages) ? (body.messages as { content?: unknown }[]) : [];
  return 52 + messages.reduce((n, m) => n + (typeof m.content === 'string' ? m.content.length : 0), 0);
}

const TIMINGS = {
  cache_n: 0,
  prompt_n: 1,
  prompt_ms: 0.3,
  prompt_per_token_ms: 0.3,
  prompt_per_second: 3333.3,
  predicted_n: 1,
  predicted_ms: 0.4,
  predicted_per_token_ms: 0.4,
  predicted_per_second: 2500,
};

/**
 * `POST /v1/chat/completions` as llama-server answers it (fixtures single-chat*.json): no `logprobs` key
 * unless asked, `system_fingerprint`, `timings`; a stream opens with `delta: {role, content: null}` and its
 * last chunk carries `timings`. A prompt over the context is 400 exceed_context_size_error, streamed or not.
 */
async function llamaChat(
  req: FakeRequest,
  res: ServerResponse,
  wire: OpenAiWireState,
  contextSize: number,
): Promise<void> {
  const body = (req.body ?? {}) as Record<string, unknown>;
  const model = typeof body.model === 'string' && body.model !== '' ? body.model : 'model';
  const prompt = promptTokens(body);
  if (prompt > contextSize) {
    sendJson(res, 400, {
      error: {
        code: 400,
        message: `request (${prompt} tokens) exceeds the available context size (${contextSize} tokens), try increasing it`,
        type: 'exceed_context_size_error',
        n_prompt_tokens: prompt,
        n_ctx: contextSize,
      },
    });
    return;
  }
  const base = {
    created: Math.floor(Date.now() / 1000),
    id: `chatcmpl-${Math.random().toString(36).slice(2)}`,
    model,
    system_fingerprint: 'b0-unknown',
  };
  // One word of the reply per token: `max_tokens` cuts it (finish_reason `length`) as the real server does.
  const all = replyPieces(wire.reply);
  const pieces = typeof body.max_tokens === 'number' ? all.slice(0, body.max_tokens) : all;
  const finish = pieces.length < all.length ? 'length' : 'stop';
  if (body.stream === true) {
    const chunk = (delta: Record<string, unknown>, finish: string | null, extra = {}): unknown => ({
      choices: [{ finish_reason: finish, index: 0, delta }],
      ...base,
      object: 'chat.completion.chunk',
      ...extra,
    });
    const chunks = [
      chunk({ role: 'assistant', content: null }, null),
      ...pieces.map((content) => chunk({ content }, null)),
      chunk({}, finish, { timings: TIMINGS }),
    ];
    await streamChunks(res, chunks, wire);
    return;
  }
  sendJson(res, 200, {
    choices: [{ finish_reason: finish, index: 0, message: { role: 'assistant', content: pieces.join('') } }],
    ...base,
    object: 'chat.completion',
    usage: {
      completion_tokens: pieces.length,
      prompt_tokens: prompt,
      total_tokens: prompt + pieces.length,
      prompt_tokens_details: { cached_tokens: 0 },
    },
    timings: TIMINGS,
  });
}

/**
 * Writes the chunks as SSE, `wire.chunkDelayMs` apart, then [DONE]. The wait between chunks ends when the
 * client goes away, so a long gap (a server gone silent) leaves no timer behind once the test is over.
 */
async function streamChunks(res: ServerResponse, chunks: unknown[], wire: OpenAiWireState): Promise<void> {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
  const gone = new Promise<void>((resolve) =>
    res.on('close', () => {
      if (!res.writableEnded) wire.streamsAbandoned++;
      resolve();
    }),
  );
  for (const [i, chunk] of chunks.entries()) {
    if (res.destroyed) return;
    if (i > 0 && wire.chunkDelayMs > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([gone, new Promise<void>((r) => (timer = setTimeout(r, wire.chunkDelayMs)))]);
      clearTimeout(timer);
      if (res.destroyed) return;
    }
    res.write(`data: ${JSON.stringify(chunk)}\n\n`);
  }
  res.end('data: [DONE]\n\n');
}

export async function startFakeLlamaServer(opts: FakeLlamaServerOptions = {}): Promise<FakeLlamaServer> {
  const mode = opts.mode ?? 'single';
  const singleModel = opts.model ?? 'qwen2.5-0.5b-instruct-q4_k_m.gguf';
  let loading = opts.loading ?? false;
  let sleeping = false;
  const autoload = opts.autoload ?? true;
  const statuses = new Map<string, RouterStatus>(Object.entries(opts.models ?? {}));
  const failed = new Set<string>();
  let failNext = false;
  let stuckLoad = false;
  const loadDelayMs = opts.loadDelayMs ?? 20;
  const wire = newWireState(opts.reply ?? 'Hello from llama-server');
  const contextSize = opts.contextSize ?? 32768;
  // The real server's /props, with what differs per server filled in (fixtures single-props, router-props).
  const singleProps = readFixture('single-props').body as Record<string, unknown>;
  const routerProps = readFixture('router-props').body as Record<string, unknown>;
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
        aliases: [],
        tags: [],
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
        args: ['llama-server', '--host', '127.0.0.1', '--port', '0', '--alias', id, '--model', `/models/${id}.gguf`],
        preset: `[${id}]\nmodel = /models/${id}.gguf\n\n`,
        ...(failed.has(id) ? { exit_code: 1, failed: true } : {}),
      },
    })),
    object: 'list',
  });

  const startLoad = (id: string): void => {
    statuses.set(id, 'loading');
    failed.delete(id);
    const fail = failNext;
    failNext = false;
    if (stuckLoad) return;
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
        if (loading) {
          llamaError(res, 503, 'Loading model');
          return true;
        }
        if (route === 'GET /models' || route === 'GET /v1/models') {
          sendJson(res, 200, singleList());
          return true;
        }
        if (route === 'GET /props') {
          sendJson(res, 200, {
            ...singleProps,
            model_alias: singleModel,
            model_path: `/models/${singleModel}`,
            is_sleeping: sleeping,
          });
          return true;
        }
        if (route.startsWith('POST /v1/')) sleeping = false;
        if (route === 'GET /health') {
          sendJson(res, 200, { status: 'ok' });
          return true;
        }
        if (route === 'POST /v1/chat/completions') {
          await llamaChat(req, res, wire, contextSize);
          return true;
        }
        return handleOpenAiWire(req, res, wire, { idPrefix: 'chatcmpl-', error: llamaError });
      }
      // Router mode.
      if (route === 'GET /props') {
        sendJson(res, 200, { ...routerProps, models_autoload: autoload });
        return true;
      }
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
        // Captured: an unknown model here is the router's generic 404, unlike the chat route's 400.
        if (status === undefined) llamaError(res, 404, 'File Not Found');
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
          // Like the real router: it answers before the child process has exited.
          setTimeout(() => statuses.set(name, 'unloaded'), loadDelayMs);
          sendJson(res, 200, { success: true });
        }
        return true;
      }
      // Inference is proxied to the model's child; with autoload (the default) an unloaded model loads first.
      const refuse = (model: string): { status: number; message: string } | null => {
        const status = statuses.get(model);
        if (status === undefined) return { status: 400, message: `model '${model}' not found` };
        if (status !== 'loaded' && !autoload) return { status: 400, message: 'model is not loaded' };
        if (status !== 'loaded') statuses.set(model, 'loaded');
        return null;
      };
      if (route === 'POST /v1/chat/completions') {
        const refusal = refuse(name);
        if (refusal) llamaError(res, refusal.status, refusal.message);
        else await llamaChat(req, res, wire, contextSize);
        return true;
      }
      return handleOpenAiWire(req, res, wire, { idPrefix: 'chatcmpl-', error: llamaError, refuse });
    },
    (_req, res) => llamaError(res, 404, 'File Not Found'),
  );

  return Object.assign(server, {
    setLoading: (v: boolean) => {
      loading = v;
    },
    setSleeping: (v: boolean) => {
      sleeping = v;
    },
    setModelStatus: (model: string, status: RouterStatus) => {
      statuses.set(model, status);
      failed.delete(model);
    },
    modelStatus: (model: string) => statuses.get(model),
    failNextLoad: () => {
      failNext = true;
    },
    setStuckLoad: (on: boolean) => {
      stuckLoad = on;
    },
    wire,
  });
}
