import { Fn, type Local } from './encode.js';

/**
 * Row kernels: the memory-bound work around the GEMM-shaped kernels.
 *
 * - `copyRows` moves rows of floats between the tensors' dense layout and
 *   the kernels' padded layouts (the convolutions' zero-padded input, their
 *   tile-padded output rows), adding a bias per outer index. In JavaScript
 *   these copies cost as much as the convolution itself on the main job's
 *   16³ patches (16-float rows: per-element typed-array loops).
 * - Instance norm, forward and backward, as two passes each over rows of S
 *   floats (one row per (n, c)): statistics, then the elementwise formula
 *   with per-row coefficients the caller computes in between. Everything is
 *   accumulated and evaluated in float64, like the JavaScript kernels, and
 *   rounded to float32 once; only the order of the sums differs (two f64x2
 *   accumulators instead of one running double).
 *
 * All pointers and strides are in bytes.
 */

/** Byte lanes of the high half of an f32x4, twice (then promoteLow gives lanes 2 and 3 as f64x2). */
export const HIGH = [8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15];
/** [a0, a1, _, _] and [b0, b1, _, _] -> [a0, a1, b0, b1]. */
export const JOIN = [0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23];

/**
 * copyRows(src, dst, W, n1, n2, n3, s1, s2, s3, d1, d2, d3, bias, hasBias):
 * for every (i1, i2, i3) < (n1, n2, n3), copies W floats from
 * src + i1·s1 + i2·s2 + i3·s3 to dst + i1·d1 + i2·d2 + i3·d3, adding
 * f32[bias + 4·i1] when hasBias (0 otherwise, as the JavaScript loops did).
 * In place is allowed when every destination row starts at or before its
 * source row and rows are visited in increasing address order (compaction).
 */
export function copyRowsFn(): Fn {
  const f = new Fn('copyRows', Array(14).fill('i32'));
  const [src, dst, W, n1, n2, n3, s1, s2, s3, d1, d2, d3, bias, hasBias] = f.params;
  const i1 = f.local('i32'),
    i2 = f.local('i32'),
    i3 = f.local('i32'),
    j = f.local('i32'),
    sp = f.local('i32'),
    dp = f.local('i32'),
    vecBytes = f.local('i32'),
    rowBytes = f.local('i32');
  const bs = f.local('f32'),
    bv = f.local('v128');
  f.get(W).i32(2).shl().set(rowBytes);
  f.get(rowBytes).i32(-16).and().set(vecBytes);
  f.for(
    i1,
    (g) => g.i32(0),
    (g) => g.get(n1),
    1,
    (g) => {
      g.get(bias).get(i1).i32(2).shl().add().f32Load().f32(0).get(hasBias).select().tee(bs).splat().set(bv);
      g.for(
        i2,
        (h) => h.i32(0),
        (h) => h.get(n2),
        1,
        (h) => {
          h.for(
            i3,
            (e) => e.i32(0),
            (e) => e.get(n3),
            1,
            (e) => {
              e.get(src).get(i1).get(s1).mul().add().get(i2).get(s2).mul().add().get(i3).get(s3).mul().add().set(sp);
              e.get(dst).get(i1).get(d1).mul().add().get(i2).get(d2).mul().add().get(i3).get(d3).mul().add().set(dp);
              e.for(
                j,
                (q) => q.i32(0),
                (q) => q.get(vecBytes),
                16,
                (q) => {
                  q.get(dp).get(j).add().get(sp).get(j).add().v128Load().get(bv).vadd().v128Store();
                },
              );
              e.for(
                j,
                (q) => q.get(vecBytes),
                (q) => q.get(rowBytes),
                4,
                (q) => {
                  q.get(dp).get(j).add().get(sp).get(j).add().f32Load().get(bs).f32Add().f32Store();
                },
              );
            },
          );
        },
      );
    },
  );
  return f;
}

/**
 * copyStrided(src, dst, n, n1, n2, n3, s1, s2, s3, d1, d2, d3, srcStep, dstStep, bias, hasBias):
 * like copyRows, but each row is n floats `srcStep` bytes apart in the source
 * and `dstStep` apart in the destination, one at a time. The strided
 * convolutions' input rows are split by phase this way (every sW-th float to
 * one phase row), and their input gradients gathered back.
 */
export function copyStridedFn(): Fn {
  const f = new Fn('copyStrided', Array(16).fill('i32'));
  const [src, dst, n, n1, n2, n3, s1, s2, s3, d1, d2, d3, srcStep, dstStep, bias, hasBias] = f.params;
  const i1 = f.local('i32'),
    i2 = f.local('i32'),
    i3 = f.local('i32'),
    j = f.local('i32'),
    sp = f.local('i32'),
    dp = f.local('i32');
  const bs = f.local('f32');
  f.for(
    i1,
    (g) => g.i32(0),
    (g) => g.get(n1),
    1,
    (g) => {
      g.get(bias).get(i1).i32(2).shl().add().f32Load().f32(0).get(hasBias).select().set(bs);
      g.for(
        i2,
        (h) => h.i32(0),
        (h) => h.get(n2),
        1,
        (h) => {
          h.for(
            i3,
            (e) => e.i32(0),
            (e) => e.get(n3),
            1,
            (e) => {
              e.get(src).get(i1).get(s1).mul().add().get(i2).get(s2).mul().add().get(i3).get(s3).mul().add().set(sp);
              e.get(dst).get(i1).get(d1).mul().add().get(i2).get(d2).mul().add().get(i3).get(d3).mul().add().set(dp);
              e.for(
                j,
                (q) => q.i32(0),
                (q) => q.get(n),
                1,
                (q) => {
                  q.get(dp).get(sp).f32Load().get(bs).f32Add().f32Store();
                  q.get(sp).get(srcStep).add().set(sp);
                  q.get(dp).get(dstStep).add().set(dp);
                },
              );
            },
          );
        },
      );
    },
  );
  return f;
}

/** Shared shape of the row loops: for rows i ∈ [r0, r1), `p` = row i's byte offset (i·S·4). */
function rowLoop(f: Fn, r0: Local, r1: Local, S: Local, i: Local, p: Local, body: (g: Fn) => void): void {
  f.for(
    i,
    (g) => g.get(r0),
    (g) => g.get(r1),
    1,
    (g) => {
      g.get(i).get(S).mul().i32(2).shl().set(p);
      body(g);
    },
  );
}

/**
 * Emits: for each of the row's S floats (vector part, then the scalar tail),
 * `vec(g, off)` with the two f64x2 halves of each input pushed by `load`,
 * and `tail(g, off)` for single floats. `off` is the byte offset in the row.
 */
function overRow(
  f: Fn,
  S: Local,
  j: Local,
  vecBytes: Local,
  rowBytes: Local,
  vec: (g: Fn) => void,
  tail: (g: Fn) => void,
): void {
  f.get(S).i32(2).shl().tee(rowBytes).i32(-16).and().set(vecBytes);
  f.for(
    j,
    (g) => g.i32(0),
    (g) => g.get(vecBytes),
    16,
    vec,
  );
  f.for(
    j,
    (g) => g.get(vecBytes),
    (g) => g.get(rowBytes),
    4,
    tail,
  );
}

/** Pushes the f64x2 of lanes 0–1 (hi: 2–3) of the f32x4 at base + p + j. */
function loadHalf(g: Fn, base: Local, p: Local, j: Local, hi: boolean, tmp: Local): void {
  g.get(base).get(p).add().get(j).add().v128Load();
  if (hi) g.tee(tmp).get(tmp).shuffle(HIGH);
  g.promoteLow();
}

/** Pushes the float at base + p + j as f64. */
function loadScalar(g: Fn, base: Local, p: Local, j: Local): void {
  g.get(base).get(p).add().get(j).add().f32Load().f64FromF32();
}

/** Adds the two lanes of both accumulators: (a0 + a1) + (b0 + b1). */
function total(g: Fn, a: Local, b: Local): void {
  g.get(a).f64Lane(0).get(a).f64Lane(1).f64Add().get(b).f64Lane(0).get(b).f64Lane(1).f64Add().f64Add();
}

/**
 * inormStats(X, S, out, r0, r1): for rows i ∈ [r0, r1) of S floats, writes
 * f64 [mean, Σd, Σd²] at out + 24·i, with d = x − mean (the corrected
 * two-pass algorithm: the caller forms the variance (Σd² − (Σd)²/S)/S).
 */
export function inormStatsFn(): Fn {
  const f = new Fn('inormStats', Array(5).fill('i32'));
  const [X, S, out, r0, r1] = f.params;
  const i = f.local('i32'),
    p = f.local('i32'),
    j = f.local('i32'),
    vecBytes = f.local('i32'),
    rowBytes = f.local('i32'),
    o = f.local('i32');
  const a = f.local('v128'),
    b = f.local('v128'),
    c = f.local('v128'),
    e = f.local('v128'),
    tmp = f.local('v128'),
    m2 = f.local('v128'),
    d = f.local('v128');
  const s = f.local('f64'),
    mean = f.local('f64'),
    ds = f.local('f64'),
    dd = f.local('f64'),
    sx = f.local('f64');
  rowLoop(f, r0, r1, S, i, p, (g) => {
    g.vzero().set(a).vzero().set(b).f64(0).set(s);
    overRow(
      g,
      S,
      j,
      vecBytes,
      rowBytes,
      (h) => {
        loadHalf(h, X, p, j, false, tmp);
        h.get(a).f64x2Add().set(a);
        loadHalf(h, X, p, j, true, tmp);
        h.get(b).f64x2Add().set(b);
      },
      (h) => {
        loadScalar(h, X, p, j);
        h.get(s).f64Add().set(s);
      },
    );
    total(g, a, b);
    g.get(s).f64Add().get(S).f64ConvertI32U().f64Div().tee(mean).f64x2Splat().set(m2);
    g.vzero().set(a).vzero().set(b).vzero().set(c).vzero().set(e).f64(0).set(ds).f64(0).set(dd);
    overRow(
      g,
      S,
      j,
      vecBytes,
      rowBytes,
      (h) => {
        for (const [hi, sum, sq] of [
          [false, a, c],
          [true, b, e],
        ] as const) {
          loadHalf(h, X, p, j, hi, tmp);
          h.get(m2).f64x2Sub().tee(d).get(sum).f64x2Add().set(sum);
          h.get(d).get(d).f64x2Mul().get(sq).f64x2Add().set(sq);
        }
      },
      (h) => {
        loadScalar(h, X, p, j);
        h.get(mean).f64Sub().tee(sx).get(ds).f64Add().set(ds);
        h.get(sx).get(sx).f64Mul().get(dd).f64Add().set(dd);
      },
    );
    g.get(out).get(i).i32(24).mul().add().set(o);
    g.get(o).get(mean).f64Store(0);
    g.get(o);
    total(g, a, b);
    g.get(ds).f64Add().f64Store(8);
    g.get(o);
    total(g, c, e);
    g.get(dd).f64Add().f64Store(16);
  });
  return f;
}

/**
 * inormApply(X, Y, S, coef, r0, r1): y = (x − m)·s + t for rows i ∈ [r0, r1),
 * with f64 [m, s, t] at coef + 24·i, evaluated in f64 and rounded once.
 */
export function inormApplyFn(): Fn {
  const f = new Fn('inormApply', Array(6).fill('i32'));
  const [X, Y, S, coef, r0, r1] = f.params;
  const i = f.local('i32'),
    p = f.local('i32'),
    j = f.local('i32'),
    vecBytes = f.local('i32'),
    rowBytes = f.local('i32'),
    q = f.local('i32');
  const tmp = f.local('v128'),
    mv = f.local('v128'),
    sv = f.local('v128'),
    tv = f.local('v128'),
    lo = f.local('v128');
  const m = f.local('f64'),
    sc = f.local('f64'),
    t = f.local('f64');
  rowLoop(f, r0, r1, S, i, p, (g) => {
    g.get(coef).get(i).i32(24).mul().add().set(q);
    g.get(q).f64Load(0).tee(m).f64x2Splat().set(mv);
    g.get(q).f64Load(8).tee(sc).f64x2Splat().set(sv);
    g.get(q).f64Load(16).tee(t).f64x2Splat().set(tv);
    overRow(
      g,
      S,
      j,
      vecBytes,
      rowBytes,
      (h) => {
        loadHalf(h, X, p, j, false, tmp);
        h.get(mv).f64x2Sub().get(sv).f64x2Mul().get(tv).f64x2Add().demoteZero().set(lo);
        h.get(Y).get(p).add().get(j).add();
        h.get(lo);
        loadHalf(h, X, p, j, true, tmp);
        h.get(mv).f64x2Sub().get(sv).f64x2Mul().get(tv).f64x2Add().demoteZero();
        h.shuffle(JOIN).v128Store();
      },
      (h) => {
        h.get(Y).get(p).add().get(j).add();
        loadScalar(h, X, p, j);
        h.get(m).f64Sub().get(sc).f64Mul().get(t).f64Add().f32FromF64().f32Store();
      },
    );
  });
  return f;
}

/**
 * inormGradStats(DY, X, S, mu0, out, r0, r1): for rows i ∈ [r0, r1), with
 * d = x − f64[mu0 + 8·i] and g = dy, writes f64 [Σg, Σg·d, Σd] at out + 24·i.
 */
export function inormGradStatsFn(): Fn {
  const f = new Fn('inormGradStats', Array(7).fill('i32'));
  const [DY, X, S, mu0, out, r0, r1] = f.params;
  const i = f.local('i32'),
    p = f.local('i32'),
    j = f.local('i32'),
    vecBytes = f.local('i32'),
    rowBytes = f.local('i32'),
    o = f.local('i32');
  // accumulators per half: Σg, Σg·d, Σd
  const acc = Array.from({ length: 6 }, () => f.local('v128'));
  const tmp = f.local('v128'),
    mv = f.local('v128'),
    gv = f.local('v128'),
    dv = f.local('v128');
  const m = f.local('f64'),
    sg = f.local('f64'),
    sgd = f.local('f64'),
    sd = f.local('f64'),
    gs = f.local('f64'),
    dsx = f.local('f64');
  rowLoop(f, r0, r1, S, i, p, (g) => {
    for (const v of acc) g.vzero().set(v);
    g.f64(0).set(sg).f64(0).set(sgd).f64(0).set(sd);
    g.get(mu0).get(i).i32(3).shl().add().f64Load().tee(m).f64x2Splat().set(mv);
    overRow(
      g,
      S,
      j,
      vecBytes,
      rowBytes,
      (h) => {
        for (const hi of [false, true]) {
          const k = hi ? 3 : 0;
          loadHalf(h, DY, p, j, hi, tmp);
          h.tee(gv).get(acc[k]).f64x2Add().set(acc[k]);
          loadHalf(h, X, p, j, hi, tmp);
          h.get(mv)
            .f64x2Sub()
            .tee(dv)
            .get(acc[k + 2])
            .f64x2Add()
            .set(acc[k + 2]);
          h.get(gv)
            .get(dv)
            .f64x2Mul()
            .get(acc[k + 1])
            .f64x2Add()
            .set(acc[k + 1]);
        }
      },
      (h) => {
        loadScalar(h, DY, p, j);
        h.tee(gs).get(sg).f64Add().set(sg);
        loadScalar(h, X, p, j);
        h.get(m).f64Sub().tee(dsx).get(sd).f64Add().set(sd);
        h.get(gs).get(dsx).f64Mul().get(sgd).f64Add().set(sgd);
      },
    );
    g.get(out).get(i).i32(24).mul().add().set(o);
    for (const [k, s, off] of [
      [0, sg, 0],
      [1, sgd, 8],
      [2, sd, 16],
    ] as const) {
      g.get(o);
      total(g, acc[k], acc[k + 3]);
      g.get(s).f64Add().f64Store(off);
    }
  });
  return f;
}

/**
 * inormGradApply(DY, X, DX, S, coef, r0, r1): dx = (p·dy − A) − (x − μ)·B for
 * rows i ∈ [r0, r1), with f64 [p, A, μ, B] at coef + 32·i (the JavaScript
 * kernel's formula and order, in f64, rounded once).
 */
export function inormGradApplyFn(): Fn {
  const f = new Fn('inormGradApply', Array(7).fill('i32'));
  const [DY, X, DX, S, coef, r0, r1] = f.params;
  const i = f.local('i32'),
    p = f.local('i32'),
    j = f.local('i32'),
    vecBytes = f.local('i32'),
    rowBytes = f.local('i32'),
    q = f.local('i32');
  const tmp = f.local('v128'),
    pv = f.local('v128'),
    av = f.local('v128'),
    mv = f.local('v128'),
    bv = f.local('v128'),
    lo = f.local('v128');
  const ps = f.local('f64'),
    as = f.local('f64'),
    ms = f.local('f64'),
    bs = f.local('f64');
  const formula = (h: Fn, hi: boolean) => {
    loadHalf(h, DY, p, j, hi, tmp);
    h.get(pv).f64x2Mul().get(av).f64x2Sub();
    loadHalf(h, X, p, j, hi, tmp);
    h.get(mv).f64x2Sub().get(bv).f64x2Mul().f64x2Sub().demoteZero();
  };
  rowLoop(f, r0, r1, S, i, p, (g) => {
    g.get(coef).get(i).i32(32).mul().add().set(q);
    g.get(q).f64Load(0).tee(ps).f64x2Splat().set(pv);
    g.get(q).f64Load(8).tee(as).f64x2Splat().set(av);
    g.get(q).f64Load(16).tee(ms).f64x2Splat().set(mv);
    g.get(q).f64Load(24).tee(bs).f64x2Splat().set(bv);
    overRow(
      g,
      S,
      j,
      vecBytes,
      rowBytes,
      (h) => {
        formula(h, false);
        h.set(lo);
        h.get(DX).get(p).add().get(j).add().get(lo);
        formula(h, true);
        h.shuffle(JOIN).v128Store();
      },
      (h) => {
        h.get(DX).get(p).add().get(j).add();
        loadScalar(h, DY, p, j);
        h.get(ps).f64Mul().get(as).f64Sub();
        loadScalar(h, X, p, j);
        h.get(ms).f64Sub().get(bs).f64Mul().f64Sub().f32FromF64().f32Store();
      },
    );
  });
  return f;
}

/**
 * cpGrad(H, K, B, W, DB, SW, SK, I, S, Rp): the elementwise part of the CP
 * reconstruction's gradient, two ranks at a time in f64x2 lanes (Rp even;
 * the driver pads with zeros). With H[i, s, r] = (Gᵀ·aOut)[(i, s), r]:
 *   t = Σ_s H[i,s,r]·K[s,r],  DB[i,r] = W[r]·t,  SW[r] += B[i,r]·t,
 *   SK[s,r] += (W[r]·B[i,r])·H[i,s,r]
 * H, K, B, W are float32 rows of Rp; DB, SW, SK float64 (SW and SK zeroed by
 * the caller). Every product and sum is the JavaScript kernel's, in its
 * order, so the bits match it.
 */
export function cpGradFn(): Fn {
  const f = new Fn('cpGrad', Array(10).fill('i32'));
  const [H, K, B, W, DB, SW, SK, I, S, Rp] = f.params;
  const i = f.local('i32'),
    s = f.local('i32'),
    r = f.local('i32'),
    hRow = f.local('i32'),
    hp = f.local('i32'),
    kp = f.local('i32'),
    q = f.local('i32'),
    rowBytes = f.local('i32');
  const t = f.local('v128'),
    wb = f.local('v128');
  const f64x2Of = (g: Fn, ptr: (g: Fn) => void) => {
    ptr(g);
    g.v128Load().promoteLow();
  };
  f.get(Rp).i32(2).shl().set(rowBytes);
  f.for(
    i,
    (g) => g.i32(0),
    (g) => g.get(I),
    1,
    (g) => {
      // hRow = H + i·S·Rp·4
      g.get(H).get(i).get(S).mul().get(rowBytes).mul().add().set(hRow);
      g.for(
        r,
        (h) => h.i32(0),
        (h) => h.get(Rp),
        2,
        (h) => {
          h.vzero().set(t);
          h.get(hRow).get(r).i32(2).shl().add().set(hp);
          h.get(K).get(r).i32(2).shl().add().set(kp);
          h.for(
            s,
            (e) => e.i32(0),
            (e) => e.get(S),
            1,
            (e) => {
              e.get(t);
              f64x2Of(e, (x) => x.get(hp));
              f64x2Of(e, (x) => x.get(kp));
              e.f64x2Mul().f64x2Add().set(t);
              e.get(hp).get(rowBytes).add().set(hp);
              e.get(kp).get(rowBytes).add().set(kp);
            },
          );
          // DB[i, r] = W[r]·t (float64; the driver rounds it to float32 once)
          h.get(DB).get(i).get(Rp).mul().get(r).add().i32(3).shl().add();
          f64x2Of(h, (x) => x.get(W).get(r).i32(2).shl().add());
          h.get(t).f64x2Mul().v128Store();
          // SW[r] += B[i, r]·t
          h.get(SW).get(r).i32(3).shl().add().set(q);
          h.get(q).get(q).v128Load();
          f64x2Of(h, (x) => x.get(B).get(i).get(Rp).mul().get(r).add().i32(2).shl().add());
          h.get(t).f64x2Mul().f64x2Add().v128Store();
        },
      );
      g.for(
        r,
        (h) => h.i32(0),
        (h) => h.get(Rp),
        2,
        (h) => {
          // wb = W[r]·B[i, r]; SK[s, r] += wb·H[i, s, r] down the S rows
          f64x2Of(h, (x) => x.get(W).get(r).i32(2).shl().add());
          f64x2Of(h, (x) => x.get(B).get(i).get(Rp).mul().get(r).add().i32(2).shl().add());
          h.f64x2Mul().set(wb);
          h.get(hRow).get(r).i32(2).shl().add().set(hp);
          h.get(SK).get(r).i32(3).shl().add().set(q);
          h.for(
            s,
            (e) => e.i32(0),
            (e) => e.get(S),
            1,
            (e) => {
              e.get(q).get(q).v128Load().get(wb);
              f64x2Of(e, (x) => x.get(hp));
              e.f64x2Mul().f64x2Add().v128Store();
              e.get(hp).get(rowBytes).add().set(hp);
              e.get(q).get(rowBytes).i32(1).shl().add().set(q);
            },
          );
        },
      );
    },
  );
  return f;
}

/**
 * khatriRao(W, B, K, KR, I, S, Rp): KR[(i·S + s)·Rp + r] = f32((W[r]·B[i,r])·K[s,r]),
 * two ranks at a time: the products in f64x2 lanes (W·B exact, ·K rounded
 * once) and rounded to float32, as the JavaScript loop stores them. Rows of
 * Rp floats (even; the driver pads with zeros); each pair is stored as the
 * 8 bytes of lane 0 of the demoted vector.
 */
export function khatriRaoFn(): Fn {
  const f = new Fn('khatriRao', Array(7).fill('i32'));
  const [W, B, K, KR, I, S, Rp] = f.params;
  const i = f.local('i32'),
    s = f.local('i32'),
    r = f.local('i32'),
    out = f.local('i32'),
    kp = f.local('i32');
  const wb = f.local('v128');
  f.get(KR).set(out);
  f.for(
    i,
    (g) => g.i32(0),
    (g) => g.get(I),
    1,
    (g) => {
      g.get(K).set(kp);
      g.for(
        s,
        (h) => h.i32(0),
        (h) => h.get(S),
        1,
        (h) => {
          h.for(
            r,
            (e) => e.i32(0),
            (e) => e.get(Rp),
            2,
            (e) => {
              e.get(W).get(r).i32(2).shl().add().v128Load().promoteLow();
              e.get(B).get(i).get(Rp).mul().get(r).add().i32(2).shl().add().v128Load().promoteLow();
              e.f64x2Mul().set(wb);
              e.get(out).get(wb).get(kp).get(r).i32(2).shl().add().v128Load().promoteLow().f64x2Mul();
              e.demoteZero().f64Lane(0).f64Store();
              e.get(out).i32(8).add().set(out);
            },
          );
          h.get(kp).get(Rp).i32(2).shl().add().set(kp);
        },
      );
    },
  );
  return f;
}

/**
 * padRows(src, dst, u0, u1, rowBytes, Dp, Hp, pd, ph, pw, D, H, W): writes
 * padded rows u ∈ [u0, u1) of a zero-padded, stride-1 convolution input
 * ([C][Dp][Hp] rows of rowBytes, contiguous from dst): each row is zeroed,
 * then an interior row (pd ≤ z < pd + D, ph ≤ y < ph + H) gets its W floats
 * from the dense sample at src ([C][D][H][W]) at float pw. One pass instead
 * of a fill of the whole sample and a copy after it, and rows are
 * independent units for the threads.
 */
export function padRowsFn(): Fn {
  const f = new Fn('padRows', Array(13).fill('i32'));
  const [src, dst, u0, u1, rowBytes, Dp, Hp, pd, ph, pw, D, H, W] = f.params;
  const u = f.local('i32'),
    c = f.local('i32'),
    zp = f.local('i32'),
    yp = f.local('i32'),
    dp = f.local('i32'),
    sp = f.local('i32'),
    j = f.local('i32'),
    zBytes = f.local('i32'),
    wBytes = f.local('i32'),
    wVec = f.local('i32'),
    rowsPerC = f.local('i32'),
    z = f.local('i32'),
    y = f.local('i32');
  f.get(Dp).get(Hp).mul().set(rowsPerC);
  f.get(rowBytes).i32(-16).and().set(zBytes);
  f.get(W).i32(2).shl().set(wBytes);
  f.get(wBytes).i32(-16).and().set(wVec);
  // (c, zp, yp) of row u0 once; then counted forward (no division per row).
  f.get(u0).get(rowsPerC).divU().set(c);
  f.get(u0).get(rowsPerC).remU().get(Hp).divU().set(zp);
  f.get(u0).get(Hp).remU().set(yp);
  f.for(
    u,
    (g) => g.get(u0),
    (g) => g.get(u1),
    1,
    (g) => {
      g.get(dst).get(u).get(rowBytes).mul().add().set(dp);
      g.for(
        j,
        (q) => q.i32(0),
        (q) => q.get(zBytes),
        16,
        (q) => {
          q.get(dp).get(j).add().vzero().v128Store();
        },
      );
      g.for(
        j,
        (q) => q.get(zBytes),
        (q) => q.get(rowBytes),
        4,
        (q) => {
          q.get(dp).get(j).add().f32(0).f32Store();
        },
      );
      g.get(zp).get(pd).sub().set(z);
      g.get(yp).get(ph).sub().set(y);
      // interior: 0 ≤ z < D and 0 ≤ y < H (unsigned compares catch negatives)
      g.get(z)
        .get(D)
        .ltU()
        .get(y)
        .get(H)
        .ltU()
        .and()
        .if((h) => {
          h.get(src).get(c).get(D).mul().get(z).add().get(H).mul().get(y).add().get(wBytes).mul().add().set(sp);
          h.get(dp).get(pw).i32(2).shl().add().set(dp);
          h.for(
            j,
            (q) => q.i32(0),
            (q) => q.get(wVec),
            16,
            (q) => {
              q.get(dp).get(j).add().get(sp).get(j).add().v128Load().v128Store();
            },
          );
          h.for(
            j,
            (q) => q.get(wVec),
            (q) => q.get(wBytes),
            4,
            (q) => {
              q.get(dp).get(j).add().get(sp).get(j).add().f32Load().f32Store();
            },
          );
        });
      // next row: yp, then zp, then c
      g.get(yp)
        .i32(1)
        .add()
        .tee(yp)
        .get(Hp)
        .ltS()
        .eqz()
        .if((h) => {
          h.i32(0).set(yp);
          h.get(zp)
            .i32(1)
            .add()
            .tee(zp)
            .get(Dp)
            .ltS()
            .eqz()
            .if((e) => {
              e.i32(0).set(zp);
              e.get(c).i32(1).add().set(c);
            });
        });
    },
  );
  return f;
}
