/**
 * Tiny llama-architecture models with seeded random weights, written as GGUF, so tests, the demo and
 * benchmarks never download anything (docs/runtimes.md "Tiny generated models"). A recipe, not runtime code:
 * production code reaches it only in demo mode.
 */
import { existsSync, statSync } from 'node:fs';
import { mulberry32 } from '../common/prng.js';
import {
  GGUF_DEFAULT_ALIGNMENT,
  ggufFileSize,
  GgufValueType,
  writeGgufFile,
  type GgufFileSpec,
  type GgufKv,
  type GgufTensor,
  type GgufTensorType,
} from '../formats/gguf-writer.js';

export interface TinyLlamaOptions {
  seed: number;
  nEmbd: number;
  nLayers: number;
  nHeads: number;
  nFf: number;
  contextLength: number;
  /** Store the 2-D weight matrices as F16 (norms stay F32, as llama.cpp expects). */
  f16?: boolean;
  name: string;
  /** Metadata keys to leave out; only for negative tests (some absences abort the process: docs/runtimes.md). */
  omitKeys?: readonly string[];
}

/** `<unk>`, `<s>`, `</s>`, the 256 byte tokens, then `▁`: any text tokenizes through byte fallback. */
export const TINY_VOCAB_SIZE = 260;
const BYTE_TOKEN_BASE = 3;
const TOKEN_TYPE_NORMAL = 1;
const TOKEN_TYPE_UNKNOWN = 2;
const TOKEN_TYPE_CONTROL = 3;
const TOKEN_TYPE_BYTE = 6;
/** Residual value of the bias channel (dim 0), and the logit weight it carries for unwanted tokens. */
const BIAS_CHANNEL_VALUE = 4;
const BIAS_CHANNEL_PENALTY = -10;

function tinyVocab(): { tokens: string[]; types: number[]; scores: number[] } {
  const tokens = ['<unk>', '<s>', '</s>'];
  const types = [TOKEN_TYPE_UNKNOWN, TOKEN_TYPE_CONTROL, TOKEN_TYPE_CONTROL];
  for (let b = 0; b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
    types.push(TOKEN_TYPE_BYTE);
  }
  tokens.push('\u2581');
  types.push(TOKEN_TYPE_NORMAL);
  return { tokens, types, scores: tokens.map(() => 0) };
}

/**
 * The tokens greedy decoding may pick: printable ASCII bytes except space. Space is left out so
 * no tokenizer whitespace handling can make the text shorter than the token count.
 */
function isWantedOutputToken(token: number): boolean {
  const byte = token - BYTE_TOKEN_BASE;
  return byte >= 0x21 && byte <= 0x7e;
}

/** The whole model as a GgufFileSpec; weights are generated lazily, tensor by tensor, from the seed. */
export function tinyLlamaSpec(opts: TinyLlamaOptions): GgufFileSpec {
  const { nEmbd, nLayers, nHeads, nFf, contextLength } = opts;
  if (nEmbd % nHeads !== 0) throw new Error(`nEmbd (${nEmbd}) must be a multiple of nHeads (${nHeads})`);
  if (nEmbd < 2) throw new Error('nEmbd must be at least 2 (dim 0 is the bias channel)');
  const headDim = nEmbd / nHeads;
  const vocab = tinyVocab();
  const omit = new Set(opts.omitKeys ?? []);
  const matType: GgufTensorType = opts.f16 ? 'f16' : 'f32';

  const kv: GgufKv[] = [
    { key: 'general.architecture', type: GgufValueType.STRING, value: 'llama' },
    { key: 'general.name', type: GgufValueType.STRING, value: opts.name },
    { key: 'general.alignment', type: GgufValueType.U32, value: GGUF_DEFAULT_ALIGNMENT },
    { key: 'llama.context_length', type: GgufValueType.U32, value: contextLength },
    { key: 'llama.embedding_length', type: GgufValueType.U32, value: nEmbd },
    { key: 'llama.block_count', type: GgufValueType.U32, value: nLayers },
    { key: 'llama.feed_forward_length', type: GgufValueType.U32, value: nFf },
    { key: 'llama.attention.head_count', type: GgufValueType.U32, value: nHeads },
    { key: 'llama.attention.head_count_kv', type: GgufValueType.U32, value: nHeads },
    { key: 'llama.attention.layer_norm_rms_epsilon', type: GgufValueType.F32, value: 1e-5 },
    { key: 'llama.rope.dimension_count', type: GgufValueType.U32, value: headDim },
    { key: 'llama.rope.freq_base', type: GgufValueType.F32, value: 10000 },
    { key: 'llama.vocab_size', type: GgufValueType.U32, value: TINY_VOCAB_SIZE },
    { key: 'tokenizer.ggml.model', type: GgufValueType.STRING, value: 'llama' },
    { key: 'tokenizer.ggml.tokens', type: GgufValueType.ARRAY, itemType: GgufValueType.STRING, value: vocab.tokens },
    { key: 'tokenizer.ggml.scores', type: GgufValueType.ARRAY, itemType: GgufValueType.F32, value: vocab.scores },
    { key: 'tokenizer.ggml.token_type', type: GgufValueType.ARRAY, itemType: GgufValueType.I32, value: vocab.types },
    { key: 'tokenizer.ggml.bos_token_id', type: GgufValueType.U32, value: 1 },
    { key: 'tokenizer.ggml.eos_token_id', type: GgufValueType.U32, value: 2 },
    { key: 'tokenizer.ggml.unknown_token_id', type: GgufValueType.U32, value: 0 },
    { key: 'tokenizer.ggml.add_bos_token', type: GgufValueType.BOOL, value: true },
    { key: 'tokenizer.ggml.add_eos_token', type: GgufValueType.BOOL, value: false },
  ].filter((e) => !omit.has(e.key)) as GgufKv[];

  // Each tensor gets its own PRNG stream derived from the seed and its index, so weights do not
  // depend on generation order and any tensor can be produced alone.
  let tensorIndex = 0;
  const random = (ne0: number, count: number, edit?: (w: Float32Array) => void): (() => Float32Array) => {
    const streamSeed = (opts.seed * 0x9e3779b1 + ++tensorIndex * 0x85ebca6b) >>> 0;
    return () => {
      const rand = mulberry32(streamSeed);
      const scale = 1 / Math.sqrt(ne0);
      const w = new Float32Array(count);
      for (let i = 0; i < count; i++) w[i] = (rand() * 2 - 1) * scale;
      edit?.(w);
      return w;
    };
  };
  const ones = (count: number) => () => new Float32Array(count).fill(1);
  const matrix = (name: string, ne0: number, ne1: number, edit?: (w: Float32Array) => void): GgufTensor => ({
    name,
    dims: [ne0, ne1],
    type: matType,
    data: random(ne0, ne0 * ne1, edit),
  });
  const norm = (name: string): GgufTensor => ({ name, dims: [nEmbd], type: 'f32', data: ones(nEmbd) });
  // Output row 0 (dimension 0 of the residual) is never written by a layer, so the value the
  // embedding puts there survives to the output head unchanged: the "bias channel".
  const zeroOutputRow0 = (ne0: number) => (w: Float32Array) => w.fill(0, 0, ne0);

  const tensors: GgufTensor[] = [
    matrix('token_embd.weight', nEmbd, TINY_VOCAB_SIZE, (w) => {
      for (let t = 0; t < TINY_VOCAB_SIZE; t++) w[t * nEmbd] = BIAS_CHANNEL_VALUE;
    }),
    norm('output_norm.weight'),
    matrix('output.weight', nEmbd, TINY_VOCAB_SIZE, (w) => {
      for (let t = 0; t < TINY_VOCAB_SIZE; t++) w[t * nEmbd] = isWantedOutputToken(t) ? 0 : BIAS_CHANNEL_PENALTY;
    }),
  ];
  for (let l = 0; l < nLayers; l++) {
    const p = `blk.${l}.`;
    tensors.push(
      norm(`${p}attn_norm.weight`),
      matrix(`${p}attn_q.weight`, nEmbd, nEmbd),
      matrix(`${p}attn_k.weight`, nEmbd, nEmbd),
      matrix(`${p}attn_v.weight`, nEmbd, nEmbd),
      matrix(`${p}attn_output.weight`, nEmbd, nEmbd, zeroOutputRow0(nEmbd)),
      norm(`${p}ffn_norm.weight`),
      matrix(`${p}ffn_gate.weight`, nEmbd, nFf),
      matrix(`${p}ffn_up.weight`, nEmbd, nFf),
      matrix(`${p}ffn_down.weight`, nFf, nEmbd, zeroOutputRow0(nFf)),
    );
  }
  return { kv, tensors };
}

export interface TinyLlamaWriteResult {
  path: string;
  sizeBytes: number;
  /** false when an identical-size file was already there and was kept. */
  written: boolean;
}

/**
 * Writes a tiny llama GGUF to `path` unless a file of exactly the expected size is already there.
 * Greedy decoding on it yields printable ASCII tokens only, never EOS, so a request for N tokens
 * gets exactly N (docs/runtimes.md "Tiny generated models", the bias channel).
 */
export function writeTinyLlamaGguf(path: string, opts: TinyLlamaOptions): TinyLlamaWriteResult {
  const spec = tinyLlamaSpec(opts);
  const expected = ggufFileSize(spec);
  if (existsSync(path) && statSync(path).size === expected) return { path, sizeBytes: expected, written: false };
  const sizeBytes = writeGgufFile(path, spec);
  return { path, sizeBytes, written: true };
}

/** ~0.5 MB F32 chat model: 115k parameters; 512-token context leaves room for a chat template. */
export const TINY_CHAT: TinyLlamaOptions = {
  seed: 1,
  nEmbd: 64,
  nLayers: 2,
  nHeads: 4,
  nFf: 128,
  contextLength: 512,
  name: 'tiny-chat',
};

/** Same architecture, other weights; served with embeddings enabled (vector length = nEmbd). */
export const TINY_EMBED: TinyLlamaOptions = { ...TINY_CHAT, seed: 2, name: 'tiny-embed' };

/** ~52 MB F16 model (26M parameters) for throughput benchmarks. */
export const BENCH: TinyLlamaOptions = {
  seed: 3,
  nEmbd: 512,
  nLayers: 8,
  nHeads: 8,
  nFf: 1408,
  contextLength: 2048,
  f16: true,
  name: 'bench-26m',
};
