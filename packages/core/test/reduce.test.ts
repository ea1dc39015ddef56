// Property tests of the reductions against the float64 oracle: random
// shapes (rank 0 and size-1 dims), random axis subsets given with negative
// numbers, keepDims both ways, NaN, ties, float32/float64 and integers.
import t from 'tap';
import fc from 'fast-check';
import * as C from '@largo/core';
import { tensor, memory, tidy, type DType, type Tensor } from '@largo/core';
import { refArg, refMax, refMean, refMin, refSum, refUnary, refVariance, type RefTensor } from '@largo/core/reference';
import { compare, oracleCase, toRef, FC_RUNS, arbShape, reductionTol, type Tol } from '@largo/test-support';

const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/** Values: mostly floats in [-3, 3], a coarse grid to force ties, occasionally NaN. */
const arbVals = (n: number, nan: boolean, f32: boolean) =>
  fc.array(
    fc.oneof(
      { arbitrary: fc.double({ min: -3, max: 3, noNaN: true }).map((v) => (f32 ? Math.fround(v) : v)), weight: 8 },
      { arbitrary: fc.constantFrom(-1, 0, 1, 2), weight: 3 },
      { arbitrary: fc.constant(NaN), weight: nan ? 1 : 0 },
    ),
    { minLength: n, maxLength: n },
  );

/**
 * A shape and a reduction spec: `undefined` (all axes), a single axis or a
 * list of axes, each given as a positive or negative number.
 */
const arbReduction = (maxRank = 4) =>
  arbShape(0, maxRank, 4).chain((shape) => {
    const r = shape.length;
    const axis =
      r === 0 ? fc.constantFrom(0, -1) : fc.integer({ min: 0, max: r - 1 }).chain((a) => fc.constantFrom(a, a - r));
    const axes = fc.oneof(
      fc.constant(undefined),
      axis,
      r === 0
        ? fc.constant([] as number[])
        : fc
            .uniqueArray(fc.integer({ min: 0, max: r - 1 }), { minLength: 1, maxLength: r })
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
const show = (r: RefTensor) => `[${r.shape.join(', ')}] ${JSON.stringify(Array.from(r.data))}`;
const rounded = (r: RefTensor, dtype: DType): RefTensor => (dtype === 'float32' ? refUnary(r, Math.fround) : r);

function leakFree(
  t: { same(found: unknown, wanted: unknown, msg: string): boolean },
  name: string,
  body: () => void,
): void {
  const before = memory();
  body();
  t.same(memory(), before, `${name}: no tensor or buffer leaked`);
}

interface ReduceCase {
  name: string;
  op: string;
  fn: (x: Tensor, axes: number | number[] | undefined, keepDims: boolean) => Tensor;
  ref: (x: RefTensor, axes: number[], keepDims: boolean) => RefTensor;
  exact?: boolean;
  nan?: boolean;
}
const CASES: ReduceCase[] = [
  { name: oracleCase('sum'), op: 'sum', fn: C.sum, ref: refSum, nan: true },
  { name: oracleCase('max'), op: 'max', fn: C.max, ref: refMax, exact: true, nan: true },
  { name: oracleCase('min'), op: 'min', fn: C.min, ref: refMin, exact: true, nan: true },
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

for (const c of CASES) {
  t.test(c.name, async (t) => {
    leakFree(t, c.op, () => {
      fc.assert(
        fc.property(
          arbReduction().chain(([shape, axes, keepDims]) =>
            fc
              .tuple(
                fc.constant(shape),
                fc.constant(axes),
                fc.constant(keepDims),
                fc.constantFrom<DType>('float32', 'float64'),
              )
              .chain(([s, a, k, dt]) =>
                fc.tuple(
                  fc.constant(s),
                  fc.constant(a),
                  fc.constant(k),
                  fc.constant(dt),
                  arbVals(size(s), !!c.nan, dt === 'float32'),
                ),
              ),
          ),
          ([shape, axes, keepDims, dtype, values]) =>
            tidy(() => {
              const x = tensor(Float64Array.from(values), shape, dtype);
              const ax = normAxes(axes, shape.length);
              const y = c.fn(x, axes, keepDims);
              if (y.dtype !== dtype) throw new Error(`${c.op}: dtype ${y.dtype}, expected ${dtype}`);
              const n = Math.max(1, size(ax.map((a) => shape[a])));
              const tol: Tol = c.exact
                ? { rtol: 0, atol: 0 }
                : dtype === 'float64'
                  ? { rtol: 1e-12, atol: 1e-13 }
                  : reductionTol(n);
              check(
                compare(y, rounded(c.ref(toRef(x), ax, keepDims), dtype), tol),
                `${c.op}(${show(toRef(x))}, axes ${JSON.stringify(axes)}, keepDims ${keepDims}) ${dtype}`,
              );
            }),
        ),
        { numRuns: FC_RUNS },
      );
    });
  });
}

t.test(oracleCase('sum') + ' (integer dtypes)', async (t) => {
  leakFree(t, 'sum int', () => {
    fc.assert(
      fc.property(
        arbReduction(3).chain(([s, a, k]) =>
          fc.tuple(
            fc.constant(s),
            fc.constant(a),
            fc.constant(k),
            fc.constantFrom<DType>('int32', 'uint8'),
            fc.array(fc.integer({ min: 0, max: 255 }), { minLength: size(s), maxLength: size(s) }),
          ),
        ),
        ([shape, axes, keepDims, dtype, values]) =>
          tidy(() => {
            const x = tensor(Float64Array.from(values), shape, dtype);
            const s = C.sum(x, axes, keepDims);
            if (s.dtype !== 'int32')
              throw new Error(`sum of ${dtype} gave ${s.dtype}, expected int32 (uint8 would overflow)`);
            check(
              compare(s, refSum(toRef(x), normAxes(axes, shape.length), keepDims), { rtol: 0, atol: 0 }),
              `sum ${dtype}`,
            );
            const m = C.max(x, axes, keepDims);
            if (m.dtype !== dtype) throw new Error(`max of ${dtype} gave ${m.dtype}`);
            check(
              compare(m, refMax(toRef(x), normAxes(axes, shape.length), keepDims), { rtol: 0, atol: 0 }),
              `max ${dtype}`,
            );
          }),
      ),
      { numRuns: Math.ceil(FC_RUNS / 2) },
    );
  });
  t.throws(() => C.mean(tensor([1, 2], [2], 'int32')), {
    name: 'OpError',
    message: /^mean: input must be float32 or float64, got int32/,
  });
});

for (const [name, op, kind] of [
  [oracleCase('argmax'), 'argmax', 'max'],
  [oracleCase('argmin'), 'argmin', 'min'],
] as const) {
  t.test(name, async (t) => {
    const fn = op === 'argmax' ? C.argmax : C.argmin;
    leakFree(t, op, () => {
      fc.assert(
        fc.property(
          arbShape(1, 4, 4).chain((s) =>
            fc.tuple(
              fc.constant(s),
              fc.integer({ min: -s.length, max: s.length - 1 }),
              fc.boolean(),
              arbVals(size(s), true, true),
            ),
          ),
          ([shape, axis, keepDims, values]) =>
            tidy(() => {
              const x = tensor(Float64Array.from(values), shape);
              const y = fn(x, axis, keepDims);
              if (y.dtype !== 'int32') throw new Error(`${op}: dtype ${y.dtype}`);
              const a = axis < 0 ? axis + shape.length : axis;
              check(
                compare(y, refArg(toRef(x), a, kind, keepDims), { rtol: 0, atol: 0 }),
                `${op}(${show(toRef(x))}, ${axis}, ${keepDims})`,
              );
            }),
        ),
        { numRuns: FC_RUNS },
      );
      // No axis: the index into the flattened tensor (rank 0 included).
      fc.assert(
        fc.property(
          arbShape(0, 4, 4).chain((s) => fc.tuple(fc.constant(s), arbVals(size(s), true, true))),
          ([shape, values]) =>
            tidy(() => {
              const x = tensor(Float64Array.from(values), shape);
              const y = fn(x);
              const flat = { shape: [values.length], data: toRef(x).data };
              check(compare(y, refArg(flat, 0, kind), { rtol: 0, atol: 0 }), `${op}(${show(toRef(x))}) flattened`);
            }),
        ),
        { numRuns: FC_RUNS },
      );
    });
  });
}

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
