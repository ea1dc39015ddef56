// Property tests of every elementwise op against the float64 oracle, written
// once and run on every backend (forEachBackend): random shapes (rank 0 and
// size-1 dims included), broadcasting, the backend's float dtypes, NaN and
// infinities, int32 and uint8 where the op takes them (results as a typed
// array stores them: wrap-around, truncation); edge values; errors.
import t from 'tap';
import fc from 'fast-check';
import * as C from '@largo/core';
import { memory, tensor, tidy, type DType, type Tensor } from '@largo/core';
import {
  REF_BINARY,
  REF_UNARY,
  refBinary,
  refLeakyReluGrad,
  refUnary,
  refWhere,
  refTensor,
  type RefTensor,
} from '@largo/core/reference';
import {
  arbF32,
  arbShape,
  compareAsync,
  compareValues,
  forEachBackend,
  oracleCase,
  stored,
  toRef,
  type BackendCase,
  type Tol,
} from '@largo/test-support';

/** Float values in [min, max], rounded to float32 when asked, with occasional NaN / ±Inf / ±0. */
const arbNums = (n: number, min: number, max: number, f32: boolean, special: boolean): fc.Arbitrary<number[]> => {
  const plain = fc.double({ min, max, noNaN: true }).map((v) => (f32 ? Math.fround(v) : v));
  const item = special
    ? fc.oneof(
        { arbitrary: plain, weight: 12 },
        { arbitrary: fc.constantFrom(NaN, Infinity, -Infinity, 0, -0), weight: 1 },
      )
    : plain;
  return fc.array(item, { minLength: n, maxLength: n });
};
/**
 * Float32 inputs for backend `b`: an f32-accumulating backend (WebGPU) may
 * flush subnormals (WGSL allows it), so its inputs have none (arbF32).
 */
const arbFloats = (b: BackendCase, n: number, min: number, max: number, special = true) =>
  b.pick({ f64: arbNums(n, min, max, true, special), f32: arbF32(n, min, max, special) });
const arbInts = (n: number, min: number, max: number) =>
  fc.array(fc.integer({ min, max }), { minLength: n, maxLength: n });
const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/** Shape `out` with some leading axes dropped and some axes set to 1: broadcasts to `out`. */
const arbBroadcastable = (out: readonly number[]): fc.Arbitrary<number[]> =>
  fc
    .tuple(
      fc.integer({ min: 0, max: out.length }),
      fc.array(fc.boolean(), { minLength: out.length, maxLength: out.length }),
    )
    .map(([drop, ones]) => out.slice(drop).map((d, i) => (ones[i + drop] ? 1 : d)));

/** Two shapes that broadcast together (either may be the larger one in any axis). */
const arbShapePair = (maxRank = 4, maxDim = 4) =>
  arbShape(0, maxRank, maxDim).chain((out) => fc.tuple(arbBroadcastable(out), arbBroadcastable(out)));

const TOL: Record<'float32' | 'float64', Tol> = {
  // One rounding of the float64 result to float32 (2^-24 relative), nothing more.
  float32: { rtol: 2e-7, atol: 1e-30 },
  float64: { rtol: 1e-13, atol: 1e-300 },
};
const EXACT: Tol = { rtol: 0, atol: 0 };

/** The oracle's float64 result rounded once to the output dtype (float32 overflow becomes ±Inf, as it must). */
function rounded(r: RefTensor, dtype: DType): RefTensor {
  return dtype === 'float32' ? refUnary(r, Math.fround) : r;
}

function check(msg: string | null, what: string): void {
  if (msg !== null) throw new Error(`${what}: ${msg}`);
}

/** Reads `y` on any backend (then disposes it) and throws with `what` unless it matches `want`. */
async function expectClose(y: Tensor, want: RefTensor, tol: Tol, what: string): Promise<void> {
  check(await compareAsync(y, want, tol, true), what);
}
/** Throws (after disposing `y`) unless `y` has `dtype`. */
function expectDtype(y: Tensor, dtype: DType, what: string): void {
  if (y.dtype === dtype) return;
  const got = y.dtype;
  y.dispose();
  throw new Error(`${what}: dtype ${got}, expected ${dtype}`);
}
const INT_DTYPES: DType[] = ['int32', 'uint8'];

interface UnaryCase {
  name: string;
  op: string;
  fn: (x: Tensor) => Tensor;
  attrs?: { alpha?: number; min?: number; max?: number };
  min?: number;
  max?: number;
  /**
   * Tolerance of a float32 result on an f32-accumulating backend: WGSL's exp,
   * log, tanh… are not correctly rounded (a few ulp; exp over [-10, 10] more).
   */
  f32rtol?: number;
  ints?: boolean;
  /** For integer inputs, besides `fn`: fractional bounds, whose result a typed array stores truncated. */
  intFns?: { fn: (x: Tensor) => Tensor; attrs: { min?: number; max?: number } }[];
}
const UNARY_CASES: UnaryCase[] = [
  { name: oracleCase('neg'), op: 'neg', fn: C.neg, ints: true },
  { name: oracleCase('exp'), op: 'exp', fn: C.exp, min: -10, max: 10, f32rtol: 5e-6 },
  { name: oracleCase('log'), op: 'log', fn: C.log, min: -1, max: 10 },
  { name: oracleCase('sqrt'), op: 'sqrt', fn: C.sqrt, min: -1, max: 10 },
  { name: oracleCase('abs'), op: 'abs', fn: C.abs, ints: true },
  { name: oracleCase('sign'), op: 'sign', fn: C.sign, ints: true },
  { name: oracleCase('relu'), op: 'relu', fn: C.relu },
  { name: oracleCase('sigmoid'), op: 'sigmoid', fn: C.sigmoid, min: -20, max: 20 },
  { name: oracleCase('tanh'), op: 'tanh', fn: C.tanh },
  { name: oracleCase('floor'), op: 'floor', fn: C.floor },
  { name: oracleCase('leakyRelu'), op: 'leakyRelu', fn: (x) => C.leakyRelu(x, 0.2), attrs: { alpha: 0.2 } },
  {
    name: oracleCase('clamp'),
    op: 'clamp',
    fn: (x) => C.clamp(x, -1, 0.5),
    attrs: { min: -1, max: 0.5 },
    ints: true,
    intFns: [
      { fn: (x) => C.clamp(x, -7, 12), attrs: { min: -7, max: 12 } },
      { fn: (x) => C.clamp(x, -7.5, 12), attrs: { min: -7.5, max: 12 } },
    ],
  },
];

for (const c of UNARY_CASES) {
  forEachBackend(t, c.name, async (t, b) => {
    const f = REF_UNARY[c.op];
    await fc.assert(
      fc.asyncProperty(
        arbShape(0, 4, 5).chain((s) =>
          fc.tuple(
            fc.constant(s),
            fc.constantFrom<DType>(...b.floatDtypes),
            arbFloats(b, size(s), c.min ?? -5, c.max ?? 5),
          ),
        ),
        async ([shape, dtype, values]) => {
          const y = tidy(() => c.fn(tensor(Float64Array.from(values), shape, dtype)));
          expectDtype(y, dtype, c.op);
          const want = rounded(
            refUnary(refTensor(shape, values), (v) => f(v, c.attrs)),
            dtype,
          );
          const tol =
            dtype === 'float64'
              ? TOL.float64
              : b.pick({ f64: TOL.float32, f32: { rtol: c.f32rtol ?? 2e-6, atol: 1e-6 } });
          await expectClose(y, want, tol, `${c.op} ${dtype} of [${shape}] ${JSON.stringify(values)}`);
        },
      ),
      { numRuns: b.runs },
    );
    if (c.ints) {
      for (const dtype of INT_DTYPES) {
        for (const { fn, attrs } of c.intFns ?? [{ fn: c.fn, attrs: c.attrs }]) {
          await fc.assert(
            fc.asyncProperty(
              arbShape(0, 3, 5).chain((s) =>
                fc.tuple(fc.constant(s), arbInts(size(s), dtype === 'int32' ? -50 : 0, dtype === 'int32' ? 50 : 255)),
              ),
              async ([shape, values]) => {
                const y = tidy(() => fn(tensor(values, shape, dtype)));
                expectDtype(y, dtype, `${c.op} of ${dtype}`);
                // The float64 result stored into the dtype's typed array.
                const want = refTensor(
                  shape,
                  stored(
                    values.map((v) => f(v, attrs)),
                    dtype,
                  ),
                );
                await expectClose(y, want, EXACT, `${c.op} ${dtype} ${JSON.stringify(attrs ?? {})} of [${values}]`);
              },
            ),
            { numRuns: Math.ceil(b.runs / 2) },
          );
        }
      }
    }
    if (!c.ints && c.op !== 'neg') {
      const x = tensor([1, 2], [2], 'int32');
      t.throws(() => c.fn(x), { name: 'OpError', message: new RegExp(`^${c.op}: .*float`) }, 'rejects integer input');
      x.dispose();
    }
  });
}

/** Values read back, NaN as 'nan' (t.same cannot compare NaN), then the tensor disposed; a function runs in tidy first. */
async function arr(of: Tensor | (() => Tensor)): Promise<(number | string)[]> {
  const y = typeof of === 'function' ? tidy(of) : of;
  const d = Array.from((await y.data()) as ArrayLike<number>);
  y.dispose();
  return d.map((v) => (Number.isNaN(v) ? 'nan' : v));
}

forEachBackend(t, 'unary edge values', async (t, b) => {
  const x = tensor([NaN, -0, 0, Infinity, -Infinity, -2, 3, 100, -100]);
  t.same(await arr(() => C.relu(x)), ['nan', 0, 0, Infinity, 0, 0, 3, 100, 0], 'relu propagates NaN, clips -inf');
  t.same(await arr(() => C.sign(x)), ['nan', 0, 0, 1, -1, -1, 1, 1, -1], 'sign propagates NaN');
  t.same(await arr(() => C.clamp(x, -1, 1)), ['nan', 0, 0, 1, -1, -1, 1, 1, -1], 'clamp keeps NaN');
  t.same(
    await arr(() => C.leakyRelu(x)),
    ['nan', 0, 0, Infinity, -Infinity, Math.fround(-0.02), 3, 100, Math.fround(-1)],
    'leakyRelu default slope 0.01',
  );
  // The float64 value rounded once to float32 where the backend computes in doubles (exactly);
  // within 1e-6 where it computes in float32, where results below the normal range may flush to 0 (atol 1e-30).
  const near = async (y: Tensor, want: number[], what: string) =>
    expectClose(
      y,
      refTensor([want.length], b.pick({ f64: want.map(Math.fround), f32: want })),
      b.pick({ f64: EXACT, f32: { rtol: 1e-6, atol: 1e-30 } }),
      what,
    );
  await near(
    tidy(() => C.sigmoid(x)),
    [NaN, 0.5, 0.5, 1, 0, 1 / (1 + Math.exp(2)), 1 / (1 + Math.exp(-3)), 1, Math.exp(-100)],
    'sigmoid saturates',
  );
  await near(C.tanh(x), [NaN, 0, 0, 1, -1, Math.tanh(-2), Math.tanh(3), 1, -1], 'tanh saturates');
  await near(
    C.exp(x),
    [NaN, 1, 1, Infinity, 0, Math.exp(-2), Math.exp(3), Infinity, Math.exp(-100)],
    'exp saturates to Inf and 0',
  );
  t.pass('sigmoid, tanh, exp at the edges');
  t.same(await arr(() => C.log(tensor([-1, 0, Infinity, NaN, 1]))), ['nan', -Infinity, Infinity, 'nan', 0]);
  t.same(await arr(() => C.sqrt(tensor([-1, 0, Infinity, 4]))), ['nan', 0, Infinity, 2]);
  x.dispose();
  if (b.floatDtypes.includes('float64')) {
    // Large-magnitude sigmoid must not overflow into NaN in either tail.
    t.same(await arr(() => C.sigmoid(tensor([-1000, 1000], [2], 'float64'))), [0, 1]);
  }
});

t.test('unary errors', async (t) => {
  const x = tensor([NaN, -0, 0, Infinity, -Infinity, -2, 3]);
  t.throws(() => C.clamp(x, 1, 0), { name: 'OpError', message: /^clamp: min 1 > max 0/ });
  t.throws(() => C.leakyRelu(x, NaN), { name: 'OpError', message: /^leakyRelu/ });
  x.dispose();
});

/** The old three-op gradient of leakyRelu, which leakyReluGrad replaces bit for bit. */
const threeOp = (x: Tensor, dy: Tensor, alpha: number) => C.where(C.greater(x, 0), dy, C.mul(dy, alpha));
/** Values read back, then the tensor disposed. */
async function values(y: Tensor): Promise<number[]> {
  const d = Array.from((await y.data()) as ArrayLike<number>);
  y.dispose();
  return d;
}

forEachBackend(t, oracleCase('leakyReluGrad'), async (t, b) => {
  await fc.assert(
    fc.asyncProperty(
      arbShape(0, 4, 5).chain((s) =>
        fc.tuple(
          fc.constant(s),
          fc.constantFrom<DType>(...b.floatDtypes),
          fc.constantFrom<DType>(...b.floatDtypes),
          fc.constantFrom(0.01, 0.2, 0, -0.3, 1.7),
          arbFloats(b, size(s), -5, 5),
          arbFloats(b, size(s), -5, 5),
        ),
      ),
      async ([shape, dtx, dtype, alpha, vx, vg]) => {
        const [y, old] = tidy(() => {
          const x = tensor(Float64Array.from(vx), shape, dtx),
            dy = tensor(Float64Array.from(vg), shape, dtype);
          return [C.leakyReluGrad(x, dy, alpha), threeOp(x, dy, alpha)];
        });
        expectDtype(y, dtype, 'leakyReluGrad');
        // x as its dtype stores it; alpha as dy's dtype stores it (mul(dy, alpha) takes it so), one rounding.
        const a = dtype === 'float32' ? Math.fround(alpha) : alpha;
        const want = rounded(refLeakyReluGrad(refTensor(shape, stored(vx, dtx)), refTensor(shape, vg), a), dtype);
        const what = `leakyReluGrad x ${dtx} dy ${dtype} alpha ${alpha} of [${shape}] ${JSON.stringify([vx, vg])}`;
        // Select or one multiplication: exact in doubles; a float32 GPU may flush a subnormal product.
        const got = await values(y);
        check(
          compareValues({ shape, data: got }, want, b.pick({ f64: EXACT, f32: { rtol: 2e-7, atol: 1e-30 } })),
          what,
        );
        // The bits of the three-op formula it replaces (-0 included).
        const ref = await values(old);
        const i = got.findIndex((v, k) => !Object.is(v, ref[k]) && !(Number.isNaN(v) && Number.isNaN(ref[k])));
        if (i >= 0) throw new Error(`${what}: element ${i} is ${got[i]}, the three-op formula gives ${ref[i]}`);
      },
    ),
    { numRuns: b.runs },
  );
  // NaN in x is not > 0 (alpha·dy), nor is 0 or -0; NaN in dy propagates.
  const x = tensor([NaN, 0, -0, 1, -1, Infinity, -Infinity, 2, -2]),
    dy = tensor([3, 3, 3, 3, 3, 3, 3, NaN, NaN]);
  t.same(
    await arr(() => C.leakyReluGrad(x, dy, 0.5)),
    [1.5, 1.5, 1.5, 3, 1.5, 3, 1.5, 'nan', 'nan'],
    'NaN, 0 and -0 in x take alpha·dy',
  );
  t.same(await arr(() => C.leakyReluGrad(x, dy)), await arr(() => threeOp(x, dy, 0.01)), 'default slope 0.01');
  x.dispose();
  dy.dispose();
});

t.test('leakyReluGrad errors', async (t) => {
  const x = tensor([1, -2, 3]),
    x23 = tensor([1, 2, 3, 4, 5, 6], [2, 3]),
    x1 = tensor([1], [1]),
    i = tensor([1, 2, 3], [3], 'int32');
  const before = memory();
  t.throws(() => C.leakyReluGrad(x, x23), {
    name: 'OpError',
    message: /^leakyReluGrad: x \[3\] and dy \[2, 3\] must have the same shape/,
  });
  t.throws(() => C.leakyReluGrad(x1, x), { name: 'OpError', message: /^leakyReluGrad: x \[1\] and dy \[3\]/ });
  t.throws(() => C.leakyReluGrad(x, x, NaN), { name: 'OpError', message: /^leakyReluGrad: alpha must be finite/ });
  t.throws(() => C.leakyReluGrad(i, x), { name: 'OpError', message: /^leakyReluGrad: .*float.*int32/ });
  t.throws(() => C.leakyReluGrad(x, i), { name: 'OpError', message: /^leakyReluGrad: .*float.*int32/ });
  t.same(memory(), before, 'a failed call leaves nothing behind');
  for (const v of [x, x23, x1, i]) v.dispose();
});

/** Oracle for cast: truncation toward zero for integers, rounding for float32, then the typed-array store (NaN/±Inf → 0, wrap-around). */
function refCast(values: readonly number[], dtype: DType): number[] {
  return stored(
    values.map((v) => (dtype === 'float32' || dtype === 'float64' ? v : Math.trunc(v))),
    dtype,
  );
}

forEachBackend(t, oracleCase('cast'), async (t, b) => {
  const pairs: [DType, DType, number, number][] = [
    ['float32', 'float64', -5, 5],
    ['float64', 'float32', -5, 5],
    ['float64', 'float64', -5, 5],
    ['float32', 'float32', -5, 5],
    ['float32', 'int32', -1000, 1000],
    ['float64', 'uint8', 0, 255.9],
    ['float32', 'uint8', -300, 300],
    ['int32', 'float32', -1000, 1000],
    ['uint8', 'int32', 0, 255],
    ['int32', 'uint8', -1000, 1000],
    ['uint8', 'float64', 0, 255],
    ['uint8', 'float32', 0, 255],
  ];
  const takes = (d: DType) => !d.startsWith('float') || b.floatDtypes.includes(d);
  for (const [from, to, lo, hi] of pairs.filter(([from, to]) => takes(from) && takes(to))) {
    await fc.assert(
      fc.asyncProperty(
        arbShape(0, 3, 5).chain((s) =>
          fc.tuple(
            fc.constant(s),
            from === 'float32' ? arbFloats(b, size(s), lo, hi, false) : arbNums(size(s), lo, hi, false, false),
          ),
        ),
        async ([shape, values]) => {
          const src = stored(from === 'float32' || from === 'float64' ? values : values.map(Math.trunc), from);
          const y = tidy(() => C.cast(tensor(Float64Array.from(src), shape, from), to));
          expectDtype(y, to, `cast to ${to}`);
          await expectClose(y, refTensor(shape, refCast(src, to)), EXACT, `cast ${from}->${to} of [${src}]`);
        },
      ),
      { numRuns: Math.ceil(b.runs / 2) },
    );
  }
  // What a typed-array store gives: NaN/±Inf → 0, wrap-around modulo 2^32 (then 2^8).
  const big = tensor([NaN, Infinity, -Infinity, 3e9, -3e9, 2.7, -2.7, 256.5, -1]);
  t.same(await arr(() => C.cast(big, 'int32')), stored([0, 0, 0, 3e9, -3e9, 2, -2, 256, -1], 'int32'));
  t.same(await arr(() => C.cast(big, 'uint8')), stored([0, 0, 0, 3e9, -3e9, 2, -2, 256, -1], 'uint8'));
  big.dispose();
  // NaN has no integer value: 0, what a typed array stores.
  t.same(await arr(() => C.cast(tensor([NaN, 2.7, -2.7]), 'int32')), [0, 2, -2]);
});

interface BinaryCase {
  name: string;
  op: string;
  fn: (a: C.TensorLike, b: C.TensorLike) => Tensor;
  min?: number;
  max?: number;
  cmp?: boolean;
  /** Tolerance of a float32 result on an f32-accumulating backend (WGSL's pow is exp2(b·log2(a)): a few ulp more). */
  f32rtol?: number;
}
const BINARY_CASES: BinaryCase[] = [
  { name: oracleCase('add'), op: 'add', fn: C.add },
  { name: oracleCase('sub'), op: 'sub', fn: C.sub },
  { name: oracleCase('mul'), op: 'mul', fn: C.mul },
  { name: oracleCase('div'), op: 'div', fn: C.div },
  { name: oracleCase('pow'), op: 'pow', fn: C.pow, min: -3, max: 3, f32rtol: 2e-5 },
  { name: oracleCase('maximum'), op: 'maximum', fn: C.maximum },
  { name: oracleCase('minimum'), op: 'minimum', fn: C.minimum },
  { name: oracleCase('equal'), op: 'equal', fn: C.equal, cmp: true },
  { name: oracleCase('notEqual'), op: 'notEqual', fn: C.notEqual, cmp: true },
  { name: oracleCase('less'), op: 'less', fn: C.less, cmp: true },
  { name: oracleCase('lessEqual'), op: 'lessEqual', fn: C.lessEqual, cmp: true },
  { name: oracleCase('greater'), op: 'greater', fn: C.greater, cmp: true },
  { name: oracleCase('greaterEqual'), op: 'greaterEqual', fn: C.greaterEqual, cmp: true },
  { name: oracleCase('logicalAnd'), op: 'logicalAnd', fn: C.logicalAnd, cmp: true },
  { name: oracleCase('logicalOr'), op: 'logicalOr', fn: C.logicalOr, cmp: true },
];

/** Comparison operands on a coarse grid, so that ties occur. */
const cmpValues = (n: number, extra: number) =>
  fc.array(fc.constantFrom(-1, 0, 0.5, 2, NaN, extra), { minLength: n, maxLength: n });

for (const c of BINARY_CASES) {
  forEachBackend(t, c.name, async (t, b) => {
    const f = REF_BINARY[c.op];
    const floatTol = (dtype: DType): Tol =>
      c.cmp
        ? EXACT
        : dtype === 'float64'
          ? TOL.float64
          : b.pick({ f64: TOL.float32, f32: { rtol: c.f32rtol ?? 1e-6, atol: 1e-6 } });
    // Float tensors with broadcasting; comparisons see ties through a coarse grid.
    await fc.assert(
      fc.asyncProperty(
        arbShapePair().chain(([sa, sb]) =>
          fc.tuple(
            fc.constant(sa),
            fc.constant(sb),
            fc.constantFrom<DType>(...b.floatDtypes),
            c.cmp ? cmpValues(size(sa), Infinity) : arbFloats(b, size(sa), c.min ?? -4, c.max ?? 4),
            c.cmp ? cmpValues(size(sb), -Infinity) : arbFloats(b, size(sb), c.min ?? -4, c.max ?? 4),
          ),
        ),
        async ([sa, sb, dtype, va, vb]) => {
          const y = tidy(() =>
            c.fn(tensor(Float64Array.from(va), sa, dtype), tensor(Float64Array.from(vb), sb, dtype)),
          );
          const out: DType = c.cmp ? 'uint8' : dtype;
          expectDtype(y, out, c.op);
          await expectClose(
            y,
            rounded(refBinary(refTensor(sa, va), refTensor(sb, vb), f), out),
            floatTol(dtype),
            `${c.op} ${dtype} of [${sa}] ${JSON.stringify(va)} and [${sb}] ${JSON.stringify(vb)}`,
          );
        },
      ),
      { numRuns: b.runs },
    );
    // A plain number on either side adopts the tensor's dtype (float64 keeps the number's precision).
    for (const dtype of b.floatDtypes) {
      await fc.assert(
        fc.asyncProperty(
          arbShape(0, 3, 4).chain((s) =>
            fc.tuple(
              fc.constant(s),
              arbFloats(b, size(s), 0.25, 3, false),
              fc.constantFrom(-2, 0.5, 1.5, 3),
              fc.boolean(),
            ),
          ),
          async ([shape, values, num, left]) => {
            const y = tidy(() => {
              const a = tensor(Float64Array.from(values), shape, dtype);
              return left ? c.fn(num, a) : c.fn(a, num);
            });
            const a = refTensor(shape, values),
              n = refTensor([], [num]);
            await expectClose(
              y,
              rounded(left ? refBinary(n, a, f) : refBinary(a, n, f), c.cmp ? 'uint8' : dtype),
              floatTol(dtype),
              `${c.op} ${dtype} with number ${num} (${left ? 'left' : 'right'})`,
            );
          },
        ),
        { numRuns: Math.ceil(b.runs / 3) },
      );
    }
    // Integer tensors: the result as the output dtype's typed array stores it (wrap-around; x/0 → 0).
    for (const dtype of INT_DTYPES) {
      const [lo, hi] =
        c.op === 'pow' ? (dtype === 'int32' ? [-6, 6] : [0, 6]) : dtype === 'int32' ? [-20, 20] : [0, 40];
      await fc.assert(
        fc.asyncProperty(
          arbShapePair(3, 4).chain(([sa, sb]) =>
            fc.tuple(fc.constant(sa), fc.constant(sb), arbInts(size(sa), lo, hi), arbInts(size(sb), lo, hi)),
          ),
          async ([sa, sb, va, vb]) => {
            const y = tidy(() => c.fn(tensor(va, sa, dtype), tensor(vb, sb, dtype)));
            const out: DType = c.cmp ? 'uint8' : dtype;
            expectDtype(y, out, `${c.op} of ${dtype}`);
            const r = refBinary(refTensor(sa, va), refTensor(sb, vb), f);
            await expectClose(
              y,
              refTensor(r.shape, stored(r.data, out)),
              EXACT,
              `${c.op} ${dtype} of [${va}] and [${vb}]`,
            );
          },
        ),
        { numRuns: Math.ceil(b.runs / 3) },
      );
    }
  });
}

forEachBackend(t, 'binary NaN, infinity and integer edge cases', async (t) => {
  const a = tensor([NaN, 1, NaN, Infinity, -Infinity, 0]);
  const b = tensor([1, NaN, NaN, Infinity, Infinity, 0]);
  t.same(await arr(() => C.maximum(a, b)), ['nan', 'nan', 'nan', Infinity, Infinity, 0], 'maximum propagates NaN');
  t.same(await arr(() => C.minimum(a, b)), ['nan', 'nan', 'nan', Infinity, -Infinity, 0], 'minimum propagates NaN');
  t.same(await arr(() => C.equal(a, b)), [0, 0, 0, 1, 0, 1], 'NaN == NaN is false');
  t.same(await arr(() => C.notEqual(a, b)), [1, 1, 1, 0, 1, 0], 'NaN != x is true');
  t.same(await arr(() => C.less(a, b)), [0, 0, 0, 0, 1, 0]);
  t.same(await arr(() => C.greaterEqual(a, b)), [0, 0, 0, 1, 0, 1]);
  t.same(await arr(() => C.logicalAnd(a, b)), [1, 1, 1, 1, 1, 0], 'NaN is true for logical ops');
  t.same(await arr(() => C.logicalOr(a, b)), [1, 1, 1, 1, 1, 0]);
  t.same(await arr(() => C.sub(a, b)), ['nan', 'nan', 'nan', 'nan', -Infinity, 0], 'inf - inf is NaN');
  t.same(await arr(() => C.div(a, b)), ['nan', 'nan', 'nan', 'nan', 'nan', 'nan'], '0/0 and inf/inf are NaN');
  a.dispose();
  b.dispose();
  t.same(await arr(() => C.div(tensor([1, -1]), tensor([0, 0]))), [Infinity, -Infinity]);
  t.same(
    await arr(() => C.pow(tensor([-8, 0, 2, -2, 1, -0]), tensor([1 / 3, -1, 0, 3, Infinity, -1]))),
    ['nan', Infinity, 1, -8, 'nan', -Infinity],
    'pow follows Math.pow',
  );
  t.same(
    await arr(() => C.div(tensor([7, -7, 5, 0], [4], 'int32'), tensor([2, 2, 0, 0], [4], 'int32'))),
    [3, -3, 0, 0],
    'int32 division truncates; x/0 stores 0',
  );
  t.same(
    await arr(() => C.sub(tensor([1, 200], [2], 'uint8'), tensor([3, 100], [2], 'uint8'))),
    [254, 100],
    'uint8 wraps modulo 256',
  );
  t.same(
    await arr(() => C.mul(tensor([16, 200], [2], 'uint8'), tensor([16, 2], [2], 'uint8'))),
    [0, 144],
    'uint8 products wrap modulo 256',
  );
  t.same(
    await arr(() => C.pow(tensor([2, -1, 2, 3], [4], 'int32'), tensor([-1, -3, 31, 2], [4], 'int32'))),
    [0, -1, -2147483648, 9],
    'int32 pow',
  );
});

forEachBackend(t, 'binary dtype promotion', async (t, b) => {
  const f32 = tensor([1.5, 2]),
    i32 = tensor([1, 2], [2], 'int32'),
    u8 = tensor([1, 200], [2], 'uint8');
  const checkOut = async (y: Tensor, dtype: DType, want: number[], what: string) => {
    t.equal(y.dtype, dtype, `${what}: ${dtype}`);
    t.same(await arr(y), want, what);
  };
  await checkOut(C.add(i32, f32), 'float32', [2.5, 4], 'int32 + float32');
  await checkOut(C.mul(u8, i32), 'int32', [1, 400], 'uint8 × int32 is int32 (no wrap at 256)');
  await checkOut(C.add(u8, 3), 'uint8', [4, 203], 'an integral number adopts the tensor dtype');
  await checkOut(C.mul(i32, 0.5), 'float32', [0.5, 1], 'a fractional number makes an integer op float32');
  if (b.floatDtypes.includes('float64')) {
    const f64 = tensor([1, 2], [2], 'float64');
    await checkOut(C.add(f32, f64), 'float64', [2.5, 4], 'float32 + float64');
    const y = C.add(f64, 0.1);
    t.equal(y.dtype, 'float64');
    t.equal((await y.data())[0], 1.1, 'number kept in float64 precision');
    y.dispose();
    f64.dispose();
  }
  for (const x of [f32, i32, u8]) x.dispose();
});

t.test('binary errors', async (t) => {
  t.throws(() => C.add(1 as never, 2 as never), {
    name: 'OpError',
    message: /^add: at least one argument must be a Tensor/,
  });
});

forEachBackend(t, oracleCase('where'), async (t, b) => {
  await fc.assert(
    fc.asyncProperty(
      arbShape(0, 4, 4)
        .chain((out) =>
          fc.tuple(
            arbBroadcastable(out),
            arbBroadcastable(out),
            arbBroadcastable(out),
            fc.constantFrom<DType>('uint8', 'float32', 'int32'),
            fc.constantFrom<DType>(...b.floatDtypes),
          ),
        )
        .chain(([sc, sa, sb, cdt, dt]) =>
          fc.tuple(
            fc.constant(sc),
            fc.constant(sa),
            fc.constant(sb),
            fc.constant(cdt),
            fc.constant(dt),
            fc.array(fc.constantFrom(0, 1, 2, NaN, -0), { minLength: size(sc), maxLength: size(sc) }),
            arbFloats(b, size(sa), -4, 4),
            arbFloats(b, size(sb), -4, 4),
          ),
        ),
      async ([sc, sa, sb, cdt, dt, vc, va, vb]) => {
        // The condition as its dtype stores it (NaN is 0 in integers); where selects, so the result is exact.
        const cv = stored(vc, cdt);
        const [y1, y2, y3] = tidy(() => {
          const c = tensor(cv, sc, cdt),
            a = tensor(Float64Array.from(va), sa, dt),
            b = tensor(Float64Array.from(vb), sb, dt);
          return [C.where(c, a, b), C.where(c, a, 7), C.where(c, -1, b)];
        });
        const rc = refTensor(sc, cv),
          ra = refTensor(sa, va),
          rb = refTensor(sb, vb);
        await expectClose(y1, refWhere(rc, ra, rb), EXACT, `where cond ${cdt} [${cv}] ${dt}`);
        // Scalars for either branch.
        await expectClose(y2, refWhere(rc, ra, refTensor([], [7])), EXACT, 'where(c, a, 7)');
        await expectClose(y3, refWhere(rc, refTensor([], [-1]), rb), EXACT, 'where(c, -1, b)');
      },
    ),
    { numRuns: b.runs },
  );
});

t.test('where errors', async (t) => {
  const c = tensor([1, 0]);
  t.throws(() => C.where(c, 1, 2), { name: 'OpError', message: /^where: a or b must be a Tensor/ });
  t.throws(() => C.where(c, tensor([1, 2, 3]), 0), {
    name: 'OpError',
    message: /^where: shapes \[2\] and \[3\] cannot be broadcast/,
  });
});

t.test('square is mul(x, x)', async (t) => {
  const x = tensor([-2, 0.5, 3]);
  t.same(Array.from(C.square(x).dataSync()), [4, 0.25, 9]);
});

t.test('empty tensors broadcast like NumPy', async (t) => {
  const shapes: [number[], number[], number[]][] = [
    [[0], [1], [0]],
    [
      [2, 0],
      [2, 1],
      [2, 0],
    ],
    [[0, 3], [3], [0, 3]],
    [
      [1, 0],
      [4, 1],
      [4, 0],
    ],
  ];
  for (const [sa, sb, want] of shapes) {
    const a = tensor(new Float32Array(sa.reduce((p, q) => p * q, 1)), sa),
      b = tensor(new Float32Array(sb.reduce((p, q) => p * q, 1)).fill(1), sb);
    for (const op of ['add', 'mul', 'maximum', 'less']) {
      const y = (C as unknown as Record<string, (x: Tensor, z: Tensor) => Tensor>)[op](a, b);
      t.same(y.shape, want, `${op} ${JSON.stringify(sa)} with ${JSON.stringify(sb)}`);
      t.same(refBinary(toRef(a), toRef(b), REF_BINARY[op]).shape, want, `oracle ${op} agrees`);
    }
    t.same(C.where(C.greater(b, 0), a, b).shape, want, 'where');
    t.throws(() => C.add(a, tensor([1, 2])), { name: 'OpError' }, 'a 0-axis does not broadcast against 2');
  }
});
