// The WebGPU network kernels against the float64 oracle: softmax /
// logSoftmax (lanes and workgroup rows, NaN / ±Inf), instance norm and its
// backward (affine variants, statistics' cotangents, large offsets, chunked
// long rows), the losses and their gradients, and the CP reconstruction.
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

// ---------------------------------------------------------------------------
// cross-entropy

interface CeCase { shape: number[]; targets: number[]; ignoreIndex: number; weighted: boolean; u8: boolean; seed: number; dy: number }
const arbCe: fc.Arbitrary<CeCase> = fc.record({
  N: fc.integer({ min: 1, max: 3 }), C: fc.integer({ min: 1, max: 6 }),
  spatial: fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 0, maxLength: 2 }),
  ignore: fc.constantFrom(-100, 0, 1), weighted: fc.boolean(), u8: fc.boolean(), seed, dy: fc.double({ min: -2, max: 2, noNaN: true }),
}).chain((r) => {
  const tshape = [r.N, ...r.spatial];
  return fc.array(fc.integer({ min: 0, max: r.C }), { minLength: size(tshape), maxLength: size(tshape) }).map((tv) => ({
    shape: [r.N, r.C, ...r.spatial],
    // r.C stands for "ignored" (ignoreIndex -100 cannot be stored in uint8: then it is class 0).
    targets: tv.map((v) => (v === r.C ? (r.u8 && r.ignore < 0 ? 0 : r.ignore) : v)),
    ignoreIndex: r.ignore, weighted: r.weighted, u8: r.u8, seed: r.seed, dy: Math.fround(r.dy),
  }));
});

const ceTshape = (c: CeCase) => [c.shape[0], ...c.shape.slice(2)];

t.test(wg(oracleCase('crossEntropy')), gpuOpts(), async (t) => {
  await leakFree(t, async () => {
    await fc.assert(fc.asyncProperty(arbCe, async (c) => {
      const x = normals(size(c.shape), c.seed, 0, 3), w = uniforms(c.shape[1], c.seed + 1);
      const y = tidy(() => C.crossEntropy(tensor(x, c.shape), tensor(c.targets, ceTshape(c), c.u8 ? 'uint8' : 'int32'),
        { ignoreIndex: c.ignoreIndex, weight: c.weighted ? tensor(w, [c.shape[1]]) : null }));
      const want = refCrossEntropy(refTensor(c.shape, x), refTensor(ceTshape(c), c.targets),
        { ignoreIndex: c.ignoreIndex, weight: c.weighted ? refTensor([c.shape[1]], w) : null });
      await expect(y, want, { rtol: 2e-5, atol: 2e-6 }, `crossEntropy ${JSON.stringify(c)}`);
    }), { numRuns: GPU_RUNS });
    // Labels on the GPU cannot throw: an out-of-range label makes the loss NaN (documented).
    const bad = tidy(() => C.crossEntropy(tensor([[1, 2], [3, 4]]), tensor([1, 5], [2], 'int32')));
    t.ok(Number.isNaN((await take(bad)).data[0]), 'an out-of-range label gives NaN on webgpu');
  });
});

t.test(wg(oracleCase('crossEntropyGrad')), gpuOpts(), async (t) => {
  await leakFree(t, async () => {
    await fc.assert(fc.asyncProperty(arbCe, async (c) => {
      const x = normals(size(c.shape), c.seed, 0, 3), w = uniforms(c.shape[1], c.seed + 1);
      const g = tidy(() => C.crossEntropyGrad(tensor(x, c.shape), tensor(c.targets, ceTshape(c), c.u8 ? 'uint8' : 'int32'), tensor([c.dy], []),
        { ignoreIndex: c.ignoreIndex, weight: c.weighted ? tensor(w, [c.shape[1]]) : null }));
      const want = refCrossEntropyGrad(refTensor(c.shape, x), refTensor(ceTshape(c), c.targets), c.dy,
        { ignoreIndex: c.ignoreIndex, weight: c.weighted ? refTensor([c.shape[1]], w) : null });
      await expect(g, want, { rtol: 2e-5, atol: 1e-6 }, `crossEntropyGrad ${JSON.stringify(c)}`);
    }), { numRuns: GPU_RUNS });
  });
});

// ---------------------------------------------------------------------------
// BCE with logits

const arbBce = arbShape(0, 4, 6).chain((s) => fc.tuple(fc.constant(s), seed, fc.double({ min: -2, max: 2, noNaN: true })));

t.test(wg(oracleCase('bceWithLogits')), gpuOpts(), async (t) => {
  await leakFree(t, async () => {
    await fc.assert(fc.asyncProperty(arbBce, async ([shape, s]) => {
      const x = normals(size(shape), s, 0, 4), tg = uniforms(size(shape), s + 1);
      const y = tidy(() => C.bceWithLogits(tensor(x, shape), tensor(tg, shape)));
      await expect(y, refBceWithLogits(refTensor(shape, x), refTensor(shape, tg)), { rtol: 2e-5, atol: 2e-6 }, `bce [${shape}]`);
    }), { numRuns: GPU_RUNS });
    // A long input: many workgroup partials.
    const n = 70001, x = normals(n, 5, 0, 6), tg = uniforms(n, 6);
    const y = tidy(() => C.bceWithLogits(tensor(x, [n]), tensor(tg, [n])));
    await expect(y, refBceWithLogits(refTensor([n], x), refTensor([n], tg)), { rtol: 1e-5, atol: 1e-6 }, 'bce long');
  });
});

t.test(wg(oracleCase('bceWithLogitsGrad')), gpuOpts(), async (t) => {
  await leakFree(t, async () => {
    await fc.assert(fc.asyncProperty(arbBce, async ([shape, s, dy]) => {
      const x = normals(size(shape), s, 0, 4), tg = uniforms(size(shape), s + 1), d = Math.fround(dy);
      const g = tidy(() => {
        const r = C.bceWithLogitsGrad(tensor(x, shape), tensor(tg, shape), tensor([d], []));
        return [r.dlogits, r.dtarget];
      });
      const want = refBceWithLogitsGrad(refTensor(shape, x), refTensor(shape, tg), d);
      const tol = { rtol: 2e-5, atol: 1e-7 };
      await expect(g[0], want.dlogits, tol, `bce dlogits [${shape}]`);
      await expect(g[1], want.dtarget, tol, `bce dtarget [${shape}]`);
    }), { numRuns: GPU_RUNS });
  });
});

// ---------------------------------------------------------------------------
// soft Dice

interface DiceCase { shape: number[]; smooth: number; batchDice: boolean; reduction: 'mean' | 'none'; hard: boolean; seed: number }
const arbDice: fc.Arbitrary<DiceCase> = fc.record({
  N: fc.integer({ min: 1, max: 3 }), C: fc.integer({ min: 1, max: 4 }),
  spatial: fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 0, maxLength: 3 }),
  smooth: fc.constantFrom(1e-5, 1, 0), batchDice: fc.boolean(), reduction: fc.constantFrom<'mean' | 'none'>('mean', 'none'), hard: fc.boolean(), seed,
}).map((r) => ({ shape: [r.N, r.C, ...r.spatial], smooth: r.smooth, batchDice: r.batchDice, reduction: r.reduction, hard: r.hard, seed: r.seed }));

function diceInputs(c: DiceCase) {
  const p = uniforms(size(c.shape), c.seed);
  const tg = uniforms(size(c.shape), c.seed + 1).map((v) => (c.hard ? (v > 0.5 ? 1 : 0) : v));
  // smooth 0 with an all-zero group is 0/0: keep the denominators positive.
  if (c.smooth === 0) p.forEach((v, i) => { p[i] = 0.05 + 0.9 * v; });
  const o = { smooth: c.smooth, batchDice: c.batchDice, reduction: c.reduction };
  const dyShape = c.reduction === 'mean' ? [] : c.batchDice ? [c.shape[1]] : [c.shape[0], c.shape[1]];
  return { p, tg, o, dyShape, dy: normals(size(dyShape), c.seed + 2) };
}

t.test(wg(oracleCase('softDiceLoss')), gpuOpts(), async (t) => {
  await leakFree(t, async () => {
    await fc.assert(fc.asyncProperty(arbDice, async (c) => {
      const { p, tg, o } = diceInputs(c);
      const y = tidy(() => C.softDiceLoss(tensor(p, c.shape), tensor(tg, c.shape), o));
      await expect(y, refSoftDiceLoss(refTensor(c.shape, p), refTensor(c.shape, tg), o), { rtol: 2e-5, atol: 2e-6 }, `softDice ${JSON.stringify(c)}`);
    }), { numRuns: GPU_RUNS });
    // Long groups (chunked rows).
    const c: DiceCase = { shape: [2, 2, 20000], smooth: 1e-5, batchDice: true, reduction: 'mean', hard: true, seed: 3 };
    const { p, tg, o } = diceInputs(c);
    const y = tidy(() => C.softDiceLoss(tensor(p, c.shape), tensor(tg, c.shape), o));
    await expect(y, refSoftDiceLoss(refTensor(c.shape, p), refTensor(c.shape, tg), o), { rtol: 1e-5, atol: 2e-6 }, 'softDice long');
  });
});

t.test(wg(oracleCase('softDiceLossGrad')), gpuOpts(), async (t) => {
  await leakFree(t, async () => {
    await fc.assert(fc.asyncProperty(arbDice, async (c) => {
      const { p, tg, o, dy, dyShape } = diceInputs(c);
      const g = tidy(() => {
        const r = C.softDiceLossGrad(tensor(p, c.shape), tensor(tg, c.shape), tensor(dy, dyShape), o);
        return [r.dprobs, r.dtarget];
      });
      const want = refSoftDiceLossGrad(refTensor(c.shape, p), refTensor(c.shape, tg), refTensor(dyShape, dy), o);
      const sc = maxAbs(want.dprobs.data) + maxAbs(want.dtarget.data);
      await expect(g[0], want.dprobs, { rtol: 5e-5, atol: 1e-6 * sc }, `softDice dprobs ${JSON.stringify(c)}`);
      await expect(g[1], want.dtarget, { rtol: 5e-5, atol: 1e-6 * sc }, `softDice dtarget ${JSON.stringify(c)}`);
    }), { numRuns: GPU_RUNS });
  });
});

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
