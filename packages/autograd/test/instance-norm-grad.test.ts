// Gradient rule of instance norm against central finite differences (float64),
// over random shapes and affine options, and through the returned statistics.
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

verifiedTest(t, gradCase('instanceNorm'), async (t) => {
  const arb = fc.record({
    N: fc.integer({ min: 1, max: 2 }),
    C: fc.integer({ min: 1, max: 3 }),
    spatial: fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 2 }),
    affine: fc.constantFrom('none', 'weight', 'bias', 'both'),
    eps: fc.constantFrom(1e-5, 0.1),
    seed,
  });
  leakFreeProperty(t, arb, (c) => {
    const shape = [c.N, c.C, ...c.spatial];
    const x = randn(shape, { seed: c.seed, dtype: 'float64', mean: 2, std: 1.5 });
    const hasW = c.affine === 'weight' || c.affine === 'both',
      hasB = c.affine === 'bias' || c.affine === 'both';
    const ins: Tensor[] = [x];
    if (hasW) ins.push(randn([c.C], { seed: c.seed + 1, dtype: 'float64', mean: 1 }));
    if (hasB) ins.push(randn([c.C], { seed: c.seed + 2, dtype: 'float64' }));
    const fn = (...xs: Tensor[]) => instanceNorm(xs[0], hasW ? xs[1] : null, hasB ? xs[hasW ? 2 : 1] : null, c.eps);
    expectOk(gradcheck(fn, ins, { atol: 1e-5 }), `instanceNorm ${JSON.stringify(c)}`);
  });
});

verifiedTest(t, gradCase('instanceNorm') + ': through the returned statistics', async (t) => {
  leakFreeProperty(t, fc.tuple(fc.integer({ min: 1, max: 5 }), fc.boolean(), seed), ([S, affine, s]) => {
    const x = randn([2, 2, S], { seed: s, dtype: 'float64', mean: -1, std: 2 });
    const w = randn([2], { seed: s + 1, dtype: 'float64', mean: 1 });
    const fn = (a: Tensor, b: Tensor) => {
      const r = instanceNormWithStats(a, affine ? b : null, null, 1e-3);
      return [r.y, r.mean, r.invstd];
    };
    expectOk(gradcheck(fn, [x, w], { atol: 1e-5 }), `instanceNormWithStats S=${S}`);
  });
});
