/**
 * Pre-load validation of a GGUF header, in JS, before the file reaches native code.
 * llama.cpp turns some missing keys into a catchable "Failed to load model", but a missing
 * `<arch>.feed_forward_length` or `<arch>.attention.head_count` hits a GGML_ASSERT that aborts
 * the whole process (docs/runtimes.md "A bad model file can abort the whole process"). One bad model file must fail one load, not the orchestrator.
 */
import type { GgufFileInfo } from 'node-llama-cpp';

/** Architectures without attention/FFN blocks: for them the two abort-prone keys do not apply. */
const ATTENTION_FREE_ARCHS = new Set(['mamba', 'mamba2', 'rwkv6', 'rwkv6qwen2', 'rwkv7', 'arwkv7']);

/** Keys (relative to the architecture prefix) llama.cpp needs for any transformer model. */
const ARCH_KEYS = ['context_length', 'embedding_length', 'block_count'] as const;
const ATTENTION_KEYS = ['feed_forward_length', 'attention.head_count'] as const;
const NORM_EPSILON_KEYS = ['attention.layer_norm_rms_epsilon', 'attention.layer_norm_epsilon'] as const;

export interface GgufCheckResult {
  architecture: string | null;
  /** Human-readable problems; empty when the file is safe to hand to llama.cpp. */
  problems: string[];
}

function lookup(root: unknown, dotted: string): unknown {
  let node: unknown = root;
  for (const part of dotted.split('.')) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<string, unknown>)[part];
  }
  return node;
}

/** A positive count, or a per-layer array of counts (some architectures store head counts per layer). */
function isPositiveCount(value: unknown): boolean {
  if (typeof value === 'number' || typeof value === 'bigint') return Number(value) >= 1;
  if (Array.isArray(value)) return value.length > 0 && value.every((v) => typeof v === 'number' && v >= 1);
  return false;
}

export function checkGgufMetadata(info: Pick<GgufFileInfo, 'metadata'>): GgufCheckResult {
  const meta: unknown = info.metadata;
  const problems: string[] = [];
  const arch = lookup(meta, 'general.architecture');
  if (typeof arch !== 'string' || arch.length === 0) {
    return { architecture: null, problems: ['missing key general.architecture'] };
  }
  const requireCount = (key: string): void => {
    const value = lookup(meta, `${arch}.${key}`);
    if (value === undefined) problems.push(`missing key ${arch}.${key}`);
    else if (!isPositiveCount(value)) problems.push(`key ${arch}.${key} must be >= 1 (got ${JSON.stringify(value)})`);
  };
  ARCH_KEYS.forEach(requireCount);
  if (!ATTENTION_FREE_ARCHS.has(arch)) {
    ATTENTION_KEYS.forEach(requireCount);
    // llama-style models use the RMS epsilon; GPT-2/Falcon-style ones the LayerNorm one.
    if (NORM_EPSILON_KEYS.every((k) => lookup(meta, `${arch}.${k}`) === undefined)) {
      problems.push(`missing key ${arch}.${NORM_EPSILON_KEYS[0]}`);
    }
  }
  if (typeof lookup(meta, 'tokenizer.ggml.model') !== 'string') problems.push('missing key tokenizer.ggml.model');
  const tokens = lookup(meta, 'tokenizer.ggml.tokens');
  if (!Array.isArray(tokens) || tokens.length === 0) problems.push('missing key tokenizer.ggml.tokens');
  return { architecture: arch, problems };
}
