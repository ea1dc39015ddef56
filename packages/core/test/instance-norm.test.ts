// Instance norm forward and its backward kernel against the float64 oracle on
// every backend (inputs made on the CPU, the op run on the backend under test);
// the oracle's backward is itself checked against finite differences of the
// oracle's forward. Edge cases: constant channels, one spatial element,
// large offsets (where E[x²]−E[x]² would fail), errors.
import t from 'tap';
import fc from 'fast-check';
import {
  instanceNorm,
  instanceNormGrad,
  instanceNormWithStats,
  memory,
  OpError,
  randn,
  tensor,
  tidy,
  type DType,
  type Tensor,
} from '@largo/core';
import * as C from '@largo/core';
import { Philox } from '@largo/core';
import { refInstanceNorm, refInstanceNormGrad, refTensor, type RefTensor } from '@largo/core/reference';
import {
  check,
  compare,
  compareAsync,
  compareValues as compareTo,
  FC_RUNS,
  forEachBackend,
  onCpu,
  oracleCase,
  opThrows,
  reductionTol,
  size,
  toRef,
  type Tol,
} from '@largo/test-support';

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

function inputs(c: {
  N: number;
  C: number;
  spatial: number[];
  dtype: DType;
  affine: string;
  offset: number;
  scale: number;
  seed: number;
}) {
  const shape = [c.N, c.C, ...c.spatial];
  const x = randn(shape, { seed: c.seed, dtype: c.dtype, mean: c.offset, std: c.scale });
  const w =
    c.affine === 'weight' || c.affine === 'both'
      ? randn([c.C], { seed: c.seed + 1, dtype: c.dtype, mean: 1, std: 0.5 })
      : null;
  const b = c.affine === 'bias' || c.affine === 'both' ? randn([c.C], { seed: c.seed + 2, dtype: c.dtype }) : null;
  return { shape, x, w, b };
}

const maxAbs = (r: RefTensor) => r.data.reduce((m, v) => Math.max(m, Math.abs(v)), 0);

forEachBackend(t, oracleCase('instanceNorm'), async (t, b) => {
  await fc.assert(
    fc.asyncProperty(
      arbCase.filter((c) => b.floatDtypes.includes(c.dtype)),
      async (c) => {
        const { got, want, tol, shape } = tidy(() =>
          onCpu(() => {
            const { shape, x, w, b: bias } = inputs(c);
            const S = size(c.spatial);
            const tol = c.dtype === 'float64' ? { rtol: 1e-10, atol: 1e-10 } : reductionTol(S);
            const got = instanceNorm(b.put(x), b.put(w), b.put(bias), c.eps);
            return { got, want: refInstanceNorm(toRef(x), w && toRef(w), bias && toRef(bias), c.eps), tol, shape };
          }),
        );
        check(await compareAsync(got, want, tol, true), `instanceNorm ${c.dtype} [${shape}] ${c.affine} eps ${c.eps}`);
      },
    ),
    { numRuns: b.runs },
  );
});

forEachBackend(t, oracleCase('instanceNormGrad'), async (t, b) => {
  await fc.assert(
    fc.asyncProperty(
      arbCase.filter((c) => b.floatDtypes.includes(c.dtype)),
      async (c) => {
        const { got, want, scales, shape } = tidy(() =>
          onCpu(() => {
            const { shape, x, w } = inputs(c);
            const dy = randn(shape, { seed: c.seed + 3, dtype: c.dtype });
            const { invstd } = instanceNormWithStats(x, w, null, c.eps);
            // Half the cases also backpropagate cotangents of the statistics.
            const sg =
              c.seed % 2
                ? {
                    dmean: randn([c.N, c.C], { seed: c.seed + 4, dtype: c.dtype }),
                    dinvstd: randn([c.N, c.C], { seed: c.seed + 5, dtype: c.dtype }),
                  }
                : null;
            // On the backend under test: its own statistics, then its backward kernel.
            const xb = b.put(x),
              wb = b.put(w);
            const st = instanceNormWithStats(xb, wb, null, c.eps);
            const got = instanceNormGrad(
              b.put(dy),
              xb,
              st.mean,
              st.invstd,
              wb,
              sg && { dmean: b.put(sg.dmean), dinvstd: b.put(sg.dinvstd) },
            );
            const want = refInstanceNormGrad(
              toRef(dy),
              toRef(x),
              w && toRef(w),
              c.eps,
              sg ? { dmean: toRef(sg.dmean), dinvstd: toRef(sg.dinvstd) } : undefined,
            );
            const S = size(c.spatial);
            // Each output is a sum of terms that may cancel: compare on the scale of
            // the terms (dx: |w|·σ⁻¹·|dy|; dweight, dbias: Σ|dy|·|x̂| ≤ N·S·max|dy|).
            const dyMax = maxAbs(toRef(dy));
            const isMax = maxAbs(toRef(invstd));
            let dxScale = dyMax * (w ? maxAbs(toRef(w)) : 1) * isMax;
            // The statistics' terms: |dμ|/S and |dσ⁻¹|·σ⁻³·|x − μ|/S ≤ |dσ⁻¹|·σ⁻²/√S.
            if (sg) dxScale += maxAbs(toRef(sg.dmean)) / S + (maxAbs(toRef(sg.dinvstd)) * isMax * isMax) / Math.sqrt(S);
            return { got, want, scales: { dx: dxScale, sum: dyMax * c.N * S }, shape };
          }),
        );
        for (const [name, a, r, sc] of [
          ['dx', got.dx, want.dx, scales.dx],
          ['dweight', got.dweight, want.dweight, scales.sum],
          ['dbias', got.dbias, want.dbias, scales.sum],
        ] as const) {
          const tol = c.dtype === 'float64' ? { rtol: 1e-9, atol: 1e-12 * sc } : { rtol: 1e-4, atol: 1e-6 * sc };
          check(await compareAsync(a, r, tol, true), `instanceNormGrad ${name} ${c.dtype} [${shape}] eps ${c.eps}`);
        }
      },
    ),
    { numRuns: b.runs },
  );
});

t.test(
  oracleCase('instanceNormGrad') + ': the oracle backward matches finite differences of the oracle forward',
  async (t) => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1 << 30 }), fc.integer({ min: 1, max: 6 }), (seed, S) =>
        tidy(() => {
          const N = 2,
            C = 2,
            eps = 1e-3,
            h = 1e-6;
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
          for (const [target, grad] of [
            [x, g.dx],
            [w, g.dweight],
            [b, g.dbias],
          ] as const) {
            for (let i = 0; i < target.data.length; i++) {
              const v = target.data[i];
              target.data[i] = v + h;
              const up = loss(x, w, b);
              target.data[i] = v - h;
              const dn = loss(x, w, b);
              target.data[i] = v;
              const fd = (up - dn) / (2 * h);
              if (Math.abs(fd - grad.data[i]) > 1e-6 + 1e-5 * Math.abs(fd))
                throw new Error(`oracle grad ${i}: ${grad.data[i]} vs fd ${fd}`);
            }
          }
        }),
      ),
      { numRuns: Math.min(FC_RUNS, 20) },
    );
    t.pass('oracle consistent');
  },
);

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
    t.equal(
      compare(instanceNorm(x32), refInstanceNorm(toRef(x32), null, null, 1e-5), { rtol: 1e-5, atol: 1e-5 }),
      null,
      'float32 at offset 1000',
    );
    // Statistics are exposed in the input dtype, shape [N, C].
    t.same(mean.shape, [1, 2]);
    t.equal(invstd.dtype, 'float32');
  });
});

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
    opThrows(
      t,
      () => instanceNormGrad(randn([2, 3, 5]), x, mean, invstd),
      'instanceNormGrad',
      '[2, 3, 5]',
      '[2, 3, 4]',
    );
    opThrows(
      t,
      () => instanceNormGrad(randn([2, 3, 4]), x, randn([3, 2]), invstd),
      'instanceNormGrad',
      'mean',
      '[3, 2]',
    );
  });
});

// ---------------------------------------------------------------------------
// float32 rows at the sizes where the WebGPU kernels change strategy (chunked
// long rows), large offsets, the statistics' cotangents; every backend.
{
  const take = async (x: Tensor) => {
    const shape = [...x.shape],
      data = await x.data();
    x.dispose();
    return { shape, data };
  };
  const normals = (n: number, seed: number, mean = 0, std = 1) =>
    Float32Array.from(new Philox(seed).normal(n), (v) => mean + std * v);
  const uniforms = (n: number, seed: number) => Float32Array.from(new Philox(seed).uniform(n));
  const maxAbs = (a: ArrayLike<number>) => {
    let m = 0;
    for (let i = 0; i < a.length; i++) if (Math.abs(a[i]) > m) m = Math.abs(a[i]);
    return m;
  };
  const seed = fc.integer({ min: 0, max: 1 << 30 });

  async function expect(y: Tensor, want: RefTensor, tol: Tol, what: string): Promise<void> {
    check(compareTo(await take(y), want, tol), what);
  }

  // instance norm

  interface InCase {
    N: number;
    C: number;
    spatial: number[];
    affine: string;
    eps: number;
    offset: number;
    scale: number;
    seed: number;
    stats: boolean;
  }
  const arbIn: fc.Arbitrary<InCase> = fc.record({
    N: fc.integer({ min: 1, max: 2 }),
    C: fc.integer({ min: 1, max: 3 }),
    spatial: fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 1, maxLength: 3 }),
    affine: fc.constantFrom('none', 'weight', 'bias', 'both'),
    eps: fc.constantFrom(1e-5, 1e-3, 0.1),
    offset: fc.constantFrom(0, 3, -50),
    scale: fc.constantFrom(1, 0.01, 20),
    seed,
    stats: fc.boolean(),
  });

  function inTensors(c: InCase) {
    const shape = [c.N, c.C, ...c.spatial];
    const x = normals(size(shape), c.seed, c.offset, c.scale);
    const w = c.affine === 'weight' || c.affine === 'both' ? normals(c.C, c.seed + 1, 1, 0.5) : null;
    const b = c.affine === 'bias' || c.affine === 'both' ? normals(c.C, c.seed + 2) : null;
    return { shape, x, w, b };
  }

  /** Mean and 1/sqrt(var + eps) per (n, c) in float64. */
  function refStats(x: Float32Array, R: number, S: number, eps: number) {
    const mean = new Float64Array(R),
      invstd = new Float64Array(R);
    for (let r = 0; r < R; r++) {
      let s = 0;
      for (let j = 0; j < S; j++) s += x[r * S + j];
      const m = s / S;
      let q = 0;
      for (let j = 0; j < S; j++) q += (x[r * S + j] - m) ** 2;
      mean[r] = m;
      invstd[r] = 1 / Math.sqrt(q / S + eps);
    }
    return { mean, invstd };
  }

  async function instanceNormCase(c: InCase): Promise<void> {
    const { shape, x, w, b } = inTensors(c);
    const S = size(c.spatial),
      R = c.N * c.C;
    const out = tidy(() =>
      C.instanceNormWithStats(tensor(x, shape), w && tensor(w, [c.C]), b && tensor(b, [c.C]), c.eps),
    );
    const want = refInstanceNorm(refTensor(shape, x), w && refTensor([c.C], w), b && refTensor([c.C], b), c.eps);
    const st = refStats(x, R, S, c.eps);
    // The mean is kept as hi + lo (f32 each), so x − μ keeps full precision even with large offsets: the CPU's tolerance.
    const what = `instanceNorm [${shape}] ${c.affine} eps ${c.eps} offset ${c.offset} scale ${c.scale}`;
    await expect(out.y, want, { rtol: 1e-5 * Math.sqrt(S) + 1e-6, atol: 1e-6 * Math.sqrt(S) + 1e-6 }, what);
    await expect(out.mean, refTensor([c.N, c.C], st.mean), { rtol: 1e-6, atol: 1e-6 * c.scale }, `${what}: mean`);
    await expect(out.invstd, refTensor([c.N, c.C], st.invstd), { rtol: 1e-4, atol: 0 }, `${what}: invstd`);
  }

  forEachBackend(t, oracleCase('instanceNorm') + ': f32, large offsets, chunked long rows', async (t, b) => {
    {
      await fc.assert(
        fc.asyncProperty(arbIn, async (c) => instanceNormCase(c)),
        { numRuns: b.runs },
      );
      // Long rows: several chunks per row, merged.
      await instanceNormCase({
        N: 1,
        C: 2,
        spatial: [9001],
        affine: 'both',
        eps: 1e-5,
        offset: -50,
        scale: 0.01,
        seed: 7,
        stats: false,
      });
      await instanceNormCase({
        N: 2,
        C: 1,
        spatial: [24, 24, 24],
        affine: 'weight',
        eps: 1e-5,
        offset: 3,
        scale: 1,
        seed: 8,
        stats: false,
      });
    }
  });

  async function instanceNormGradCase(c: InCase): Promise<void> {
    const { shape, x, w } = inTensors(c);
    const S = size(c.spatial),
      R = c.N * c.C;
    const dy = normals(size(shape), c.seed + 3);
    const gm = c.stats ? normals(R, c.seed + 4) : null,
      gi = c.stats ? normals(R, c.seed + 5) : null;
    const got = tidy(() => {
      const xt = tensor(x, shape),
        wt = w && tensor(w, [c.C]);
      const { mean, invstd } = C.instanceNormWithStats(xt, wt, null, c.eps);
      const sg = gm && gi ? { dmean: tensor(gm, [c.N, c.C]), dinvstd: tensor(gi, [c.N, c.C]) } : null;
      return C.instanceNormGrad(tensor(dy, shape), xt, mean, invstd, wt, sg);
    });
    const want = refInstanceNormGrad(
      refTensor(shape, dy),
      refTensor(shape, x),
      w && refTensor([c.C], w),
      c.eps,
      gm && gi ? { dmean: refTensor([c.N, c.C], gm), dinvstd: refTensor([c.N, c.C], gi) } : undefined,
    );
    // On the scale of the terms (as the CPU test): dx ~ |w|·σ⁻¹·|dy| (+ statistics' terms), dweight/dbias ≤ N·S·max|dy|·max|x̂|.
    const isMax = maxAbs(refStats(x, R, S, c.eps).invstd);
    let dxScale = maxAbs(dy) * (w ? maxAbs(w) : 1) * isMax;
    if (gm && gi) dxScale += maxAbs(gm) / S + (maxAbs(gi) * isMax * isMax) / Math.sqrt(S);
    const xhatErr = 1;
    const sumScale = maxAbs(dy) * c.N * S;
    const what = `instanceNormGrad [${shape}] ${c.affine} eps ${c.eps} offset ${c.offset} scale ${c.scale} stats ${c.stats}`;
    await expect(got.dx, want.dx, { rtol: 1e-4, atol: 2e-6 * dxScale * xhatErr }, `${what}: dx`);
    await expect(got.dweight, want.dweight, { rtol: 1e-4, atol: 1e-6 * sumScale * xhatErr }, `${what}: dweight`);
    await expect(got.dbias, want.dbias, { rtol: 1e-4, atol: 1e-6 * sumScale }, `${what}: dbias`);
  }

  forEachBackend(t, oracleCase('instanceNormGrad') + ': f32, large offsets, chunked long rows', async (t, b) => {
    {
      await fc.assert(
        fc.asyncProperty(arbIn, async (c) => instanceNormGradCase(c)),
        { numRuns: b.runs },
      );
      await instanceNormGradCase({
        N: 1,
        C: 2,
        spatial: [4500],
        affine: 'weight',
        eps: 1e-5,
        offset: 3,
        scale: 2,
        seed: 9,
        stats: true,
      });
    }
  });
}
