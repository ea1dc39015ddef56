// matmul against the float64 oracle, written once and run on every backend
// (forEachBackend): batch broadcasting, transpose flags, 1-d operands, K = 0,
// the backend's float dtypes; shapes crossing the CPU's cache blocks and
// register tiles and WebGPU's 32/64 tiles and 16-wide K slices. Known values
// and errors.
import t from 'tap';
import fc from 'fast-check';
import { matmul, OpError, Philox, tensor, tidy, zeros, type DType } from '@largo/core';
import { refMatmul, refTensor } from '@largo/core/reference';
import {
  compareAsync,
  forEachBackend,
  oracleCase,
  reductionTol,
  type BackendCase,
  type Tol,
} from '@largo/test-support';

/** Broadcast-compatible batch shapes: a common batch, each operand keeps a suffix with some axes set to 1. */
const arbBatches = (maxRank: number) =>
  fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 0, maxLength: maxRank }).chain((batch) =>
    fc
      .tuple(
        fc.integer({ min: 0, max: batch.length }),
        fc.integer({ min: 0, max: batch.length }),
        fc.array(fc.boolean(), { minLength: batch.length, maxLength: batch.length }),
        fc.array(fc.boolean(), { minLength: batch.length, maxLength: batch.length }),
      )
      .map(([la, lb, onesA, onesB]) => ({
        batchA: batch.slice(batch.length - la).map((d, i) => (onesA[i] ? 1 : d)),
        batchB: batch.slice(batch.length - lb).map((d, i) => (onesB[i] ? 1 : d)),
      })),
  );

interface Case {
  shapeA: number[];
  shapeB: number[];
  transposeA: boolean;
  transposeB: boolean;
  seed: number;
}

/** Dimensions up to `maxDim`, multiples of `step` (WebGPU's vec4 kernel takes multiples of 4). */
const arbCase = (maxDim: number, maxBatchRank = 3, step = 1): fc.Arbitrary<Case> =>
  fc
    .record({
      b: arbBatches(maxBatchRank),
      M: fc.integer({ min: 1, max: maxDim / step }).map((d) => d * step),
      K: fc.integer({ min: 0, max: maxDim / step }).map((d) => d * step),
      N: fc.integer({ min: 1, max: maxDim / step }).map((d) => d * step),
      transposeA: fc.boolean(),
      transposeB: fc.boolean(),
      // 0: both matrices, 1: a is 1-d, 2: b is 1-d, 3: both 1-d
      vec: fc.constantFrom(0, 0, 0, 1, 2, 3),
      seed: fc.integer({ min: 0, max: 1 << 30 }),
    })
    .map(({ b, M, K, N, transposeA, transposeB, vec, seed }) => ({
      shapeA: vec & 1 ? [K] : [...b.batchA, ...(transposeA ? [K, M] : [M, K])],
      shapeB: vec & 2 ? [K] : [...b.batchB, ...(transposeB ? [N, K] : [K, N])],
      transposeA,
      transposeB,
      seed,
    }));

const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
/** Normal values, rounded to float32 for a float32 case. */
const normals = (n: number, seed: number, dtype: DType) => {
  const v = new Philox(seed).normal(n);
  return dtype === 'float32' ? Float32Array.from(v) : Float64Array.from(v);
};

/**
 * float64: near ulp level. float32: the CPU rounds once from doubles
 * (reductionTol); an f32-accumulating backend (WebGPU) sums its K products
 * in float32: its established atol grows with √K.
 */
const tolFor = (b: BackendCase, dtype: DType, K: number): Tol =>
  dtype === 'float64'
    ? { rtol: 1e-12, atol: 1e-12 }
    : b.pick({ f64: reductionTol(K), f32: { rtol: 1e-5, atol: 1e-6 * Math.sqrt(Math.max(K, 1)) * 4 } });

/** Null when the backend's matmul of case `c` matches the oracle, else the message with the case. */
async function runCase(b: BackendCase, c: Case, dtype: DType = 'float32'): Promise<string | null> {
  const va = normals(size(c.shapeA), c.seed, dtype),
    vb = normals(size(c.shapeB), c.seed + 1, dtype);
  const y = tidy(() =>
    matmul(tensor(va, c.shapeA, dtype), tensor(vb, c.shapeB, dtype), {
      transposeA: c.transposeA,
      transposeB: c.transposeB,
    }),
  );
  const K =
    c.shapeB.length === 1 ? c.shapeB[0] : c.transposeB ? c.shapeB[c.shapeB.length - 1] : c.shapeB[c.shapeB.length - 2];
  const want = refMatmul(refTensor(c.shapeA, va), refTensor(c.shapeB, vb), {
    transposeA: c.transposeA,
    transposeB: c.transposeB,
  });
  const msg = await compareAsync(y, want, tolFor(b, dtype, K), true);
  return msg && `${msg} (${dtype} a [${c.shapeA}], b [${c.shapeB}], tA=${c.transposeA}, tB=${c.transposeB})`;
}
const fail = (msg: string | null) => {
  if (msg) throw new Error(msg);
};

forEachBackend(t, oracleCase('matmul'), async (t, b) => {
  for (const dtype of b.floatDtypes) {
    await fc.assert(
      fc.asyncProperty(arbCase(9), async (c) => fail(await runCase(b, c, dtype))),
      { numRuns: dtype === 'float32' ? b.runs * 2 : b.runs },
    );
  }
  // Sizes around WebGPU's 32/64 tiles and 16-wide K slices (the oracle is slow: few runs).
  await fc.assert(
    fc.asyncProperty(arbCase(72, 1), async (c) => fail(await runCase(b, c))),
    { numRuns: Math.ceil(b.runs / 3) },
  );
  // Multiples of 4: WebGPU's vec4 kernel on software adapters (4-, 8- and 16-wide register blocks, clamped edges).
  await fc.assert(
    fc.asyncProperty(arbCase(72, 2, 4), async (c) => fail(await runCase(b, c))),
    { numRuns: Math.ceil(b.runs / 2) },
  );
});

forEachBackend(
  t,
  oracleCase('matmul') + ' (cache blocks, register and GPU tiles, batches, transposes)',
  async (t, b) => {
    // M, K, N straddle the CPU's MC = 64, KC = 256, NC = 256 and its 4×4 tile edges, and WebGPU's tiles.
    const cases: Case[] = [
      { shapeA: [70, 261], shapeB: [261, 7], transposeA: false, transposeB: false, seed: 1 },
      { shapeA: [261, 70], shapeB: [7, 261], transposeA: true, transposeB: true, seed: 2 },
      { shapeA: [5, 3], shapeB: [3, 259], transposeA: false, transposeB: false, seed: 3 },
      { shapeA: [2, 1, 13, 17], shapeB: [3, 17, 6], transposeA: false, transposeB: false, seed: 4 },
      { shapeA: [65, 33], shapeB: [33, 129], transposeA: false, transposeB: false, seed: 5 },
      { shapeA: [4, 64, 64], shapeB: [64, 64], transposeA: true, transposeB: false, seed: 6 },
      { shapeA: [128, 16], shapeB: [128, 16], transposeA: false, transposeB: true, seed: 7 },
      // WebGPU's software vec4 kernel: 16×16 blocks with ragged edges, each transpose, a broadcast batch
      { shapeA: [2, 36, 44], shapeB: [44, 52], transposeA: false, transposeB: false, seed: 8 },
      { shapeA: [44, 36], shapeB: [2, 52, 44], transposeA: true, transposeB: true, seed: 9 },
      { shapeA: [20, 8], shapeB: [20, 40], transposeA: true, transposeB: false, seed: 10 },
      { shapeA: [12, 100], shapeB: [4, 100], transposeA: false, transposeB: true, seed: 11 },
    ];
    for (const c of cases)
      t.equal(await runCase(b, c), null, `a [${c.shapeA}] b [${c.shapeB}] tA=${c.transposeA} tB=${c.transposeB}`);
    const e = tidy(() => matmul(zeros([2, 0]), zeros([0, 3])));
    t.same(Array.from(await e.data()), [0, 0, 0, 0, 0, 0], 'K = 0 gives zeros');
    e.dispose();
  },
);

t.test('matmul: known values, 1-d operands and empty inner axis', async (t) => {
  const a = tensor([
      [1, 2, 3],
      [4, 5, 6],
    ]),
    b = tensor([
      [7, 8],
      [9, 10],
      [11, 12],
    ]);
  t.same(matmul(a, b).toArray(), [
    [58, 64],
    [139, 154],
  ]);
  t.same(matmul(a, a, { transposeB: true }).toArray(), [
    [14, 32],
    [32, 77],
  ]);
  t.same(matmul(a, a, { transposeA: true }).shape, [3, 3]);
  const v = tensor([1, 1, 1]);
  t.same(matmul(a, v).toArray(), [6, 15]);
  t.same(matmul(v, b).toArray(), [27, 30]);
  t.equal(matmul(v, v).item(), 3);
  t.same(matmul(v, v).shape, []);
  const e = matmul(zeros([2, 0]), zeros([0, 3]));
  t.same(
    e.toArray(),
    [
      [0, 0, 0],
      [0, 0, 0],
    ],
    'K = 0 gives zeros',
  );
  t.same(matmul(zeros([0, 4]), zeros([4, 3])).shape, [0, 3]);
});

t.test('matmul: errors name the op and the shapes', async (t) => {
  const err = (f: () => unknown, ...parts: string[]) => {
    try {
      f();
    } catch (e) {
      t.ok(e instanceof OpError, 'OpError');
      const m = (e as Error).message;
      t.ok(m.startsWith('matmul:'), m);
      for (const p of parts) t.ok(m.includes(p), `'${m}' mentions ${p}`);
      return;
    }
    t.fail('did not throw');
  };
  err(() => matmul(zeros([2, 3]), zeros([4, 5])), '[2, 3]', '[4, 5]');
  err(() => matmul(zeros([2, 3]), zeros([2, 5]), { transposeB: true }), '[2, 3]', '[2, 5]');
  err(() => matmul(zeros([2, 2, 3]), zeros([3, 3, 4])), '[2, 2, 3]', '[3, 3, 4]');
  err(() => matmul(zeros([3]), zeros([4])), '[3]', '[4]');
  err(() => matmul(zeros([]), zeros([4])), '[]', '[4]');
  err(() => matmul(zeros([2, 3]), zeros([3, 4], 'float64')), 'float32', 'float64');
  err(() => matmul(zeros([2, 3], 'int32'), zeros([3, 4], 'int32')), 'int32');
});
