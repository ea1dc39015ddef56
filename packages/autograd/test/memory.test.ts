// A 200-step training loop of a small 3-D conv net (the net of
// helpers/small-conv-net.ts) keeps the live counts flat: memory() —
// tensors, storages, backend buffers — is identical after step 10 and after
// step 200, evaluation passes (with and without noGrad) leave nothing
// behind, and disposing the parameters and optimizer returns to the baseline.
// The JS heap and the array-buffer memory, measured after full garbage
// collections, stay flat too: a leak in a cache or a closure that the live
// counts cannot see (a retained Float32Array, a growing list) fails here.
import t from 'tap';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import * as C from '@largo/core';
import { memory, Philox, tensor, tidy, type MemoryInfo, type Tensor } from '@largo/core';
import { Adam, SGD, backward, clipGradNorm, cosineLr, noGrad, type Optimizer } from '@largo/autograd';
import { build, N, CIN, K, S } from './helpers/small-conv-net.js';

const STEPS = 200;

// A handle on V8's collector without restarting node with --expose-gc.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Bytes of JS heap and of array buffers (typed-array storage lives outside the heap) after full collections. */
function heapAfterGc(): { heap: number; buffers: number } {
  for (let i = 0; i < 4; i++) gc();
  const m = process.memoryUsage();
  return { heap: m.heapUsed, buffers: m.arrayBuffers };
}
function batch(g: Philox): { x: Tensor; y: Tensor } {
  const x = tensor(Float32Array.from(g.normal(N * CIN * S * S * S)), [N, CIN, S, S, S]);
  const xv = x.dataSync();
  const lab = new Int32Array(N * S * S * S);
  for (let i = 0; i < lab.length; i++) lab[i] = xv[i] > 0 ? 1 : 0;
  return { x, y: tensor(lab, [N, S, S, S]) };
}

/** KiB with one decimal. */
const kib = (bytes: number): string => (bytes / 1024).toFixed(1);

/**
 * Heap samples after steps 10, 20, …, 200. Array-buffer bytes must not grow
 * at all beyond a few pool arrays (16 KiB). The JS heap moves by ±300 KiB
 * between samples (code and feedback the JIT keeps, allocation sites) and
 * drifts 60–200 KiB while it warms up (measured on the busy 2-core VM), but
 * those moves only go up and down: the lowest sample of steps 160–200 may
 * exceed the lowest of steps 60–100 by at most 384 KiB. A leak of 4 KiB per
 * step (a retained graph — a planted one grew it 820 KiB —, a growing cache
 * of JS objects) crosses that in 100 steps; copied typed arrays show in the
 * array-buffer check at any size.
 */
function checkHeapFlat(
  t: { ok(v: unknown, m: string): boolean; comment(m: string): void },
  name: string,
  at: { heap: number; buffers: number }[],
): void {
  const sample = (step: number) => at[step / 10 - 1];
  const low = (from: number, to: number) => Math.min(...at.slice(from / 10 - 1, to / 10).map((h) => h.heap));
  t.comment(`${name}: heap KiB after steps 10…200: ${at.map((h) => kib(h.heap)).join(' ')}`);
  const buffersGrew = sample(STEPS).buffers - sample(10).buffers;
  t.ok(
    buffersGrew <= 16 * 1024,
    `${name}: array buffers grew ${kib(buffersGrew)} KiB from step 10 to ${STEPS} (≤ 16 KiB)`,
  );
  const heapGrew = low(160, 200) - low(60, 100);
  t.ok(
    heapGrew <= 384 * 1024,
    `${name}: lowest heap of steps 160–200 minus lowest of 60–100: ${kib(heapGrew)} KiB (≤ 384 KiB)`,
  );
}

function loop(
  t: { same(a: unknown, b: unknown, m: string): boolean; ok(v: unknown, m: string): boolean; comment(m: string): void },
  name: string,
  makeOpt: (params: [string, Tensor][]) => Optimizer,
): void {
  const base = memory();
  const net = build(3);
  const tensors = net.params.map((q) => q[1]);
  const opt = makeOpt(net.params);
  let at10: MemoryInfo | null = null;
  const heapAt: { heap: number; buffers: number }[] = []; // after steps 10, 20, …, 200
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
      tidy(() => {
        C.sum(net.forward(batch(net.data).x)).item();
      });
      noGrad(() =>
        tidy(() => {
          C.sum(net.forward(batch(net.data).x)).item();
        }),
      );
    }
    const m = memory();
    if (s === 10) at10 = m;
    if (s % 10 === 0) heapAt.push(heapAfterGc());
    if (s >= 10) counts.push(JSON.stringify(m));
  }
  t.same(memory(), at10, `${name}: memory() after step ${STEPS} equals memory() after step 10`);
  checkHeapFlat(t, name, heapAt);
  t.same(new Set(counts).size, 1, `${name}: flat at every step from 10 to ${STEPS}`);
  t.ok(
    at10!.tensors > base.tensors,
    `${name}: parameters, grads and optimizer state are live during training (${JSON.stringify(at10)})`,
  );
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
