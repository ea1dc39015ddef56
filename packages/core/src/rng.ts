/**
 * Philox-4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11).
 * A counter-based generator: value i of a stream is a pure function of
 * (key, counter), so CPU and GPU produce the same numbers and any element can
 * be generated independently, in any order.
 */
const M0 = 0xd2511f53,
  M1 = 0xcd9e8d57;
const W0 = 0x9e3779b9,
  W1 = 0xbb67ae85;

/** High 32 bits of the 64-bit product a·b (a, b uint32), exact in doubles via 16-bit halves. */
function mulhi(a: number, b: number): number {
  const ah = a >>> 16,
    al = a & 0xffff,
    bh = b >>> 16,
    bl = b & 0xffff;
  const mid1 = ah * bl,
    mid2 = al * bh;
  const carry = ((al * bl) >>> 16) + (mid1 & 0xffff) + (mid2 & 0xffff);
  return (ah * bh + (mid1 >>> 16) + (mid2 >>> 16) + (carry >>> 16)) >>> 0;
}

/** One Philox-4x32-10 block: four 32-bit outputs for counter (c0..c3) and key (k0, k1). */
export function philox4x32(
  c0: number,
  c1: number,
  c2: number,
  c3: number,
  k0: number,
  k1: number,
  out: Uint32Array,
): void {
  // No allocation in the rounds: this runs once per 4 random numbers.
  for (let r = 0; r < 10; r++) {
    const hi0 = mulhi(M0, c0),
      lo0 = Math.imul(M0, c0) >>> 0;
    const hi1 = mulhi(M1, c2),
      lo1 = Math.imul(M1, c2) >>> 0;
    c0 = (hi1 ^ c1 ^ k0) >>> 0;
    c1 = lo1;
    c2 = (hi0 ^ c3 ^ k1) >>> 0;
    c3 = lo0;
    k0 = (k0 + W0) >>> 0;
    k1 = (k1 + W1) >>> 0;
  }
  out[0] = c0;
  out[1] = c1;
  out[2] = c2;
  out[3] = c3;
}

/**
 * A seeded stream. `seed` becomes the key; each call consumes counters, so
 * successive draws differ while the whole sequence is fixed by the seed.
 */
export class Philox {
  private k0: number;
  private k1: number;
  /** Next unused block counter (a double; exact up to 2^53 blocks). */
  private counter = 0;
  private block = new Uint32Array(4);

  constructor(seed: number) {
    if (!Number.isFinite(seed)) throw new Error(`Philox: seed must be a finite number, got ${seed}`);
    const s = Math.trunc(seed);
    this.k0 = s >>> 0;
    this.k1 = Math.floor(s / 4294967296) >>> 0;
  }

  /** Serializable position, so a resumed run continues the same stream. */
  get state(): { k0: number; k1: number; counter: number } {
    return { k0: this.k0, k1: this.k1, counter: this.counter };
  }
  set state(s: { k0: number; k1: number; counter: number }) {
    this.k0 = s.k0;
    this.k1 = s.k1;
    this.counter = s.counter;
  }

  /** Fills `out` with uint32 values, 4 per counter block. */
  uint32(out: Uint32Array): Uint32Array {
    const b = this.block;
    for (let i = 0; i < out.length; i += 4) {
      const c = this.counter++;
      philox4x32(c >>> 0, Math.floor(c / 4294967296) >>> 0, 0, 0, this.k0, this.k1, b);
      for (let j = 0; j < 4 && i + j < out.length; j++) out[i + j] = b[j];
    }
    return out;
  }

  /** Uniform floats in [0, 1) with 24 random bits (exactly representable in float32). */
  uniform(n: number): Float64Array {
    const u = this.uint32(new Uint32Array(n));
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) out[i] = (u[i] >>> 8) * (1 / 16777216);
    return out;
  }

  /** Standard normals by Box-Muller on pairs of uniforms. */
  normal(n: number): Float64Array {
    const m = n + (n & 1);
    const u = this.uint32(new Uint32Array(m));
    const out = new Float64Array(m);
    for (let i = 0; i < m; i += 2) {
      const u1 = ((u[i] >>> 8) + 1) * (1 / 16777216); // (0, 1]: log is finite
      const u2 = (u[i + 1] >>> 8) * (1 / 16777216);
      const r = Math.sqrt(-2 * Math.log(u1));
      out[i] = r * Math.cos(2 * Math.PI * u2);
      out[i + 1] = r * Math.sin(2 * Math.PI * u2);
    }
    return n === m ? out : out.subarray(0, n);
  }

  /** A uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.uniform(1)[0] * n);
  }

  /** A seeded Fisher-Yates shuffle of [0, n). */
  permutation(n: number): number[] {
    const p = Array.from({ length: n }, (_, i) => i);
    const u = this.uniform(n);
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(u[i] * (i + 1));
      [p[i], p[j]] = [p[j], p[i]];
    }
    return p;
  }
}

let globalGen = new Philox(0);
/** Reseeds the default generator used when an op is given no generator. */
export function manualSeed(seed: number): void {
  globalGen = new Philox(seed);
}
export function defaultGenerator(): Philox {
  return globalGen;
}
