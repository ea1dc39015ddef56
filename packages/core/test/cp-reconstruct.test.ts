// LARGO's CP reconstruction and its backward kernel against the float64
// oracle on every backend (random ranks and mode sizes, including sizes that cross the GEMM
// register blocks and cache chunks). Errors name the op and the shapes.
import t from 'tap';
import fc from 'fast-check';
import { cpReconstruct, cpReconstructGrad, Philox, randn, tensor, tidy, type DType } from '@largo/core';
import { refCpReconstruct, refCpReconstructGrad, refTensor, type RefTensor } from '@largo/core/reference';
import {
  check,
  compare,
  compareAsync,
  forEachBackend,
  FC_RUNS,
  oracleCase,
  opThrows,
  reductionTol,
  toRef,
  toRefAsync,
  type BackendCase,
} from '@largo/test-support';

const maxAbs = (r: RefTensor) => r.data.reduce((m, v) => Math.max(m, Math.abs(v)), 0);

const arbCp = fc.record({
  R: fc.integer({ min: 1, max: 9 }),
  O: fc.integer({ min: 1, max: 9 }),
  I: fc.integer({ min: 1, max: 6 }),
  S: fc.constantFrom(1, 2, 3, 8, 9, 27),
  dtype: fc.constantFrom<DType>('float32', 'float64'),
  seed: fc.integer({ min: 0, max: 1 << 30 }),
});

function cpInputs(c: { R: number; O: number; I: number; S: number; dtype: DType; seed: number }) {
  const { R, O, I, S, dtype, seed } = c;
  return {
    w: randn([R], { seed, dtype, mean: 1, std: 0.5 }),
    a: randn([O, R], { seed: seed + 1, dtype, std: 1 / Math.sqrt(O) }),
    b: randn([I, R], { seed: seed + 2, dtype, std: 1 / Math.sqrt(I) }),
    k: randn([S, R], { seed: seed + 3, dtype, std: 1 / Math.sqrt(S) }),
  };
}

/** The GPU's established float32 tolerance: products of four N(0, 1)-scale factors summed n times in f32. */
const f32AccTol = (n: number) => ({ rtol: 2e-5, atol: 1e-6 * Math.max(n, 1) + 1e-6 });

async function checkForward(
  b: BackendCase,
  c: { R: number; O: number; I: number; S: number; dtype: DType; seed: number },
): Promise<void> {
  const { w, a, b: bb, k } = cpInputs(c);
  const want = refCpReconstruct(await toRefAsync(w), await toRefAsync(a), await toRefAsync(bb), await toRefAsync(k));
  // Terms of a sum of R products: tolerance on the scale of the terms.
  const sc = Math.max(maxAbs(want), 1e-300);
  const tol =
    c.dtype === 'float64'
      ? { rtol: 1e-10, atol: 1e-13 * sc * c.R }
      : b.pick({ f64: { ...reductionTol(c.R), atol: 1e-6 * Math.sqrt(c.R) * sc }, f32: f32AccTol(c.R) });
  const y = tidy(() => cpReconstruct(w, a, bb, k));
  for (const x of [w, a, bb, k]) x.dispose();
  check(await compareAsync(y, want, tol, true), `cpReconstruct ${JSON.stringify(c)}`);
}

async function checkBackward(
  b: BackendCase,
  c: { R: number; O: number; I: number; S: number; dtype: DType; seed: number },
): Promise<void> {
  const { w, a, b: bb, k } = cpInputs(c);
  const dW = randn([c.O, c.I, c.S], { seed: c.seed + 4, dtype: c.dtype });
  const want = refCpReconstructGrad(
    await toRefAsync(dW),
    await toRefAsync(w),
    await toRefAsync(a),
    await toRefAsync(bb),
    await toRefAsync(k),
  );
  const got = tidy(() => cpReconstructGrad(dW, w, a, bb, k));
  for (const x of [dW, w, a, bb, k]) x.dispose();
  const n = { dweights: c.O * c.I * c.S, daOut: c.I * c.S, daIn: c.O * c.S, daKernel: c.O * c.I };
  for (const name of ['dweights', 'daOut', 'daIn', 'daKernel'] as const) {
    const sc = Math.max(maxAbs(want[name]), 1e-300);
    const tol =
      c.dtype === 'float64'
        ? { rtol: 1e-9, atol: 1e-12 * sc * Math.sqrt(n[name]) }
        : b.pick({ f64: { rtol: 1e-4, atol: 2e-6 * Math.sqrt(n[name]) * sc }, f32: f32AccTol(n[name]) });
    check(await compareAsync(got[name], want[name], tol, true), `cpReconstructGrad ${name} ${JSON.stringify(c)}`);
  }
}

/** Standard-normal float32 factors at sizes the WebGPU kernels tile differently (many output rows, long I). */
const arbNormalCp = fc.record({
  R: fc.integer({ min: 1, max: 6 }),
  O: fc.integer({ min: 1, max: 9 }),
  I: fc.integer({ min: 1, max: 9 }),
  S: fc.constantFrom(1, 4, 9, 27),
  dtype: fc.constant<DType>('float32'),
  seed: fc.integer({ min: 0, max: 1 << 30 }),
});
const NORMAL_FIXED = [
  { R: 16, O: 70, I: 33, S: 27, seed: 1 },
  { R: 8, O: 20, I: 64, S: 27, seed: 2 },
];

// Written once, run on every backend; float64 cases where the backend takes float64.
forEachBackend(t, oracleCase('cpReconstruct'), async (t, b) => {
  await fc.assert(
    fc.asyncProperty(
      arbCp.filter((c) => b.floatDtypes.includes(c.dtype)),
      (c) => checkForward(b, c),
    ),
    { numRuns: b.runs },
  );
  // Sizes that cross the 4×2 register blocks and the contraction chunk (512).
  await checkForward(b, { R: 600, O: 7, I: 3, S: 5, dtype: 'float32', seed: 1 });
  if (b.floatDtypes.includes('float64'))
    await checkForward(b, { R: 1030, O: 5, I: 2, S: 3, dtype: 'float64', seed: 2 });
});

forEachBackend(t, oracleCase('cpReconstructGrad'), async (t, b) => {
  await fc.assert(
    fc.asyncProperty(
      arbCp.filter((c) => b.floatDtypes.includes(c.dtype)),
      (c) => checkBackward(b, c),
    ),
    { numRuns: b.runs },
  );
  // Rows longer than the 256-column chunk, odd M for the 2-row block.
  await checkBackward(b, { R: 600, O: 7, I: 3, S: 5, dtype: 'float32', seed: 3 });
  if (b.floatDtypes.includes('float64'))
    await checkBackward(b, { R: 300, O: 5, I: 2, S: 7, dtype: 'float64', seed: 4 });
});

forEachBackend(t, oracleCase('cpReconstruct') + ': unit-scale factors, GPU tile sizes', async (t, b) => {
  await fc.assert(
    fc.asyncProperty(arbNormalCp, (c) => checkNormal(b, c, false)),
    { numRuns: b.runs },
  );
  for (const c of NORMAL_FIXED) await checkNormal(b, { ...c, dtype: 'float32' }, false);
});

forEachBackend(t, oracleCase('cpReconstructGrad') + ': unit-scale factors, GPU tile sizes', async (t, b) => {
  await fc.assert(
    fc.asyncProperty(arbNormalCp, (c) => checkNormal(b, c, true)),
    { numRuns: b.runs },
  );
  for (const c of NORMAL_FIXED) await checkNormal(b, { ...c, dtype: 'float32' }, true);
});

/** N(0, 1) factors (values of order 1, not scaled down): the f32-accumulation tolerance on every backend. */
async function checkNormal(
  _b: BackendCase,
  c: { R: number; O: number; I: number; S: number; seed: number },
  grad: boolean,
): Promise<void> {
  const f = (n: number, s: number) => Float32Array.from(new Philox(s).normal(n));
  const v = {
    w: f(c.R, c.seed),
    a: f(c.O * c.R, c.seed + 1),
    b: f(c.I * c.R, c.seed + 2),
    k: f(c.S * c.R, c.seed + 3),
  };
  const shapes = { w: [c.R], a: [c.O, c.R], b: [c.I, c.R], k: [c.S, c.R] };
  const refs = [
    refTensor(shapes.w, v.w),
    refTensor(shapes.a, v.a),
    refTensor(shapes.b, v.b),
    refTensor(shapes.k, v.k),
  ] as const;
  const ts = () =>
    [tensor(v.w, shapes.w), tensor(v.a, shapes.a), tensor(v.b, shapes.b), tensor(v.k, shapes.k)] as const;
  if (!grad) {
    const y = tidy(() => cpReconstruct(...ts()));
    check(await compareAsync(y, refCpReconstruct(...refs), f32AccTol(c.R), true), `cpReconstruct ${JSON.stringify(c)}`);
    return;
  }
  const gv = f(c.O * c.I * c.S, c.seed + 4);
  const g = tidy(() => cpReconstructGrad(tensor(gv, [c.O, c.I, c.S]), ...ts()));
  const want = refCpReconstructGrad(refTensor([c.O, c.I, c.S], gv), ...refs);
  const n = { dweights: c.O * c.I * c.S, daOut: c.I * c.S, daIn: c.O * c.S, daKernel: c.O * c.I };
  for (const name of ['dweights', 'daOut', 'daIn', 'daKernel'] as const) {
    check(
      await compareAsync(g[name], want[name], f32AccTol(n[name]), true),
      `cpReconstructGrad ${name} ${JSON.stringify(c)}`,
    );
  }
}

t.test(oracleCase('cpReconstructGrad') + ': the oracle backward matches finite differences', async (t) => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 1 << 30 }), (seed) =>
      tidy(() => {
        const { w, a, b, k } = cpInputs({ R: 3, O: 2, I: 3, S: 2, dtype: 'float64', seed });
        const fs = [toRef(w), toRef(a), toRef(b), toRef(k)];
        const dW = toRef(randn([2, 3, 2], { seed: seed + 9, dtype: 'float64' }));
        const g = refCpReconstructGrad(dW, fs[0], fs[1], fs[2], fs[3]);
        const grads = [g.dweights, g.daOut, g.daIn, g.daKernel];
        const f = () => refCpReconstruct(fs[0], fs[1], fs[2], fs[3]).data.reduce((s, v, i) => s + v * dW.data[i], 0);
        fs.forEach((x, j) => {
          for (let i = 0; i < x.data.length; i++) {
            const v = x.data[i],
              h = 1e-6;
            x.data[i] = v + h;
            const up = f();
            x.data[i] = v - h;
            const dn = f();
            x.data[i] = v;
            const fd = (up - dn) / (2 * h);
            if (Math.abs(fd - grads[j].data[i]) > 1e-7 + 1e-6 * Math.abs(fd))
              throw new Error(`factor ${j} [${i}]: ${grads[j].data[i]} vs fd ${fd}`);
          }
        });
      }),
    ),
    { numRuns: Math.min(FC_RUNS, 20) },
  );
  t.pass('oracle consistent');
});

t.test('cpReconstruct: a rank-1 factorization is an outer product', async (t) => {
  tidy(() => {
    const W = cpReconstruct(tensor([2]), tensor([[1], [3]]), tensor([[1], [-1]]), tensor([[0.5], [1], [2]]));
    t.same(W.shape, [2, 2, 3]);
    t.same(W.toArray(), [
      [
        [1, 2, 4],
        [-1, -2, -4],
      ],
      [
        [3, 6, 12],
        [-3, -6, -12],
      ],
    ]);
  });
});

t.test('cpReconstruct errors', async (t) => {
  tidy(() => {
    const w = randn([4]),
      a = randn([3, 4]),
      b = randn([2, 4]),
      k = randn([5, 4]);
    opThrows(
      t,
      () => cpReconstruct(w, a, randn([2, 3]), k),
      'cpReconstruct',
      'rank R',
      '[4]',
      '[3, 4]',
      '[2, 3]',
      '[5, 4]',
    );
    opThrows(t, () => cpReconstruct(randn([5]), a, b, k), 'cpReconstruct', '[5]', '[3, 4]', '[2, 4]', '[5, 4]');
    opThrows(t, () => cpReconstruct(w, a, b, randn([5, 4, 1])), 'cpReconstruct', '[5, 4, 1]', 'aKernel [S, R]');
    opThrows(
      t,
      () => cpReconstruct(w, randn([3, 4], { dtype: 'float64' }), b, k),
      'cpReconstruct',
      'float64',
      '[3, 4]',
    );
    opThrows(
      t,
      () =>
        cpReconstruct(
          tensor(new Int32Array(4), [4]),
          tensor(new Int32Array(12), [3, 4]),
          tensor(new Int32Array(8), [2, 4]),
          tensor(new Int32Array(20), [5, 4]),
        ),
      'cpReconstruct',
      'int32',
    );
    opThrows(t, () => cpReconstructGrad(randn([3, 2, 4]), w, a, b, k), 'cpReconstructGrad', '[3, 2, 5]', '[3, 2, 4]');
  });
});
