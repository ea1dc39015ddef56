import t from 'tap';
import fc from 'fast-check';
import { matmul, memory, randn, tidy } from '@largo/core';
import { gradcheck } from '@largo/autograd';
import { gradCase, FC_RUNS, verifiedTest } from '@largo/test-support';
import { expectOk } from './helpers/grad-props.js';

const arbCase = fc.record({
  batch: fc.array(fc.integer({ min: 1, max: 2 }), { minLength: 0, maxLength: 2 }),
  bcastA: fc.boolean(),
  bcastB: fc.boolean(),
  M: fc.integer({ min: 1, max: 3 }),
  K: fc.integer({ min: 1, max: 3 }),
  N: fc.integer({ min: 1, max: 3 }),
  transposeA: fc.boolean(),
  transposeB: fc.boolean(),
  vec: fc.constantFrom(0, 0, 1, 2, 3),
  seed: fc.integer({ min: 0, max: 1 << 30 }),
});

verifiedTest(t, gradCase('matmul'), async (t) => {
  const before = memory().tensors;
  fc.assert(
    fc.property(arbCase, (c) => {
      // Broadcasting: a drops its leading batch axis, b sets its batch axes to 1.
      const batchA = c.bcastA ? c.batch.slice(1) : c.batch;
      const batchB = c.bcastB ? c.batch.map(() => 1) : c.batch;
      const shapeA = c.vec & 1 ? [c.K] : [...batchA, ...(c.transposeA ? [c.K, c.M] : [c.M, c.K])];
      const shapeB = c.vec & 2 ? [c.K] : [...batchB, ...(c.transposeB ? [c.N, c.K] : [c.K, c.N])];
      const r = tidy(() => {
        const a = randn(shapeA, { seed: c.seed, dtype: 'float64' }),
          b = randn(shapeB, { seed: c.seed + 7, dtype: 'float64' });
        return gradcheck((x, y) => matmul(x, y, { transposeA: c.transposeA, transposeB: c.transposeB }), [a, b]);
      });
      expectOk(r, `a ${JSON.stringify(shapeA)} b ${JSON.stringify(shapeB)} ${JSON.stringify(c)}`);
    }),
    { numRuns: FC_RUNS },
  );
  t.equal(memory().tensors, before, 'no leaked tensors');
});
