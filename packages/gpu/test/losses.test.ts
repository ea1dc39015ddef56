// The WebGPU loss kernels and their gradients against the float64 oracle.
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
