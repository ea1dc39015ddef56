// A 200-step training loop of a small 3-D conv net (the net of
// helpers/small-conv-net.ts) keeps the live counts flat: memory() —
// tensors, storages, backend buffers — is identical after step 10 and after
// step 200, evaluation passes (with and without noGrad) leave nothing
// behind, and disposing the parameters and optimizer returns to the baseline.
import t from 'tap';
import * as C from '@largo/core';
import { memory, Philox, tensor, tidy, type MemoryInfo, type Tensor } from '@largo/core';
import { Adam, SGD, backward, clipGradNorm, cosineLr, noGrad, type Optimizer } from '@largo/autograd';
import { build, N, CIN, K, S } from './helpers/small-conv-net.js';

const STEPS = 200;
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
