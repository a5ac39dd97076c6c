/**
 * Worker-thread host of one DiffusionPipeline. onnxruntime-node's `session.run` is synchronous on the calling
 * thread (its promise only defers the call with setImmediate), so on the main thread a 1024² UNet step froze
 * the event loop and /health/live with it. Messages: load → generate* → release. An abort is read between
 * steps, when the pipeline awaits.
 */
import { parentPort } from 'node:worker_threads';
import { readlinkSync } from 'node:fs';
import { constants, setPriority } from 'node:os';
import {
  DiffusionPipeline,
  emptyTimings,
  releaseSession,
  type GenerationParams,
  type EncodedImages,
  type LoadOptions,
} from './pipeline.js';
import { base64Of } from './png.js';

export type WorkerRequest =
  | { type: 'load'; id: number; root: string; sessionOptions: LoadOptions['sessionOptions'] }
  | { type: 'generate'; id: number; params: GenerationParams }
  | { type: 'abort'; id: number; target: number }
  /** The PNGs of generate `target`, once encoded (sent right after its reply). */
  | { type: 'encoded'; id: number; target: number }
  | { type: 'release'; id: number };

export type WorkerReply = { id: number; ok: true; value: unknown } | { id: number; ok: false; message: string };

let pipeline: DiffusionPipeline | null = null;
const running = new Map<number, AbortController>();
/** Frames of finished turns, encoding on libuv's pool while the next request denoises. */
const encoding = new Map<number, Promise<EncodedImages>>();

async function handle(msg: WorkerRequest): Promise<unknown> {
  switch (msg.type) {
    case 'load': {
      const ort = await import('onnxruntime-node');
      pipeline = await DiffusionPipeline.load(ort, msg.root, { sessionOptions: msg.sessionOptions });
      return pipeline.info;
    }
    case 'generate': {
      if (!pipeline) throw new Error('no pipeline loaded in this worker');
      const controller = new AbortController();
      running.set(msg.id, controller);
      try {
        const timings = emptyTimings();
        const rendered = await pipeline.generate(msg.params, controller.signal, timings);
        encoding.set(msg.id, rendered.encoded);
        return { count: rendered.count, timings };
      } finally {
        running.delete(msg.id);
      }
    }
    case 'encoded': {
      const encoded = encoding.get(msg.target);
      if (!encoded) throw new Error(`no images of request ${msg.target} in this worker`);
      try {
        // Base64 here too: the main thread only copies these bytes to the socket.
        return base64Of(await encoded);
      } finally {
        encoding.delete(msg.target);
      }
    }
    case 'abort':
      running.get(msg.target)?.abort(new Error('aborted'));
      return null;
    case 'release': {
      const sessions = pipeline?.allSessions() ?? [];
      pipeline = null;
      const results = await Promise.allSettled(sessions.map((s) => releaseSession(s)));
      const failed = results.find((r) => r.status === 'rejected');
      if (failed) throw failed.reason;
      return null;
    }
  }
}

/**
 * Image generation is batch work beside an interactive API: this thread, and the ONNX Runtime threads it
 * starts (they inherit it), yield the CPU to the event loop first. Measured with two 512² images on 2 cores:
 * /health/live p99 9-11 ms instead of 11-12 (docs/benchmarks.md). Linux sets nice per thread; elsewhere, or
 * where it is not permitted, the priority stays as it is.
 */
function yieldToEventLoop(): void {
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (Number.isInteger(tid) && tid > 0) setPriority(tid, constants.priority.PRIORITY_BELOW_NORMAL);
  } catch {
    // Not Linux, or not permitted: the thread keeps the process's priority.
  }
}

yieldToEventLoop();

parentPort?.on('message', (msg: WorkerRequest) => {
  handle(msg).then(
    (value) => {
      const reply: WorkerReply = { id: msg.id, ok: true, value };
      parentPort?.postMessage(reply, transferables(value));
    },
    (err: unknown) => {
      const reply: WorkerReply = { id: msg.id, ok: false, message: err instanceof Error ? err.message : String(err) };
      parentPort?.postMessage(reply);
    },
  );
});

/** The base64 buffers of an 'encoded' reply move to the main thread instead of being copied. */
function transferables(value: unknown): ArrayBuffer[] {
  const base64 = (value as { base64?: unknown } | null)?.base64;
  if (!Array.isArray(base64)) return [];
  return base64.filter((b): b is Buffer => Buffer.isBuffer(b)).map((b) => b.buffer as ArrayBuffer);
}
