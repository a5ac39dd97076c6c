/**
 * Loading, sizing and freeing one GGUF model: a model, one context with `parallel` sequences
 * (node-llama-cpp batches the sequences of one context into shared decode steps), an optional
 * embedding context. Every estimate counts the KV cache of all sequences, so the memory budget and
 * the eviction plan see what a load will really take.
 */
import type { Logger } from '@nestjs/common';
import { stat } from 'node:fs/promises';
import type { ChatWrapper, LlamaContext, LlamaEmbeddingContext, LlamaModel } from 'node-llama-cpp';
import { errorText, ModelLoadFailedError } from '../../common/errors.js';
import type { ModelConfig } from '../../config/app-config.js';
import { checkGgufMetadata } from './gguf-check.js';
import type { LlamaRuntime } from './llama-runtime.js';
import { DEFAULT_CONTEXT_SIZE } from './sampling.js';
import { DecodeGate } from './decode-gate.js';
import { recordGeneratedTokens } from './generated-tokens.js';
import { type PooledSequence, SequencePool } from './sequence-pool.js';

export interface LlamaHandle {
  model: LlamaModel;
  /** The GGUF file, for the off-thread tokenizer's vocabulary-only copy. */
  modelPath: string;
  context: LlamaContext;
  pool: SequencePool;
  embedding: LlamaEmbeddingContext | null;
  /** llama.cpp does not report the embedding context's footprint; this is GgufInsights' estimate. */
  embeddingBytes: number;
  chatWrapper: ChatWrapper;
  /** Tokens per sequence. */
  contextSize: number;
  architecture: string | null;
  loadedAtEpochMs: number;
  /** Aborted at unload, so generations in flight stop at the next token instead of using freed memory. */
  lifetime: AbortController;
}

export async function loadHandle(
  runtime: LlamaRuntime,
  config: ModelConfig,
  path: string | null,
  threads: number,
  logger: Logger,
): Promise<LlamaHandle> {
  const id = config.id;
  if (!path) throw new ModelLoadFailedError(id, 'no model path is configured');
  const started = Date.now();
  let llama;
  let lib;
  try {
    [llama, lib] = await Promise.all([runtime.get(), runtime.module()]);
  } catch (err) {
    throw new ModelLoadFailedError(id, `node-llama-cpp is not available: ${errorText(err)}`);
  }
  try {
    const st = await stat(path);
    if (!st.isFile()) throw new Error(`${path} is not a file`);
  } catch (err) {
    throw new ModelLoadFailedError(id, `cannot read model file: ${errorText(err)}`);
  }
  let info;
  try {
    info = await lib.readGgufFileInfo(path, { readTensorInfo: false });
  } catch (err) {
    throw new ModelLoadFailedError(id, `${path} is not a readable GGUF file: ${errorText(err)}`);
  }
  const check = checkGgufMetadata(info);
  if (check.problems.length > 0) {
    throw new ModelLoadFailedError(
      id,
      `${path} has incomplete GGUF metadata (${check.problems.join('; ')}); refusing to load it, since llama.cpp may abort the process on such a file`,
    );
  }

  let model: LlamaModel | null = null;
  let context: LlamaContext | null = null;
  let embedding: LlamaEmbeddingContext | null = null;
  try {
    model = await llama.loadModel({ modelPath: path });
    const contextSize = config.contextSize ?? Math.min(model.trainContextSize, DEFAULT_CONTEXT_SIZE);
    context = await model.createContext({ contextSize, sequences: config.parallel, threads });
    let embeddingBytes = 0;
    if (config.embeddings) {
      embedding = await model.createEmbeddingContext({ contextSize, threads });
      const est = await model.fileInsights.estimateContextResourceRequirementsV2({
        contextSize,
        modelGpuLayers: model.gpuLayers,
        isEmbeddingContext: true,
      });
      embeddingBytes = est.cpuRam + est.gpuVram;
    }
    const gate = new DecodeGate();
    const members: PooledSequence[] = [];
    for (let i = 0; i < config.parallel; i++) {
      const sequence = context.getSequence();
      members.push({
        sequence,
        completion: new lib.LlamaCompletion({ contextSequence: sequence }),
        generated: recordGeneratedTokens(sequence, gate),
        busy: false,
        lastUsed: 0,
        promptLength: 0,
      });
    }
    const handle: LlamaHandle = {
      model,
      modelPath: path,
      context,
      pool: new SequencePool(members, gate),
      embedding,
      embeddingBytes,
      chatWrapper: lib.resolveChatWrapper(model),
      contextSize: context.contextSize,
      architecture: check.architecture,
      loadedAtEpochMs: Date.now(),
      lifetime: new AbortController(),
    };
    const mem = handleMemory(handle);
    logger.log(
      `loaded '${id}' in ${Date.now() - started} ms (${mib(mem.ram + mem.vram)} MiB, ${config.parallel} sequence(s) ` +
        `of ${handle.contextSize} tokens, ${threads} thread(s), chat format ${handle.chatWrapper.wrapperName})`,
    );
    return handle;
  } catch (err) {
    await disposeQuietly(embedding);
    await disposeQuietly(context);
    await disposeQuietly(model);
    throw new ModelLoadFailedError(id, errorText(err));
  }
}

/** Stops every generation on the handle, waits until each has returned, then frees native memory. */
export async function releaseHandle(h: LlamaHandle, modelId: string, logger: Logger): Promise<void> {
  h.lifetime.abort(new Error(`model '${modelId}' was unloaded`));
  await h.pool.drained();
  h.pool.dispose();
  for (const [what, target] of [
    ['embedding context', h.embedding],
    ['context', h.context],
    ['model', h.model],
  ] as const) {
    try {
      await target?.dispose();
    } catch (err) {
      logger.warn(`disposing the ${what} of '${modelId}' failed: ${errorText(err)}`);
    }
  }
  logger.log(`unloaded '${modelId}'`);
}

/**
 * GgufInsights' estimate of model + context with all its sequences (+ embedding context), from the
 * header alone. Throws when the header cannot be estimated (the caller then keeps the file size).
 */
export async function estimateBytes(runtime: LlamaRuntime, config: ModelConfig, path: string): Promise<number> {
  const llama = runtime.peek();
  if (!llama) throw new Error('node-llama-cpp is not initialised');
  const lib = await runtime.module();
  const info = await lib.readGgufFileInfo(path);
  // The V2 estimates hand the header to native code, which aborts on the same files a load would.
  const problems = checkGgufMetadata(info).problems;
  if (problems.length > 0) throw new Error(problems.join('; '));
  const insights = await lib.GgufInsights.from(info, llama);
  const contextSize = config.contextSize ?? Math.min(insights.trainContextSize ?? 0, DEFAULT_CONTEXT_SIZE);
  const parts = [
    await insights.estimateModelResourceRequirementsV2({ gpuLayers: 0 }),
    await insights.estimateContextResourceRequirementsV2({
      contextSize,
      modelGpuLayers: 0,
      sequences: config.parallel,
    }),
  ];
  if (config.embeddings) {
    parts.push(
      await insights.estimateContextResourceRequirementsV2({
        contextSize,
        modelGpuLayers: 0,
        isEmbeddingContext: true,
      }),
    );
  }
  return parts.reduce((sum, p) => sum + p.cpuRam + p.gpuVram, 0);
}

export function handleMemory(h: LlamaHandle): { ram: number; vram: number } {
  const model = h.model.memoryUsage;
  const context = h.context.memoryUsage;
  return { ram: model.ram + context.ram + h.embeddingBytes, vram: model.vram + context.vram };
}

async function disposeQuietly(target: { dispose(): Promise<void> } | null): Promise<void> {
  try {
    await target?.dispose();
  } catch {
    // Cleanup after a failed load: the load error is what the caller needs to see.
  }
}

function mib(bytes: number): string {
  return (bytes / 1048576).toFixed(1);
}

// Re-exported: the llama-cpp files import it from here.
export { errorText } from '../../common/errors.js';
