// The WebGPU instance norm kernels against the float64 oracle (affine variants,
// statistics' cotangents, large offsets, chunked long rows).
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
// instance norm

interface InCase { N: number; C: number; spatial: number[]; affine: string; eps: number; offset: number; scale: number; seed: number; stats: boolean }
const arbIn: fc.Arbitrary<InCase> = fc.record({
  N: fc.integer({ min: 1, max: 2 }), C: fc.integer({ min: 1, max: 3 }),
  spatial: fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 1, maxLength: 3 }),
  affine: fc.constantFrom('none', 'weight', 'bias', 'both'),
  eps: fc.constantFrom(1e-5, 1e-3, 0.1), offset: fc.constantFrom(0, 3, -50), scale: fc.constantFrom(1, 0.01, 20),
  seed, stats: fc.boolean(),
});

function inTensors(c: InCase) {
  const shape = [c.N, c.C, ...c.spatial];
  const x = normals(size(shape), c.seed, c.offset, c.scale);
  const w = c.affine === 'weight' || c.affine === 'both' ? normals(c.C, c.seed + 1, 1, 0.5) : null;
  const b = c.affine === 'bias' || c.affine === 'both' ? normals(c.C, c.seed + 2) : null;
  return { shape, x, w, b };
}

/** Mean and 1/sqrt(var + eps) per (n, c) in float64. */
function refStats(x: Float32Array, R: number, S: number, eps: number) {
  const mean = new Float64Array(R), invstd = new Float64Array(R);
  for (let r = 0; r < R; r++) {
    let s = 0; for (let j = 0; j < S; j++) s += x[r * S + j];
    const m = s / S;
    let q = 0; for (let j = 0; j < S; j++) q += (x[r * S + j] - m) ** 2;
    mean[r] = m; invstd[r] = 1 / Math.sqrt(q / S + eps);
  }
  return { mean, invstd };
}

async function instanceNormCase(c: InCase): Promise<void> {
  const { shape, x, w, b } = inTensors(c);
  const S = size(c.spatial), R = c.N * c.C;
  const out = tidy(() => C.instanceNormWithStats(tensor(x, shape), w && tensor(w, [c.C]), b && tensor(b, [c.C]), c.eps));
  const want = refInstanceNorm(refTensor(shape, x), w && refTensor([c.C], w), b && refTensor([c.C], b), c.eps);
  const st = refStats(x, R, S, c.eps);
  // The mean is kept as hi + lo (f32 each), so x − μ keeps full precision even with large offsets: the CPU's tolerance.
  const what = `instanceNorm [${shape}] ${c.affine} eps ${c.eps} offset ${c.offset} scale ${c.scale}`;
  await expect(out.y, want, { rtol: 1e-5 * Math.sqrt(S) + 1e-6, atol: 1e-6 * Math.sqrt(S) + 1e-6 }, what);
  await expect(out.mean, refTensor([c.N, c.C], st.mean), { rtol: 1e-6, atol: 1e-6 * c.scale }, `${what}: mean`);
  await expect(out.invstd, refTensor([c.N, c.C], st.invstd), { rtol: 1e-4, atol: 0 }, `${what}: invstd`);
}

t.test(wg(oracleCase('instanceNorm')), gpuOpts(), async (t) => {
  await leakFree(t, async () => {
    await fc.assert(fc.asyncProperty(arbIn, async (c) => instanceNormCase(c)), { numRuns: GPU_RUNS });
    // Long rows: several chunks per row, merged.
    await instanceNormCase({ N: 1, C: 2, spatial: [9001], affine: 'both', eps: 1e-5, offset: -50, scale: 0.01, seed: 7, stats: false });
    await instanceNormCase({ N: 2, C: 1, spatial: [24, 24, 24], affine: 'weight', eps: 1e-5, offset: 3, scale: 1, seed: 8, stats: false });
  });
});

async function instanceNormGradCase(c: InCase): Promise<void> {
  const { shape, x, w } = inTensors(c);
  const S = size(c.spatial), R = c.N * c.C;
  const dy = normals(size(shape), c.seed + 3);
  const gm = c.stats ? normals(R, c.seed + 4) : null, gi = c.stats ? normals(R, c.seed + 5) : null;
  const got = tidy(() => {
    const xt = tensor(x, shape), wt = w && tensor(w, [c.C]);
    const { mean, invstd } = C.instanceNormWithStats(xt, wt, null, c.eps);
    const sg = gm && gi ? { dmean: tensor(gm, [c.N, c.C]), dinvstd: tensor(gi, [c.N, c.C]) } : null;
    return C.instanceNormGrad(tensor(dy, shape), xt, mean, invstd, wt, sg);
  });
  const want = refInstanceNormGrad(refTensor(shape, dy), refTensor(shape, x), w && refTensor([c.C], w), c.eps,
    gm && gi ? { dmean: refTensor([c.N, c.C], gm), dinvstd: refTensor([c.N, c.C], gi) } : undefined);
  // On the scale of the terms (as the CPU test): dx ~ |w|·σ⁻¹·|dy| (+ statistics' terms), dweight/dbias ≤ N·S·max|dy|·max|x̂|.
  const isMax = maxAbs(refStats(x, R, S, c.eps).invstd);
  let dxScale = maxAbs(dy) * (w ? maxAbs(w) : 1) * isMax;
  if (gm && gi) dxScale += maxAbs(gm) / S + (maxAbs(gi) * isMax * isMax) / Math.sqrt(S);
  const xhatErr = 1;
  const sumScale = maxAbs(dy) * c.N * S;
  const what = `instanceNormGrad [${shape}] ${c.affine} eps ${c.eps} offset ${c.offset} scale ${c.scale} stats ${c.stats}`;
  await expect(got.dx, want.dx, { rtol: 1e-4, atol: 2e-6 * dxScale * xhatErr }, `${what}: dx`);
  await expect(got.dweight, want.dweight, { rtol: 1e-4, atol: 1e-6 * sumScale * xhatErr }, `${what}: dweight`);
  await expect(got.dbias, want.dbias, { rtol: 1e-4, atol: 1e-6 * sumScale }, `${what}: dbias`);
}

t.test(wg(oracleCase('instanceNormGrad')), gpuOpts(), async (t) => {
  await leakFree(t, async () => {
    await fc.assert(fc.asyncProperty(arbIn, async (c) => instanceNormGradCase(c)), { numRuns: GPU_RUNS });
    await instanceNormGradCase({ N: 1, C: 2, spatial: [4500], affine: 'weight', eps: 1e-5, offset: 3, scale: 2, seed: 9, stats: true });
  });
});
