// Gradient of dropout (a constant Philox mask) against central finite differences.
import t, { type Test } from 'tap';
import fc from 'fast-check';
import {
  add,
  bceWithLogits,
  cpReconstruct,
  crossEntropy,
  dropout,
  instanceNorm,
  instanceNormWithStats,
  logSoftmax,
  memory,
  mul,
  Philox,
  rand,
  randn,
  reshape,
  softDiceLoss,
  softmax,
  sum,
  tensor,
  tidy,
  type Tensor,
} from '@largo/core';
import { backward, gradcheck, requireGrad, zeroGrad } from '@largo/autograd';
import { gradCase, verifiedTest } from '@largo/test-support';
import { expectOk, leakFreeProperty, RUNS, seed } from './helpers/grad-props.js';

verifiedTest(t, gradCase('dropout'), async (t) => {
  const arb = fc.tuple(
    fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 0, maxLength: 3 }),
    fc.constantFrom(0, 0.2, 0.5, 1),
    fc.boolean(),
    seed,
  );
  leakFreeProperty(t, arb, ([shape, p, training, s]) => {
    const x = randn(shape, { seed: s, dtype: 'float64' });
    // A fresh generator in the same state on every evaluation: the same mask each time.
    expectOk(
      gradcheck((a) => dropout(a, p, { generator: new Philox(s), training }), [x]),
      `dropout p=${p} [${shape}]`,
    );
  });
});
