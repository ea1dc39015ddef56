import t from 'tap';
import { add, memory, randn, sum, tidy, type Tensor } from '@largo/core';
import { backward, noGrad, zeroGrad } from '@largo/autograd';
import {
  METHODS,
  buildSegmentationFamily,
  deepSupervisionWeights,
  unetPlan,
  unetFeatures,
  fullSubset,
  paramCount,
  CPConv3d,
  SubsetStem,
  type Method,
} from '../src/index.js';

const small = { modalities: 2, classes: 3, baseFeatures: 4, maxFeatures: 8, depth: 3 };

t.test('topology: features, plan, deep-supervision weights', async (t) => {
  t.same(unetFeatures({ modalities: 4, classes: 3 }), [32, 64, 128, 256, 320]);
  t.same(
    unetFeatures({ modalities: 4, classes: 3, baseFeatures: 16, depth: 6, maxFeatures: 320 }),
    [16, 32, 64, 128, 256, 320],
  );
  const plan = unetPlan({ ...small, deepSupervision: true });
  const convs = plan.filter((l) => l.op !== 'norm').map((l) => `${l.name}:${l.in}->${l.out}/s${l.stride}`);
  t.same(convs, [
    'enc.0.conv1:2->4/s1',
    'enc.0.conv2:4->4/s1',
    'enc.1.conv1:4->8/s2',
    'enc.1.conv2:8->8/s1',
    'enc.2.conv1:8->8/s2',
    'enc.2.conv2:8->8/s1',
    'dec.1.up:8->8/s2',
    'dec.1.conv1:16->8/s1',
    'dec.1.conv2:8->8/s1',
    'dec.1.head:8->3/s1',
    'dec.0.up:8->4/s2',
    'dec.0.conv1:8->4/s1',
    'dec.0.conv2:4->4/s1',
    'dec.0.head:4->3/s1',
  ]);
  t.equal(plan.filter((l) => l.role === 'stem').length, 1);
  t.same(deepSupervisionWeights(4), [8 / 15, 4 / 15, 2 / 15, 1 / 15]);
  t.same(deepSupervisionWeights(1), [1]);
});

t.test('forward shapes for every method (deep supervision on and off)', async (t) => {
  const x = randn([2, 2, 8, 8, 4], { seed: 1 });
  for (const method of METHODS) {
    for (const ds of [true, false]) {
      const net = buildSegmentationFamily({ method, ...small, deepSupervision: ds, seed: 2 });
      t.equal(net.numSubsets, 3);
      for (const k of [0, 1, fullSubset(2)]) {
        const outs = net.forward(x, k);
        t.same(
          outs.map((o) => o.shape),
          ds
            ? [
                [2, 3, 8, 8, 4],
                [2, 3, 4, 4, 2],
              ]
            : [[2, 3, 8, 8, 4]],
          `${method} ds=${ds} k=${k}`,
        );
        outs.forEach((o) => o.dispose());
      }
      t.equal(net.numOutputs, ds ? 2 : 1);
      net.dispose();
    }
  }
  x.dispose();
});

t.test('per-subset vs shared methods', async (t) => {
  const x = randn([1, 2, 4, 4, 4], { seed: 3 });
  const run = (method: Method, k: number): Float32Array => {
    const net = buildSegmentationFamily({ method, ...small, depth: 2, seed: 4 });
    const y = net.forward(x, k)[0].dataSync() as Float32Array;
    net.dispose();
    return y;
  };
  t.same(run('dropout', 0), run('dropout', 2), 'dropout baseline ignores the subset');
  t.same(run('full-only', 0), run('full-only', 1));
  t.notSame(run('largo', 0), run('largo', 2), 'LARGO: subset-specific stem');
  t.same(run('largo', 1), run('largo', 1), 'deterministic for a seed');
  const net = buildSegmentationFamily({ method: 'largo', ...small, seed: 0 });
  t.ok(net.layer('enc.0.conv1') instanceof SubsetStem);
  t.ok(net.layer('enc.1.conv1') instanceof CPConv3d);
  t.throws(() => net.forward(randn([1, 2, 6, 6, 6], { seed: 1 }), 0), /divisible by 2\^\(depth−1\) = 4/);
  t.throws(() => net.forward(randn([1, 3, 4, 4, 4], { seed: 1 }), 0), /\[N, 2, D, H, W\]/);
  t.throws(() => net.forward(x, 3), /subset index/);
  net.dispose();
  x.dispose();
});

t.test("one training step: gradients reach the subset's stem copy and every inner factor", async (t) => {
  const net = buildSegmentationFamily({ method: 'largo', ...small, seed: 5 });
  // 8³ so the bottleneck is 2³: instance norm over a single voxel would zero every gradient before it.
  const x = randn([1, 2, 8, 8, 8], { seed: 6 });
  const loss = tidy(() => {
    const outs = net.forward(x, 1);
    return outs.map((o) => sum(o)).reduce((a: Tensor, b) => add(a, b));
  });
  backward(loss);
  const withGrad = new Set(
    net
      .namedParameters()
      .filter(([, p]) => p.grad && p.grad.dataSync().some((v) => v !== 0))
      .map(([n]) => n),
  );
  t.ok(withGrad.has('enc.0.conv1.1.weight'), 'stem copy 1');
  t.notOk(withGrad.has('enc.0.conv1.0.weight'), 'stem copy 0 unused');
  for (const n of [
    'enc.1.conv1.aOut',
    'enc.2.conv2.aKernel',
    'dec.0.up.aIn',
    'dec.1.conv1.aModel',
    'dec.0.head.weight',
    'enc.1.norm1.weight',
  ]) {
    t.ok(withGrad.has(n), n);
  }
  zeroGrad(net.parameters());
  loss.dispose();
  x.dispose();
  net.dispose();
});

t.test('cached inference = training-mode forward, costs no leaks', async (t) => {
  const net = buildSegmentationFamily({ method: 'largo', ...small, seed: 7 });
  const x = randn([1, 2, 4, 4, 4], { seed: 8 });
  const ref = noGrad(() => net.forward(x, 2).map((o) => o.dataSync()));
  net.train(false);
  const before = memory().tensors;
  net.cacheSubset(2);
  const layer = net.layer('enc.1.conv1') as CPConv3d;
  t.ok(layer.isCached(2));
  const outs = noGrad(() => net.forward(x, 2));
  outs.forEach((o, i) => t.same(o.dataSync(), ref[i], `output ${i}`));
  outs.forEach((o) => o.dispose());
  net.train(true);
  t.notOk(layer.isCached(2));
  t.equal(memory().tensors, before, 'caches released');
  t.equal(
    paramCount(net),
    net.parameters().reduce((a, p) => a + p.size, 0),
  );
  x.dispose();
  net.dispose();
});
