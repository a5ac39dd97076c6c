import type { FastifyReply, FastifyRequest } from 'fastify';
import { envelopeFor, toAppError } from '../common/exception.filter.js';
import { rawSseJson } from '../providers/remote/sse.js';
import type { LeasedStream } from './inference.service.js';

/**
 * Writes an OpenAI-style SSE stream: one `data:` event per chunk, `data: [DONE]` at the end. Respects
 * backpressure, and on client disconnect aborts generation (via `abort`) and releases the lease.
 */
export async function writeSse<T>(
  request: FastifyRequest,
  reply: FastifyReply,
  stream: LeasedStream<T>,
  abort: AbortController,
): Promise<void> {
  const raw = reply.raw;
  reply.hijack();
  raw.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
    'x-request-id': String(request.id),
  });
  const iterator = stream.chunks[Symbol.asyncIterator]();
  try {
    while (!abort.signal.aborted) {
      const next = await iterator.next();
      if (next.done) break;
      // Chunks that arrive in one burst leave in one TCP write: cork until the event loop turns.
      if (!raw.writableCorked) {
        raw.cork();
        setImmediate(() => raw.uncork());
      }
      // A relayed upstream chunk goes out as the text it came in (renamed); ours are encoded here.
      const json = rawSseJson.get(next.value as object) ?? JSON.stringify(next.value);
      if (!raw.write(`data: ${json}\n\n`)) await drained(raw, abort.signal);
    }
    if (!abort.signal.aborted) raw.write('data: [DONE]\n\n');
  } catch (err) {
    // Headers are gone: report the failure in-band, the way OpenAI streams do.
    if (!raw.destroyed) raw.write(`data: ${JSON.stringify(envelopeFor(toAppError(err), String(request.id)))}\n\n`);
  } finally {
    await iterator.return?.(undefined);
    stream.lease.release();
    if (!raw.destroyed) raw.end();
  }
}

/** An AbortController that fires when the client closes the connection before the response finished. */
export function abortOnDisconnect(reply: FastifyReply): AbortController {
  const abort = new AbortController();
  reply.raw.on('close', () => {
    if (!reply.raw.writableFinished) abort.abort(new Error('client disconnected'));
  });
  return abort;
}

/** Waits for the socket to accept more data, or for the client to be gone (whichever comes first). */
function drained(raw: FastifyReply['raw'], signal: AbortSignal): Promise<void> {
  if (raw.destroyed || signal.aborted) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const done = (): void => {
      raw.off('drain', done);
      raw.off('close', done);
      signal.removeEventListener('abort', done);
      resolve();
    };
    raw.once('drain', done);
    raw.once('close', done);
    signal.addEventListener('abort', done, { once: true });
  });
}
