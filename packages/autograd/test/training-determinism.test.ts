// A 200-step training loop of a small 3-D conv net (conv3d → instance norm
// → leaky ReLU → strided conv3d → transposed conv3d → 1×1×1 head,
// cross-entropy, SGD with Nesterov momentum and a poly schedule, gradient
// clipping) is bitwise repeatable for a seed, and another seed changes it.
import t from 'tap';
import * as C from '@largo/core';
import { Philox, tensor, tidy, type Tensor } from '@largo/core';
import { SGD, backward, clipGradNorm, polyLr, requireGrad } from '@largo/autograd';

const STEPS = 200;
const N = 2, CIN = 1, F = 4, K = 2, S = 4; // batch, input channels, features, classes, spatial extent

/** Kaiming-normal weights from a seeded stream (fan-in scaling). */
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
  const a = train(7), b = train(7);
  t.comment(`two runs of ${STEPS} steps in ${Date.now() - t0} ms`);
  t.ok(a.losses.every(Number.isFinite), 'losses are finite');
  const firstDiff = bits(a.losses).findIndex((v, i) => v !== bits(b.losses)[i]);
  t.equal(firstDiff, -1, 'loss arrays identical bit for bit');
  a.params.forEach((p, i) => t.same(bits(p), bits(b.params[i]), `parameter ${i} identical bit for bit`));
  // It learns: the mean of the last 20 losses is below the mean of the first 20.
  const avg = (v: Float32Array) => v.reduce((s, q) => s + q, 0) / v.length;
  const head = avg(a.losses.subarray(0, 20)), tail = avg(a.losses.subarray(STEPS - 20));
  t.ok(tail < head, `loss goes down: ${head.toFixed(4)} -> ${tail.toFixed(4)}`);
  const c = train(8, 20);
  t.notSame(Array.from(bits(c.losses)), Array.from(bits(a.losses.subarray(0, 20))), 'a different seed gives different losses');
});
