/**
 * A from-scratch GGUF v3 writer (the file format llama.cpp loads). Format code only: the models it writes
 * are recipes in src/demo/ (docs/runtimes.md "Tiny generated models").
 */
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { toHalf } from '../common/float16.js';

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

export const GGUF_DEFAULT_ALIGNMENT = 32;

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
  const alignment = spec.alignment ?? GGUF_DEFAULT_ALIGNMENT;
  const kv: GgufKv[] = [...spec.kv];
  if (alignment !== GGUF_DEFAULT_ALIGNMENT && !kv.some((e) => e.key === 'general.alignment')) {
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
