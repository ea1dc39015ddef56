// Gradient rules of the network ops against central finite differences
// (float64), over random shapes and options; a composed network-like chain;
// and the tape's bookkeeping (no leaked tensors, multi-output ops).
import t, { type Test } from 'tap';
import fc from 'fast-check';
import {
  add, bceWithLogits, cpReconstruct, crossEntropy, dropout, instanceNorm, instanceNormWithStats, logSoftmax, memory, mul, Philox, rand, randn,
  reshape, softDiceLoss, softmax, sum, tensor, tidy, type Tensor,
} from '@largo/core';
import { backward, gradcheck, requireGrad, zeroGrad } from '@largo/autograd';
import { gradCase, FC_RUNS } from '../../core/test/helpers/oracle.js';

const RUNS = FC_RUNS;
const seed = fc.integer({ min: 0, max: 1 << 30 });

function expectOk(r: ReturnType<typeof gradcheck>, what: string): void {
  if (!r.ok) throw new Error(`gradcheck failed for ${what}: worst ${JSON.stringify(r.worst)} (max abs err ${r.maxAbsErr})`);
}

/** Runs a property and checks that it leaves no tensor behind. */
function leakFreeProperty<T>(t: Test, arb: fc.Arbitrary<T>, body: (v: T) => void, numRuns = RUNS): void {
  const before = memory().tensors;
  fc.assert(fc.property(arb, (v) => tidy(() => body(v))), { numRuns });
  t.equal(memory().tensors, before, 'no leaked tensors');
}

for (const op of ['softmax', 'logSoftmax'] as const) {
  // Literal markers, so the op-coverage scan sees both ops.
  t.test(op === 'softmax' ? gradCase('softmax') : gradCase('logSoftmax'), async (t) => {
    const arb = fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 3 }).chain((shape) =>
      fc.tuple(fc.constant(shape), fc.integer({ min: -shape.length, max: shape.length - 1 }), seed));
    leakFreeProperty(t, arb, ([shape, axis, s]) => {
      const x = randn(shape, { seed: s, dtype: 'float64', std: 2 });
      const f = op === 'softmax' ? softmax : logSoftmax;
      expectOk(gradcheck((a) => f(a, axis), [x]), `${op} [${shape}] axis ${axis}`);
    });
  });
}

t.test(gradCase('instanceNorm'), async (t) => {
  const arb = fc.record({
    N: fc.integer({ min: 1, max: 2 }), C: fc.integer({ min: 1, max: 3 }),
    spatial: fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 2 }),
    affine: fc.constantFrom('none', 'weight', 'bias', 'both'),
    eps: fc.constantFrom(1e-5, 0.1),
    seed,
  });
  leakFreeProperty(t, arb, (c) => {
    const shape = [c.N, c.C, ...c.spatial];
    const x = randn(shape, { seed: c.seed, dtype: 'float64', mean: 2, std: 1.5 });
    const hasW = c.affine === 'weight' || c.affine === 'both', hasB = c.affine === 'bias' || c.affine === 'both';
    const ins: Tensor[] = [x];
    if (hasW) ins.push(randn([c.C], { seed: c.seed + 1, dtype: 'float64', mean: 1 }));
    if (hasB) ins.push(randn([c.C], { seed: c.seed + 2, dtype: 'float64' }));
    const fn = (...xs: Tensor[]) => instanceNorm(xs[0], hasW ? xs[1] : null, hasB ? xs[hasW ? 2 : 1] : null, c.eps);
    expectOk(gradcheck(fn, ins, { atol: 1e-5 }), `instanceNorm ${JSON.stringify(c)}`);
  });
});

t.test(gradCase('instanceNorm') + ': through the returned statistics', async (t) => {
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

t.test(gradCase('crossEntropy'), async (t) => {
  const arb = fc.record({
    N: fc.integer({ min: 1, max: 3 }), C: fc.integer({ min: 1, max: 4 }),
    spatial: fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 0, maxLength: 2 }),
    ignore: fc.boolean(), weighted: fc.boolean(), seed,
  });
  leakFreeProperty(t, arb, (c) => {
    const shape = [c.N, c.C, ...c.spatial], tshape = [c.N, ...c.spatial];
    const g = new Philox(c.seed);
    const n = tshape.reduce((a, b) => a * b, 1);
    // At least one element counts, so the loss is defined.
    const labels = Array.from({ length: n }, (_, i) => (c.ignore && i > 0 && g.uniform(1)[0] < 0.3 ? -100 : g.int(c.C)));
    const target = tensor(new Int32Array(labels), tshape);
    const weight = c.weighted ? rand([c.C], { seed: c.seed + 1, dtype: 'float64', low: 0.2, high: 2 }) : null;
    const x = randn(shape, { seed: c.seed + 2, dtype: 'float64', std: 2 });
    expectOk(gradcheck((a) => crossEntropy(a, target, { weight }), [x]), `crossEntropy ${JSON.stringify(c)}`);
  });
});

t.test(gradCase('bceWithLogits'), async (t) => {
  const arb = fc.tuple(fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 0, maxLength: 3 }), seed);
  leakFreeProperty(t, arb, ([shape, s]) => {
    const x = randn(shape, { seed: s, dtype: 'float64', std: 3 });
    const tg = rand(shape, { seed: s + 1, dtype: 'float64' });
    expectOk(gradcheck((a, b) => bceWithLogits(a, b), [x, tg]), `bceWithLogits [${shape}] (logits and target)`);
  });
});

t.test(gradCase('softDiceLoss'), async (t) => {
  const arb = fc.record({
    N: fc.integer({ min: 1, max: 2 }), C: fc.integer({ min: 1, max: 3 }),
    spatial: fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 0, maxLength: 2 }),
    smooth: fc.constantFrom(1e-5, 1), batchDice: fc.boolean(), reduction: fc.constantFrom<'mean' | 'none'>('mean', 'none'), seed,
  });
  leakFreeProperty(t, arb, (c) => {
    const shape = [c.N, c.C, ...c.spatial];
    const p = rand(shape, { seed: c.seed, dtype: 'float64', low: 0.05, high: 1 });
    const tg = rand(shape, { seed: c.seed + 1, dtype: 'float64' });
    const opts = { smooth: c.smooth, batchDice: c.batchDice, reduction: c.reduction };
    expectOk(gradcheck((a, b) => softDiceLoss(a, b, opts), [p, tg]), `softDiceLoss ${JSON.stringify(c)}`);
  });
});

t.test(gradCase('cpReconstruct'), async (t) => {
  const arb = fc.record({
    R: fc.integer({ min: 1, max: 4 }), O: fc.integer({ min: 1, max: 5 }), I: fc.integer({ min: 1, max: 3 }),
    S: fc.constantFrom(1, 2, 3), seed,
  });
  leakFreeProperty(t, arb, (c) => {
    const ins = [
      randn([c.R], { seed: c.seed, dtype: 'float64', mean: 1 }),
      randn([c.O, c.R], { seed: c.seed + 1, dtype: 'float64' }),
      randn([c.I, c.R], { seed: c.seed + 2, dtype: 'float64' }),
      randn([c.S, c.R], { seed: c.seed + 3, dtype: 'float64' }),
    ];
    expectOk(gradcheck((w, a, b, k) => cpReconstruct(w, a, b, k), ins), `cpReconstruct ${JSON.stringify(c)}`);
  });
});

t.test(gradCase('dropout'), async (t) => {
  const arb = fc.tuple(fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 0, maxLength: 3 }), fc.constantFrom(0, 0.2, 0.5, 1), fc.boolean(), seed);
  leakFreeProperty(t, arb, ([shape, p, training, s]) => {
    const x = randn(shape, { seed: s, dtype: 'float64' });
    // A fresh generator in the same state on every evaluation: the same mask each time.
    expectOk(gradcheck((a) => dropout(a, p, { generator: new Philox(s), training }), [x]), `dropout p=${p} [${shape}]`);
  });
});

t.test(gradCase('cpReconstruct') + ': a LARGO-like chain (CP weights → normalized features → softmax → Dice + CE)', async (t) => {
  const before = memory().tensors;
  tidy(() => {
    const w = randn([3], { seed: 1, dtype: 'float64', mean: 1 });
    const a = randn([2, 3], { seed: 2, dtype: 'float64' });
    const b = randn([4, 3], { seed: 3, dtype: 'float64' });
    const k = randn([1, 3], { seed: 4, dtype: 'float64' });
    const x = randn([2, 4, 5], { seed: 5, dtype: 'float64' });
    const gamma = randn([2], { seed: 6, dtype: 'float64', mean: 1 });
    const labels = tensor(new Int32Array([0, 1, 1, 0, 1, 0, 0, 1, 1, 1]), [2, 5]);
    const onehot = tensor(Float64Array.from([1, 0, 0, 1, 0, 0, 1, 1, 0, 0, 0, 1, 1, 0, 1, 1, 0, 0, 1, 1]), [2, 2, 5], 'float64');
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
    t.same(leaves.map((p) => p.grad?.shape), leaves.map((p) => p.shape), 'every leaf got a gradient of its shape');
    t.ok(leaves.every((p) => Array.from(p.grad!.dataSync()).every(Number.isFinite)), 'finite gradients');
    zeroGrad(leaves);
    leaves.forEach((p) => p.dispose());
  });
  t.equal(memory().tensors, before, 'the graph, saved statistics and gradients were all released');
});
