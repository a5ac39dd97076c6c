import type * as OrtNamespace from 'onnxruntime-node';
import { fromHalf, toHalf } from '../../common/float16.js';

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

export { fromHalf, toHalf };

/** A float tensor of the dtype the session declared, from float32 data. */
export function floatTensor(ort: Ort, type: FloatType, data: Float32Array, dims: readonly number[]): OrtTensor {
  if (type === 'float32') return new ort.Tensor('float32', data, dims);
  if (type === 'float64') return new ort.Tensor('float64', Float64Array.from(data), dims);
  const halves = new Uint16Array(data.length);
  for (let i = 0; i < data.length; i++) halves[i] = toHalf(data[i]!);
  return new ort.Tensor('float16', halves, dims);
}

/** An integer tensor of the declared dtype (int64 needs BigInt64Array). */
export function intTensor(ort: Ort, type: IntType, values: ArrayLike<number>, dims: readonly number[]): OrtTensor {
  if (type === 'int32') return new ort.Tensor('int32', Int32Array.from(values), dims);
  const big = new BigInt64Array(values.length);
  for (let i = 0; i < values.length; i++) big[i] = BigInt(Math.round(values[i]!));
  return new ort.Tensor('int64', big, dims);
}

/** Reads any float output as float32. */
export function readFloats(tensor: OrtTensor): Float32Array {
  const data: unknown = tensor.data;
  if (tensor.type === 'float32' && data instanceof Float32Array) return data;
  if (tensor.type === 'float64' && data instanceof Float64Array) return Float32Array.from(data);
  if (tensor.type === 'float16' && data instanceof Uint16Array) return Float32Array.from(data, fromHalf);
  // Where the runtime has Float16Array (Node >= 24), onnxruntime-node hands float16 outputs back as one.
  if (tensor.type === 'float16' && isFloat16Array(data)) return Float32Array.from(data);
  throw new Error(`expected a float tensor, got ${tensor.type}`);
}

function isFloat16Array(data: unknown): data is ArrayLike<number> {
  const ctor = (globalThis as { Float16Array?: abstract new (...args: never[]) => unknown }).Float16Array;
  return ctor !== undefined && data instanceof ctor;
}

/** a then b in one array (a CFG batch: unconditional half, then conditional). */
export function concat(a: Float32Array, b: Float32Array): Float32Array {
  const out = new Float32Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}
