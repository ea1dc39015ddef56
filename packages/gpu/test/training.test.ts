// A few SGD steps of a tiny 3-D segmentation net on 'webgpu' against the
// same steps on 'cpu': conv3d → instanceNorm → leakyRelu → 1×1×1 conv3d →
// softmax → soft Dice + cross-entropy. Every kernel of the forward pass and
// every gradient kernel (conv3dGradInput/Weight, instanceNormGrad,
// crossEntropyGrad, softDiceLossGrad, the softmax rule's elementwise ops and
// reductions) runs on the GPU; the run must leave no buffer behind. And a
// linear model's steps (matmul, broadcasting add, mean of pow) the same way.
import t from 'tap';
import * as C from '@largo/core';
import { Philox, engine, memory, setBackend, tensor, tidy, type Tensor } from '@largo/core';
import { backward, noGrad, requireGrad } from '@largo/autograd';
import { gpuOpts, wg } from './helpers.js';

const N = 2,
  CIN = 2,
  HID = 4,
  K = 3,
  D = 6;
const LR = 0.1;

interface Run {
  losses: number[];
  params: number[][];
}

async function train(backendName: string, steps: number): Promise<Run> {
  const prev = engine().backend.name;
  setBackend(backendName);
  try {
    const g = new Philox(11);
    const f32 = (n: number, scale = 1, shift = 0) => Float32Array.from(g.normal(n), (v) => shift + scale * v);
    const x = tensor(f32(N * CIN * D * D * D), [N, CIN, D, D, D]);
    const labels = Int32Array.from(g.uniform(N * D * D * D), (u) => Math.min(K - 1, Math.floor(u * K)));
    const onehot = new Float32Array(N * K * D * D * D);
    const S = D * D * D;
    labels.forEach((l, i) => {
      const n = Math.floor(i / S);
      onehot[(n * K + l) * S + (i % S)] = 1;
    });
    const y = tensor(labels, [N, D, D, D], 'int32');
    const target = tensor(onehot, [N, K, D, D, D]);
    let params: Tensor[] = [
      tensor(f32(HID * CIN * 27, 0.2), [HID, CIN, 3, 3, 3]),
      tensor(f32(HID, 0.1), [HID]),
      tensor(f32(HID, 0.1, 1), [HID]),
      tensor(f32(HID, 0.1), [HID]),
      tensor(f32(K * HID, 0.5), [K, HID, 1, 1, 1]),
      tensor(f32(K, 0.1), [K]),
    ].map((p) => requireGrad(p));
    const losses: number[] = [];
    for (let s = 0; s < steps; s++) {
      const [w1, b1, gamma, beta, w2, b2] = params;
      const loss = tidy(() => {
        const h = C.leakyRelu(C.instanceNorm(C.conv3d(x, w1, b1, { padding: 1 }), gamma, beta), 0.01);
        const logits = C.conv3d(h, w2, b2);
        return C.add(C.softDiceLoss(C.softmax(logits, 1), target), C.crossEntropy(logits, y));
      });
      backward(loss);
      losses.push((await loss.data())[0]);
      loss.dispose();
      const next = noGrad(() => tidy(() => params.map((p) => C.sub(p, C.mul(p.grad!, LR)))));
      for (const p of params) {
        p.grad?.dispose();
        p.grad = null;
        p.dispose();
      }
      params = next.map((p) => requireGrad(p));
    }
    const out: Run = { losses, params: [] };
    for (const p of params) out.params.push(Array.from(await p.data()));
    for (const q of [x, y, target, ...params]) q.dispose();
    return out;
  } finally {
    setBackend(prev);
  }
}

t.test(
  wg(
    'autograd: a tiny 3-D conv net (conv3d, instanceNorm, leakyRelu, softmax, soft Dice + cross-entropy) trains like the cpu',
  ),
  gpuOpts(),
  async (t) => {
    const gpuBe = engine().findBackend('webgpu');
    const liveBefore = gpuBe.liveBuffers();
    const memBefore = memory();
    const steps = 4;
    const cpu = await train('cpu', steps);
    const gpu = await train('webgpu', steps);
    t.ok(
      gpu.losses[steps - 1] < gpu.losses[0],
      `loss decreases on webgpu (${gpu.losses[0].toFixed(5)} → ${gpu.losses[steps - 1].toFixed(5)})`,
    );
    // f32 GPU arithmetic vs the CPU's float64 accumulation, compounded over the steps.
    const close = (a: number[], b: number[], tol: number) =>
      a.every((v, i) => Math.abs(v - b[i]) <= tol * (1 + Math.abs(b[i])));
    t.ok(close(gpu.losses, cpu.losses, 1e-5), `losses agree: ${gpu.losses.join(', ')} vs ${cpu.losses.join(', ')}`);
    const names = ['conv1 weight', 'conv1 bias', 'norm weight', 'norm bias', 'conv2 weight', 'conv2 bias'];
    gpu.params.forEach((p, i) => {
      const err = p.reduce((m, v, j) => Math.max(m, Math.abs(v - cpu.params[i][j])), 0);
      t.ok(close(p, cpu.params[i], 2e-5), `${names[i]} agrees (max abs diff ${err.toExponential(2)})`);
    });
    t.equal(gpuBe.liveBuffers(), liveBefore, 'no GPU buffer leaked');
    t.same(memory(), memBefore, 'no tensor leaked');
  },
);

/** A few SGD steps of y = x·W + b under a mean squared error, on the named backend. */
async function trainLinear(
  backendName: string,
  steps: number,
): Promise<{ losses: number[]; W: number[]; b: number[] }> {
  const prev = engine().backend.name;
  setBackend(backendName);
  try {
    const g = new Philox(7);
    const x = tensor(Float32Array.from(g.normal(16 * 5)), [16, 5]);
    const target = tensor(Float32Array.from(g.normal(16 * 3)), [16, 3]);
    let W = requireGrad(
      tensor(
        Float32Array.from(g.normal(5 * 3)).map((v) => v * 0.3),
        [5, 3],
      ),
    );
    let b = requireGrad(C.zeros([3]));
    const losses: number[] = [];
    for (let s = 0; s < steps; s++) {
      const loss = tidy(() => {
        const d = C.sub(C.add(C.matmul(x, W), b), target);
        // pow(d, 2), not mul(d, d): autograd currently leaks one tensor when an op takes the same tensor twice.
        return C.mean(C.pow(d, 2));
      });
      backward(loss);
      losses.push((await loss.data())[0]);
      loss.dispose();
      const [W2, b2] = noGrad(() => tidy(() => [C.sub(W, C.mul(W.grad!, 0.1)), C.sub(b, C.mul(b.grad!, 0.1))]));
      W.dispose();
      b.dispose();
      W = requireGrad(W2);
      b = requireGrad(b2);
    }
    const out = { losses, W: Array.from(await W.data()), b: Array.from(await b.data()) };
    for (const q of [x, target, W, b]) q.dispose();
    return out;
  } finally {
    setBackend(prev);
  }
}

t.test(wg('autograd: linear model training steps match the cpu backend'), gpuOpts(), async (t) => {
  const before = engine().findBackend('webgpu').liveBuffers();
  const cpu = await trainLinear('cpu', 5);
  const gpu = await trainLinear('webgpu', 5);
  t.ok(
    gpu.losses[4] < gpu.losses[0],
    `loss decreases on webgpu (${gpu.losses[0].toFixed(4)} → ${gpu.losses[4].toFixed(4)})`,
  );
  const close = (a: number[], b: number[]) => a.every((v, i) => Math.abs(v - b[i]) <= 1e-5 + 1e-5 * Math.abs(b[i]));
  t.ok(close(gpu.losses, cpu.losses), `losses agree: ${gpu.losses.join(', ')} vs ${cpu.losses.join(', ')}`);
  t.ok(close(gpu.W, cpu.W), 'weights agree');
  t.ok(close(gpu.b, cpu.b), 'biases agree');
  t.equal(
    engine().findBackend('webgpu').liveBuffers(),
    before,
    `training left no GPU buffer behind (${JSON.stringify(engine().memory())})`,
  );
});
