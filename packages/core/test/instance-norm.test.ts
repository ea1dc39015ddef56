// Instance norm forward and its backward kernel against the float64 oracle;
// the oracle's backward is itself checked against finite differences of the
// oracle's forward. Edge cases: constant channels, one spatial element,
// large offsets (where E[x²]−E[x]² would fail), errors.
import t, { type Test } from 'tap';
import fc from 'fast-check';
import {
  instanceNorm, instanceNormGrad, instanceNormWithStats, memory, OpError, randn, tensor, tidy, type DType, type Tensor,
} from '@largo/core';
import { refInstanceNorm, refInstanceNormGrad, type RefTensor } from '@largo/core/reference';
import { compare, FC_RUNS, oracleCase, reductionTol, toRef } from '@largo/test-support';

const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

const arbCase = fc.record({
  N: fc.integer({ min: 1, max: 3 }),
  C: fc.integer({ min: 1, max: 4 }),
  spatial: fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 1, maxLength: 3 }),
  dtype: fc.constantFrom<DType>('float32', 'float64'),
  affine: fc.constantFrom<'none' | 'weight' | 'bias' | 'both'>('none', 'weight', 'bias', 'both'),
  eps: fc.constantFrom(1e-5, 1e-3, 0.1),
  offset: fc.constantFrom(0, 3, -50),
  scale: fc.constantFrom(1, 0.01, 20),
  seed: fc.integer({ min: 0, max: 1 << 30 }),
});

function inputs(c: { N: number; C: number; spatial: number[]; dtype: DType; affine: string; offset: number; scale: number; seed: number }) {
  const shape = [c.N, c.C, ...c.spatial];
  const x = randn(shape, { seed: c.seed, dtype: c.dtype, mean: c.offset, std: c.scale });
  const w = c.affine === 'weight' || c.affine === 'both' ? randn([c.C], { seed: c.seed + 1, dtype: c.dtype, mean: 1, std: 0.5 }) : null;
  const b = c.affine === 'bias' || c.affine === 'both' ? randn([c.C], { seed: c.seed + 2, dtype: c.dtype }) : null;
  return { shape, x, w, b };
}

const maxAbs = (r: RefTensor) => r.data.reduce((m, v) => Math.max(m, Math.abs(v)), 0);

t.test(oracleCase('instanceNorm'), async (t) => {
  const before = memory();
  fc.assert(fc.property(arbCase, (c) => tidy(() => {
    const { shape, x, w, b } = inputs(c);
    const S = size(c.spatial);
    const tol = c.dtype === 'float64' ? { rtol: 1e-10, atol: 1e-10 } : reductionTol(S);
    const msg = compare(instanceNorm(x, w, b, c.eps), refInstanceNorm(toRef(x), w && toRef(w), b && toRef(b), c.eps), tol);
    if (msg !== null) throw new Error(`instanceNorm ${c.dtype} [${shape}] ${c.affine} eps ${c.eps}: ${msg}`);
  })), { numRuns: FC_RUNS });
  t.same(memory(), before, 'no leaks');
});

t.test(oracleCase('instanceNormGrad'), async (t) => {
  const before = memory();
  fc.assert(fc.property(arbCase, (c) => tidy(() => {
    const { shape, x, w } = inputs(c);
    const dy = randn(shape, { seed: c.seed + 3, dtype: c.dtype });
    const { mean, invstd } = instanceNormWithStats(x, w, null, c.eps);
    // Half the cases also backpropagate cotangents of the statistics.
    const sg = c.seed % 2 ? { dmean: randn([c.N, c.C], { seed: c.seed + 4, dtype: c.dtype }), dinvstd: randn([c.N, c.C], { seed: c.seed + 5, dtype: c.dtype }) } : null;
    const got = instanceNormGrad(dy, x, mean, invstd, w, sg);
    const want = refInstanceNormGrad(toRef(dy), toRef(x), w && toRef(w), c.eps, sg ? { dmean: toRef(sg.dmean), dinvstd: toRef(sg.dinvstd) } : undefined);
    const S = size(c.spatial);
    // Each output is a sum of terms that may cancel: compare on the scale of
    // the terms (dx: |w|·σ⁻¹·|dy|; dweight, dbias: Σ|dy|·|x̂| ≤ N·S·max|dy|).
    const dyMax = maxAbs(toRef(dy));
    const isMax = maxAbs(toRef(invstd));
    let dxScale = dyMax * (w ? maxAbs(toRef(w)) : 1) * isMax;
    // The statistics' terms: |dμ|/S and |dσ⁻¹|·σ⁻³·|x − μ|/S ≤ |dσ⁻¹|·σ⁻²/√S.
    if (sg) dxScale += maxAbs(toRef(sg.dmean)) / S + (maxAbs(toRef(sg.dinvstd)) * isMax * isMax) / Math.sqrt(S);
    const sumScale = dyMax * c.N * S;
    for (const [name, a, r, sc] of [['dx', got.dx, want.dx, dxScale], ['dweight', got.dweight, want.dweight, sumScale], ['dbias', got.dbias, want.dbias, sumScale]] as const) {
      const tol = c.dtype === 'float64' ? { rtol: 1e-9, atol: 1e-12 * sc } : { rtol: 1e-4, atol: 1e-6 * sc };
      const msg = compare(a, r, tol);
      if (msg !== null) throw new Error(`instanceNormGrad ${name} ${c.dtype} [${shape}] eps ${c.eps}: ${msg}`);
    }
  })), { numRuns: FC_RUNS });
  t.same(memory(), before, 'no leaks');
});

t.test(oracleCase('instanceNormGrad') + ': the oracle backward matches finite differences of the oracle forward', async (t) => {
  fc.assert(fc.property(fc.integer({ min: 0, max: 1 << 30 }), fc.integer({ min: 1, max: 6 }), (seed, S) => tidy(() => {
    const N = 2, C = 2, eps = 1e-3, h = 1e-6;
    const x = toRef(randn([N, C, S], { seed, dtype: 'float64' }));
    const w = toRef(randn([C], { seed: seed + 1, dtype: 'float64' }));
    const b = toRef(randn([C], { seed: seed + 2, dtype: 'float64' }));
    const dy = toRef(randn([N, C, S], { seed: seed + 3, dtype: 'float64' }));
    // Cotangents of the statistics too: loss = ⟨y, dy⟩ + ⟨mean, dm⟩ + ⟨invstd, di⟩.
    const dm = toRef(randn([N, C], { seed: seed + 4, dtype: 'float64' }));
    const di = toRef(randn([N, C], { seed: seed + 5, dtype: 'float64' }));
    const loss = (xx: RefTensor, ww: RefTensor, bb: RefTensor) => {
      const y = refInstanceNorm(xx, ww, bb, eps);
      let l = y.data.reduce((s, v, i) => s + v * dy.data[i], 0);
      for (let k = 0; k < N * C; k++) {
        let m = 0;
        for (let j = 0; j < S; j++) m += xx.data[k * S + j] / S;
        let v = 0;
        for (let j = 0; j < S; j++) v += (xx.data[k * S + j] - m) ** 2 / S;
        l += m * dm.data[k] + di.data[k] / Math.sqrt(v + eps);
      }
      return l;
    };
    const g = refInstanceNormGrad(dy, x, w, eps, { dmean: dm, dinvstd: di });
    for (const [target, grad] of [[x, g.dx], [w, g.dweight], [b, g.dbias]] as const) {
      for (let i = 0; i < target.data.length; i++) {
        const v = target.data[i];
        target.data[i] = v + h; const up = loss(x, w, b);
        target.data[i] = v - h; const dn = loss(x, w, b);
        target.data[i] = v;
        const fd = (up - dn) / (2 * h);
        if (Math.abs(fd - grad.data[i]) > 1e-6 + 1e-5 * Math.abs(fd)) throw new Error(`oracle grad ${i}: ${grad.data[i]} vs fd ${fd}`);
      }
    }
  })), { numRuns: Math.min(FC_RUNS, 20) });
  t.pass('oracle consistent');
});

t.test(oracleCase('instanceNorm') + ' edge cases', async (t) => {
  tidy(() => {
    // A constant channel normalizes to 0 (not NaN); with affine it gives the bias.
    const x = tensor(Float32Array.from([5, 5, 5, 5, 1, 2, 3, 4]), [1, 2, 4]);
    const y = instanceNorm(x).dataSync();
    t.same(Array.from(y.slice(0, 4)), [0, 0, 0, 0], 'constant channel → 0');
    t.ok(Array.from(y).every(Number.isFinite), 'finite');
    const yb = instanceNorm(x, tensor([2, 1]), tensor([0.5, 0])).dataSync();
    t.same(Array.from(yb.slice(0, 4)), [0.5, 0.5, 0.5, 0.5], 'constant channel → bias');
    const { mean, invstd } = instanceNormWithStats(x);
    const g = instanceNormGrad(tensor(Float32Array.from([1, -2, 3, 0.5, 1, 1, 1, 1]), [1, 2, 4]), x, mean, invstd);
    t.ok(Array.from(g.dx.dataSync()).every(Number.isFinite), 'gradient of a constant channel is finite');
    // One spatial element: output is the bias, gradient w.r.t. x is 0.
    const one = tensor([3, -7], [2, 1, 1]);
    t.same(Array.from(instanceNorm(one, null, tensor([0.25])).dataSync()), [0.25, 0.25]);
    // Large offset in float64: two-pass variance is exact where E[x²]−E[x]² loses everything.
    const big = tensor(Float64Array.from([1e8 + 1, 1e8 - 1, 1e8 + 1, 1e8 - 1]), [1, 1, 4], 'float64');
    const yb2 = instanceNorm(big, null, null, 0).dataSync();
    t.same(Array.from(yb2), [1, -1, 1, -1], 'exact at offset 1e8');
    // float32 with a large offset stays accurate too.
    const x32 = randn([2, 3, 50], { seed: 9, mean: 1000, std: 0.5 });
    t.equal(compare(instanceNorm(x32), refInstanceNorm(toRef(x32), null, null, 1e-5), { rtol: 1e-5, atol: 1e-5 }), null, 'float32 at offset 1000');
    // Statistics are exposed in the input dtype, shape [N, C].
    t.same(mean.shape, [1, 2]);
    t.equal(invstd.dtype, 'float32');
  });
});

function opThrows(t: Test, fn: () => unknown, op: string, ...fragments: string[]): void {
  try {
    fn();
    t.fail(`${op}: expected an error`);
  } catch (e) {
    const m = e instanceof Error ? e.message : String(e);
    t.ok(e instanceof OpError && m.startsWith(op + ':') && fragments.every((f) => m.includes(f)), m);
  }
}

t.test('instanceNorm errors', async (t) => {
  tidy(() => {
    const x = randn([2, 3, 4]);
    opThrows(t, () => instanceNorm(randn([2, 3])), 'instanceNorm', '[2, 3]', 'rank');
    opThrows(t, () => instanceNorm(tensor(new Int32Array(24), [2, 3, 4])), 'instanceNorm', 'int32');
    opThrows(t, () => instanceNorm(x, randn([4])), 'instanceNorm', 'weight', '[3]', '[4]', '[2, 3, 4]');
    opThrows(t, () => instanceNorm(x, null, randn([3, 1])), 'instanceNorm', 'bias', '[3, 1]');
    opThrows(t, () => instanceNorm(x, randn([3], { dtype: 'float64' })), 'instanceNorm', 'float64');
    opThrows(t, () => instanceNorm(x, null, null, -1), 'instanceNorm', 'eps');
    opThrows(t, () => instanceNorm(randn([1, 2, 0])), 'instanceNorm', '[1, 2, 0]');
    const { mean, invstd } = instanceNormWithStats(x);
    opThrows(t, () => instanceNormGrad(randn([2, 3, 5]), x, mean, invstd), 'instanceNormGrad', '[2, 3, 5]', '[2, 3, 4]');
    opThrows(t, () => instanceNormGrad(randn([2, 3, 4]), x, randn([3, 2]), invstd), 'instanceNormGrad', 'mean', '[3, 2]');
  });
});
