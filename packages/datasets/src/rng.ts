/**
 * Seeded random numbers for data sampling, augmentation and the phantom.
 *
 * Philox-4x32-10 (Salmon et al., SC'11): counter-based, so a stream can be
 * derived from (seed, ids...) without advancing any shared state, which keeps
 * every case / patch reproducible regardless of the order they are drawn in.
 * The block function is core's; the stream layout (key from the seed, ids in
 * the upper counter words, `derive`) is this package's own, so data sampling
 * never touches core's default generator. Checked against the Random123
 * known-answer vectors in the tests.
 */
import { philox4x32 as corePhilox } from '@largo/core';

/** One Philox-4x32-10 block: 4 counter words, 2 key words → 4 random words (core's block function). */
export function philox4x32(counter: ArrayLike<number>, key: ArrayLike<number>, out = new Uint32Array(4)): Uint32Array {
  corePhilox(
    counter[0]! >>> 0,
    counter[1]! >>> 0,
    counter[2]! >>> 0,
    counter[3]! >>> 0,
    key[0]! >>> 0,
    key[1]! >>> 0,
    out,
  );
  return out;
}

function checkSeed(seed: number): void {
  if (!Number.isSafeInteger(seed) || seed < 0) {
    throw new Error(`seed must be a non-negative safe integer, got ${seed}`);
  }
}

/**
 * A stream of random numbers from (seed, stream ids). The counter walks
 * through blocks of four 32-bit words; the ids fill the upper counter words so
 * distinct ids never overlap.
 */
export class Rng {
  private readonly key: Uint32Array;
  private readonly ctr = new Uint32Array(4);
  private readonly buf = new Uint32Array(4);
  private pos = 4;
  private spare: number | null = null;

  /** @param seed non-negative safe integer; @param ids up to two 32-bit stream ids */
  constructor(seed: number, ...ids: number[]) {
    checkSeed(seed);
    if (ids.length > 2) throw new Error(`Rng: at most 2 stream ids (use Rng.derive for more), got ${ids.length}`);
    this.key = new Uint32Array([seed >>> 0, Math.floor(seed / 0x100000000) >>> 0]);
    this.ctr[2] = (ids[0] ?? 0) >>> 0;
    this.ctr[3] = (ids[1] ?? 0) >>> 0;
  }

  /** A seed for a sub-stream named by any number of integer ids (hashing through Philox). */
  static derive(seed: number, ...ids: number[]): number {
    checkSeed(seed);
    let k0 = seed >>> 0;
    let k1 = Math.floor(seed / 0x100000000) >>> 0;
    const out = new Uint32Array(4);
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      philox4x32([id >>> 0, Math.floor(id / 0x100000000) >>> 0, i, 0x5eed], [k0, k1], out);
      k0 = out[0]!;
      k1 = out[1]!;
    }
    // 53 bits so the result is again a valid seed.
    return (k1 & 0x1fffff) * 0x100000000 + k0;
  }

  /** Next uniform 32-bit unsigned integer. */
  uint32(): number {
    if (this.pos === 4) {
      philox4x32(this.ctr, this.key, this.buf);
      // 64-bit block counter in words 0..1.
      this.ctr[0] = (this.ctr[0]! + 1) >>> 0;
      if (this.ctr[0] === 0) this.ctr[1] = (this.ctr[1]! + 1) >>> 0;
      this.pos = 0;
    }
    return this.buf[this.pos++]!;
  }

  /** Uniform double in [0, 1) with 53 random bits. */
  uniform(): number {
    const a = this.uint32() >>> 5;
    const b = this.uint32() >>> 6;
    return (a * 67108864 + b) / 9007199254740992;
  }

  /** Uniform double in [lo, hi). */
  range(lo: number, hi: number): number {
    return lo + (hi - lo) * this.uniform();
  }

  /** Unbiased integer in [0, n), n ≤ 2^32. */
  int(n: number): number {
    if (!Number.isInteger(n) || n <= 0 || n > 0x100000000)
      throw new Error(`Rng.int: n must be an integer in [1, 2^32], got ${n}`);
    const limit = 0x100000000 - (0x100000000 % n);
    for (;;) {
      const u = this.uint32();
      if (u < limit) return u % n;
    }
  }

  /** Standard normal (Box–Muller; the second value is kept for the next call). */
  normal(): number {
    if (this.spare !== null) {
      const s = this.spare;
      this.spare = null;
      return s;
    }
    const u1 = 1 - this.uniform(); // (0, 1]: log never sees 0
    const u2 = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u1));
    this.spare = r * Math.sin(2 * Math.PI * u2);
    return r * Math.cos(2 * Math.PI * u2);
  }

  /** True with probability p. */
  bernoulli(p: number): boolean {
    return p >= 1 ? true : p <= 0 ? false : this.uniform() < p;
  }

  /** Fisher–Yates shuffle in place. */
  shuffle<T>(a: T[]): T[] {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = a[i]!;
      a[i] = a[j]!;
      a[j] = t;
    }
    return a;
  }
}
