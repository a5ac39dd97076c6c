/**
 * Where a pipeline runs. Built (dist/), each loaded model gets a worker thread (pipeline-worker.ts) so ONNX
 * runs, VAE decoding and PNG filtering never block the event loop. When the worker's compiled file is absent
 * (the TypeScript sources run directly, as under jest) the same pipeline runs on the calling thread.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { Ort } from './ort-tensors.js';
import {
  DiffusionPipeline,
  releaseSession,
  type GenerationParams,
  type ImageGenerationTimings,
  type LoadOptions,
} from './pipeline.js';
import type { PipelineInfo } from './pipeline-io.js';
import { base64Of, type EncodedBase64 } from './png.js';
import type { WorkerReply, WorkerRequest } from './pipeline-worker.js';

/** A turn's result: every image rendered; their PNG + base64 encoding may still be under way. */
export interface RenderedBase64 {
  count: number;
  encoded: Promise<EncodedBase64>;
}

export interface ImagePipeline {
  readonly info: PipelineInfo;
  /** Where it runs, for the logs and the loaded-model details. */
  readonly thread: 'worker' | 'main';
  /** Resolves once every image is rendered; their base64 PNGs follow in `encoded` (see DiffusionPipeline.generate). */
  generate(params: GenerationParams, signal: AbortSignal, timings: ImageGenerationTimings): Promise<RenderedBase64>;
  /** Releases every session (and ends the worker). */
  release(): Promise<void>;
}

const WORKER_FILE = fileURLToPath(new URL('./pipeline-worker.js', import.meta.url));

export function workerAvailable(): boolean {
  return existsSync(WORKER_FILE);
}

export async function openPipeline(
  ort: () => Promise<Ort>,
  root: string,
  sessionOptions: LoadOptions['sessionOptions'],
): Promise<ImagePipeline> {
  if (workerAvailable()) return WorkerPipeline.open(root, sessionOptions);
  const pipeline = await DiffusionPipeline.load(await ort(), root, { sessionOptions });
  return {
    info: pipeline.info,
    thread: 'main',
    generate: async (params, signal, timings) => {
      const rendered = await pipeline.generate(params, signal, timings);
      return { count: rendered.count, encoded: rendered.encoded.then(base64Of) };
    },
    release: async () => {
      const results = await Promise.allSettled(pipeline.allSessions().map((s) => releaseSession(s)));
      const failed = results.find((r) => r.status === 'rejected');
      if (failed) throw failed.reason;
    },
  };
}

type GenerateReply = { count: number; timings: ImageGenerationTimings };
type EncodedReply = { seconds: number; base64: Uint8Array[] };

/** A request without its id (distributes over the union, unlike Omit). */
type Unsent<T> = T extends unknown ? Omit<T, 'id'> : never;

type Pending = { resolve: (value: unknown) => void; reject: (err: Error) => void };

class WorkerPipeline implements ImagePipeline {
  readonly thread = 'worker' as const;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();

  private constructor(
    private readonly worker: Worker,
    public info: PipelineInfo,
  ) {}

  static async open(root: string, sessionOptions: LoadOptions['sessionOptions']): Promise<WorkerPipeline> {
    const worker = new Worker(WORKER_FILE);
    const host = new WorkerPipeline(worker, null as unknown as PipelineInfo);
    worker.on('message', (reply: WorkerReply) => host.settle(reply));
    // A crashed worker fails whatever it was doing; the next load starts a fresh one.
    worker.on('error', (err: Error) => host.failAll(err));
    worker.on('exit', (code) => host.failAll(new Error(`image worker exited (code ${code})`)));
    try {
      host.info = (await host.call({ type: 'load', root, sessionOptions })) as PipelineInfo;
    } catch (err) {
      await worker.terminate();
      throw err;
    }
    return host;
  }

  async generate(
    params: GenerationParams,
    signal: AbortSignal,
    timings: ImageGenerationTimings,
  ): Promise<RenderedBase64> {
    signal.throwIfAborted();
    const id = this.nextId;
    const onAbort = (): void => this.post({ type: 'abort', id: this.nextId++, target: id });
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      const result = (await this.call({ type: 'generate', params })) as GenerateReply;
      // The worker's counters start at zero: add them to the caller's (queue and load time are already in it).
      const into = timings as unknown as Record<string, unknown>;
      for (const [key, value] of Object.entries(result.timings)) {
        into[key] = typeof value === 'number' && typeof into[key] === 'number' ? into[key] + value : value;
      }
      // Asked for at once, so the worker never keeps frames nobody collects; they are already encoding there.
      const encoded = (this.call({ type: 'encoded', target: id }) as Promise<EncodedReply>).then((reply) => ({
        seconds: reply.seconds,
        base64: reply.base64.map((b64) => Buffer.from(b64.buffer, b64.byteOffset, b64.byteLength)),
      }));
      encoded.catch(() => undefined);
      return { count: result.count, encoded };
    } finally {
      signal.removeEventListener('abort', onAbort);
      signal.throwIfAborted();
    }
  }

  async release(): Promise<void> {
    try {
      await this.call({ type: 'release' });
    } finally {
      await this.worker.terminate();
    }
  }

  private call(msg: Unsent<WorkerRequest>): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.post({ ...msg, id });
    });
  }

  private post(msg: WorkerRequest): void {
    this.worker.postMessage(msg);
  }

  private settle(reply: WorkerReply): void {
    const pending = this.pending.get(reply.id);
    if (!pending) return;
    this.pending.delete(reply.id);
    if (reply.ok) pending.resolve(reply.value);
    else pending.reject(new Error(reply.message));
  }

  private failAll(err: Error): void {
    for (const pending of this.pending.values()) pending.reject(err);
    this.pending.clear();
  }
}
