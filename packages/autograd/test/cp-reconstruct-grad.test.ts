// Gradient rule of the CP reconstruction against central finite differences
// (float64), and a composed LARGO-like chain through the tape (no leaked tensors).
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

verifiedTest(t, gradCase('cpReconstruct'), async (t) => {
  const arb = fc.record({
    R: fc.integer({ min: 1, max: 4 }),
    O: fc.integer({ min: 1, max: 5 }),
    I: fc.integer({ min: 1, max: 3 }),
    S: fc.constantFrom(1, 2, 3),
    seed,
  });
  leakFreeProperty(t, arb, (c) => {
    const ins = [
      randn([c.R], { seed: c.seed, dtype: 'float64', mean: 1 }),
      randn([c.O, c.R], { seed: c.seed + 1, dtype: 'float64' }),
      randn([c.I, c.R], { seed: c.seed + 2, dtype: 'float64' }),
      randn([c.S, c.R], { seed: c.seed + 3, dtype: 'float64' }),
    ];
    expectOk(
      gradcheck((w, a, b, k) => cpReconstruct(w, a, b, k), ins),
      `cpReconstruct ${JSON.stringify(c)}`,
    );
  });
});

verifiedTest(
  t,
  gradCase('cpReconstruct') + ': a LARGO-like chain (CP weights → normalized features → softmax → Dice + CE)',
  async (t) => {
    const before = memory().tensors;
    tidy(() => {
      const w = randn([3], { seed: 1, dtype: 'float64', mean: 1 });
      const a = randn([2, 3], { seed: 2, dtype: 'float64' });
      const b = randn([4, 3], { seed: 3, dtype: 'float64' });
      const k = randn([1, 3], { seed: 4, dtype: 'float64' });
      const x = randn([2, 4, 5], { seed: 5, dtype: 'float64' });
      const gamma = randn([2], { seed: 6, dtype: 'float64', mean: 1 });
      const labels = tensor(new Int32Array([0, 1, 1, 0, 1, 0, 0, 1, 1, 1]), [2, 5]);
      const onehot = tensor(
        Float64Array.from([1, 0, 0, 1, 0, 0, 1, 1, 0, 0, 0, 1, 1, 0, 1, 1, 0, 0, 1, 1]),
        [2, 2, 5],
        'float64',
      );
      // 1×1 "conv" with the reconstructed weight W [2, 4, 1]: y[n, o, p] = Σ_i W[o, i]·x[n, i, p].
      const net = (w: Tensor, a: Tensor, b: Tensor, k: Tensor, x: Tensor, gamma: Tensor) => {
        const W = reshape(cpReconstruct(w, a, b, k), [1, 2, 4, 1]);
        const y = sum(mul(W, reshape(x, [2, 1, 4, 5])), 2);
        const z = instanceNorm(y, gamma, null);
        const d = dropout(z, 0.25, { generator: new Philox(9) });
        return add(softDiceLoss(softmax(d, 1), onehot), crossEntropy(logSoftmax(d, 1), labels));
      };
      expectOk(gradcheck(net, [w, a, b, k, x, gamma], { atol: 1e-5 }), 'composed chain');
      // One real backward: gradients land on leaves with their shapes, and are released by zeroGrad.
      const leaves = [w, a, b, k, x, gamma].map((p) => requireGrad(p));
      backward(net(...(leaves as [Tensor, Tensor, Tensor, Tensor, Tensor, Tensor])));
      t.same(
        leaves.map((p) => p.grad?.shape),
        leaves.map((p) => p.shape),
        'every leaf got a gradient of its shape',
      );
      t.ok(
        leaves.every((p) => Array.from(p.grad!.dataSync()).every(Number.isFinite)),
        'finite gradients',
      );
      zeroGrad(leaves);
      leaves.forEach((p) => p.dispose());
    });
    t.equal(memory().tensors, before, 'the graph, saved statistics and gradients were all released');
  },
);
