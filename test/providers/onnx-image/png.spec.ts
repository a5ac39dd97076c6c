import {
  encodePng,
  encodeScanlinesAsync,
  ScanlineBuffers,
  UpFilteredScanlines,
} from '../../../src/providers/onnx-image/png.js';
import { SeededRandom } from '../../../src/providers/onnx-image/prng.js';
import { readPng } from './png-reader.js';

describe('PNG encoder', () => {
  it('the test reader rejects a PNG whose chunk CRC is wrong, so a passing round trip proves valid CRCs', () => {
    const png = encodePng(new Uint8Array(2 * 2 * 3).fill(200), 2, 2);
    expect(readPng(png).width).toBe(2);
    const corrupt = Buffer.from(png);
    // The IHDR CRC's first byte: after signature (8), length (4), type (4) and 13 data bytes.
    const ihdrCrc = 8 + 4 + 4 + 13;
    corrupt.writeUInt8(corrupt.readUInt8(ihdrCrc) ^ 0x01, ihdrCrc);
    expect(() => readPng(corrupt)).toThrow('bad CRC in IHDR');
  });

  it('round-trips RGB pixels through an independent zlib decoder, with valid header and CRCs', () => {
    const width = 37;
    const height = 23;
    const rng = new SeededRandom(5);
    const pixels = new Uint8Array(width * height * 3);
    // Gradients plus noise so every filter type gets chosen somewhere.
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const i = (y * width + x) * 3;
        pixels[i] = x * 6;
        pixels[i + 1] = y * 11;
        pixels[i + 2] = rng.nextUint32() & 0xff;
      }
    }
    const png = encodePng(pixels, width, height);
    const decoded = readPng(png);
    expect(decoded).toMatchObject({ width, height, bitDepth: 8, colorType: 2, chunks: ['IHDR', 'IDAT', 'IEND'] });
    expect(Buffer.from(decoded.pixels).equals(Buffer.from(pixels))).toBe(true);
  });

  it('writes RGBA and is deterministic', () => {
    const pixels = Uint8Array.from({ length: 4 * 4 * 4 }, (_, i) => (i * 7) & 0xff);
    const a = encodePng(pixels, 4, 4, 4);
    expect(a.equals(encodePng(pixels, 4, 4, 4))).toBe(true);
    const decoded = readPng(a);
    expect(decoded.colorType).toBe(6);
    expect(Array.from(decoded.pixels)).toEqual(Array.from(pixels));
  });

  it('refuses a pixel buffer of the wrong size', () => {
    expect(() => encodePng(new Uint8Array(10), 2, 2)).toThrow(/expected 12 bytes/);
  });

  it('scanlines pushed row by row, from reused row buffers, make the same file as the whole pixel buffer', async () => {
    const width = 19;
    const height = 11;
    const rng = new SeededRandom(9);
    const pixels = Uint8Array.from({ length: width * height * 3 }, () => rng.nextUint32() & 0xff);
    const scanlines = new UpFilteredScanlines(width, height);
    // Two buffers in turn, as the image pipeline renders rows: the last row pushed must stay intact.
    const buffers = [new Uint8Array(width * 3), new Uint8Array(width * 3)];
    for (let y = 0; y < height; y++) {
      const row = buffers[y % 2]!;
      row.set(pixels.subarray(y * width * 3, (y + 1) * width * 3));
      scanlines.push(row);
    }
    const png = await encodeScanlinesAsync(scanlines);
    expect(png.equals(encodePng(pixels, width, height))).toBe(true);
    expect(Buffer.from(readPng(png).pixels).equals(Buffer.from(pixels))).toBe(true);
  });

  it('a scanline buffer given back is lent again, and its old bytes never reach the next file', async () => {
    const buffers = new ScanlineBuffers();
    const rows = (fill: number) => {
      const scanlines = new UpFilteredScanlines(3, 2, 3, buffers);
      scanlines.push(new Uint8Array(9).fill(fill));
      scanlines.push(new Uint8Array(9).fill(fill + 1));
      return scanlines;
    };
    const first = rows(200);
    buffers.give(first.bytes);
    const second = rows(7);
    expect(second.bytes).toBe(first.bytes);
    const pixels = Uint8Array.from([...new Array<number>(9).fill(7), ...new Array<number>(9).fill(8)]);
    expect((await encodeScanlinesAsync(second)).equals(encodePng(pixels, 3, 2))).toBe(true);
  });

  it('refuses a row of the wrong length, a row too many, and a file with rows missing', async () => {
    const scanlines = new UpFilteredScanlines(2, 1);
    expect(() => scanlines.push(new Uint8Array(5))).toThrow(/row of 6 bytes, got 5/);
    await expect(encodeScanlinesAsync(scanlines)).rejects.toThrow(/rows still missing/);
    scanlines.push(new Uint8Array(6));
    expect(() => scanlines.push(new Uint8Array(6))).toThrow(/all 1 rows/);
    expect(() => new UpFilteredScanlines(0, 4)).toThrow(/positive integers/);
  });
});

describe('SeededRandom', () => {
  it('same seed gives the same stream; other seeds and streams differ', () => {
    const a = new SeededRandom(42).gaussian(64);
    expect(Array.from(new SeededRandom(42).gaussian(64))).toEqual(Array.from(a));
    expect(Array.from(new SeededRandom(43).gaussian(64))).not.toEqual(Array.from(a));
    expect(Array.from(new SeededRandom(42, 1).gaussian(64))).not.toEqual(Array.from(a));
    expect(Array.from(new SeededRandom(2 ** 40).gaussian(8))).not.toEqual(Array.from(new SeededRandom(0).gaussian(8)));
  });

  it('fillGaussian continues the same stream as nextGaussian, across odd lengths and the kept spare', () => {
    const one = new SeededRandom(21);
    const bulk = new SeededRandom(21);
    for (const length of [1, 7, 0, 16, 3]) {
      const expected = Float32Array.from({ length }, () => one.nextGaussian());
      const got = new Float32Array(length);
      bulk.fillGaussian(got);
      expect(Array.from(got)).toEqual(Array.from(expected));
    }
    expect(bulk.nextGaussian()).toBe(one.nextGaussian());
  });

  it('Box-Muller samples are standard normal', () => {
    const samples = new SeededRandom(7).gaussian(200_000);
    let sum = 0;
    let sq = 0;
    for (const v of samples) {
      sum += v;
      sq += v * v;
    }
    const mean = sum / samples.length;
    expect(Math.abs(mean)).toBeLessThan(0.01);
    expect(Math.abs(sq / samples.length - mean * mean - 1)).toBeLessThan(0.02);
  });
});
