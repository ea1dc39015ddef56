// WebGPU reductions against the float64 oracle: random shapes, random axis
// subsets (non-adjacent included), keepDims, NaN, ties, integer dtypes, and
// sizes that take the workgroup-tree and two-pass paths.
import t from 'tap';
import fc from 'fast-check';
import * as C from '@largo/core';
import { tensor, tidy, type DType, type Tensor } from '@largo/core';
import { refArg, refMax, refMin, refSum, refTensor, type RefTensor } from '@largo/core/reference';
import {
  GPU_RUNS,
  arbShape,
  check,
  compareTo,
  gpuOpts,
  leakFree,
  oracleCase,
  size,
  stored,
  take,
  wg,
} from './helpers.js';

/** Mostly floats in [-3, 3], a coarse grid to force ties, sometimes NaN. */
const arbVals = (n: number, nan: boolean) =>
  fc.array(
    fc.oneof(
      {
        arbitrary: fc.double({ min: -3, max: 3, noNaN: true }).map((v) => (Math.abs(v) < 1e-30 ? 0 : Math.fround(v))),
        weight: 8,
      },
      { arbitrary: fc.constantFrom(-1, 0, 1, 2), weight: 3 },
      { arbitrary: fc.constant(NaN), weight: nan ? 1 : 0 },
    ),
    { minLength: n, maxLength: n },
  );

/** A shape, a sorted axis subset (possibly empty or non-adjacent) and keepDims. */
const arbReduction = (maxRank = 4, maxDim = 5) =>
  arbShape(0, maxRank, maxDim).chain((shape) =>
    fc.tuple(fc.constant(shape), fc.subarray(shape.map((_, i) => i)), fc.boolean()),
  );

/** f32 summation error: at worst about n·eps·mean|x| per output (the tree usually does far better). */
const sumTol = (x: ArrayLike<number>, n: number) => {
  let s = 0;
  for (let i = 0; i < x.length; i++) if (Number.isFinite(x[i])) s += Math.abs(x[i]);
  return { rtol: 1e-5, atol: 2e-7 * Math.max(n, 1) * Math.max(s / Math.max(x.length, 1), 1) + 1e-6 };
};

interface Case {
  name: string;
  op: 'sum' | 'max' | 'min';
  ref: (x: RefTensor, axes: number[], keep: boolean) => RefTensor;
}
const CASES: Case[] = [
  { name: oracleCase('sum'), op: 'sum', ref: refSum },
  { name: oracleCase('max'), op: 'max', ref: refMax },
  { name: oracleCase('min'), op: 'min', ref: refMin },
];

for (const c of CASES) {
  t.test(wg(c.name), gpuOpts(), async (t) => {
    await leakFree(t, async () => {
      await fc.assert(
        fc.asyncProperty(
          arbReduction()
            .filter(([s, axes]) => c.op === 'sum' || axes.every((a) => s[a] > 0))
            .chain(([s, axes, keep]) =>
              fc.tuple(fc.constant(s), fc.constant(axes), fc.constant(keep), arbVals(size(s), c.op !== 'sum')),
            ),
          async ([shape, axes, keep, values]) => {
            const y = tidy(() => C[c.op](tensor(Float32Array.from(values), shape), axes, keep));
            const n = size(axes.map((a) => shape[a]));
            const want = c.ref(refTensor(shape, Float32Array.from(values)), axes, keep);
            check(
              compareTo(await take(y), want, c.op === 'sum' ? sumTol(values, n) : { rtol: 0, atol: 0 }),
              `${c.op} over [${axes}] of [${shape}] keepDims=${keep}`,
            );
          },
        ),
        { numRuns: GPU_RUNS },
      );
      for (const dtype of ['int32', 'uint8'] as DType[]) {
        await fc.assert(
          fc.asyncProperty(
            arbReduction(3).chain(([s, axes, keep]) =>
              fc.tuple(
                fc.constant(s),
                fc.constant(axes),
                fc.constant(keep),
                fc.array(fc.integer({ min: dtype === 'uint8' ? 0 : -100, max: dtype === 'uint8' ? 255 : 100 }), {
                  minLength: size(s),
                  maxLength: size(s),
                }),
              ),
            ),
            async ([shape, axes, keep, values]) => {
              const y = tidy(() => C[c.op](tensor(values, shape, dtype), axes, keep));
              const want: DType = c.op === 'sum' && dtype === 'uint8' ? 'int32' : dtype;
              if (y.dtype !== want) throw new Error(`${c.op} of ${dtype} gave ${y.dtype}`);
              const r = c.ref(refTensor(shape, values), axes, keep);
              check(
                compareTo(await take(y), refTensor(r.shape, stored(r.data, want)), { rtol: 0, atol: 0 }),
                `${c.op} ${dtype} over [${axes}] of [${shape}]`,
              );
            },
          ),
          { numRuns: Math.ceil(GPU_RUNS / 3) },
        );
      }
    });
  });
}

for (const [kind, name] of [
  ['max', oracleCase('argmax')],
  ['min', oracleCase('argmin')],
] as const) {
  const op = kind === 'max' ? 'argmax' : 'argmin';
  t.test(wg(name), gpuOpts(), async (t) => {
    await leakFree(t, async () => {
      await fc.assert(
        fc.asyncProperty(
          arbShape(1, 4, 5).chain((s) =>
            fc.tuple(fc.constant(s), fc.integer({ min: 0, max: s.length - 1 }), fc.boolean(), arbVals(size(s), true)),
          ),
          async ([shape, axis, keep, values]) => {
            const y = tidy(() => C[op](tensor(Float32Array.from(values), shape), axis, keep));
            if (y.dtype !== 'int32') throw new Error(`${op} gave ${y.dtype}`);
            check(
              compareTo(await take(y), refArg(refTensor(shape, Float32Array.from(values)), axis, kind, keep), {
                rtol: 0,
                atol: 0,
              }),
              `${op} along ${axis} of [${shape}] [${values}]`,
            );
          },
        ),
        { numRuns: GPU_RUNS },
      );
      await fc.assert(
        fc.asyncProperty(
          arbShape(1, 3, 5).chain((s) =>
            fc.tuple(
              fc.constant(s),
              fc.integer({ min: 0, max: s.length - 1 }),
              fc.array(fc.integer({ min: -3, max: 3 }), { minLength: size(s), maxLength: size(s) }),
            ),
          ),
          async ([shape, axis, values]) => {
            const y = tidy(() => C[op](tensor(values, shape, 'int32'), axis));
            check(
              compareTo(await take(y), refArg(refTensor(shape, values), axis, kind), { rtol: 0, atol: 0 }),
              `${op} int32 along ${axis}`,
            );
          },
        ),
        { numRuns: Math.ceil(GPU_RUNS / 3) },
      );
    });
    // Flattened (no axis).
    const x = tensor([3, 1, 7, 7, -2, 0], [2, 3]);
    t.same((await take(C[op](x))).data, [kind === 'max' ? 2 : 4], 'flattened index, first of ties');
    x.dispose();
  });
}

/** Deterministic values in [-1, 1) (a cheap hash; no fast-check needed for the big cases). */
function pseudo(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

t.test(wg('reductions on the workgroup-tree and two-pass paths'), gpuOpts(), async (t) => {
  await leakFree(t, async () => {
    const cases: { shape: number[]; axes: number[] }[] = [
      { shape: [3, 5000], axes: [1] }, // tree, rows contiguous
      { shape: [40000], axes: [0] }, // tree in two passes (chunks)
      { shape: [2, 300, 3], axes: [1] }, // tree with inner > 1 (few outputs)
      { shape: [130, 3, 140], axes: [0, 2] }, // two runs: inner axis, then outer
      { shape: [4, 2, 9000], axes: [0, 2] }, // chunked run, then a short one
    ];
    for (const { shape, axes } of cases) {
      const v = pseudo(size(shape), size(shape));
      v[7] = NaN;
      for (const op of ['sum', 'max', 'min'] as const) {
        const vals = op === 'sum' ? v.map((x) => (Number.isNaN(x) ? 0.5 : x)) : v;
        const ref = { sum: refSum, max: refMax, min: refMin }[op](refTensor(shape, vals), axes, false);
        const y = tidy(() => C[op](tensor(vals, shape), axes));
        check(
          compareTo(
            await take(y),
            ref,
            op === 'sum' ? { rtol: 1e-5, atol: 2e-6 * Math.sqrt(size(shape)) } : { rtol: 0, atol: 0 },
          ),
          `${op} over [${axes}] of [${shape}]`,
        );
      }
      if (axes.length === 1) {
        for (const kind of ['max', 'min'] as const) {
          const w = v.map((x) => (Number.isNaN(x) ? 0 : x));
          w[w.length - 3] = kind === 'max' ? 5 : -5;
          const y = tidy(() => C[kind === 'max' ? 'argmax' : 'argmin'](tensor(w, shape), axes[0]));
          check(
            compareTo(await take(y), refArg(refTensor(shape, w), axes[0], kind), { rtol: 0, atol: 0 }),
            `arg${kind} along ${axes[0]} of [${shape}]`,
          );
          const z = tidy(() => C[kind === 'max' ? 'argmax' : 'argmin'](tensor(v, shape), axes[0]));
          check(
            compareTo(await take(z), refArg(refTensor(shape, v), axes[0], kind), { rtol: 0, atol: 0 }),
            `arg${kind} with NaN along ${axes[0]} of [${shape}]`,
          );
        }
      }
    }
    // Integer sums wrap like an Int32Array store; uint8 sums widen to int32.
    const u8 = tensor(new Uint8Array(70000).fill(255), [70000], 'uint8');
    const s = C.sum(u8);
    t.equal(s.dtype, 'int32');
    t.same((await take(s)).data, [255 * 70000]);
    u8.dispose();
  });
});

t.test(wg('mean and variance compose on the GPU'), gpuOpts(), async (t) => {
  const x = tensor(pseudo(24, 3), [2, 3, 4]);
  const m = C.mean(x, [0, 2]),
    v = C.variance(x, [1], true, 1);
  const xs = Array.from(pseudo(24, 3));
  const want = [0, 1, 2].map((j) => {
    let s = 0;
    for (let i = 0; i < 2; i++) for (let k = 0; k < 4; k++) s += xs[i * 12 + j * 4 + k];
    return s / 8;
  });
  check(compareTo(await take(m), refTensor([3], want), { rtol: 1e-5, atol: 1e-6 }), 'mean');
  const vr = await take(v);
  t.same(vr.shape, [2, 1, 4]);
  t.ok(
    vr.data.every((q) => q >= 0),
    'variance is non-negative',
  );
  x.dispose();
});

export type { Tensor };
