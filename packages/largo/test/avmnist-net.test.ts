import t from 'tap';
import { memory, randn, sum, tidy } from '@largo/core';
import { backward, noGrad, zeroGrad } from '@largo/autograd';
import { AvMnistNet, buildAvMnistNet, CPLinear, CPConv3d, paramReport, type Method } from '../src/index.js';

const N = 3;
const image = randn([N, 1, 28, 28], { seed: 1 });
const audio = randn([N, 1, 20, 20], { seed: 2 });

t.test('logits [N, 10] for every method and subset', async (t) => {
  for (const method of ['largo', 'largo-tucker', 'dedicated', 'dropout', 'full-only'] as Method[]) {
    const net = buildAvMnistNet({ method, seed: 0 });
    net.train(false);
    for (const [k, x] of [
      [0, { image }],
      [1, { audio }],
      [2, { image, audio }],
    ] as const) {
      const y = net.forward(x, k);
      t.same(y.shape, [N, 10], `${method} subset ${k}`);
      t.ok(y.dataSync().every(Number.isFinite));
      y.dispose();
    }
    net.dispose();
  }
});

t.test('structure: factorized encoders serve the subsets with their modality', async (t) => {
  const net = new AvMnistNet({ method: 'largo', seed: 0 });
  const conv0 = net.imageEncoder.convs[0] as CPConv3d;
  t.ok(conv0 instanceof CPConv3d);
  t.equal(conv0.numSubsets, 2, 'image encoder: subsets {image}, {image, audio}');
  t.same(conv0.kernelSize, [1, 3, 3]);
  t.ok(net.blocks[0].lin1 instanceof CPLinear);
  t.equal((net.blocks[0].lin1 as CPLinear).numSubsets, 3);
  t.equal(net.blocks.length, 3);
  const rep = paramReport(net);
  const names = rep.rows.map((r) => r.name);
  for (const n of [
    'image.conv0.aModel',
    'audio.fc.aOut',
    'proj.0.weight',
    'proj.2.weight',
    'fusion.2.lin2.aIn',
    'fusion.0.ln1.weight',
    'norm.bias',
    'head1.weight',
    'head2.bias',
  ]) {
    t.ok(names.includes(n), n);
  }
  t.same(
    rep.rows.find((r) => r.name === 'proj.2.weight')!.shape,
    [64, 480],
    'projection of both modalities: 160 + 320',
  );
  t.same(rep.rows.find((r) => r.name === 'proj.1.weight')!.shape, [64, 320]);
  t.same(rep.rows.find((r) => r.name === 'fusion.0.ln1.weight')!.shape, [3, 64], 'per-subset LN affine');
  t.same(rep.rows.find((r) => r.name === 'head2.weight')!.shape, [3, 10, 64]);
  t.same(rep.rows.find((r) => r.name === 'image.fc.aOut')!.shape[0], 160);
  t.same(rep.rows.find((r) => r.name === 'audio.fc.aOut')!.shape[0], 320);
  net.dispose();

  const shared = new AvMnistNet({ method: 'dropout', seed: 0 });
  const srep = paramReport(shared);
  t.same(srep.rows.find((r) => r.name === 'proj.weight')!.shape, [64, 480]);
  t.same(srep.rows.find((r) => r.name === 'fusion.0.ln1.weight')!.shape, [64]);
  shared.dispose();
});

t.test("missing inputs: per-subset methods need the subset's modalities; shared ones zero-fill", async (t) => {
  const net = buildAvMnistNet({ method: 'largo', seed: 0 });
  t.throws(() => net.forward({ image }, 2), /includes audio/);
  t.throws(() => net.forward({}, 0), /at least one/);
  t.throws(() => net.forward({ image }, 3), /subset index/);
  net.dispose();
  const d = buildAvMnistNet({ method: 'dropout', seed: 0 });
  d.train(false);
  const a = d.forward({ image }, 0).dataSync();
  const b = d.forward({ image, audio }, 0).dataSync();
  t.same(a, b, 'dropout baseline: the missing modality is zeros whatever was passed');
  d.dispose();
});

t.test('dropout: active in training, off in eval; gradients follow the subset', async (t) => {
  const net = buildAvMnistNet({ method: 'largo', seed: 3, dropout: 0.5 });
  const y1 = net.forward({ image, audio }, 2).dataSync();
  const y2 = net.forward({ image, audio }, 2).dataSync();
  t.notSame(y1, y2, 'training mode draws new masks');
  net.train(false);
  const before = memory().tensors;
  const e1 = noGrad(() => net.forward({ image, audio }, 2));
  const e2 = noGrad(() => net.forward({ image, audio }, 2));
  t.same(e1.dataSync(), e2.dataSync(), 'eval mode is deterministic');
  e1.dispose();
  e2.dispose();
  net.train(true);
  t.equal(memory().tensors, before, 'no leak (caches released by train(true))');
  const loss = tidy(() => sum(net.forward({ image }, 0)));
  backward(loss);
  const g = new Map(
    net.namedParameters().map(([n, p]) => [n, p.grad ? p.grad.dataSync().some((v) => v !== 0) : false]),
  );
  t.ok(g.get('image.conv0.aOut'), 'image encoder trained');
  t.notOk(g.get('audio.conv0.aOut'), 'audio encoder untouched');
  t.ok(g.get('proj.0.weight') && !g.get('proj.2.weight'), "only subset 0's projection");
  t.ok(g.get('fusion.1.lin1.aModel'));
  zeroGrad(net.parameters());
  loss.dispose();
  net.dispose();
});

t.test("cacheSubset(k) maps subsets to the encoders' own numbering; cached logits equal uncached ones", async (t) => {
  const { buildAvMnistNet } = await import('../src/nets/avmnist.js');
  const core = await import('@largo/core');
  const { noGrad } = await import('@largo/autograd');
  for (const method of ['largo', 'dedicated', 'dropout'] as const) {
    const net = buildAvMnistNet({ method, seed: 3 });
    net.train(false);
    const image = core.randn([2, 1, 28, 28], { seed: 1 }),
      audio = core.randn([2, 1, 20, 20], { seed: 2 });
    for (let k = 0; k < 3; k++) {
      const input = { image: k === 1 ? undefined : image, audio: k === 0 ? undefined : audio };
      const plain = noGrad(() => core.tidy(() => net.forward(input, k).dataSync()));
      t.doesNotThrow(() => noGrad(() => net.cacheSubset(k)), `${method}: cacheSubset(${k})`);
      const cached = noGrad(() => core.tidy(() => net.forward(input, k).dataSync()));
      t.same(Array.from(cached), Array.from(plain), `${method}: subset ${k} cached = uncached`);
      net.clearCache();
    }
    image.dispose();
    audio.dispose();
    net.dispose();
  }
});
