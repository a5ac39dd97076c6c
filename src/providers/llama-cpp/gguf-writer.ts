/**
 * A from-scratch GGUF v3 writer plus a generator of tiny llama-architecture models with seeded
 * random weights, so tests, the demo and benchmarks never download anything (docs/runtimes.md "Tiny generated models").
 */
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { dirname } from 'node:path';
import { toHalf } from '../../common/float16.js';
import { mulberry32 } from '../../common/prng.js';

/** GGUF metadata value type codes (gguf.h). */
export enum GgufValueType {
  U8 = 0,
  I8 = 1,
  U16 = 2,
  I16 = 3,
  U32 = 4,
  I32 = 5,
  F32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  U64 = 10,
  I64 = 11,
  F64 = 12,
}

export type GgufScalarType = Exclude<GgufValueType, GgufValueType.ARRAY>;

export type GgufKv =
  | { key: string; type: GgufScalarType; value: number | bigint | boolean | string }
  | {
      key: string;
      type: GgufValueType.ARRAY;
      itemType: GgufScalarType;
      value: readonly (number | bigint | boolean | string)[];
    };

/** ggml tensor types this writer can encode. */
export type GgufTensorType = 'f32' | 'f16';
const GGML_TYPE_CODE: Record<GgufTensorType, number> = { f32: 0, f16: 1 };
const GGML_TYPE_BYTES: Record<GgufTensorType, number> = { f32: 4, f16: 2 };

export interface GgufTensor {
  name: string;
  /** ggml order: ne0 (the contiguous row length) first. */
  dims: readonly number[];
  type: GgufTensorType;
  /** Produced only while writing, so a large model never has all its weights in memory at once. */
  data: () => Float32Array;
}

export interface GgufFileSpec {
  kv: readonly GgufKv[];
  tensors: readonly GgufTensor[];
  /** general.alignment; written as a key when not the default 32. */
  alignment?: number;
}

const DEFAULT_ALIGNMENT = 32;

/** Little-endian byte sink for the header part (keys and tensor infos). */
class ByteSink {
  private buf = Buffer.alloc(1 << 16);
  private pos = 0;

  get length(): number {
    return this.pos;
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = Buffer.alloc(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  u8(v: number): void {
    this.ensure(1);
    this.buf.writeUInt8(v, this.pos);
    this.pos += 1;
  }
  i8(v: number): void {
    this.ensure(1);
    this.buf.writeInt8(v, this.pos);
    this.pos += 1;
  }
  u16(v: number): void {
    this.ensure(2);
    this.buf.writeUInt16LE(v, this.pos);
    this.pos += 2;
  }
  i16(v: number): void {
    this.ensure(2);
    this.buf.writeInt16LE(v, this.pos);
    this.pos += 2;
  }
  u32(v: number): void {
    this.ensure(4);
    this.buf.writeUInt32LE(v, this.pos);
    this.pos += 4;
  }
  i32(v: number): void {
    this.ensure(4);
    this.buf.writeInt32LE(v, this.pos);
    this.pos += 4;
  }
  f32(v: number): void {
    this.ensure(4);
    this.buf.writeFloatLE(v, this.pos);
    this.pos += 4;
  }
  f64(v: number): void {
    this.ensure(8);
    this.buf.writeDoubleLE(v, this.pos);
    this.pos += 8;
  }
  u64(v: number | bigint): void {
    this.ensure(8);
    this.buf.writeBigUInt64LE(BigInt(v), this.pos);
    this.pos += 8;
  }
  i64(v: number | bigint): void {
    this.ensure(8);
    this.buf.writeBigInt64LE(BigInt(v), this.pos);
    this.pos += 8;
  }
  str(s: string): void {
    const bytes = Buffer.from(s, 'utf8');
    this.u64(bytes.length);
    this.ensure(bytes.length);
    bytes.copy(this.buf, this.pos);
    this.pos += bytes.length;
  }
  zeros(n: number): void {
    this.ensure(n);
    this.buf.fill(0, this.pos, this.pos + n);
    this.pos += n;
  }
  bytes(): Buffer {
    return this.buf.subarray(0, this.pos);
  }
}

function writeScalar(
  sink: ByteSink,
  type: GgufScalarType,
  value: number | bigint | boolean | string,
  key: string,
): void {
  const num = (): number => {
    if (typeof value !== 'number') throw new TypeError(`GGUF key '${key}': expected a number, got ${typeof value}`);
    return value;
  };
  switch (type) {
    case GgufValueType.U8:
      return sink.u8(num());
    case GgufValueType.I8:
      return sink.i8(num());
    case GgufValueType.U16:
      return sink.u16(num());
    case GgufValueType.I16:
      return sink.i16(num());
    case GgufValueType.U32:
      return sink.u32(num());
    case GgufValueType.I32:
      return sink.i32(num());
    case GgufValueType.F32:
      return sink.f32(num());
    case GgufValueType.F64:
      return sink.f64(num());
    case GgufValueType.U64:
      return sink.u64(typeof value === 'bigint' ? value : num());
    case GgufValueType.I64:
      return sink.i64(typeof value === 'bigint' ? value : num());
    case GgufValueType.BOOL:
      if (typeof value !== 'boolean') throw new TypeError(`GGUF key '${key}': expected a boolean`);
      return sink.u8(value ? 1 : 0);
    case GgufValueType.STRING:
      if (typeof value !== 'string') throw new TypeError(`GGUF key '${key}': expected a string`);
      return sink.str(value);
  }
}

function alignUp(n: number, alignment: number): number {
  return Math.ceil(n / alignment) * alignment;
}

function tensorBytes(t: GgufTensor): number {
  return t.dims.reduce((a, b) => a * b, 1) * GGML_TYPE_BYTES[t.type];
}

interface Layout {
  header: Buffer;
  /** Offsets of each tensor relative to the start of the data section. */
  offsets: number[];
  dataStart: number;
  totalBytes: number;
  alignment: number;
}

function layout(spec: GgufFileSpec): Layout {
  const alignment = spec.alignment ?? DEFAULT_ALIGNMENT;
  const kv: GgufKv[] = [...spec.kv];
  if (alignment !== DEFAULT_ALIGNMENT && !kv.some((e) => e.key === 'general.alignment')) {
    kv.push({ key: 'general.alignment', type: GgufValueType.U32, value: alignment });
  }
  const sink = new ByteSink();
  sink.u8(0x47); // G
  sink.u8(0x47); // G
  sink.u8(0x55); // U
  sink.u8(0x46); // F
  sink.u32(3);
  sink.u64(spec.tensors.length);
  sink.u64(kv.length);
  for (const entry of kv) {
    sink.str(entry.key);
    sink.u32(entry.type);
    if (entry.type === GgufValueType.ARRAY) {
      sink.u32(entry.itemType);
      sink.u64(entry.value.length);
      for (const item of entry.value) writeScalar(sink, entry.itemType, item, entry.key);
    } else {
      writeScalar(sink, entry.type, entry.value, entry.key);
    }
  }
  const offsets: number[] = [];
  let offset = 0;
  for (const t of spec.tensors) {
    sink.str(t.name);
    sink.u32(t.dims.length);
    for (const d of t.dims) sink.u64(d);
    sink.u32(GGML_TYPE_CODE[t.type]);
    sink.u64(offset);
    offsets.push(offset);
    offset = alignUp(offset + tensorBytes(t), alignment);
  }
  const dataStart = alignUp(sink.length, alignment);
  sink.zeros(dataStart - sink.length);
  const lastTensor = spec.tensors[spec.tensors.length - 1];
  const lastOffset = offsets[offsets.length - 1];
  // The file ends right after the last tensor: no trailing padding is required.
  const dataBytes = lastTensor === undefined || lastOffset === undefined ? 0 : lastOffset + tensorBytes(lastTensor);
  return { header: Buffer.from(sink.bytes()), offsets, dataStart, totalBytes: dataStart + dataBytes, alignment };
}

/** Exact size in bytes `writeGgufFile` produces for this spec, without generating any weights. */
export function ggufFileSize(spec: GgufFileSpec): number {
  return layout(spec).totalBytes;
}

export { toHalf as float32ToFloat16Bits } from '../../common/float16.js';

function encodeTensor(t: GgufTensor): Buffer {
  const values = t.data();
  const count = t.dims.reduce((a, b) => a * b, 1);
  if (values.length !== count) {
    throw new Error(`tensor '${t.name}': ${values.length} values for dims [${t.dims.join(', ')}] (${count})`);
  }
  if (t.type === 'f32') return Buffer.from(values.buffer, values.byteOffset, values.byteLength);
  const half = new Uint16Array(count);
  for (let i = 0; i < count; i++) half[i] = toHalf(values[i]!);
  // GGUF is little-endian, as is every host node-llama-cpp ships binaries for.
  return Buffer.from(half.buffer, half.byteOffset, half.byteLength);
}

/**
 * Writes a GGUF file atomically: a temp file in the same folder, fsync, then rename, so a reader
 * (or a parallel jest worker) sees either no file or the complete one.
 */
export function writeGgufFile(path: string, spec: GgufFileSpec): number {
  const plan = layout(spec);
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  const fd = openSync(tmp, 'w');
  try {
    writeSync(fd, plan.header);
    let position = plan.dataStart;
    spec.tensors.forEach((t, i) => {
      // layout() records one offset per tensor, in order.
      const target = plan.dataStart + plan.offsets[i]!;
      if (target > position) writeSync(fd, Buffer.alloc(target - position));
      const bytes = encodeTensor(t);
      writeSync(fd, bytes);
      position = target + bytes.length;
    });
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    unlinkSync(tmp);
    throw err;
  }
  closeSync(fd);
  renameSync(tmp, path);
  return plan.totalBytes;
}

export { mulberry32 } from '../../common/prng.js';

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
    { key: 'general.alignment', type: GgufValueType.U32, value: DEFAULT_ALIGNMENT },
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
