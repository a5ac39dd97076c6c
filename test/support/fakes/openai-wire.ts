/**
 * The OpenAI-compatible inference routes as llama-server, Ollama's /v1 and vLLM answer them:
 * chat completions (plain and SSE-streamed), completions, embeddings. Shared by those fakes.
 */
import type { ServerResponse } from 'node:http';
import { type FakeRequest, sendJson, sendSse } from './fake-http.js';

export interface OpenAiWireOptions {
  /** Reply text; streamed one word (with its leading space) per chunk. */
  reply: string;
  /** Delay between streamed chunks, ms. */
  chunkDelayMs: number;
  /** Embedding width. */
  dims: number;
}

export interface OpenAiWireState extends OpenAiWireOptions {
  /** Streams whose client went away before [DONE]. */
  streamsAbandoned: number;
}

export function newWireState(reply: string): OpenAiWireState {
  return { reply, chunkDelayMs: 0, dims: 8, streamsAbandoned: 0 };
}

/** Splits the reply into stream pieces: "Hello there" → ["Hello", " there"]. */
export function replyPieces(reply: string): string[] {
  return reply.match(/\s*\S+/g) ?? [reply];
}

let seq = 0;

/** Handles the /v1 inference routes; `error` returns an answer in the server's dialect for a bad request. */
export async function handleOpenAiWire(
  req: FakeRequest,
  res: ServerResponse,
  state: OpenAiWireState,
  dialect: {
    idPrefix: string;
    error: (res: ServerResponse, status: number, message: string) => void;
    /** null when the model is served; otherwise the reason to refuse it. */
    refuse?: (model: string) => { status: number; message: string } | null;
  },
): Promise<boolean> {
  const route = `${req.method} ${req.path}`;
  if (route !== 'POST /v1/chat/completions' && route !== 'POST /v1/completions' && route !== 'POST /v1/embeddings') {
    return false;
  }
  const body = (req.body ?? {}) as Record<string, unknown>;
  const model = typeof body.model === 'string' ? body.model : '';
  const refusal = dialect.refuse?.(model) ?? null;
  if (refusal) {
    dialect.error(res, refusal.status, refusal.message);
    return true;
  }
  const created = Math.floor(Date.now() / 1000);
  const id = `${dialect.idPrefix}${++seq}`;
  const pieces = replyPieces(state.reply);
  const usage = { prompt_tokens: 5, completion_tokens: pieces.length, total_tokens: 5 + pieces.length };
  if (route === 'POST /v1/embeddings') {
    const inputs = Array.isArray(body.input) ? body.input : [body.input];
    sendJson(res, 200, {
      object: 'list',
      data: inputs.map((text, index) => ({
        object: 'embedding',
        index,
        embedding: Array.from({ length: state.dims }, (_, i) => ((String(text).length + i) % 7) / 7),
      })),
      model,
      usage: { prompt_tokens: inputs.length, total_tokens: inputs.length },
    });
    return true;
  }
  const chat = route === 'POST /v1/chat/completions';
  if (body.stream === true) {
    const chunks = chat
      ? [{ role: 'assistant' as const, content: '' }, ...pieces.map((content) => ({ content }))].map((delta) => ({
          id,
          object: 'chat.completion.chunk',
          created,
          model,
          choices: [{ index: 0, delta, finish_reason: null, logprobs: null }],
        }))
      : pieces.map((text) => ({
          id,
          object: 'text_completion',
          created,
          model,
          choices: [{ index: 0, text, finish_reason: null, logprobs: null }],
        }));
    const final = chat
      ? {
          id,
          object: 'chat.completion.chunk',
          created,
          model,
          choices: [{ index: 0, delta: {}, finish_reason: 'stop', logprobs: null }],
        }
      : {
          id,
          object: 'text_completion',
          created,
          model,
          choices: [{ index: 0, text: '', finish_reason: 'stop', logprobs: null }],
        };
    await sendSse(res, [...chunks, final], {
      delayMs: state.chunkDelayMs,
      onClientGone: () => state.streamsAbandoned++,
    });
    return true;
  }
  sendJson(
    res,
    200,
    chat
      ? {
          id,
          object: 'chat.completion',
          created,
          model,
          choices: [
            { index: 0, message: { role: 'assistant', content: state.reply }, finish_reason: 'stop', logprobs: null },
          ],
          usage,
        }
      : {
          id,
          object: 'text_completion',
          created,
          model,
          choices: [{ index: 0, text: state.reply, finish_reason: 'stop', logprobs: null }],
          usage,
        },
  );
  return true;
}
