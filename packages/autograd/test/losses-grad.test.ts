// Gradient rules of the losses against central finite differences (float64).
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

verifiedTest(t, gradCase('crossEntropy'), async (t) => {
  const arb = fc.record({
    N: fc.integer({ min: 1, max: 3 }),
    C: fc.integer({ min: 1, max: 4 }),
    spatial: fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 0, maxLength: 2 }),
    ignore: fc.boolean(),
    weighted: fc.boolean(),
    seed,
  });
  leakFreeProperty(t, arb, (c) => {
    const shape = [c.N, c.C, ...c.spatial],
      tshape = [c.N, ...c.spatial];
    const g = new Philox(c.seed);
    const n = tshape.reduce((a, b) => a * b, 1);
    // At least one element counts, so the loss is defined.
    const labels = Array.from({ length: n }, (_, i) =>
      c.ignore && i > 0 && g.uniform(1)[0] < 0.3 ? -100 : g.int(c.C),
    );
    const target = tensor(new Int32Array(labels), tshape);
    const weight = c.weighted ? rand([c.C], { seed: c.seed + 1, dtype: 'float64', low: 0.2, high: 2 }) : null;
    const x = randn(shape, { seed: c.seed + 2, dtype: 'float64', std: 2 });
    expectOk(
      gradcheck((a) => crossEntropy(a, target, { weight }), [x]),
      `crossEntropy ${JSON.stringify(c)}`,
    );
  });
});

verifiedTest(t, gradCase('bceWithLogits'), async (t) => {
  const arb = fc.tuple(fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 0, maxLength: 3 }), seed);
  leakFreeProperty(t, arb, ([shape, s]) => {
    const x = randn(shape, { seed: s, dtype: 'float64', std: 3 });
    const tg = rand(shape, { seed: s + 1, dtype: 'float64' });
    expectOk(
      gradcheck((a, b) => bceWithLogits(a, b), [x, tg]),
      `bceWithLogits [${shape}] (logits and target)`,
    );
  });
});

verifiedTest(t, gradCase('softDiceLoss'), async (t) => {
  const arb = fc.record({
    N: fc.integer({ min: 1, max: 2 }),
    C: fc.integer({ min: 1, max: 3 }),
    spatial: fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 0, maxLength: 2 }),
    smooth: fc.constantFrom(1e-5, 1),
    batchDice: fc.boolean(),
    reduction: fc.constantFrom<'mean' | 'none'>('mean', 'none'),
    seed,
  });
  leakFreeProperty(t, arb, (c) => {
    const shape = [c.N, c.C, ...c.spatial];
    const p = rand(shape, { seed: c.seed, dtype: 'float64', low: 0.05, high: 1 });
    const tg = rand(shape, { seed: c.seed + 1, dtype: 'float64' });
    const opts = { smooth: c.smooth, batchDice: c.batchDice, reduction: c.reduction };
    expectOk(
      gradcheck((a, b) => softDiceLoss(a, b, opts), [p, tg]),
      `softDiceLoss ${JSON.stringify(c)}`,
    );
  });
});
