// The WebGPU CP reconstruction and its backward against the float64 oracle.
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
// CP reconstruction

interface CpCase { R: number; O: number; I: number; S: number; seed: number }
const arbCp: fc.Arbitrary<CpCase> = fc.record({
  R: fc.integer({ min: 1, max: 6 }), O: fc.integer({ min: 1, max: 9 }), I: fc.integer({ min: 1, max: 9 }), S: fc.constantFrom(1, 4, 9, 27), seed,
});
const CP_FIXED: CpCase[] = [{ R: 16, O: 70, I: 33, S: 27, seed: 1 }, { R: 8, O: 20, I: 64, S: 27, seed: 2 }];

function cpInputs(c: CpCase) {
  const v = { w: normals(c.R, c.seed), a: normals(c.O * c.R, c.seed + 1), b: normals(c.I * c.R, c.seed + 2), k: normals(c.S * c.R, c.seed + 3) };
  const shapes = { w: [c.R], a: [c.O, c.R], b: [c.I, c.R], k: [c.S, c.R] };
  const ts = () => [tensor(v.w, shapes.w), tensor(v.a, shapes.a), tensor(v.b, shapes.b), tensor(v.k, shapes.k)] as const;
  const refs = [refTensor(shapes.w, v.w), refTensor(shapes.a, v.a), refTensor(shapes.b, v.b), refTensor(shapes.k, v.k)] as const;
  return { ts, refs };
}

/** Products of four N(0, 1) factors summed n times: f32 error grows with n. */
const cpTol = (n: number): Tol => ({ rtol: 2e-5, atol: 1e-6 * Math.max(n, 1) + 1e-6 });

async function cpCase(c: CpCase): Promise<void> {
  const { ts, refs } = cpInputs(c);
  const y = tidy(() => C.cpReconstruct(...ts()));
  await expect(y, refCpReconstruct(...refs), cpTol(c.R), `cpReconstruct ${JSON.stringify(c)}`);
}

async function cpGradCase(c: CpCase): Promise<void> {
  const { ts, refs } = cpInputs(c);
  const gv = normals(c.O * c.I * c.S, c.seed + 4);
  const g = tidy(() => {
    const r = C.cpReconstructGrad(tensor(gv, [c.O, c.I, c.S]), ...ts());
    return [r.dweights, r.daOut, r.daIn, r.daKernel];
  });
  const want = refCpReconstructGrad(refTensor([c.O, c.I, c.S], gv), ...refs);
  const n = c.O * c.I * c.S;
  await expect(g[0], want.dweights, cpTol(n), `cp dweights ${JSON.stringify(c)}`);
  await expect(g[1], want.daOut, cpTol(c.I * c.S), `cp daOut ${JSON.stringify(c)}`);
  await expect(g[2], want.daIn, cpTol(c.O * c.S), `cp daIn ${JSON.stringify(c)}`);
  await expect(g[3], want.daKernel, cpTol(c.O * c.I), `cp daKernel ${JSON.stringify(c)}`);
}

t.test(wg(oracleCase('cpReconstruct')), gpuOpts(), async (t) => {
  await leakFree(t, async () => {
    await fc.assert(fc.asyncProperty(arbCp, cpCase), { numRuns: GPU_RUNS });
    for (const c of CP_FIXED) await cpCase(c);
  });
});

t.test(wg(oracleCase('cpReconstructGrad')), gpuOpts(), async (t) => {
  await leakFree(t, async () => {
    await fc.assert(fc.asyncProperty(arbCp, cpGradCase), { numRuns: GPU_RUNS });
    for (const c of CP_FIXED) await cpGradCase(c);
  });
});
