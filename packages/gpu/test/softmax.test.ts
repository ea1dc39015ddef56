// The WebGPU softmax / logSoftmax kernels against the float64 oracle (lanes
// and workgroup rows, NaN / ±Inf).
import t from 'tap';
import fc from 'fast-check';
import * as C from '@largo/core';
import { Philox, tensor, tidy, type Tensor } from '@largo/core';
import {
  refBceWithLogits, refBceWithLogitsGrad, refCpReconstruct, refCpReconstructGrad, refCrossEntropy, refCrossEntropyGrad,
  refInstanceNorm, refInstanceNormGrad, refLogSoftmax, refSoftDiceLoss, refSoftDiceLossGrad, refSoftmax, refTensor, type RefTensor,
} from '@largo/core/reference';
import { GPU_RUNS, arbF32, arbShape, check, compareTo, gpuOpts, leakFree, oracleCase, size, take, wg, type Tol } from './helpers.js';

const normals = (n: number, seed: number, mean = 0, std = 1) => Float32Array.from(new Philox(seed).normal(n), (v) => mean + std * v);
const uniforms = (n: number, seed: number) => Float32Array.from(new Philox(seed).uniform(n));
const maxAbs = (a: ArrayLike<number>) => { let m = 0; for (let i = 0; i < a.length; i++) if (Math.abs(a[i]) > m) m = Math.abs(a[i]); return m; };
const seed = fc.integer({ min: 0, max: 1 << 30 });

async function expect(y: Tensor, want: RefTensor, tol: Tol, what: string): Promise<void> {
  check(compareTo(await take(y), want, tol), what);
}

// ---------------------------------------------------------------------------
// softmax / logSoftmax

for (const [name, op, ref, atol] of [
  [oracleCase('softmax'), C.softmax, refSoftmax, 1e-6],
  [oracleCase('logSoftmax'), C.logSoftmax, refLogSoftmax, 4e-6],
] as const) {
  t.test(wg(name), gpuOpts(), async (t) => {
    await leakFree(t, async () => {
      // Lanes (a thread per position): any axis, NaN / ±Inf included.
      await fc.assert(fc.asyncProperty(
        arbShape(1, 4, 5).chain((s) => fc.tuple(fc.constant(s), fc.integer({ min: -s.length, max: s.length - 1 }), arbF32(size(s), -8, 8))),
        async ([shape, axis, v]) => {
          const x = Float32Array.from(v);
          const y = tidy(() => op(tensor(x, shape), axis));
          const ax = axis < 0 ? axis + shape.length : axis;
          await expect(y, ref(refTensor(shape, x), ax), { rtol: 1e-5, atol }, `${name} axis ${axis} of [${shape}] ${JSON.stringify(v)}`);
        }), { numRuns: GPU_RUNS });
      // Long innermost rows (a workgroup per row).
      await fc.assert(fc.asyncProperty(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 64, max: 700 }), fc.boolean(), seed,
        async (rows, n, special, s) => {
          const x = normals(rows * n, s, 0, 4);
          if (special) { x[s % x.length] = [NaN, Infinity, -Infinity][s % 3]; }
          const y = tidy(() => op(tensor(x, [rows, n]), -1));
          await expect(y, ref(refTensor([rows, n], x), 1), { rtol: 1e-5, atol }, `${name} rows ${rows}×${n}`);
        }), { numRuns: Math.ceil(GPU_RUNS / 2) });
    });
  });
}
