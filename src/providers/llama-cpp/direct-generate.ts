/**
 * node-llama-cpp called directly, with the same runtime, thread count and sampling settings the
 * provider uses, so a benchmark can put tokens/s over HTTP next to the runtime's own speed.
 */
import { performance } from 'node:perf_hooks';
import type { LlamaRuntime } from './llama-runtime.js';
import { DEFAULT_CONTEXT_SIZE, generationOptions } from './sampling.js';

export interface DirectGenerateOptions {
  modelPath: string;
  prompt: string;
  maxTokens: number;
  /** Defaults to the runtime's thread count, as the provider does for a backend without `threads`. */
  threads?: number;
  /** Defaults to min(train context, 2048), as the provider does. */
  contextSize?: number;
  /** Defaults to 0 (greedy): benchmarks want the same tokens every run. */
  temperature?: number;
  seed?: number;
  /** Generations on the one loaded model; the first one also pays for warm-up. */
  runs?: number;
  /**
   * Treat `prompt` as one user message: format it with node-llama-cpp's own chat wrapper for the model
   * and stop on the wrapper's triggers, i.e. the generation /v1/chat/completions runs.
   */
  chat?: boolean;
}

export interface DirectGenerateRun {
  text: string;
  promptTokens: number;
  completionTokens: number;
  /** From the call to the first generated token (prompt evaluation included). */
  firstTokenMs: number;
  totalMs: number;
  /** completionTokens / totalMs: comparable with a client timing one whole HTTP request. */
  tokensPerSecond: number;
  /** Generation speed after the first token (prompt evaluation excluded). */
  decodeTokensPerSecond: number;
}

export interface DirectGenerateResult {
  loadMs: number;
  threads: number;
  contextSize: number;
  runs: DirectGenerateRun[];
}

export async function directGenerate(
  runtime: LlamaRuntime,
  opts: DirectGenerateOptions,
): Promise<DirectGenerateResult> {
  const [llama, lib] = await Promise.all([runtime.get(), runtime.module()]);
  const threads = opts.threads ?? runtime.threads;
  const loadStarted = performance.now();
  const model = await llama.loadModel({ modelPath: opts.modelPath });
  try {
    const contextSize = opts.contextSize ?? Math.min(model.trainContextSize, DEFAULT_CONTEXT_SIZE);
    const context = await model.createContext({ contextSize, sequences: 1, threads });
    const loadMs = performance.now() - loadStarted;
    try {
      const sequence = context.getSequence();
      const completion = new lib.LlamaCompletion({ contextSequence: sequence });
      const bos = model.tokens.shouldPrependBosToken;
      const chatState = opts.chat
        ? lib.resolveChatWrapper(model).generateContextState({
            chatHistory: [
              { type: 'user', text: opts.prompt },
              { type: 'model', response: [] },
            ],
          })
        : null;
      const raw = chatState
        ? chatState.contextText.tokenize(model.tokenizer)
        : model.tokenize(opts.prompt, false, bos ? 'trimLeadingSpace' : undefined);
      // LlamaCompletion prepends BOS itself; a chat template that starts with it would get two (as in the provider).
      const tokens = bos && raw[0] === model.tokens.bos ? raw.slice(1) : raw;
      const promptTokens = tokens.length + (bos ? 1 : 0);
      const options = generationOptions(
        'direct',
        { max_tokens: opts.maxTokens, temperature: opts.temperature ?? 0, seed: opts.seed },
        promptTokens,
        context.contextSize,
      );
      const runs: DirectGenerateRun[] = [];
      for (let i = 0; i < (opts.runs ?? 1); i++) {
        // A fresh sequence state each run, so every run evaluates the prompt like a new HTTP request would.
        await sequence.clearHistory();
        const meter = sequence.tokenMeter.getState();
        let firstTokenAt: number | null = null;
        const started = performance.now();
        const res = await completion.generateCompletionWithMeta(tokens, {
          ...options,
          onToken: () => (firstTokenAt ??= performance.now()),
          ...(chatState ? { customStopTriggers: chatState.stopGenerationTriggers } : {}),
        });
        const totalMs = performance.now() - started;
        const completionTokens = sequence.tokenMeter.diff(meter).usedOutputTokens;
        const firstTokenMs = (firstTokenAt ?? started) - started;
        runs.push({
          text: res.response,
          promptTokens,
          completionTokens,
          firstTokenMs,
          totalMs,
          tokensPerSecond: (completionTokens / totalMs) * 1000,
          decodeTokensPerSecond: completionTokens > 1 ? ((completionTokens - 1) / (totalMs - firstTokenMs)) * 1000 : 0,
        });
      }
      completion.dispose();
      return { loadMs, threads, contextSize: context.contextSize, runs };
    } finally {
      await context.dispose();
    }
  } finally {
    await model.dispose();
  }
}
