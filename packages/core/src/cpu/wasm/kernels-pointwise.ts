import { Fn, type Local } from './encode.js';
import { HIGH, JOIN } from './kernels-rows.js';

/**
 * Binary cross-entropy with logits (loss and gradient) in wasm: a
 * transcendental per element. In JavaScript each
 * element pays one or two calls of Math.exp / Math.log1p (C++ routines, tens
 * of ns each); the main job's deep-supervision BCE made them ~10% of a
 * training step. Here exp and log1p are f32x4 polynomials:
 *
 * - exp(z) for z ≤ 0 (all we need: exp(−|x|)): z clamped at −110 (where
 *   the result is 0 in float32), n = round(z·log₂e), r = z − n·ln2 in two
 *   parts (Cody–Waite), then the degree-7 polynomial of Cephes' expf
 *   (relative error ~1e-7), times 2ⁿ built in the exponent bits.
 * - log1p(e) for e ∈ (0, 1]: 2·atanh(s) with s = e/(2 + e) ∈ (0, ⅓], as the
 *   odd series to s¹³ (truncation < 2e-8 relative); no cancellation for
 *   small e.
 *
 * Lanes are float32 throughout; the loss sums its terms in float64. (The
 * `sigmoid` op itself stays in JavaScript: its contract on the CPU is the
 * float64 value rounded once, which a float32 polynomial cannot promise.)
 * Arguments are byte offsets; counts are in floats.
 */

const LOG2E = 1.4426950408889634,
  LN2_HI = 0.693359375,
  LN2_LO = -2.1219444e-4;
const EXP_POLY = [1.98756915e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1];

interface Scratch {
  n: Local;
  r: Local;
  p: Local;
  s: Local;
  s2: Local;
}

function scratch(f: Fn): Scratch {
  return { n: f.local('v128'), r: f.local('v128'), p: f.local('v128'), s: f.local('v128'), s2: f.local('v128') };
}

/** [z (f32x4, lanes ≤ 0)] -> [exp(z)]. */
function expNonPositive(f: Fn, t: Scratch): void {
  f.vconst(-110).vmax().set(t.r);
  f.get(t.r).vconst(LOG2E).vmul().vnearest().set(t.n);
  // r = z − n·ln2_hi − n·ln2_lo
  f.get(t.r).get(t.n).vconst(LN2_HI).vmul().vsub().get(t.n).vconst(LN2_LO).vmul().vsub().set(t.r);
  // p = ((((c0·r + c1)·r + c2)·r + c3)·r + c4)·r + c5, then p·r² + r + 1
  f.vconst(EXP_POLY[0]!);
  for (let i = 1; i < EXP_POLY.length; i++) f.get(t.r).vmul().vconst(EXP_POLY[i]!).vadd();
  f.get(t.r).get(t.r).vmul().vmul().get(t.r).vadd().vconst(1).vadd();
  // ·2ⁿ as 2ⁿ⁺⁶⁴ (exponent bits (n + 64 + 127) << 23, a normal float for
  // n ≥ −190) and then 2⁻⁶⁴, so that results below 2⁻¹²⁶ round once into
  // the subnormals and exp(−110) and below become exactly 0, like Math.exp.
  f.get(t.n).i32x4TruncSat().iconst([191, 191, 191, 191]).i32x4Add().i32(23).i32x4Shl();
  f.vmul()
    .vconst(2 ** -64)
    .vmul();
}

/** [e (f32x4, lanes in (0, 1])] -> [log1p(e)]. */
function log1pUnit(f: Fn, t: Scratch): void {
  f.tee(t.p).get(t.p).vconst(2).vadd().vdiv().tee(t.s).get(t.s).vmul().set(t.s2);
  // 1 + s²(1/3 + s²(1/5 + … + s²/13)), times 2s
  f.vconst(1 / 13);
  for (const k of [11, 9, 7, 5, 3, 1])
    f.get(t.s2)
      .vmul()
      .vconst(1 / k)
      .vadd();
  f.get(t.s).vmul().vconst(2).vmul();
}

/** Pushes σ(x) for the f32x4 in `x`; `e` is scratch. */
function sigmoidOf(f: Fn, x: Local, e: Local, t: Scratch): void {
  f.get(x).vabs().vneg();
  expNonPositive(f, t);
  f.set(e);
  // d = 1/(1 + e); σ = x ≥ 0 ? d : e·d
  f.vconst(1).get(e).vconst(1).vadd().vdiv().tee(t.p);
  f.get(e).get(t.p).vmul();
  f.get(x).vconst(0).vge();
  f.bitselect();
}

/**
 * bceSum(X, T, n, out): f64 at `out` = Σ_{j<n} max(x,0) − x·t + log1p(exp(−|x|)).
 * Reads ⌈n/4⌉ vectors (the caller pads); lanes past n are masked to 0.
 */
export function bceSumFn(): Fn {
  const f = new Fn('bceSum', Array(4).fill('i32'));
  const [X, T, n, out] = f.params;
  const i = f.local('i32'),
    nv = f.local('i32');
  const x = f.local('v128'),
    term = f.local('v128'),
    lo = f.local('v128'),
    hi = f.local('v128'),
    nSplat = f.local('v128');
  const t = scratch(f);
  const HIGH = [8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15];
  f.get(n).i32(3).add().i32(2).shrU().set(nv);
  f.get(n).i32x4Splat().set(nSplat);
  f.vzero().set(lo).vzero().set(hi);
  f.for(
    i,
    (g) => g.i32(0),
    (g) => g.get(nv),
    1,
    (g) => {
      g.get(X).get(i).i32(4).shl().add().v128Load().set(x);
      // max(x, 0) − x·t
      g.get(x).vconst(0).vmax();
      g.get(x).get(T).get(i).i32(4).shl().add().v128Load().vmul().vsub().set(term);
      g.get(x).vabs().vneg();
      expNonPositive(g, t);
      log1pUnit(g, t);
      g.get(term).vadd();
      // lanes 4i + j < n only
      g.get(i).i32(2).shl().i32x4Splat().iconst([0, 1, 2, 3]).i32x4Add().get(nSplat).i32x4LtS().v128And().set(term);
      g.get(lo).get(term).promoteLow().f64x2Add().set(lo);
      g.get(hi).get(term).get(term).shuffle(HIGH).promoteLow().f64x2Add().set(hi);
    },
  );
  f.get(out).get(lo).f64Lane(0).get(lo).f64Lane(1).f64Add().get(hi).f64Lane(0).get(hi).f64Lane(1).f64Add().f64Add();
  f.f64Store();
  return f;
}

/**
 * bceGrad(X, T, DX, DT, nv, G): dx = g·(σ(x) − t), dt = −g·x for nv vectors,
 * with g the f32 at G.
 */
export function bceGradFn(): Fn {
  const f = new Fn('bceGrad', Array(6).fill('i32'));
  const [X, T, DX, DT, nv, G] = f.params;
  const i = f.local('i32'),
    off = f.local('i32');
  const x = f.local('v128'),
    e = f.local('v128'),
    gv = f.local('v128');
  const t = scratch(f);
  f.get(G).loadSplat32().set(gv);
  f.for(
    i,
    (g) => g.i32(0),
    (g) => g.get(nv),
    1,
    (g) => {
      g.get(i).i32(4).shl().set(off);
      g.get(X).get(off).add().v128Load().set(x);
      g.get(DX).get(off).add();
      sigmoidOf(g, x, e, t);
      g.get(T).get(off).add().v128Load().vsub().get(gv).vmul().v128Store();
      g.get(DT).get(off).add().get(gv).get(x).vmul().vneg().v128Store();
    },
  );
  return f;
}

/**
 * Elementwise kernels over whole vectors of 4 floats (the driver pads):
 * `ew<Op>(A, B, O, nv, aStep, bStep)` writes O = A ∘ B for nv vectors,
 * stepping A and B by aStep and bStep bytes (16, or 0 for a scalar the
 * driver stored as 4 copies). One float32 operation per lane gives the bits
 * of the JavaScript loops, which compute in float64 and round once (for
 * + − × ÷ of two float32 values the two are the same).
 */
export function ewBinaryFn(name: string, op: (f: Fn) => void): Fn {
  const f = new Fn(name, ['i32', 'i32', 'i32', 'i32', 'i32', 'i32']);
  const [A, B, O, nv, aStep, bStep] = f.params;
  const k = f.local('i32');
  f.for(
    k,
    (g) => g.i32(0),
    (g) => g.get(nv),
    1,
    (g) => {
      g.get(O).get(A).v128Load().get(B).v128Load();
      op(g);
      g.v128Store();
      g.get(A).get(aStep).add().set(A);
      g.get(B).get(bStep).add().set(B);
      g.get(O).i32(16).add().set(O);
    },
  );
  return f;
}

/** [v (f32x4), α (f64x2 local)] -> [f32(α·v) per lane], the product in float64 and rounded once more, as JavaScript does. */
function scaleF64(f: Fn, v: Local, alpha: Local): void {
  f.get(v).promoteLow().get(alpha).f64x2Mul().demoteZero();
  f.get(v).get(v).shuffle(HIGH).promoteLow().get(alpha).f64x2Mul().demoteZero();
  f.shuffle(JOIN);
}

/**
 * leakyRelu(X, O, nv, alpha): O = X > 0 ? X : f32(α·X), α the float64 at
 * byte offset `alpha` (JavaScript multiplies the float32 value by the double
 * α and rounds to float32; the f64x2 lanes do the same).
 */
export function leakyReluFn(): Fn {
  const f = new Fn('leakyRelu', ['i32', 'i32', 'i32', 'i32']);
  const [X, O, nv, alphaAt] = f.params;
  const k = f.local('i32'),
    v = f.local('v128'),
    alpha = f.local('v128');
  f.get(alphaAt).f64Load().f64x2Splat().set(alpha);
  f.for(
    k,
    (g) => g.i32(0),
    (g) => g.get(nv),
    1,
    (g) => {
      g.get(X).v128Load().set(v);
      g.get(O).get(v);
      scaleF64(g, v, alpha);
      g.get(v).vzero().vgt().bitselect().v128Store();
      g.get(X).i32(16).add().set(X);
      g.get(O).i32(16).add().set(O);
    },
  );
  return f;
}

/**
 * leakyReluGrad(X, DY, O, nv, alpha): O = X > 0 ? DY : α·DY, α the float32
 * at byte offset `alpha` (the op takes α in dy's dtype: one float32 product,
 * the JavaScript kernel's bits; NaN in X takes α·DY as there).
 */
export function leakyReluGradFn(): Fn {
  const f = new Fn('leakyReluGrad', ['i32', 'i32', 'i32', 'i32', 'i32']);
  const [X, DY, O, nv, alphaAt] = f.params;
  const k = f.local('i32'),
    g = f.local('v128'),
    alpha = f.local('v128');
  f.get(alphaAt).loadSplat32().set(alpha);
  f.for(
    k,
    (e) => e.i32(0),
    (e) => e.get(nv),
    1,
    (e) => {
      e.get(DY).v128Load().set(g);
      e.get(O).get(g).get(g).get(alpha).vmul();
      e.get(X).v128Load().vzero().vgt().bitselect().v128Store();
      e.get(X).i32(16).add().set(X);
      e.get(DY).i32(16).add().set(DY);
      e.get(O).i32(16).add().set(O);
    },
  );
  return f;
}
