// Gradient rules of softmax / logSoftmax against central finite differences (float64).
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

for (const op of ['softmax', 'logSoftmax'] as const) {
  verifiedTest(t, gradCase(op), async (t) => {
    const arb = fc
      .array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 3 })
      .chain((shape) => fc.tuple(fc.constant(shape), fc.integer({ min: -shape.length, max: shape.length - 1 }), seed));
    leakFreeProperty(t, arb, ([shape, axis, s]) => {
      const x = randn(shape, { seed: s, dtype: 'float64', std: 2 });
      const f = op === 'softmax' ? softmax : logSoftmax;
      expectOk(
        gradcheck((a) => f(a, axis), [x]),
        `${op} [${shape}] axis ${axis}`,
      );
    });
  });
}
