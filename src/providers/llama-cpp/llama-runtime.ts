/**
 * The one node-llama-cpp `Llama` instance of the process. Every `getLlama()` forks a binary
 * self-test and returns a NEW instance with its own backend (docs/runtimes.md "One runtime per process"), so all llama-cpp
 * backends share this one, created lazily on first use.
 */
import { Logger } from '@nestjs/common';
import { availableCores } from '../../common/machine.js';
import type { Llama, LlamaLogLevel } from 'node-llama-cpp';

export interface LlamaRuntimeOptions {
  /**
   * `'auto'` picks CUDA/Vulkan/Metal when a prebuilt binary for it works and falls back to CPU;
   * `false` forces CPU and skips probing GPU binaries (faster start where there is no GPU).
   */
  gpu?: 'auto' | false;
  /** Threads per evaluation. null/undefined → `defaultLlamaThreads()`. */
  threads?: number | null;
}

/**
 * One core fewer than available, at least one. llama.cpp worker threads spin-wait between
 * steps, so a thread count equal to the cores leaves the Node event loop (HTTP, SSE, probes)
 * fighting the workers: measured on the 2-core box, threads=1 ran a tiny model at 1,900–5,400
 * tok/s and threads=2 at 52–93 tok/s; node-llama-cpp's own default (4 here) fell to 3.8 tok/s.
 * Even the 26M-parameter BENCH model is not faster with 2 threads there (docs/runtimes.md "Threads").
 */
export function defaultLlamaThreads(cores = availableCores()): number {
  return Math.max(1, cores - 1);
}

export type NodeLlamaCpp = typeof import('node-llama-cpp');

const LOG_LEVEL_ORDER = ['disabled', 'fatal', 'error', 'warn', 'info', 'log', 'debug'];

export class LlamaRuntime {
  private readonly logger = new Logger('LlamaRuntime');
  private llamaPromise: Promise<Llama> | null = null;
  private llama: Llama | null = null;
  private modulePromise: Promise<NodeLlamaCpp> | null = null;
  readonly threads: number;
  readonly gpu: 'auto' | false;

  constructor(options: LlamaRuntimeOptions = {}) {
    this.threads = options.threads ?? defaultLlamaThreads();
    this.gpu = options.gpu ?? 'auto';
  }

  /** The shared instance; concurrent first callers wait on the same `getLlama()`. A failure is not cached. */
  get(): Promise<Llama> {
    if (!this.llamaPromise) {
      const pending = this.create();
      this.llamaPromise = pending;
      pending.then(
        (llama) => (this.llama = llama),
        () => {
          if (this.llamaPromise === pending) this.llamaPromise = null;
        },
      );
    }
    return this.llamaPromise;
  }

  /** node-llama-cpp itself, imported lazily: it is ESM with top-level await and costs ~300 ms to load. */
  module(): Promise<NodeLlamaCpp> {
    this.modulePromise ??= import('node-llama-cpp');
    return this.modulePromise;
  }

  /** The instance when it already exists, without creating it. */
  peek(): Llama | null {
    return this.llama;
  }

  private async create(): Promise<Llama> {
    const started = Date.now();
    const { getLlama } = await this.module();
    const llama = await getLlama({
      gpu: this.gpu,
      // Never compile or download at runtime: a missing binary must fail init with a reason.
      build: 'never',
      maxThreads: this.threads,
      logLevel: 'warn' as LlamaLogLevel,
      logger: (level, message) => this.log(level, message),
    });
    this.logger.log(
      `node-llama-cpp ready in ${Date.now() - started} ms (gpu: ${String(llama.gpu)}, threads: ${this.threads}, ` +
        `binary: ${llama.buildType === 'localBuild' ? 'built on this machine' : 'prebuilt'})`,
    );
    return llama;
  }

  private log(level: LlamaLogLevel, message: string): void {
    const text = message.trimEnd();
    if (!text) return;
    const name = String(level);
    const rank = LOG_LEVEL_ORDER.indexOf(name);
    if (rank >= 0 && rank <= LOG_LEVEL_ORDER.indexOf('error')) this.logger.error(text);
    else if (name === 'warn') this.logger.warn(text);
    else this.logger.debug(text);
  }

  /** Frees the native backend. Contexts and models must be disposed first (providers do that). */
  async dispose(): Promise<void> {
    const pending = this.llamaPromise;
    this.llamaPromise = null;
    this.llama = null;
    if (!pending) return;
    let llama: Llama;
    try {
      llama = await pending;
    } catch {
      return;
    }
    await llama.dispose();
  }
}
