// A 200-step training loop of a small 3-D conv net (the net of
// training-determinism.test.ts) keeps the live counts flat: memory() —
// tensors, storages, backend buffers — is identical after step 10 and after
// step 200, evaluation passes (with and without noGrad) leave nothing
// behind, and disposing the parameters and optimizer returns to the baseline.
import t from 'tap';
import * as C from '@largo/core';
import { memory, Philox, tensor, tidy, type MemoryInfo, type Tensor } from '@largo/core';
import { Adam, SGD, backward, clipGradNorm, cosineLr, noGrad, requireGrad, type Optimizer } from '@largo/autograd';

const STEPS = 200;
const N = 2, CIN = 1, F = 4, K = 2, S = 4;

function kaiming(shape: number[], g: Philox): Tensor {
  const fanIn = shape.slice(1).reduce((a, b) => a * b, 1);
  return requireGrad(C.randn(shape, { generator: g, std: Math.sqrt(2 / fanIn) }));
}

function build(seed: number) {
  const g = new Philox(seed);
  const params: [string, Tensor][] = [
    ['conv1.w', kaiming([F, CIN, 3, 3, 3], g)], ['conv1.b', requireGrad(C.zeros([F]))],
    ['norm.w', requireGrad(C.ones([F]))], ['norm.b', requireGrad(C.zeros([F]))],
    ['down.w', kaiming([F, F, 3, 3, 3], g)],
    ['up.w', kaiming([F, F, 2, 2, 2], g)],
    ['head.w', kaiming([K, 2 * F, 1, 1, 1], g)], ['head.b', requireGrad(C.zeros([K]))],
  ];
  const p = Object.fromEntries(params) as Record<string, Tensor>;
  const forward = (x: Tensor): Tensor => {
    const h = C.leakyRelu(C.instanceNorm(C.conv3d(x, p['conv1.w'], p['conv1.b'], { padding: 1 }), p['norm.w'], p['norm.b']), 0.01);
    const d = C.leakyRelu(C.conv3d(h, p['down.w'], null, { stride: 2, padding: 1 }), 0.01);
    const u = C.convTranspose3d(d, p['up.w'], null, { stride: 2 });
    return C.conv3d(C.concat([h, u], 1), p['head.w'], p['head.b']);
  };
  return { params, forward, data: new Philox(seed + 1) };
}

function batch(g: Philox): { x: Tensor; y: Tensor } {
  const x = tensor(Float32Array.from(g.normal(N * CIN * S * S * S)), [N, CIN, S, S, S]);
  const xv = x.dataSync();
  const lab = new Int32Array(N * S * S * S);
  for (let i = 0; i < lab.length; i++) lab[i] = xv[i] > 0 ? 1 : 0;
  return { x, y: tensor(lab, [N, S, S, S]) };
}

function loop(t: { same(a: unknown, b: unknown, m: string): boolean; ok(v: unknown, m: string): boolean }, name: string,
  makeOpt: (params: [string, Tensor][]) => Optimizer): void {
  const base = memory();
  const net = build(3);
  const tensors = net.params.map((q) => q[1]);
  const opt = makeOpt(net.params);
  let at10: MemoryInfo | null = null;
  const counts: string[] = [];
  for (let s = 1; s <= STEPS; s++) {
    opt.setLr(cosineLr(0.02, s - 1, STEPS, 0, 10));
    opt.zeroGrad();
    tidy(() => {
      const { x, y } = batch(net.data);
      // Dice + cross-entropy, as LARGO trains.
      const logits = net.forward(x);
      const fg = C.cast(C.reshape(y, [N, 1, S, S, S]), 'float32');
      const onehot = C.concat([C.sub(1, fg), fg], 1);
      backward(C.add(C.crossEntropy(logits, y), C.softDiceLoss(C.softmax(logits, 1), onehot)));
    });
    clipGradNorm(tensors, 10);
    opt.step();
    if (s % 25 === 0) {
      // Evaluation: a forward pass that is never backpropagated, and one under noGrad.
      tidy(() => { C.sum(net.forward(batch(net.data).x)).item(); });
      noGrad(() => tidy(() => { C.sum(net.forward(batch(net.data).x)).item(); }));
    }
    const m = memory();
    if (s === 10) at10 = m;
    if (s >= 10) counts.push(JSON.stringify(m));
  }
  t.same(memory(), at10, `${name}: memory() after step ${STEPS} equals memory() after step 10`);
  t.same(new Set(counts).size, 1, `${name}: flat at every step from 10 to ${STEPS}`);
  t.ok(at10!.tensors > base.tensors, `${name}: parameters, grads and optimizer state are live during training (${JSON.stringify(at10)})`);
  opt.zeroGrad();
  opt.dispose();
  tensors.forEach((q) => q.dispose());
  t.same(memory(), base, `${name}: back to the baseline after disposing parameters and optimizer`);
}

t.test('SGD + Nesterov: live counts stay flat over 200 steps', async (t) => {
  loop(t, 'SGD', (params) => new SGD(params, { lr: 0.02, momentum: 0.99, nesterov: true, weightDecay: 3e-5 }));
});

t.test('Adam (amsgrad): live counts stay flat over 200 steps', async (t) => {
  loop(t, 'Adam', (params) => new Adam(params, { lr: 1e-3, amsgrad: true, weightDecay: 1e-4 }));
});
