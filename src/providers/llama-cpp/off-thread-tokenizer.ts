/**
 * Tokenises long texts in a worker thread, so the event loop keeps serving HTTP, SSE and probes
 * while llama.cpp's tokenizer works (it is quadratic on long runs without spaces: seconds for a
 * few hundred kilobytes). The worker loads only each model's vocabulary (`vocabOnly`), so it costs
 * a few megabytes, and produces the same tokens as the loaded model. Short texts stay on the main
 * thread: a message round trip would cost more than tokenising them.
 */
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { LlamaTextJSON, Token } from 'node-llama-cpp';

/** Texts longer than this (characters) are tokenised off the event loop. */
export const OFF_THREAD_CHARS = 4096;

export type TokenizeJob =
  { kind: 'text'; text: string; trimLeadingSpace: boolean } | { kind: 'llama-text'; json: LlamaTextJSON };

type Reply = { id: number; tokens: Uint32Array } | { id: number; error: string };

/*
 * Plain JavaScript evaluated as the worker (no build step: the same code runs from dist/ and under
 * the test runner). It imports node-llama-cpp by the URL the main thread resolved.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
let llama = null;
const models = new Map();
parentPort.on('message', async (m) => {
  try {
    const lib = await import(workerData.moduleUrl);
    llama ??= lib.getLlama({ gpu: false, build: 'never', maxThreads: 1, logLevel: 'error' });
    let model = models.get(m.path);
    if (!model) {
      model = (await llama).loadModel({ modelPath: m.path, vocabOnly: true });
      models.set(m.path, model);
      model.catch(() => models.delete(m.path));
    }
    const loaded = await model;
    const tokens = m.job.kind === 'text'
      ? loaded.tokenize(m.job.text, false, m.job.trimLeadingSpace ? 'trimLeadingSpace' : undefined)
      : lib.LlamaText.fromJSON(m.job.json).tokenize(loaded.tokenizer);
    const out = Uint32Array.from(tokens);
    parentPort.postMessage({ id: m.id, tokens: out }, [out.buffer]);
  } catch (err) {
    parentPort.postMessage({ id: m.id, error: String(err && err.message ? err.message : err) });
  }
});
`;

export class OffThreadTokenizer {
  private worker: Worker | null = null;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (t: Token[]) => void; reject: (e: Error) => void }>();

  tokenize(modelPath: string, job: TokenizeJob): Promise<Token[]> {
    const worker = this.start();
    const id = this.nextId++;
    return new Promise<Token[]>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      // The worker may keep the process alive only while it has work.
      worker.ref();
      worker.postMessage({ id, path: modelPath, job });
    });
  }

  async dispose(): Promise<void> {
    const worker = this.worker;
    this.worker = null;
    if (worker) await worker.terminate();
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    const moduleUrl = pathToFileURL(createRequire(import.meta.url).resolve('node-llama-cpp')).href;
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { moduleUrl } });
    worker.unref();
    worker.on('message', (reply: Reply) => {
      const waiter = this.pending.get(reply.id);
      this.pending.delete(reply.id);
      if (this.pending.size === 0) worker.unref();
      if (!waiter) return;
      if ('error' in reply) waiter.reject(new Error(`tokenizer worker: ${reply.error}`));
      else waiter.resolve(Array.from(reply.tokens) as Token[]);
    });
    const failAll = (err: Error): void => {
      if (this.worker === worker) this.worker = null;
      for (const waiter of this.pending.values()) waiter.reject(err);
      this.pending.clear();
    };
    worker.on('error', failAll);
    worker.on('exit', (code) => failAll(new Error(`tokenizer worker exited with code ${code}`)));
    this.worker = worker;
    return worker;
  }
}
