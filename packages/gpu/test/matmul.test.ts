// The tiled WebGPU matmul against the float64 oracle (batch broadcasting,
// transpose flags, 1-d operands, tile edges), and a few autograd training
// steps of a linear model on 'webgpu' against the same steps on 'cpu'.
import t from 'tap';
import fc from 'fast-check';
import * as C from '@largo/core';
import { Philox, engine, matmul, setBackend, tensor, tidy } from '@largo/core';
import { refMatmul, refTensor } from '@largo/core/reference';
import { backward, noGrad, requireGrad } from '@largo/autograd';
import { GPU_RUNS, check, compareTo, gpuOpts, leakFree, oracleCase, take, wg } from './helpers.js';

const arbBatches = (maxRank: number) =>
  fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 0, maxLength: maxRank }).chain((batch) =>
    fc
      .tuple(
        fc.integer({ min: 0, max: batch.length }),
        fc.integer({ min: 0, max: batch.length }),
        fc.array(fc.boolean(), { minLength: batch.length, maxLength: batch.length }),
        fc.array(fc.boolean(), { minLength: batch.length, maxLength: batch.length }),
      )
      .map(([la, lb, onesA, onesB]) => ({
        batchA: batch.slice(batch.length - la).map((d, i) => (onesA[i] ? 1 : d)),
        batchB: batch.slice(batch.length - lb).map((d, i) => (onesB[i] ? 1 : d)),
      })),
  );

interface Case {
  shapeA: number[];
  shapeB: number[];
  transposeA: boolean;
  transposeB: boolean;
  seed: number;
}

const arbCase = (maxDim: number, maxBatchRank = 3): fc.Arbitrary<Case> =>
  fc
    .record({
      b: arbBatches(maxBatchRank),
      M: fc.integer({ min: 1, max: maxDim }),
      K: fc.integer({ min: 0, max: maxDim }),
      N: fc.integer({ min: 1, max: maxDim }),
      transposeA: fc.boolean(),
      transposeB: fc.boolean(),
      vec: fc.constantFrom(0, 0, 0, 1, 2, 3), // 1: a is 1-d, 2: b is 1-d, 3: both
      seed: fc.integer({ min: 0, max: 1 << 30 }),
    })
    .map(({ b, M, K, N, transposeA, transposeB, vec, seed }) => ({
      shapeA: vec & 1 ? [K] : [...b.batchA, ...(transposeA ? [K, M] : [M, K])],
      shapeB: vec & 2 ? [K] : [...b.batchB, ...(transposeB ? [N, K] : [K, N])],
      transposeA,
      transposeB,
      seed,
    }));

const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
const normals = (n: number, seed: number) => Float32Array.from(new Philox(seed).normal(n));

async function runCase(c: Case): Promise<string | null> {
  const va = normals(size(c.shapeA), c.seed),
    vb = normals(size(c.shapeB), c.seed + 1);
  const y = tidy(() =>
    matmul(tensor(va, c.shapeA), tensor(vb, c.shapeB), { transposeA: c.transposeA, transposeB: c.transposeB }),
  );
  const K =
    c.shapeB.length === 1 ? c.shapeB[0] : c.transposeB ? c.shapeB[c.shapeB.length - 1] : c.shapeB[c.shapeB.length - 2];
  const want = refMatmul(refTensor(c.shapeA, va), refTensor(c.shapeB, vb), {
    transposeA: c.transposeA,
    transposeB: c.transposeB,
  });
  const msg = compareTo(await take(y), want, { rtol: 1e-5, atol: 1e-6 * Math.sqrt(Math.max(K, 1)) * 4 });
  return msg && `${msg} (a [${c.shapeA}], b [${c.shapeB}], tA=${c.transposeA}, tB=${c.transposeB})`;
}

t.test(wg(oracleCase('matmul')), gpuOpts(), async (t) => {
  await leakFree(t, async () => {
    await fc.assert(
      fc.asyncProperty(arbCase(9), async (c) => check(await runCase(c), 'matmul')),
      { numRuns: GPU_RUNS * 2 },
    );
    // Sizes around the 32/64 tiles and the 16-wide K slices (the oracle is slow: few runs).
    await fc.assert(
      fc.asyncProperty(arbCase(72, 1), async (c) => check(await runCase(c), 'matmul')),
      { numRuns: Math.ceil(GPU_RUNS / 3) },
    );
  });
});

t.test(wg(oracleCase('matmul') + ' (tile edges, batches, transposes)'), gpuOpts(), async (t) => {
  const cases: Case[] = [
    { shapeA: [70, 261], shapeB: [261, 7], transposeA: false, transposeB: false, seed: 1 },
    { shapeA: [261, 70], shapeB: [7, 261], transposeA: true, transposeB: true, seed: 2 },
    { shapeA: [65, 33], shapeB: [33, 129], transposeA: false, transposeB: false, seed: 3 },
    { shapeA: [2, 1, 13, 17], shapeB: [3, 17, 6], transposeA: false, transposeB: false, seed: 4 },
    { shapeA: [4, 64, 64], shapeB: [64, 64], transposeA: true, transposeB: false, seed: 5 },
    { shapeA: [128, 16], shapeB: [128, 16], transposeA: false, transposeB: true, seed: 6 },
  ];
  for (const c of cases)
    t.equal(await runCase(c), null, `a [${c.shapeA}] b [${c.shapeB}] tA=${c.transposeA} tB=${c.transposeB}`);
  const e = matmul(C.zeros([2, 0]), C.zeros([0, 3]));
  t.same((await take(e)).data, [0, 0, 0, 0, 0, 0], 'K = 0 gives zeros');
});

/** A few SGD steps of y = x·W + b under a mean squared error, on the named backend. */
async function train(backendName: string, steps: number): Promise<{ losses: number[]; W: number[]; b: number[] }> {
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
        const d = C.sub(C.add(matmul(x, W), b), target);
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
  const cpu = await train('cpu', 5);
  const gpu = await train('webgpu', 5);
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
