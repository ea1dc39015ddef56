// LARGO's CP reconstruction and its backward kernel against the float64
// oracle (random ranks and mode sizes, including sizes that cross the GEMM
// register blocks and cache chunks). Errors name the op and the shapes.
import t, { type Test } from 'tap';
import fc from 'fast-check';
import {
  cpReconstruct, cpReconstructGrad, dropout, memory, OpError, Philox, randn, tensor, tidy, type DType,
} from '@largo/core';
import { refCpReconstruct, refCpReconstructGrad, refDropout, type RefTensor } from '@largo/core/reference';
import { compare, FC_RUNS, oracleCase, reductionTol, toRef } from './helpers/oracle.js';

function check(msg: string | null, what: string): void {
  if (msg !== null) throw new Error(`${what}: ${msg}`);
}

function opThrows(t: Test, fn: () => unknown, op: string, ...fragments: string[]): void {
  try {
    fn();
    t.fail(`${op}: expected an error`);
  } catch (e) {
    const m = e instanceof Error ? e.message : String(e);
    t.ok(e instanceof OpError && m.startsWith(op + ':') && fragments.every((f) => m.includes(f)), m);
  }
}

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

function checkForward(c: { R: number; O: number; I: number; S: number; dtype: DType; seed: number }): void {
  tidy(() => {
    const { w, a, b, k } = cpInputs(c);
    const want = refCpReconstruct(toRef(w), toRef(a), toRef(b), toRef(k));
    // Terms of a sum of R products: tolerance on the scale of the terms.
    const sc = Math.max(maxAbs(want), 1e-300);
    const tol = c.dtype === 'float64' ? { rtol: 1e-10, atol: 1e-13 * sc * c.R } : { ...reductionTol(c.R), atol: 1e-6 * Math.sqrt(c.R) * sc };
    check(compare(cpReconstruct(w, a, b, k), want, tol), `cpReconstruct ${JSON.stringify(c)}`);
  });
}

function checkBackward(c: { R: number; O: number; I: number; S: number; dtype: DType; seed: number }): void {
  tidy(() => {
    const { w, a, b, k } = cpInputs(c);
    const dW = randn([c.O, c.I, c.S], { seed: c.seed + 4, dtype: c.dtype });
    const got = cpReconstructGrad(dW, w, a, b, k);
    const want = refCpReconstructGrad(toRef(dW), toRef(w), toRef(a), toRef(b), toRef(k));
    const n = { dweights: c.O * c.I * c.S, daOut: c.I * c.S, daIn: c.O * c.S, daKernel: c.O * c.I };
    for (const name of ['dweights', 'daOut', 'daIn', 'daKernel'] as const) {
      const sc = Math.max(maxAbs(want[name]), 1e-300);
      const tol = c.dtype === 'float64' ? { rtol: 1e-9, atol: 1e-12 * sc * Math.sqrt(n[name]) } : { rtol: 1e-4, atol: 2e-6 * Math.sqrt(n[name]) * sc };
      check(compare(got[name], want[name], tol), `cpReconstructGrad ${name} ${JSON.stringify(c)}`);
    }
  });
}

t.test(oracleCase('cpReconstruct'), async (t) => {
  const before = memory();
  fc.assert(fc.property(arbCp, (c) => checkForward(c)), { numRuns: FC_RUNS });
  // Sizes that cross the 4×2 register blocks and the contraction chunk (512).
  checkForward({ R: 600, O: 7, I: 3, S: 5, dtype: 'float32', seed: 1 });
  checkForward({ R: 1030, O: 5, I: 2, S: 3, dtype: 'float64', seed: 2 });
  t.same(memory(), before, 'no leaks');
});

t.test(oracleCase('cpReconstructGrad'), async (t) => {
  const before = memory();
  fc.assert(fc.property(arbCp, (c) => checkBackward(c)), { numRuns: FC_RUNS });
  // Rows longer than the 256-column chunk, odd M for the 2-row block.
  checkBackward({ R: 600, O: 7, I: 3, S: 5, dtype: 'float32', seed: 3 });
  checkBackward({ R: 300, O: 5, I: 2, S: 7, dtype: 'float64', seed: 4 });
  t.same(memory(), before, 'no leaks');
});

t.test(oracleCase('cpReconstructGrad') + ': the oracle backward matches finite differences', async (t) => {
  fc.assert(fc.property(fc.integer({ min: 0, max: 1 << 30 }), (seed) => tidy(() => {
    const { w, a, b, k } = cpInputs({ R: 3, O: 2, I: 3, S: 2, dtype: 'float64', seed });
    const fs = [toRef(w), toRef(a), toRef(b), toRef(k)];
    const dW = toRef(randn([2, 3, 2], { seed: seed + 9, dtype: 'float64' }));
    const g = refCpReconstructGrad(dW, fs[0], fs[1], fs[2], fs[3]);
    const grads = [g.dweights, g.daOut, g.daIn, g.daKernel];
    const f = () => refCpReconstruct(fs[0], fs[1], fs[2], fs[3]).data.reduce((s, v, i) => s + v * dW.data[i], 0);
    fs.forEach((x, j) => {
      for (let i = 0; i < x.data.length; i++) {
        const v = x.data[i], h = 1e-6;
        x.data[i] = v + h; const up = f();
        x.data[i] = v - h; const dn = f();
        x.data[i] = v;
        const fd = (up - dn) / (2 * h);
        if (Math.abs(fd - grads[j].data[i]) > 1e-7 + 1e-6 * Math.abs(fd)) throw new Error(`factor ${j} [${i}]: ${grads[j].data[i]} vs fd ${fd}`);
      }
    });
  })), { numRuns: Math.min(FC_RUNS, 20) });
  t.pass('oracle consistent');
});

t.test('cpReconstruct: a rank-1 factorization is an outer product', async (t) => {
  tidy(() => {
    const W = cpReconstruct(tensor([2]), tensor([[1], [3]]), tensor([[1], [-1]]), tensor([[0.5], [1], [2]]));
    t.same(W.shape, [2, 2, 3]);
    t.same(W.toArray(), [[[1, 2, 4], [-1, -2, -4]], [[3, 6, 12], [-3, -6, -12]]]);
  });
});

t.test('cpReconstruct errors', async (t) => {
  tidy(() => {
    const w = randn([4]), a = randn([3, 4]), b = randn([2, 4]), k = randn([5, 4]);
    opThrows(t, () => cpReconstruct(w, a, randn([2, 3]), k), 'cpReconstruct', 'rank R', '[4]', '[3, 4]', '[2, 3]', '[5, 4]');
    opThrows(t, () => cpReconstruct(randn([5]), a, b, k), 'cpReconstruct', '[5]', '[3, 4]', '[2, 4]', '[5, 4]');
    opThrows(t, () => cpReconstruct(w, a, b, randn([5, 4, 1])), 'cpReconstruct', '[5, 4, 1]', 'aKernel [S, R]');
    opThrows(t, () => cpReconstruct(w, randn([3, 4], { dtype: 'float64' }), b, k), 'cpReconstruct', 'float64', '[3, 4]');
    opThrows(t, () => cpReconstruct(tensor(new Int32Array(4), [4]), tensor(new Int32Array(12), [3, 4]), tensor(new Int32Array(8), [2, 4]), tensor(new Int32Array(20), [5, 4])), 'cpReconstruct', 'int32');
    opThrows(t, () => cpReconstructGrad(randn([3, 2, 4]), w, a, b, k), 'cpReconstructGrad', '[3, 2, 5]', '[3, 2, 4]');
  });
});
