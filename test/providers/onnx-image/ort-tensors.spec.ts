import * as ort from 'onnxruntime-node';
import {
  floatTensor,
  fromHalf,
  intTensor,
  readFloats,
  toHalf,
  type Ort,
} from '../../../src/providers/onnx-image/ort-tensors.js';

describe('tensor helpers for fp16/int64 exports', () => {
  it('converts float32 to IEEE half with round-to-nearest-even', () => {
    expect(toHalf(1)).toBe(0x3c00);
    expect(toHalf(-2)).toBe(0xc000);
    expect(toHalf(65504)).toBe(0x7bff);
    expect(toHalf(65520)).toBe(0x7c00); // rounds up to infinity
    expect(toHalf(1e6)).toBe(0x7c00);
    expect(toHalf(2 ** -24)).toBe(0x0001); // smallest subnormal
    expect(toHalf(0)).toBe(0);
    expect(Number.isNaN(fromHalf(toHalf(NaN)))).toBe(true);
    for (const v of [0.1, -3.14159, 1234.5, 6.1e-5, 0.18215]) {
      expect(Math.abs(fromHalf(toHalf(v)) - v)).toBeLessThanOrEqual(Math.abs(v) * 2 ** -11);
    }
  });

  it('builds tensors of the dtype a session declares and reads any float output back as float32', () => {
    const ortModule: Ort = ort;
    const half = floatTensor(ortModule, 'float16', Float32Array.of(1, -2), [2]);
    expect(half.type).toBe('float16');
    expect(Array.from(readFloats(half))).toEqual([1, -2]);
    expect(floatTensor(ortModule, 'float64', Float32Array.of(0.5), [1]).type).toBe('float64');
    const ids = intTensor(ortModule, 'int64', [999, 259.4], [2]);
    expect(ids.type).toBe('int64');
    expect(Array.from(ids.data as BigInt64Array)).toEqual([999n, 259n]);
    expect(Array.from(intTensor(ortModule, 'int32', [7], [1]).data as Int32Array)).toEqual([7]);
  });
});
