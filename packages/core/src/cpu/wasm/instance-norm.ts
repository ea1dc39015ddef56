import type { TypedArray } from '../../dtype.js';
import type { WasmRuntime } from './runtime.js';
import { parallelFor } from './pool.js';
import { gradRow, rowInvStd } from '../instance-norm.js';

/**
 * Instance norm on the wasm row kernels (kernels-rows.ts). Each (n, c) row
 * is reduced by one thread from start to end, so the bits do not depend on
 * the thread count; the per-row scalars between the two passes (1/σ, the
 * backward's coefficients) come from the JavaScript kernel's own functions
 * (rowInvStd, gradRow), and the per-channel sums over n in a fixed
 * order (n = 0, 1, …).
 */

/**
 * Weight of one float, in multiply-adds, when deciding to wake threads. The
 * passes are memory-bound and the copies into and out of the arena run on
 * the calling thread: at [2,32,32³] (2 M floats) a second thread gained
 * nothing (forward 4.4 ms on one thread, 5.3 on two; bench/compare.mjs,
 * 2 cores), and forward + backward moved between 10% faster and 8% slower
 * from run to run, so only tensors past ~16 M floats are split. (This was 2
 * per float, which split from 2 M floats against the intent above.)
 */
const WORK_PER_FLOAT = 1 / 4;

/** y, mean, invstd = instanceNorm(x) for rows of S floats (x, y: [rows][S]; mean, invstd: [rows]). */
export function wasmInstanceNorm(
  rt: WasmRuntime,
  x: TypedArray,
  w: TypedArray | null,
  b: TypedArray | null,
  C: number,
  rows: number,
  S: number,
  eps: number,
  y: TypedArray,
  meanOut: TypedArray,
  invstdOut: TypedArray,
): void {
  const ar = rt.arena;
  ar.reset();
  const X = ar.alloc(rows * S * 4),
    stats = ar.alloc(rows * 24),
    coef = ar.alloc(rows * 24);
  ar.f32().set(x, X >> 2);
  const work = rows * S * WORK_PER_FLOAT;
  parallelFor(rt, 'inormStats', [X, S, stats, 0, 0], 3, 4, rows, work);
  const f64 = new Float64Array(rt.memory.buffer);
  for (let i = 0, s = stats >> 3, q = coef >> 3; i < rows; i++, s += 3, q += 3) {
    const c = i % C;
    const mean = f64[s],
      sd = f64[s + 1],
      sq = f64[s + 2];
    const invstd = rowInvStd(sd, sq, S, eps);
    meanOut[i] = mean;
    invstdOut[i] = invstd;
    f64[q] = mean;
    f64[q + 1] = invstd * (w ? w[c] : 1);
    f64[q + 2] = b ? b[c] : 0;
  }
  // y overwrites x in the arena: each float is read before it is written.
  parallelFor(rt, 'inormApply', [X, X, S, coef, 0, 0], 4, 5, rows, work);
  y.set(ar.f32().subarray(X >> 2, (X >> 2) + rows * S));
}

/**
 * dx, dweight, dbias of instance norm from dy, x and the saved statistics;
 * `statGrads` are the cotangents of mean and invstd when those were used.
 */
export function wasmInstanceNormGrad(
  rt: WasmRuntime,
  dy: TypedArray,
  x: TypedArray,
  mean: TypedArray,
  invstd: TypedArray,
  w: TypedArray | null,
  gm: TypedArray | null,
  gi: TypedArray | null,
  C: number,
  rows: number,
  S: number,
  dx: TypedArray,
  dwOut: TypedArray,
  dbOut: TypedArray,
): void {
  const ar = rt.arena;
  ar.reset();
  const DY = ar.alloc(rows * S * 4),
    X = ar.alloc(rows * S * 4),
    mu0 = ar.alloc(rows * 8),
    stats = ar.alloc(rows * 24),
    coef = ar.alloc(rows * 32);
  const mem = ar.f32();
  mem.set(dy, DY >> 2);
  mem.set(x, X >> 2);
  const f64 = new Float64Array(rt.memory.buffer);
  for (let i = 0; i < rows; i++) f64[(mu0 >> 3) + i] = mean[i];
  const work = rows * S * WORK_PER_FLOAT;
  parallelFor(rt, 'inormGradStats', [DY, X, S, mu0, stats, 0, 0], 5, 6, rows, work);
  const dw = new Float64Array(C),
    db = new Float64Array(C);
  for (let i = 0, s = stats >> 3, q = coef >> 3; i < rows; i++, s += 3, q += 4) {
    const c = i % C,
      is = invstd[i];
    const sdy = f64[s];
    const r = gradRow(
      S,
      mean[i],
      is,
      sdy,
      f64[s + 1],
      f64[s + 2],
      w ? w[c] : 1,
      !!(gm && gi),
      gm ? gm[i] : 0,
      gi ? gi[i] : 0,
    );
    db[c] += sdy;
    dw[c] += r.sdyx;
    f64[q] = r.scale;
    f64[q + 1] = r.A;
    f64[q + 2] = r.mu;
    f64[q + 3] = r.B;
  }
  // dx overwrites dy in the arena: each float is read before it is written.
  parallelFor(rt, 'inormGradApply', [DY, X, DY, S, coef, 0, 0], 5, 6, rows, work);
  dx.set(ar.f32().subarray(DY >> 2, (DY >> 2) + rows * S));
  dwOut.set(dw);
  dbOut.set(db);
}
