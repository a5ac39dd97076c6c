import type * as OrtNamespace from 'onnxruntime-node';

/** The onnxruntime-node module as loaded at runtime (imported lazily so a broken binding only fails init()). */
export type Ort = typeof OrtNamespace;
export type OrtSession = OrtNamespace.InferenceSession;
export type OrtTensor = OrtNamespace.Tensor;

export const FLOAT_TYPES = ['float32', 'float16', 'float64'] as const;
export type FloatType = (typeof FLOAT_TYPES)[number];
export const INT_TYPES = ['int32', 'int64'] as const;
export type IntType = (typeof INT_TYPES)[number];

export function isFloatType(type: string): type is FloatType {
  return (FLOAT_TYPES as readonly string[]).includes(type);
}

export function isIntType(type: string): type is IntType {
  return (INT_TYPES as readonly string[]).includes(type);
}

const F32 = new Float32Array(1);
const U32 = new Uint32Array(F32.buffer);

/** IEEE half from a float32 value, round-to-nearest-even (fp16 exports take and return halves). */
export function toHalf(value: number): number {
  F32[0] = value;
  const x = U32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rest = mant & ((1 << shift) - 1);
    const midpoint = 1 << (shift - 1);
    if (rest > midpoint || (rest === midpoint && half & 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  // A carry out of the mantissa bumps the exponent, and at the top lands exactly on infinity.
  if (rest > 0x1000 || (rest === 0x1000 && half & 1)) half++;
  return sign | half;
}

export function fromHalf(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** A float tensor of the dtype the session declared, from float32 data. */
export function floatTensor(ort: Ort, type: FloatType, data: Float32Array, dims: readonly number[]): OrtTensor {
  if (type === 'float32') return new ort.Tensor('float32', data, dims);
  if (type === 'float64') return new ort.Tensor('float64', Float64Array.from(data), dims);
  const halves = new Uint16Array(data.length);
  for (let i = 0; i < data.length; i++) halves[i] = toHalf(data[i]);
  return new ort.Tensor('float16', halves, dims);
}

/** An integer tensor of the declared dtype (int64 needs BigInt64Array). */
export function intTensor(ort: Ort, type: IntType, values: ArrayLike<number>, dims: readonly number[]): OrtTensor {
  if (type === 'int32') return new ort.Tensor('int32', Int32Array.from(values), dims);
  const big = new BigInt64Array(values.length);
  for (let i = 0; i < values.length; i++) big[i] = BigInt(Math.round(values[i]));
  return new ort.Tensor('int64', big, dims);
}

/** Reads any float output as float32. */
export function readFloats(tensor: OrtTensor): Float32Array {
  const data: unknown = tensor.data;
  if (tensor.type === 'float32' && data instanceof Float32Array) return data;
  if (tensor.type === 'float64' && data instanceof Float64Array) return Float32Array.from(data);
  if (tensor.type === 'float16' && data instanceof Uint16Array) return Float32Array.from(data, fromHalf);
  throw new Error(`expected a float tensor, got ${tensor.type}`);
}
