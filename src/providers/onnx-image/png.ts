import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { crc32, deflate, deflateSync } from 'node:zlib';
import { toBase64Ascii } from '../image-data.js';

const deflateAsync = promisify(deflate);

/** Minimal PNG writer (8-bit RGB/RGBA) so image output needs no native image library. */

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

function chunk(type: string, data: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'latin1');
  out.set(data, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

/**
 * PNG scanlines built one row at a time, each with the "Up" filter (the byte minus the one above it). Trying
 * all five filters per row (libpng's heuristic) made files ~5% smaller but cost 3x the encoding time in JS,
 * which dominated image latency on small models. Taking rows as they are rendered lets the image pipeline
 * convert and filter in one pass while the row is still in cache.
 */
export class UpFilteredScanlines {
  /** Filter-type byte + filtered row, for every row pushed so far: what IDAT deflates. */
  readonly bytes: Uint8Array;
  readonly stride: number;
  private above: Uint8Array | null = null;
  private rows = 0;

  /** `buffers`, when given, lends the bytes (every one is overwritten, so a used buffer is fine). */
  constructor(
    readonly width: number,
    readonly height: number,
    readonly channels: 3 | 4 = 3,
    buffers?: ScanlineBuffers,
  ) {
    checkSize(width, height);
    this.stride = width * channels;
    const length = height * (this.stride + 1);
    this.bytes = buffers ? buffers.take(length) : new Uint8Array(length);
  }

  /** Appends the next row of raw pixels. It must stay unchanged until the next push: it is that row's "up". */
  push(row: Uint8Array): void {
    const { stride, bytes } = this;
    if (row.length !== stride) throw new RangeError(`expected a row of ${stride} bytes, got ${row.length}`);
    if (this.rows === this.height) throw new RangeError(`all ${this.height} rows are already written`);
    const base = this.rows * (stride + 1);
    bytes[base] = 2;
    const above = this.above;
    if (above === null) bytes.set(row, base + 1);
    else for (let i = 0; i < stride; i++) bytes[base + 1 + i] = row[i]! - above[i]!;
    this.above = row;
    this.rows++;
  }

  get complete(): boolean {
    return this.rows === this.height;
  }
}

/**
 * Scanline buffers kept for the next image of the same size. A fresh 786 KB buffer per 512² image is a fresh
 * mmap and ~200 page faults wherever large allocations bypass malloc's arenas (MALLOC_MMAP_THRESHOLD_, as the
 * container image sets it): measured 2-3 ms of a 512² turn on the 2-core box. At most `keep` buffers wait
 * here (two: one image encoding while the next renders).
 */
export class ScanlineBuffers {
  private readonly free: Uint8Array[] = [];

  constructor(private readonly keep = 2) {}

  take(length: number): Uint8Array {
    const index = this.free.findIndex((buffer) => buffer.length === length);
    return index >= 0 ? this.free.splice(index, 1)[0]! : new Uint8Array(length);
  }

  /** Takes a buffer back once nothing reads it any more. */
  give(buffer: Uint8Array): void {
    if (this.free.length >= this.keep) this.free.shift();
    this.free.push(buffer);
  }
}

function filterRows(pixels: Uint8Array, width: number, height: number, channels: 3 | 4): Uint8Array {
  if (pixels.length !== width * height * channels) {
    throw new RangeError(`expected ${width * height * channels} bytes of pixels, got ${pixels.length}`);
  }
  const scanlines = new UpFilteredScanlines(width, height, channels);
  for (let y = 0; y < height; y++) scanlines.push(pixels.subarray(y * scanlines.stride, (y + 1) * scanlines.stride));
  return scanlines.bytes;
}

/** Encodes interleaved 8-bit pixels (RGB or RGBA, row-major) as a PNG file. */
export function encodePng(pixels: Uint8Array, width: number, height: number, channels: 3 | 4 = 3): Buffer {
  // Level 2: measured 7.8 ms vs 50 ms for level 6 on a 512² image, for files ~40% larger; latency wins here.
  const idat = deflateSync(filterRows(pixels, width, height, channels), { level: 2 });
  return assemble(header(width, height, channels), idat);
}

/**
 * A PNG from finished scanlines, compressed on libuv's thread pool: deflating a 1024² image is tens of
 * milliseconds the thread would otherwise wait for.
 */
export async function encodeScanlinesAsync(scanlines: UpFilteredScanlines): Promise<Buffer> {
  if (!scanlines.complete) throw new RangeError('the image has rows still missing');
  const idat = await deflateAsync(scanlines.bytes, { level: 2 });
  return assemble(header(scanlines.width, scanlines.height, scanlines.channels), idat);
}

/** One decoded image as PNG scanlines, waiting for compression. */
export type Frame = UpFilteredScanlines;

/** The PNGs of a request and the seconds spent encoding them (summed per image; they may overlap). */
export interface EncodedImages {
  pngs: Buffer[];
  seconds: number;
}

/** The images of one request as base64 text in ASCII bytes, and the seconds their PNG encoding took. */
export interface EncodedBase64 {
  base64: Buffer[];
  seconds: number;
}

/** Base64 of each PNG, on the thread that encoded them (the image worker, so the event loop never does). */
export function base64Of(encoded: EncodedImages): EncodedBase64 {
  return { seconds: encoded.seconds, base64: encoded.pngs.map(toBase64Ascii) };
}

/**
 * Encodes frames as they become ready and keeps each frame referenced until its PNG exists, so a caller can
 * hand the finished set to the next stage while the model already renders something else.
 */
export class FrameEncoder {
  private readonly pending: Promise<Buffer>[] = [];
  private seconds = 0;

  /** `buffers` gets each frame's scanline bytes back once its PNG is compressed. */
  constructor(private readonly buffers?: ScanlineBuffers) {}

  add(frame: Frame): void {
    const started = performance.now();
    const png = encodeScanlinesAsync(frame).then((buffer) => {
      this.seconds += (performance.now() - started) / 1000;
      this.buffers?.give(frame.bytes);
      return buffer;
    });
    // A request that fails after this frame never awaits it; its rejection must not crash the process.
    png.catch(() => undefined);
    this.pending.push(png);
  }

  get count(): number {
    return this.pending.length;
  }

  async all(): Promise<EncodedImages> {
    const pngs = await Promise.all(this.pending);
    return { pngs, seconds: this.seconds };
  }
}

function assemble(ihdr: Buffer, idat: Uint8Array): Buffer {
  return Buffer.concat([SIGNATURE, chunk('IHDR', ihdr), chunk('IDAT', idat), chunk('IEND', new Uint8Array(0))]);
}

function checkSize(width: number, height: number): void {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new RangeError(`PNG size must be positive integers, got ${width}x${height}`);
  }
}

/** IHDR of a size UpFilteredScanlines has already checked (every encoder builds one first). */
function header(width: number, height: number, channels: 3 | 4): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = channels === 4 ? 6 : 2; // colour type: truecolour (+alpha)
  ihdr[10] = 0; // deflate
  ihdr[11] = 0; // adaptive filtering
  ihdr[12] = 0; // no interlace
  return ihdr;
}
