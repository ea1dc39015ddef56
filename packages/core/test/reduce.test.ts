// Property tests of the reductions against the float64 oracle, written once
// and run on every backend (forEachBackend): random shapes (rank 0 and size-1
// dims), axis specs (all, one, a list, empty, non-adjacent, negative), keepDims
// both ways, NaN, ties, the backend's float dtypes and int32 / uint8; sizes
// that take WebGPU's workgroup-tree and two-pass paths; edge cases.
import t from 'tap';
import fc from 'fast-check';
import * as C from '@largo/core';
import { tensor, tidy, type DType, type Tensor } from '@largo/core';
import {
  refArg,
  refMax,
  refMean,
  refMin,
  refSum,
  refTensor,
  refUnary,
  refVariance,
  type RefTensor,
} from '@largo/core/reference';
import {
  arbShape,
  compareAsync,
  forEachBackend,
  oracleCase,
  reductionTol,
  stored,
  type BackendCase,
  type Tol,
} from '@largo/test-support';

const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
const EXACT: Tol = { rtol: 0, atol: 0 };

/**
 * Values: mostly floats in [-3, 3], a coarse grid to force ties, occasionally
 * NaN. For float32 on an f32-accumulating backend (WebGPU, which may flush
 * subnormals) values below 1e-30 become 0.
 */
const arbVals = (n: number, nan: boolean, f32: boolean, flush = false) =>
  fc.array(
    fc.oneof(
      {
        arbitrary: fc
          .double({ min: -3, max: 3, noNaN: true })
          .map((v) => (flush && Math.abs(v) < 1e-30 ? 0 : f32 ? Math.fround(v) : v)),
        weight: 8,
      },
      { arbitrary: fc.constantFrom(-1, 0, 1, 2), weight: 3 },
      { arbitrary: fc.constant(NaN), weight: nan ? 1 : 0 },
    ),
    { minLength: n, maxLength: n },
  );

/**
 * A shape and a reduction spec: `undefined` (all axes), a single axis or a
 * list of axes (empty, or any subset, non-adjacent too), each given as a
 * positive or negative number.
 */
const arbReduction = (maxRank = 4, maxDim = 5) =>
  arbShape(0, maxRank, maxDim).chain((shape) => {
    const r = shape.length;
    const axis =
      r === 0 ? fc.constantFrom(0, -1) : fc.integer({ min: 0, max: r - 1 }).chain((a) => fc.constantFrom(a, a - r));
    const axes = fc.oneof(
      fc.constant(undefined),
      axis,
      r === 0
        ? fc.constant([] as number[])
        : fc
            .uniqueArray(fc.integer({ min: 0, max: r - 1 }), { minLength: 0, maxLength: r })
            .chain((list) => fc.tuple(...list.map((a) => fc.constantFrom(a, a - r)))),
    );
    return fc.tuple(fc.constant(shape), axes, fc.boolean());
  });

/** Axes as the oracle wants them: sorted, non-negative. */
function normAxes(axes: number | number[] | undefined, rank: number): number[] {
  if (rank === 0) return [];
  if (axes === undefined) return Array.from({ length: rank }, (_, i) => i);
  const list = typeof axes === 'number' ? [axes] : axes;
  return [...new Set(list.map((a) => (a < 0 ? a + rank : a)))].sort((a, b) => a - b);
}

function check(msg: string | null, what: string): void {
  if (msg !== null) throw new Error(`${what}: ${msg}`);
}
const rounded = (r: RefTensor, dtype: DType): RefTensor => (dtype === 'float32' ? refUnary(r, Math.fround) : r);

/** Reads `y` on any backend (then disposes it) and throws with `what` unless it matches `want`. */
async function expectClose(y: Tensor, want: RefTensor, tol: Tol, what: string): Promise<void> {
  check(await compareAsync(y, want, tol, true), what);
}
function expectDtype(y: Tensor, dtype: DType, what: string): void {
  if (y.dtype === dtype) return;
  const got = y.dtype;
  y.dispose();
  throw new Error(`${what}: dtype ${got}, expected ${dtype}`);
}

/**
 * float32 summation in float32 (an f32-accumulating backend): at worst about
 * n·eps·mean|x| per output (WebGPU's tree usually does far better).
 */
const f32SumTol = (x: ArrayLike<number>, n: number): Tol => {
  let s = 0;
  for (let i = 0; i < x.length; i++) if (Number.isFinite(x[i])) s += Math.abs(x[i]);
  return { rtol: 1e-5, atol: 2e-7 * Math.max(n, 1) * Math.max(s / Math.max(x.length, 1), 1) + 1e-6 };
};

interface ReduceCase {
  name: string;
  op: 'sum' | 'max' | 'min' | 'mean' | 'variance';
  fn: (x: Tensor, axes: number | number[] | undefined, keepDims: boolean) => Tensor;
  ref: (x: RefTensor, axes: number[], keepDims: boolean) => RefTensor;
  exact?: boolean;
  nan?: boolean;
  /** Also on int32 / uint8 (sum of uint8 is int32, so it cannot overflow). */
  ints?: boolean;
}
const CASES: ReduceCase[] = [
  { name: oracleCase('sum'), op: 'sum', fn: C.sum, ref: refSum, nan: true, ints: true },
  { name: oracleCase('max'), op: 'max', fn: C.max, ref: refMax, exact: true, nan: true, ints: true },
  { name: oracleCase('min'), op: 'min', fn: C.min, ref: refMin, exact: true, nan: true, ints: true },
  { name: oracleCase('mean'), op: 'mean', fn: C.mean, ref: refMean, nan: true },
  {
    name: oracleCase('variance') + ' (correction 0)',
    op: 'variance',
    fn: (x, a, k) => C.variance(x, a, k, 0),
    ref: (x, a, k) => refVariance(x, a, k, 0),
  },
  {
    name: oracleCase('variance') + ' (correction 1)',
    op: 'variance',
    fn: (x, a, k) => C.variance(x, a, k, 1),
    ref: (x, a, k) => refVariance(x, a, k, 1),
  },
];

/** The float tolerance of `c` over `n` reduced values: exact for max/min; an f32-accumulating backend's sum its own. */
function floatTol(b: BackendCase, c: ReduceCase, dtype: DType, values: number[], n: number): Tol {
  if (c.exact) return EXACT;
  if (dtype === 'float64') return { rtol: 1e-12, atol: 1e-13 };
  return c.op === 'sum' ? b.pick({ f64: reductionTol(n), f32: f32SumTol(values, n) }) : reductionTol(n);
}

for (const c of CASES) {
  forEachBackend(t, c.name, async (t, b) => {
    await fc.assert(
      fc.asyncProperty(
        arbReduction().chain(([shape, axes, keepDims]) =>
          fc
            .constantFrom<DType>(...b.floatDtypes)
            .chain((dt) =>
              fc.tuple(
                fc.constant(shape),
                fc.constant(axes),
                fc.constant(keepDims),
                fc.constant(dt),
                arbVals(size(shape), !!c.nan, dt === 'float32', b.accumulate === 'f32'),
              ),
            ),
        ),
        async ([shape, axes, keepDims, dtype, values]) => {
          const ax = normAxes(axes, shape.length);
          const y = tidy(() => c.fn(tensor(Float64Array.from(values), shape, dtype), axes, keepDims));
          expectDtype(y, dtype, c.op);
          const n = Math.max(1, size(ax.map((a) => shape[a])));
          await expectClose(
            y,
            rounded(c.ref(refTensor(shape, values), ax, keepDims), dtype),
            floatTol(b, c, dtype, values, n),
            `${c.op}([${shape}] ${JSON.stringify(values)}, axes ${JSON.stringify(axes)}, keepDims ${keepDims}) ${dtype}`,
          );
        },
      ),
      { numRuns: b.runs },
    );
    if (!c.ints) return;
    for (const dtype of ['int32', 'uint8'] as DType[]) {
      await fc.assert(
        fc.asyncProperty(
          arbReduction(3).chain(([s, a, k]) =>
            fc.tuple(
              fc.constant(s),
              fc.constant(a),
              fc.constant(k),
              fc.array(fc.integer({ min: dtype === 'uint8' ? 0 : -100, max: dtype === 'uint8' ? 255 : 100 }), {
                minLength: size(s),
                maxLength: size(s),
              }),
            ),
          ),
          async ([shape, axes, keepDims, values]) => {
            const y = tidy(() => c.fn(tensor(values, shape, dtype), axes, keepDims));
            // A sum of uint8 is int32 (uint8 would overflow); max and min keep the dtype.
            const want: DType = c.op === 'sum' ? 'int32' : dtype;
            expectDtype(y, want, `${c.op} of ${dtype}`);
            const r = c.ref(refTensor(shape, values), normAxes(axes, shape.length), keepDims);
            await expectClose(
              y,
              refTensor(r.shape, stored(r.data, want)),
              EXACT,
              `${c.op} ${dtype} over ${JSON.stringify(axes)} of [${shape}] keepDims ${keepDims}`,
            );
          },
        ),
        { numRuns: Math.ceil(b.runs / 2) },
      );
    }
  });
}

t.test('mean and variance take float input only', async (t) => {
  t.throws(() => C.mean(tensor([1, 2], [2], 'int32')), {
    name: 'OpError',
    message: /^mean: input must be float32 or float64, got int32/,
  });
});

forEachBackend(t, oracleCase('variance') + ': fixed example, mean over two axes', async (t) => {
  const xs = Array.from({ length: 24 }, (_, i) => Math.fround(Math.sin(i * 1.7 + 3)));
  const x = tensor(Float32Array.from(xs), [2, 3, 4]);
  const m = C.mean(x, [0, 2]),
    v = C.variance(x, [1], true, 1);
  const want = [0, 1, 2].map((j) => {
    let s = 0;
    for (let i = 0; i < 2; i++) for (let k = 0; k < 4; k++) s += xs[i * 12 + j * 4 + k];
    return s / 8;
  });
  await expectClose(m, refTensor([3], want), { rtol: 1e-5, atol: 1e-6 }, 'mean');
  t.same(v.shape, [2, 1, 4]);
  t.ok(
    Array.from(await v.data()).every((q) => q >= 0),
    'variance is non-negative',
  );
  await expectClose(v, refVariance(refTensor([2, 3, 4], xs), [1], true, 1), reductionTol(3), 'variance');
  x.dispose();
});

for (const [name, op, kind] of [
  [oracleCase('argmax'), 'argmax', 'max'],
  [oracleCase('argmin'), 'argmin', 'min'],
] as const) {
  forEachBackend(t, name, async (t, b) => {
    const fn = op === 'argmax' ? C.argmax : C.argmin;
    const flush = b.accumulate === 'f32';
    await fc.assert(
      fc.asyncProperty(
        arbShape(1, 4, 5).chain((s) =>
          fc.tuple(
            fc.constant(s),
            fc.integer({ min: -s.length, max: s.length - 1 }),
            fc.boolean(),
            fc.constantFrom<DType>(...b.floatDtypes),
            arbVals(size(s), true, true, flush),
          ),
        ),
        async ([shape, axis, keepDims, dtype, values]) => {
          const y = tidy(() => fn(tensor(Float64Array.from(values), shape, dtype), axis, keepDims));
          expectDtype(y, 'int32', op);
          const a = axis < 0 ? axis + shape.length : axis;
          await expectClose(
            y,
            refArg(refTensor(shape, values), a, kind, keepDims),
            EXACT,
            `${op}([${shape}] ${JSON.stringify(values)}, ${axis}, ${keepDims}) ${dtype}`,
          );
        },
      ),
      { numRuns: b.runs },
    );
    // No axis: the index into the flattened tensor (rank 0 included).
    await fc.assert(
      fc.asyncProperty(
        arbShape(0, 4, 4).chain((s) => fc.tuple(fc.constant(s), arbVals(size(s), true, true, flush))),
        async ([shape, values]) => {
          const y = tidy(() => fn(tensor(Float32Array.from(values), shape)));
          const flat = refTensor([values.length], values);
          await expectClose(y, refArg(flat, 0, kind), EXACT, `${op}([${shape}] ${JSON.stringify(values)}) flattened`);
        },
      ),
      { numRuns: b.runs },
    );
    // int32 input, with ties on a coarse grid.
    await fc.assert(
      fc.asyncProperty(
        arbShape(1, 3, 5).chain((s) =>
          fc.tuple(
            fc.constant(s),
            fc.integer({ min: 0, max: s.length - 1 }),
            fc.array(fc.integer({ min: -3, max: 3 }), { minLength: size(s), maxLength: size(s) }),
          ),
        ),
        async ([shape, axis, values]) => {
          const y = tidy(() => fn(tensor(values, shape, 'int32'), axis));
          await expectClose(y, refArg(refTensor(shape, values), axis, kind), EXACT, `${op} int32 along ${axis}`);
        },
      ),
      { numRuns: Math.ceil(b.runs / 3) },
    );
    const x = tensor([3, 1, 7, 7, -2, 0], [2, 3]);
    const y = fn(x);
    t.same(Array.from(await y.data()), [kind === 'max' ? 2 : 4], 'flattened index, first of ties');
    y.dispose();
    x.dispose();
  });
}

/** Deterministic values in [-1, 1) (a cheap hash; no fast-check needed for the big cases). */
function pseudo(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

forEachBackend(t, oracleCase('sum') + ': sizes of the workgroup-tree and two-pass paths', async (t) => {
  const cases: { shape: number[]; axes: number[] }[] = [
    { shape: [3, 5000], axes: [1] }, // tree, rows contiguous
    { shape: [40000], axes: [0] }, // tree in two passes (chunks)
    { shape: [2, 300, 3], axes: [1] }, // tree with inner > 1 (few outputs)
    { shape: [130, 3, 140], axes: [0, 2] }, // two runs: inner axis, then outer
    { shape: [4, 2, 9000], axes: [0, 2] }, // chunked run, then a short one
  ];
  for (const { shape, axes } of cases) {
    const v = pseudo(size(shape), size(shape));
    v[7] = NaN;
    for (const op of ['sum', 'max', 'min'] as const) {
      const vals = op === 'sum' ? v.map((x) => (Number.isNaN(x) ? 0.5 : x)) : v;
      const ref = { sum: refSum, max: refMax, min: refMin }[op](refTensor(shape, vals), axes, false);
      const y = tidy(() => C[op](tensor(vals, shape), axes));
      await expectClose(
        y,
        ref,
        op === 'sum' ? { rtol: 1e-5, atol: 2e-6 * Math.sqrt(size(shape)) } : EXACT,
        `${op} over [${axes}] of [${shape}]`,
      );
    }
    if (axes.length === 1) {
      for (const kind of ['max', 'min'] as const) {
        const w = v.map((x) => (Number.isNaN(x) ? 0 : x));
        w[w.length - 3] = kind === 'max' ? 5 : -5;
        const y = tidy(() => C[kind === 'max' ? 'argmax' : 'argmin'](tensor(w, shape), axes[0]));
        await expectClose(
          y,
          refArg(refTensor(shape, w), axes[0], kind),
          EXACT,
          `arg${kind} along ${axes[0]} of [${shape}]`,
        );
        const z = tidy(() => C[kind === 'max' ? 'argmax' : 'argmin'](tensor(v, shape), axes[0]));
        await expectClose(
          z,
          refArg(refTensor(shape, v), axes[0], kind),
          EXACT,
          `arg${kind} with NaN along ${axes[0]} of [${shape}]`,
        );
      }
    }
  }
  // Integer sums wrap like an Int32Array store; uint8 sums widen to int32.
  const u8 = tensor(new Uint8Array(70000).fill(255), [70000], 'uint8');
  const s = C.sum(u8);
  t.equal(s.dtype, 'int32');
  t.same(Array.from(await s.data()), [255 * 70000]);
  s.dispose();
  u8.dispose();
});

t.test('reduction edge cases', async (t) => {
  const x = tensor([
    [1, 5, 5],
    [NaN, 2, 0],
  ]);
  t.same(C.argmax(x, 1).toArray(), [1, 0], 'ties: first index; NaN wins');
  t.same(C.argmin(x, 1).toArray(), [0, 0]);
  t.same(C.argmax(x).item(), 3, 'flattened NaN position');
  t.same(C.argmax(tensor(3)).item(), 0, 'scalar');
  t.same(C.argmax(tensor(3), 0).item(), 0, 'scalar with axis 0');
  t.same(C.sum(tensor(4), -1).item(), 4, 'scalar accepts axis -1');
  t.same(C.mean(tensor(4), 0).item(), 4, 'mean of a scalar over axis 0');
  t.same(C.sum(x, [0, 1], true).shape, [1, 1]);
  t.same((C.max(x, 0).toArray() as number[]).map(String), ['NaN', '5', '5']);
  t.same(C.sum(tensor([], [0, 3]), 0).toArray(), [0, 0, 0], 'sum over an empty axis is 0');
  t.same(C.sum(tensor([], [2, 0]), 1).toArray(), [0, 0]);
  t.throws(() => C.max(tensor([], [0, 3]), 0), {
    name: 'OpError',
    message: /^max: cannot reduce an empty axis of shape \[0, 3\]/,
  });
  t.throws(() => C.argmin(tensor([], [2, 0]), 1), {
    name: 'OpError',
    message: /^argmin: cannot reduce an empty axis of shape \[2, 0\]/,
  });
  // Variance is two-pass: a large offset must not destroy the result (E[x²]−E[x]² would).
  const big = tensor([1e4 + 1, 1e4 + 2, 1e4 + 3, 1e4 + 4]);
  t.ok(Math.abs(C.variance(big).item() - 1.25) < 1e-6, `variance with offset: ${C.variance(big).item()}`);
  t.ok(Math.abs(C.variance(big, 0, false, 1).item() - 5 / 3) < 1e-6);
  t.ok(Number.isNaN(C.variance(tensor([2]), 0, false, 1).item()), 'unbiased variance of one sample is NaN (0/0)');
  // float32 sums accumulate in float64.
  const many = C.full([100000], 0.1);
  t.ok(Math.abs(C.sum(many).item() - 10000) < 1e-2, `sum of 1e5 × 0.1 = ${C.sum(many).item()}`);
});
