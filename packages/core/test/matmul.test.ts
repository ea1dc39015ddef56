import t from 'tap';
import fc from 'fast-check';
import { matmul, memory, OpError, randn, tensor, tidy, zeros, type DType } from '@largo/core';
import { refMatmul } from '@largo/core/reference';
import { compare, oracleCase, toRef, reductionTol, FC_RUNS } from '@largo/test-support';

/** Broadcast-compatible batch shapes: a common batch, each operand keeps a suffix with some axes set to 1. */
const arbBatches = fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 0, maxLength: 3 }).chain((batch) =>
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

const arbCase: fc.Arbitrary<Case> = fc
  .record({
    b: arbBatches,
    M: fc.integer({ min: 1, max: 9 }),
    K: fc.integer({ min: 0, max: 9 }),
    N: fc.integer({ min: 1, max: 9 }),
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

function check(c: Case, dtype: DType = 'float32'): string | null {
  return tidy(() => {
    const a = randn(c.shapeA, { seed: c.seed, dtype }),
      b = randn(c.shapeB, { seed: c.seed + 1, dtype });
    const y = matmul(a, b, { transposeA: c.transposeA, transposeB: c.transposeB });
    const K =
      c.shapeB.length === 1
        ? c.shapeB[0]
        : c.transposeB
          ? c.shapeB[c.shapeB.length - 1]
          : c.shapeB[c.shapeB.length - 2];
    const expected = refMatmul(toRef(a), toRef(b), { transposeA: c.transposeA, transposeB: c.transposeB });
    const tol = dtype === 'float64' ? { rtol: 1e-12, atol: 1e-12 } : reductionTol(K);
    const msg = compare(y, expected, tol);
    return (
      msg &&
      `${msg} (a ${JSON.stringify(c.shapeA)}, b ${JSON.stringify(c.shapeB)}, tA=${c.transposeA}, tB=${c.transposeB})`
    );
  });
}

t.test(oracleCase('matmul'), async (t) => {
  const before = memory().tensors;
  fc.assert(
    fc.property(arbCase, (c) => {
      const msg = check(c);
      if (msg) throw new Error(msg);
    }),
    { numRuns: FC_RUNS * 2 },
  );
  fc.assert(
    fc.property(arbCase, (c) => {
      const msg = check(c, 'float64');
      if (msg) throw new Error(msg);
    }),
    { numRuns: FC_RUNS },
  );
  t.equal(memory().tensors, before, 'no leaked tensors');
});

t.test(oracleCase('matmul') + ' (shapes crossing the cache blocks and register tiles)', async (t) => {
  // M, K, N straddle MC = 64, KC = 256, NC = 256 and the 4×4 tile edges.
  const cases: Case[] = [
    { shapeA: [70, 261], shapeB: [261, 7], transposeA: false, transposeB: false, seed: 1 },
    { shapeA: [261, 70], shapeB: [7, 261], transposeA: true, transposeB: true, seed: 2 },
    { shapeA: [5, 3], shapeB: [3, 259], transposeA: false, transposeB: false, seed: 3 },
    { shapeA: [2, 1, 13, 17], shapeB: [3, 17, 6], transposeA: false, transposeB: false, seed: 4 },
  ];
  for (const c of cases) t.equal(check(c), null, JSON.stringify(c));
});

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
