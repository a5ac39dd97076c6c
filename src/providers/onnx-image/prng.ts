/**
 * Seeded noise for reproducible images. Our own generator (not Math.random) so the same seed gives
 * the same bytes on every machine and Node version.
 */

/** splitmix32 step: spreads a seed over the xoshiro state so nearby seeds give unrelated streams. */
function splitmix32(state: { s: number }): number {
  state.s = (state.s + 0x9e3779b9) | 0;
  let z = state.s;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/** xoshiro128** with a Box-Muller normal sampler. */
export class SeededRandom {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  private spare: number | null = null;

  /**
   * @param seed any safe non-negative integer; both 32-bit halves feed the state.
   * @param stream separates independent streams under one seed (image index).
   */
  constructor(seed: number, stream = 0) {
    if (!Number.isSafeInteger(seed) || seed < 0) throw new RangeError(`seed must be a non-negative safe integer`);
    const lo = seed >>> 0;
    const hi = Math.floor(seed / 0x100000000) >>> 0;
    const mix = { s: lo ^ Math.imul(hi, 0x27d4eb2d) ^ Math.imul(stream + 1, 0x165667b1) };
    this.a = splitmix32(mix);
    this.b = splitmix32(mix);
    this.c = splitmix32(mix);
    this.d = splitmix32(mix);
    if ((this.a | this.b | this.c | this.d) === 0) this.a = 1;
  }

  /** Uniform 32-bit unsigned integer. */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.b, 5), 7), 9) >>> 0;
    const t = this.b << 9;
    this.c ^= this.a;
    this.d ^= this.b;
    this.b ^= this.c;
    this.a ^= this.d;
    this.c ^= t;
    this.d = rotl(this.d, 11);
    return result;
  }

  /** Uniform in (0, 1]: never 0, so log() in Box-Muller stays finite. */
  nextUnit(): number {
    // 53 bits from two draws so the distribution is fine-grained enough for float64.
    const hi = this.nextUint32() >>> 5;
    const lo = this.nextUint32() >>> 6;
    return (hi * 67108864 + lo + 1) / 9007199254740992;
  }

  /** Standard normal sample (Box-Muller; the second value of each pair is kept for the next call). */
  nextGaussian(): number {
    if (this.spare !== null) {
      const s = this.spare;
      this.spare = null;
      return s;
    }
    const u1 = this.nextUnit();
    const u2 = this.nextUnit();
    const r = Math.sqrt(-2 * Math.log(u1));
    const theta = 2 * Math.PI * u2;
    this.spare = r * Math.sin(theta);
    return r * Math.cos(theta);
  }

  /** A Float32Array of standard normal samples. */
  gaussian(count: number): Float32Array {
    const out = new Float32Array(count);
    this.fillGaussian(out);
    return out;
  }

  /**
   * Fills `out` with the same values as `out.length` nextGaussian() calls, about twice as fast: the state
   * stays in locals for the whole loop (a 512² image draws 16K values per LCM step).
   */
  fillGaussian(out: Float32Array): void {
    const n = out.length;
    let i = 0;
    if (this.spare !== null && n > 0) {
      out[i++] = this.spare;
      this.spare = null;
    }
    let { a, b, c, d } = this;
    const draw = (): number => {
      const result = Math.imul(rotl(Math.imul(b, 5), 7), 9) >>> 0;
      const t = b << 9;
      c ^= a;
      d ^= b;
      b ^= c;
      a ^= d;
      c ^= t;
      d = rotl(d, 11);
      return result;
    };
    while (i < n) {
      const u1 = ((draw() >>> 5) * 67108864 + (draw() >>> 6) + 1) / 9007199254740992;
      const u2 = ((draw() >>> 5) * 67108864 + (draw() >>> 6) + 1) / 9007199254740992;
      const r = Math.sqrt(-2 * Math.log(u1));
      const theta = 2 * Math.PI * u2;
      out[i++] = r * Math.cos(theta);
      if (i < n) out[i++] = r * Math.sin(theta);
      else this.spare = r * Math.sin(theta);
    }
    this.a = a;
    this.b = b;
    this.c = c;
    this.d = d;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
