// The losses (cross-entropy, BCE with logits, soft Dice) and their backward
// kernels against the float64 oracle on every backend (inputs made on the CPU,
// the op run on the backend under test); the oracle backwards are checked
// against finite differences of the oracle forwards. Edge cases and errors.
import t from 'tap';
import fc from 'fast-check';
import {
  bceWithLogits,
  bceWithLogitsGrad,
  crossEntropy,
  crossEntropyGrad,
  memory,
  OpError,
  rand,
  randn,
  softDiceLoss,
  softDiceLossGrad,
  softmax,
  tensor,
  tidy,
  Philox,
  type DType,
} from '@largo/core';
import * as C from '@largo/core';
import type { Tensor } from '@largo/core';
import {
  refBceWithLogits,
  refBceWithLogitsGrad,
  refCrossEntropy,
  refCrossEntropyGrad,
  refSoftDiceLoss,
  refSoftDiceLossGrad,
  refTensor,
  type RefTensor,
} from '@largo/core/reference';
import {
  arbShape,
  check,
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

/** A scalar cotangent away from zero and subnormals. */
const arbDy = fc.tuple(fc.double({ min: 0.05, max: 3, noNaN: true }), fc.boolean()).map(([v, neg]) => (neg ? -v : v));
const maxAbs = (r: RefTensor) => r.data.reduce((m, v) => Math.max(m, Math.abs(v)), 0);

/** Central differences of a scalar oracle function w.r.t. every entry of `x`, checked against `grad`. */
function fdCheck(what: string, x: RefTensor, grad: RefTensor, f: () => number, h = 1e-6, tol = 1e-6): void {
  for (let i = 0; i < x.data.length; i++) {
    const v = x.data[i];
    x.data[i] = v + h;
    const up = f();
    x.data[i] = v - h;
    const dn = f();
    x.data[i] = v;
    const fd = (up - dn) / (2 * h);
    if (Math.abs(fd - grad.data[i]) > tol + 1e-5 * Math.abs(fd))
      throw new Error(`${what} [${i}]: oracle grad ${grad.data[i]} vs fd ${fd}`);
  }
}

// ---------------------------------------------------------------------------
// cross-entropy

const arbCe = fc.record({
  N: fc.integer({ min: 1, max: 3 }),
  C: fc.integer({ min: 1, max: 5 }),
  spatial: fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 0, maxLength: 2 }),
  dtype: fc.constantFrom<DType>('float32', 'float64'),
  targetDtype: fc.constantFrom<DType>('int32', 'int32', 'uint8'),
  ignoreIndex: fc.constantFrom<number | undefined>(undefined, -100, 0, 2),
  ignoreRate: fc.constantFrom(0, 0.3, 1),
  weighted: fc.boolean(),
  scale: fc.constantFrom(1, 5, 30),
  seed: fc.integer({ min: 0, max: 1 << 30 }),
});

type CeCase = typeof arbCe extends fc.Arbitrary<infer T> ? T : never;

function ceInputs(c: CeCase) {
  const shape = [c.N, c.C, ...c.spatial];
  const tshape = [c.N, ...c.spatial];
  const logits = randn(shape, { seed: c.seed, dtype: c.dtype, std: c.scale });
  const g = new Philox(c.seed + 1);
  const ig = c.ignoreIndex ?? -100;
  const canIgnore = c.targetDtype === 'int32' || ig >= 0;
  const labels = Array.from({ length: size(tshape) }, () =>
    canIgnore && g.uniform(1)[0] < c.ignoreRate ? ig : g.int(c.C),
  );
  const target = tensor(labels, tshape, c.targetDtype);
  const weight = c.weighted ? rand([c.C], { seed: c.seed + 2, dtype: c.dtype, low: 0.1, high: 2 }) : null;
  const opts = { ignoreIndex: c.ignoreIndex, weight };
  const ropts = { ignoreIndex: c.ignoreIndex, weight: weight && toRef(weight) };
  return { shape, logits, target, weight, opts, ropts };
}

forEachBackend(t, oracleCase('crossEntropy'), async (t, b) => {
  await fc.assert(
    fc.asyncProperty(
      arbCe.filter((c) => b.floatDtypes.includes(c.dtype)),
      async (c) => {
        const { got, want, tol } = tidy(() =>
          onCpu(() => {
            const { shape, logits, target, opts, ropts } = ceInputs(c);
            const tol =
              c.dtype === 'float64'
                ? { rtol: 1e-12, atol: 1e-12 * c.scale }
                : { ...reductionTol(size(shape)), atol: 1e-6 * c.scale };
            const got = crossEntropy(b.put(logits), b.put(target), { ...opts, weight: b.put(opts.weight) });
            return { got, want: refCrossEntropy(toRef(logits), toRef(target), ropts), tol };
          }),
        );
        check(await compareAsync(got, want, tol, true), `crossEntropy ${JSON.stringify(c)}`);
      },
    ),
    { numRuns: b.runs },
  );
});

forEachBackend(t, oracleCase('crossEntropyGrad'), async (t, b) => {
  await fc.assert(
    fc.asyncProperty(
      arbCe.filter((c) => b.floatDtypes.includes(c.dtype)),
      arbDy,
      async (c, dyv) => {
        const { got, want, tol } = tidy(() =>
          onCpu(() => {
            const { logits, target, opts, ropts } = ceInputs(c);
            const dy = tensor([dyv], [], c.dtype);
            const want = refCrossEntropyGrad(toRef(logits), toRef(target), toRef(dy).data[0], ropts);
            // Elements are dy·w·(p − onehot)/Σw: tolerance on the scale |dy|·max w/Σw (p − 1 cancels).
            const tv = toRef(target).data,
              wv = ropts.weight?.data;
            let wsum = 0,
              wmax = 0;
            for (const k of tv)
              if (k !== (c.ignoreIndex ?? -100)) {
                const wk = wv ? wv[k] : 1;
                wsum += wk;
                wmax = Math.max(wmax, wk);
              }
            const sc = (Math.abs(dyv) * wmax) / Math.max(wsum, 1e-300);
            // float32: the CPU rounds once from doubles; an f32-accumulating backend carries f32 exp/log-sum-exp
            // errors (~1 ulp of 1 per element, times the scale), with the WebGPU test's established rtol.
            const tol =
              c.dtype === 'float64'
                ? { rtol: 1e-10, atol: 1e-14 * sc }
                : b.pick({ f64: { rtol: 1e-5, atol: 1e-7 * sc }, f32: { rtol: 2e-5, atol: 1e-6 * sc } });
            return {
              got: crossEntropyGrad(b.put(logits), b.put(target), b.put(dy), { ...opts, weight: b.put(opts.weight) }),
              want,
              tol,
            };
          }),
        );
        check(await compareAsync(got, want, tol, true), `crossEntropyGrad ${JSON.stringify(c)}`);
      },
    ),
    {
      numRuns: b.runs,
      // Found by CI: logits of scale 30 made the WebGPU kernel's exp(x − (max + log Σ)) lose ~20 ulps on p.
      examples: [
        [
          {
            N: 1,
            C: 3,
            spatial: [3, 4],
            dtype: 'float32',
            targetDtype: 'int32',
            ignoreIndex: undefined,
            ignoreRate: 0,
            weighted: false,
            scale: 30,
            seed: 339862281,
          },
          -0.05,
        ],
      ],
    },
  );
});

t.test(oracleCase('crossEntropyGrad') + ': the oracle backward matches finite differences', async (t) => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 1 << 30 }), fc.boolean(), (seed, weighted) =>
      tidy(() => {
        const x = toRef(randn([2, 3, 2], { seed, dtype: 'float64' }));
        const tg = refTensor([2, 2], [0, 2, -100, 1]);
        const w = weighted ? refTensor([3], [0.5, 2, 1.5]) : null;
        const g = refCrossEntropyGrad(x, tg, 1.7, { weight: w });
        fdCheck('crossEntropy', x, g, () => 1.7 * refCrossEntropy(x, tg, { weight: w }).data[0]);
      }),
    ),
    { numRuns: Math.min(FC_RUNS, 20) },
  );
  t.pass('oracle consistent');
});

t.test(oracleCase('crossEntropy') + ' edge cases', async (t) => {
  tidy(() => {
    const logits = tensor([
      [2, 0, -1],
      [0.5, 0.5, 3],
      [1, 2, 3],
    ]);
    const target = tensor(new Int32Array([0, -100, 2]), [3]);
    const l = crossEntropy(logits, target).item();
    const want = refCrossEntropy(toRef(logits), toRef(target)).data[0];
    t.ok(Math.abs(l - want) < 1e-6, 'ignored row excluded from the mean');
    const g = crossEntropyGrad(logits, target, tensor(1)).dataSync();
    t.same(Array.from(g.slice(3, 6)), [0, 0, 0], 'ignored row has zero gradient');
    // Custom ignoreIndex inside the class range.
    const l2 = crossEntropy(logits, tensor(new Int32Array([0, 1, 1]), [3]), { ignoreIndex: 1 }).item();
    t.ok(Math.abs(l2 - refCrossEntropy(toRef(logits), refTensor([3], [0, 1, 1]), { ignoreIndex: 1 }).data[0]) < 1e-6);
    // Everything ignored: NaN, as PyTorch's mean over nothing.
    t.ok(
      Number.isNaN(crossEntropy(logits, tensor(new Int32Array([-100, -100, -100]), [3])).item()),
      'all ignored → NaN',
    );
    // Large logits stay finite.
    const big = tensor([[1e4, -1e4, 0]]);
    t.equal(crossEntropy(big, tensor(new Int32Array([0]), [1])).item(), 0);
    t.ok(Math.abs(crossEntropy(big, tensor(new Int32Array([1]), [1])).item() - 2e4) < 1, 'finite for 1e4 logits');
    // Spatial: [N, C, H, W] with uint8 labels, and a one-class problem gives 0.
    t.equal(crossEntropy(randn([2, 1, 3, 3]), tensor(new Uint8Array(18), [2, 3, 3])).item(), 0);
  });
});

t.test('crossEntropy errors', async (t) => {
  tidy(() => {
    const logits = randn([2, 3, 4]);
    opThrows(
      t,
      () => crossEntropy(logits, tensor(new Int32Array([0, 1, 2, 3, 0, 1, 2, 0]), [2, 4])),
      'crossEntropy',
      'target value 3',
      '[2, 3, 4]',
      '[2, 4]',
    );
    opThrows(
      t,
      () => crossEntropy(logits, tensor(new Int32Array([0, 1, 2, -1, 0, 1, 2, 0]), [2, 4])),
      'crossEntropy',
      'target value -1',
    );
    opThrows(
      t,
      () => crossEntropyGrad(logits, tensor(new Int32Array([0, 1, 2, 7, 0, 1, 2, 0]), [2, 4]), tensor(1)),
      'crossEntropyGrad',
      'target value 7',
    );
    opThrows(
      t,
      () => crossEntropy(tensor(new Int32Array(24), [2, 3, 4]), tensor(new Int32Array(8), [2, 4])),
      'crossEntropy',
      'int32',
      '[2, 3, 4]',
    );
    opThrows(
      t,
      () => crossEntropy(logits, tensor(new Int32Array(6), [2, 3])),
      'crossEntropy',
      '[2, 3]',
      '[2, 4]',
      '[2, 3, 4]',
    );
    opThrows(t, () => crossEntropy(logits, randn([2, 4])), 'crossEntropy', 'float32', '[2, 4]');
    opThrows(t, () => crossEntropy(randn([3]), tensor(new Int32Array(1), [1])), 'crossEntropy', '[3]', 'rank');
    opThrows(
      t,
      () => crossEntropy(logits, tensor(new Int32Array(8), [2, 4]), { weight: randn([4]) }),
      'crossEntropy',
      'weight',
      '[4]',
      '[2, 3, 4]',
    );
    opThrows(
      t,
      () => crossEntropy(logits, tensor(new Int32Array(8), [2, 4]), { ignoreIndex: 0.5 }),
      'crossEntropy',
      'ignoreIndex',
    );
  });
});

// ---------------------------------------------------------------------------
// BCE with logits

const arbBce = fc.record({
  shape: fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 0, maxLength: 4 }),
  dtype: fc.constantFrom<DType>('float32', 'float64'),
  scale: fc.constantFrom(1, 10, 100),
  hard: fc.boolean(),
  seed: fc.integer({ min: 0, max: 1 << 30 }),
});

function bceInputs(c: { shape: number[]; dtype: DType; scale: number; hard: boolean; seed: number }) {
  const x = randn(c.shape, { seed: c.seed, dtype: c.dtype, std: c.scale });
  const u = rand(c.shape, { seed: c.seed + 1, dtype: 'float64' });
  const tv = Float64Array.from(u.dataSync(), (v) => (c.hard ? (v > 0.5 ? 1 : 0) : v));
  const tg = tensor(tv, c.shape, c.dtype);
  return { x, tg };
}

forEachBackend(t, oracleCase('bceWithLogits'), async (t, b) => {
  await fc.assert(
    fc.asyncProperty(
      arbBce.filter((c) => b.floatDtypes.includes(c.dtype)),
      async (c) => {
        const { got, want, tol } = tidy(() =>
          onCpu(() => {
            const { x, tg } = bceInputs(c);
            const tol =
              c.dtype === 'float64'
                ? { rtol: 1e-12, atol: 1e-13 * c.scale }
                : { ...reductionTol(size(c.shape)), atol: 1e-6 * c.scale };
            return { got: bceWithLogits(b.put(x), b.put(tg)), want: refBceWithLogits(toRef(x), toRef(tg)), tol };
          }),
        );
        check(await compareAsync(got, want, tol, true), `bceWithLogits ${JSON.stringify(c)}`);
      },
    ),
    { numRuns: b.runs },
  );
});

forEachBackend(t, oracleCase('bceWithLogitsGrad'), async (t, b) => {
  await fc.assert(
    fc.asyncProperty(
      arbBce.filter((c) => b.floatDtypes.includes(c.dtype)),
      arbDy,
      async (c, dyv) => {
        const { got, want, xs } = tidy(() =>
          onCpu(() => {
            const { x, tg } = bceInputs(c);
            const dy = tensor([dyv], [], c.dtype);
            const want = refBceWithLogitsGrad(toRef(x), toRef(tg), toRef(dy).data[0]);
            return { got: bceWithLogitsGrad(b.put(x), b.put(tg), b.put(dy)), want, xs: maxAbs(toRef(x)) };
          }),
        );
        // dlogits = dy·(σ(x) − t)/n, dtarget = −dy·x/n: scales |dy|/n and |dy|·max|x|/n.
        const n = size(c.shape);
        for (const [name, a, r, sc] of [
          ['dlogits', got.dlogits, want.dlogits, Math.abs(dyv) / n],
          ['dtarget', got.dtarget, want.dtarget, (Math.abs(dyv) * xs) / n],
        ] as const) {
          const tol = c.dtype === 'float64' ? { rtol: 1e-10, atol: 1e-15 * sc } : { rtol: 1e-5, atol: 1e-7 * sc };
          check(await compareAsync(a, r, tol, true), `bceWithLogitsGrad ${name} ${JSON.stringify(c)}`);
        }
      },
    ),
    { numRuns: b.runs },
  );
});

t.test(oracleCase('bceWithLogitsGrad') + ': the oracle backward matches finite differences', async (t) => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 1 << 30 }), (seed) =>
      tidy(() => {
        const x = toRef(randn([2, 3], { seed, dtype: 'float64', std: 3 }));
        const tg = toRef(rand([2, 3], { seed: seed + 1, dtype: 'float64' }));
        const g = refBceWithLogitsGrad(x, tg, -0.7);
        const f = () => -0.7 * refBceWithLogits(x, tg).data[0];
        fdCheck('bce dlogits', x, g.dlogits, f);
        fdCheck('bce dtarget', tg, g.dtarget, f);
      }),
    ),
    { numRuns: Math.min(FC_RUNS, 20) },
  );
  t.pass('oracle consistent');
});

t.test(oracleCase('bceWithLogits') + ' edge cases', async (t) => {
  tidy(() => {
    // Stable at extreme logits: no log(0), no overflow.
    const x = tensor([1000, -1000, 1000, -1000, 0], [5], 'float64');
    const tg = tensor([1, 0, 0, 1, 0.5], [5], 'float64');
    const l = bceWithLogits(x, tg).item();
    t.ok(Math.abs(l - (0 + 0 + 1000 + 1000 + Math.log(2)) / 5) < 1e-9, `extreme logits: ${l}`);
    const g = bceWithLogitsGrad(x, tg, tensor(1, [], 'float64')).dlogits.dataSync();
    t.same(Array.from(g), [0, 0, 0.2, -0.2, 0], 'saturated sigmoid gradient');
    // Empty input: mean over nothing is NaN, as PyTorch.
    t.ok(Number.isNaN(bceWithLogits(tensor(new Float32Array(0), [0]), tensor(new Float32Array(0), [0])).item()));
  });
});

t.test('bceWithLogits errors', async (t) => {
  tidy(() => {
    opThrows(t, () => bceWithLogits(randn([2, 3]), randn([3, 2])), 'bceWithLogits', '[2, 3]', '[3, 2]');
    opThrows(
      t,
      () => bceWithLogits(tensor(new Int32Array(2), [2]), tensor(new Int32Array(2), [2])),
      'bceWithLogits',
      'int32',
    );
    opThrows(
      t,
      () => bceWithLogits(randn([2]), randn([2], { dtype: 'float64' })),
      'bceWithLogits',
      'float64',
      'float32',
    );
    opThrows(t, () => bceWithLogitsGrad(randn([2]), randn([2]), randn([2])), 'bceWithLogitsGrad', 'dy', '[2]');
  });
});

// ---------------------------------------------------------------------------
// soft Dice

const arbDice = fc.record({
  N: fc.integer({ min: 1, max: 3 }),
  C: fc.integer({ min: 1, max: 4 }),
  spatial: fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 0, maxLength: 3 }),
  dtype: fc.constantFrom<DType>('float32', 'float64'),
  smooth: fc.constantFrom(1e-5, 1, 0.1),
  batchDice: fc.boolean(),
  reduction: fc.constantFrom<'mean' | 'none'>('mean', 'none'),
  emptyClass: fc.boolean(),
  seed: fc.integer({ min: 0, max: 1 << 30 }),
});

function diceInputs(c: { N: number; C: number; spatial: number[]; dtype: DType; emptyClass: boolean; seed: number }) {
  const shape = [c.N, c.C, ...c.spatial];
  const S = size(c.spatial);
  const p = softmax(randn(shape, { seed: c.seed, dtype: c.dtype, std: 2 }), 1);
  // One-hot target from random labels; optionally class C−1 never occurs.
  const g = new Philox(c.seed + 1);
  const tv = new Float64Array(size(shape));
  for (let n = 0; n < c.N; n++) {
    for (let s = 0; s < S; s++) {
      let k = g.int(c.C);
      if (c.emptyClass && c.C > 1 && k === c.C - 1) k = 0;
      tv[(n * c.C + k) * S + s] = 1;
    }
  }
  const tg = tensor(tv, shape, c.dtype);
  return { shape, p, tg };
}

forEachBackend(t, oracleCase('softDiceLoss'), async (t, b) => {
  await fc.assert(
    fc.asyncProperty(
      arbDice.filter((c) => b.floatDtypes.includes(c.dtype)),
      async (c) => {
        const { got, want, tol } = tidy(() =>
          onCpu(() => {
            const { shape, p, tg } = diceInputs(c);
            const opts = { smooth: c.smooth, batchDice: c.batchDice, reduction: c.reduction };
            const tol = c.dtype === 'float64' ? { rtol: 1e-12, atol: 1e-13 } : reductionTol(size(shape));
            return {
              got: softDiceLoss(b.put(p), b.put(tg), opts),
              want: refSoftDiceLoss(toRef(p), toRef(tg), opts),
              tol,
            };
          }),
        );
        check(await compareAsync(got, want, tol, true), `softDiceLoss ${JSON.stringify(c)}`);
      },
    ),
    { numRuns: b.runs },
  );
});

forEachBackend(t, oracleCase('softDiceLossGrad'), async (t, b) => {
  await fc.assert(
    fc.asyncProperty(
      arbDice.filter((c) => b.floatDtypes.includes(c.dtype)),
      async (c) => {
        const { got, want, n } = tidy(() =>
          onCpu(() => {
            const { shape, p, tg } = diceInputs(c);
            const opts = { smooth: c.smooth, batchDice: c.batchDice, reduction: c.reduction };
            const dyShape = c.reduction === 'mean' ? [] : c.batchDice ? [c.C] : [c.N, c.C];
            const dy = randn(dyShape, { seed: c.seed + 5, dtype: c.dtype });
            const want = refSoftDiceLossGrad(toRef(p), toRef(tg), toRef(dy), opts);
            return { got: softDiceLossGrad(b.put(p), b.put(tg), b.put(dy), opts), want, n: size(shape) };
          }),
        );
        for (const [name, a, r] of [
          ['dprobs', got.dprobs, want.dprobs],
          ['dtarget', got.dtarget, want.dtarget],
        ] as const) {
          const sc = Math.max(maxAbs(r), 1e-300);
          const tol =
            c.dtype === 'float64' ? { rtol: 1e-9, atol: 1e-12 * sc } : { rtol: 1e-4, atol: 1e-5 * Math.sqrt(n) * sc };
          check(await compareAsync(a, r, tol, true), `softDiceLossGrad ${name} ${JSON.stringify(c)}`);
        }
      },
    ),
    { numRuns: b.runs },
  );
});

t.test(oracleCase('softDiceLossGrad') + ': the oracle backward matches finite differences', async (t) => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 1 << 30 }),
      fc.boolean(),
      fc.constantFrom<'mean' | 'none'>('mean', 'none'),
      (seed, batchDice, reduction) =>
        tidy(() => {
          const p = toRef(rand([2, 3, 4], { seed, dtype: 'float64' }));
          const tg = toRef(rand([2, 3, 4], { seed: seed + 1, dtype: 'float64' }));
          const opts = { smooth: 0.5, batchDice, reduction };
          const dy = toRef(
            randn(reduction === 'mean' ? [] : batchDice ? [3] : [2, 3], { seed: seed + 2, dtype: 'float64' }),
          );
          const g = refSoftDiceLossGrad(p, tg, dy, opts);
          const f = () => refSoftDiceLoss(p, tg, opts).data.reduce((s, v, i) => s + v * dy.data[i], 0);
          fdCheck('dice dprobs', p, g.dprobs, f);
          fdCheck('dice dtarget', tg, g.dtarget, f);
        }),
    ),
    { numRuns: Math.min(FC_RUNS, 20) },
  );
  t.pass('oracle consistent');
});

t.test(oracleCase('softDiceLoss') + ' edge cases', async (t) => {
  tidy(() => {
    // Empty target and empty prediction: Dice = smooth/smooth = 1, loss 0.
    const z = tensor(new Float32Array(2 * 3 * 8), [2, 3, 8]);
    t.equal(softDiceLoss(z, z).item(), 0, 'empty/empty → 0');
    t.equal(softDiceLoss(z, z, { batchDice: true }).item(), 0, 'empty/empty → 0 (batch dice)');
    t.same(Array.from(softDiceLoss(z, z, { reduction: 'none' }).dataSync()), [0, 0, 0, 0, 0, 0]);
    // Perfect prediction: loss ≈ 0; disjoint: loss ≈ 1.
    const a = tensor([[[1, 0, 1, 0]]]),
      b = tensor([[[0, 1, 0, 1]]]);
    t.ok(Math.abs(softDiceLoss(a, a).item()) < 1e-6, 'perfect → 0');
    t.ok(Math.abs(softDiceLoss(a, b).item() - 1) < 1e-5, 'disjoint → ~1');
    // The audit definition: 1 − mean over classes (and samples) of (2Σpt + s)/(Σp + Σt + s).
    const p = tensor([[[0.2, 0.8]], [[0.6, 0.4]]], [2, 1, 2], 'float64'),
      tg = tensor([[[0, 1]], [[1, 1]]], [2, 1, 2], 'float64');
    const s = 1e-5;
    const d0 = (2 * 0.8 + s) / (1 + 1 + s),
      d1 = (2 * 1 + s) / (1 + 2 + s);
    t.ok(Math.abs(softDiceLoss(p, tg).item() - (1 - (d0 + d1) / 2)) < 1e-15, 'per-sample definition');
    const db = (2 * 1.8 + s) / (2 + 3 + s);
    t.ok(Math.abs(softDiceLoss(p, tg, { batchDice: true }).item() - (1 - db)) < 1e-15, 'batch definition');
    t.same(softDiceLoss(p, tg, { reduction: 'none' }).shape, [2, 1]);
    t.same(softDiceLoss(p, tg, { reduction: 'none', batchDice: true }).shape, [1]);
    // smooth 0 with an empty class is 0/0 = NaN, as the formula says.
    t.ok(Number.isNaN(softDiceLoss(z, z, { smooth: 0 }).item()));
  });
});

t.test('softDiceLoss errors', async (t) => {
  tidy(() => {
    opThrows(t, () => softDiceLoss(randn([2, 3, 4]), randn([2, 3, 5])), 'softDiceLoss', '[2, 3, 4]', '[2, 3, 5]');
    opThrows(t, () => softDiceLoss(randn([4]), randn([4])), 'softDiceLoss', '[4]', 'rank');
    opThrows(
      t,
      () => softDiceLoss(tensor(new Int32Array(4), [1, 1, 4]), tensor(new Int32Array(4), [1, 1, 4])),
      'softDiceLoss',
      'int32',
    );
    opThrows(t, () => softDiceLoss(randn([1, 2, 2]), randn([1, 2, 2]), { smooth: -1 }), 'softDiceLoss', 'smooth');
    opThrows(
      t,
      () => softDiceLoss(randn([1, 2, 2]), randn([1, 2, 2]), { reduction: 'sum' as 'mean' }),
      'softDiceLoss',
      'reduction',
    );
    opThrows(
      t,
      () => softDiceLossGrad(randn([1, 2, 2]), randn([1, 2, 2]), randn([2])),
      'softDiceLossGrad',
      'dy',
      '[2]',
    );
  });
});

// ---------------------------------------------------------------------------
// float32 inputs of unit scale at the sizes where the WebGPU kernels change
// strategy (many workgroup partials, chunked rows), uint8 labels; every backend.
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

  // cross-entropy

  interface CeCase {
    shape: number[];
    targets: number[];
    ignoreIndex: number;
    weighted: boolean;
    u8: boolean;
    seed: number;
    dy: number;
  }
  const arbCe: fc.Arbitrary<CeCase> = fc
    .record({
      N: fc.integer({ min: 1, max: 3 }),
      C: fc.integer({ min: 1, max: 6 }),
      spatial: fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 0, maxLength: 2 }),
      ignore: fc.constantFrom(-100, 0, 1),
      weighted: fc.boolean(),
      u8: fc.boolean(),
      seed,
      dy: fc.double({ min: -2, max: 2, noNaN: true }),
    })
    .chain((r) => {
      const tshape = [r.N, ...r.spatial];
      return fc
        .array(fc.integer({ min: 0, max: r.C }), { minLength: size(tshape), maxLength: size(tshape) })
        .map((tv) => ({
          shape: [r.N, r.C, ...r.spatial],
          // r.C stands for "ignored" (ignoreIndex -100 cannot be stored in uint8: then it is class 0).
          targets: tv.map((v) => (v === r.C ? (r.u8 && r.ignore < 0 ? 0 : r.ignore) : v)),
          ignoreIndex: r.ignore,
          weighted: r.weighted,
          u8: r.u8,
          seed: r.seed,
          dy: Math.fround(r.dy),
        }));
    });

  const ceTshape = (c: CeCase) => [c.shape[0], ...c.shape.slice(2)];

  forEachBackend(t, oracleCase('crossEntropy') + ': f32 partial sums and long inputs', async (t, b) => {
    {
      await fc.assert(
        fc.asyncProperty(arbCe, async (c) => {
          const x = normals(size(c.shape), c.seed, 0, 3),
            w = uniforms(c.shape[1], c.seed + 1);
          const y = tidy(() =>
            C.crossEntropy(tensor(x, c.shape), tensor(c.targets, ceTshape(c), c.u8 ? 'uint8' : 'int32'), {
              ignoreIndex: c.ignoreIndex,
              weight: c.weighted ? tensor(w, [c.shape[1]]) : null,
            }),
          );
          const want = refCrossEntropy(refTensor(c.shape, x), refTensor(ceTshape(c), c.targets), {
            ignoreIndex: c.ignoreIndex,
            weight: c.weighted ? refTensor([c.shape[1]], w) : null,
          });
          await expect(y, want, { rtol: 2e-5, atol: 2e-6 }, `crossEntropy ${JSON.stringify(c)}`);
        }),
        { numRuns: b.runs },
      );
      if (b.name === 'webgpu') {
        // Labels on the GPU cannot throw: an out-of-range label makes the loss NaN (documented; the CPU throws).
        const bad = tidy(() =>
          C.crossEntropy(
            tensor([
              [1, 2],
              [3, 4],
            ]),
            tensor([1, 5], [2], 'int32'),
          ),
        );
        t.ok(Number.isNaN((await take(bad)).data[0]), 'an out-of-range label gives NaN on webgpu');
      }
    }
  });

  forEachBackend(t, oracleCase('crossEntropyGrad') + ': f32 partial sums and long inputs', async (t, b) => {
    {
      await fc.assert(
        fc.asyncProperty(arbCe, async (c) => {
          const x = normals(size(c.shape), c.seed, 0, 3),
            w = uniforms(c.shape[1], c.seed + 1);
          const g = tidy(() =>
            C.crossEntropyGrad(
              tensor(x, c.shape),
              tensor(c.targets, ceTshape(c), c.u8 ? 'uint8' : 'int32'),
              tensor([c.dy], []),
              { ignoreIndex: c.ignoreIndex, weight: c.weighted ? tensor(w, [c.shape[1]]) : null },
            ),
          );
          const want = refCrossEntropyGrad(refTensor(c.shape, x), refTensor(ceTshape(c), c.targets), c.dy, {
            ignoreIndex: c.ignoreIndex,
            weight: c.weighted ? refTensor([c.shape[1]], w) : null,
          });
          await expect(g, want, { rtol: 2e-5, atol: 1e-6 }, `crossEntropyGrad ${JSON.stringify(c)}`);
        }),
        { numRuns: b.runs },
      );
    }
  });

  // BCE with logits

  const arbBce = arbShape(0, 4, 6).chain((s) =>
    fc.tuple(fc.constant(s), seed, fc.double({ min: -2, max: 2, noNaN: true })),
  );

  forEachBackend(t, oracleCase('bceWithLogits') + ': f32 partial sums and long inputs', async (t, b) => {
    {
      await fc.assert(
        fc.asyncProperty(arbBce, async ([shape, s]) => {
          const x = normals(size(shape), s, 0, 4),
            tg = uniforms(size(shape), s + 1);
          const y = tidy(() => C.bceWithLogits(tensor(x, shape), tensor(tg, shape)));
          await expect(
            y,
            refBceWithLogits(refTensor(shape, x), refTensor(shape, tg)),
            { rtol: 2e-5, atol: 2e-6 },
            `bce [${shape}]`,
          );
        }),
        { numRuns: b.runs },
      );
      // A long input: many workgroup partials.
      const n = 70001,
        x = normals(n, 5, 0, 6),
        tg = uniforms(n, 6);
      const y = tidy(() => C.bceWithLogits(tensor(x, [n]), tensor(tg, [n])));
      await expect(y, refBceWithLogits(refTensor([n], x), refTensor([n], tg)), { rtol: 1e-5, atol: 1e-6 }, 'bce long');
    }
  });

  forEachBackend(t, oracleCase('bceWithLogitsGrad') + ': f32 partial sums and long inputs', async (t, b) => {
    {
      await fc.assert(
        fc.asyncProperty(arbBce, async ([shape, s, dy]) => {
          const x = normals(size(shape), s, 0, 4),
            tg = uniforms(size(shape), s + 1),
            d = Math.fround(dy);
          const g = tidy(() => {
            const r = C.bceWithLogitsGrad(tensor(x, shape), tensor(tg, shape), tensor([d], []));
            return [r.dlogits, r.dtarget];
          });
          const want = refBceWithLogitsGrad(refTensor(shape, x), refTensor(shape, tg), d);
          const tol = { rtol: 2e-5, atol: 1e-7 };
          await expect(g[0], want.dlogits, tol, `bce dlogits [${shape}]`);
          await expect(g[1], want.dtarget, tol, `bce dtarget [${shape}]`);
        }),
        { numRuns: b.runs },
      );
    }
  });

  // soft Dice

  interface DiceCase {
    shape: number[];
    smooth: number;
    batchDice: boolean;
    reduction: 'mean' | 'none';
    hard: boolean;
    seed: number;
  }
  const arbDice: fc.Arbitrary<DiceCase> = fc
    .record({
      N: fc.integer({ min: 1, max: 3 }),
      C: fc.integer({ min: 1, max: 4 }),
      spatial: fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 0, maxLength: 3 }),
      smooth: fc.constantFrom(1e-5, 1, 0),
      batchDice: fc.boolean(),
      reduction: fc.constantFrom<'mean' | 'none'>('mean', 'none'),
      hard: fc.boolean(),
      seed,
    })
    .map((r) => ({
      shape: [r.N, r.C, ...r.spatial],
      smooth: r.smooth,
      batchDice: r.batchDice,
      reduction: r.reduction,
      hard: r.hard,
      seed: r.seed,
    }));

  function diceInputs(c: DiceCase) {
    const p = uniforms(size(c.shape), c.seed);
    const tg = uniforms(size(c.shape), c.seed + 1).map((v) => (c.hard ? (v > 0.5 ? 1 : 0) : v));
    // smooth 0 with an all-zero group is 0/0: keep the denominators positive.
    if (c.smooth === 0)
      p.forEach((v, i) => {
        p[i] = 0.05 + 0.9 * v;
      });
    const o = { smooth: c.smooth, batchDice: c.batchDice, reduction: c.reduction };
    const dyShape = c.reduction === 'mean' ? [] : c.batchDice ? [c.shape[1]] : [c.shape[0], c.shape[1]];
    return { p, tg, o, dyShape, dy: normals(size(dyShape), c.seed + 2) };
  }

  forEachBackend(t, oracleCase('softDiceLoss') + ': f32 partial sums and long inputs', async (t, b) => {
    {
      await fc.assert(
        fc.asyncProperty(arbDice, async (c) => {
          const { p, tg, o } = diceInputs(c);
          const y = tidy(() => C.softDiceLoss(tensor(p, c.shape), tensor(tg, c.shape), o));
          await expect(
            y,
            refSoftDiceLoss(refTensor(c.shape, p), refTensor(c.shape, tg), o),
            { rtol: 2e-5, atol: 2e-6 },
            `softDice ${JSON.stringify(c)}`,
          );
        }),
        { numRuns: b.runs },
      );
      // Long groups (chunked rows).
      const c: DiceCase = {
        shape: [2, 2, 20000],
        smooth: 1e-5,
        batchDice: true,
        reduction: 'mean',
        hard: true,
        seed: 3,
      };
      const { p, tg, o } = diceInputs(c);
      const y = tidy(() => C.softDiceLoss(tensor(p, c.shape), tensor(tg, c.shape), o));
      await expect(
        y,
        refSoftDiceLoss(refTensor(c.shape, p), refTensor(c.shape, tg), o),
        { rtol: 1e-5, atol: 2e-6 },
        'softDice long',
      );
    }
  });

  forEachBackend(t, oracleCase('softDiceLossGrad') + ': f32 partial sums and long inputs', async (t, b) => {
    {
      await fc.assert(
        fc.asyncProperty(arbDice, async (c) => {
          const { p, tg, o, dy, dyShape } = diceInputs(c);
          const g = tidy(() => {
            const r = C.softDiceLossGrad(tensor(p, c.shape), tensor(tg, c.shape), tensor(dy, dyShape), o);
            return [r.dprobs, r.dtarget];
          });
          const want = refSoftDiceLossGrad(refTensor(c.shape, p), refTensor(c.shape, tg), refTensor(dyShape, dy), o);
          const sc = maxAbs(want.dprobs.data) + maxAbs(want.dtarget.data);
          await expect(g[0], want.dprobs, { rtol: 5e-5, atol: 1e-6 * sc }, `softDice dprobs ${JSON.stringify(c)}`);
          await expect(g[1], want.dtarget, { rtol: 5e-5, atol: 1e-6 * sc }, `softDice dtarget ${JSON.stringify(c)}`);
        }),
        { numRuns: b.runs },
      );
    }
  });
}
