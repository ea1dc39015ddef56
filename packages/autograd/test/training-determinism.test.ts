// A 200-step training loop of a small 3-D conv net (conv3d → instance norm
// → leaky ReLU → strided conv3d → transposed conv3d → 1×1×1 head,
// cross-entropy, SGD with Nesterov momentum and a poly schedule, gradient
// clipping) is bitwise repeatable for a seed, and another seed changes it.
import t from 'tap';
import * as C from '@largo/core';
import { Philox, tensor, tidy, type Tensor } from '@largo/core';
import { SGD, backward, clipGradNorm, polyLr } from '@largo/autograd';
import { build, N, CIN, K, S } from './helpers/small-conv-net.js';

const STEPS = 200;
/** A batch: noisy volumes whose label is "x above its smoothed level" (learnable by the net). */
function batch(g: Philox): { x: Tensor; y: Tensor } {
  const n = N * CIN * S * S * S;
  const x = tensor(Float32Array.from(g.normal(n)), [N, CIN, S, S, S]);
  const lab = new Int32Array(N * S * S * S);
  const xv = x.dataSync();
  for (let i = 0; i < lab.length; i++) lab[i] = xv[i] + 0.3 * xv[(i + 1) % lab.length] > 0 ? 1 : 0;
  return { x, y: tensor(lab, [N, S, S, S]) };
}

export function train(seed: number, steps = STEPS): { losses: Float32Array; params: Float32Array[] } {
  const net = build(seed);
  const tensors = net.params.map((q) => q[1]);
  const opt = new SGD(net.params, { lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 3e-5 });
  const losses = new Float32Array(steps);
  for (let s = 0; s < steps; s++) {
    opt.setLr(polyLr(0.05, s, steps));
    opt.zeroGrad();
    losses[s] = tidy(() => {
      const { x, y } = batch(net.data);
      const loss = C.crossEntropy(net.forward(x), y);
      backward(loss);
      return loss.item();
    });
    clipGradNorm(tensors, 5);
    opt.step();
  }
  const params = tensors.map((q) => Float32Array.from(q.dataSync()));
  opt.dispose();
  tensors.forEach((q) => q.dispose());
  return { losses, params };
}

const bits = (a: Float32Array) => new Uint32Array(a.buffer.slice(0));

t.test('same seed: bitwise identical loss trajectory and weights; another seed differs', async (t) => {
  const t0 = Date.now();
  const a = train(7),
    b = train(7);
  t.comment(`two runs of ${STEPS} steps in ${Date.now() - t0} ms`);
  t.ok(a.losses.every(Number.isFinite), 'losses are finite');
  const firstDiff = bits(a.losses).findIndex((v, i) => v !== bits(b.losses)[i]);
  t.equal(firstDiff, -1, 'loss arrays identical bit for bit');
  a.params.forEach((p, i) => t.same(bits(p), bits(b.params[i]), `parameter ${i} identical bit for bit`));
  // It learns: the mean of the last 20 losses is below the mean of the first 20.
  const avg = (v: Float32Array) => v.reduce((s, q) => s + q, 0) / v.length;
  const head = avg(a.losses.subarray(0, 20)),
    tail = avg(a.losses.subarray(STEPS - 20));
  t.ok(tail < head, `loss goes down: ${head.toFixed(4)} -> ${tail.toFixed(4)}`);
  const c = train(8, 20);
  t.notSame(
    Array.from(bits(c.losses)),
    Array.from(bits(a.losses.subarray(0, 20))),
    'a different seed gives different losses',
  );
});
