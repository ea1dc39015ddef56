// Property tests of every elementwise op against the float64 oracle:
// random shapes (rank 0 and size-1 dims included), broadcasting, both float
// dtypes, NaN and infinities, integer dtypes where the op takes them.
import t from 'tap';
import fc from 'fast-check';
import * as C from '@largo/core';
import { tensor, memory, tidy, type DType, type Tensor } from '@largo/core';
import { REF_BINARY, REF_UNARY, refBinary, refUnary, refWhere, refTensor, type RefTensor } from '@largo/core/reference';
import { compare, oracleCase, toRef, FC_RUNS, arbShape, type Tol } from '@largo/test-support';

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

/** The oracle's float64 result rounded once to the output dtype (float32 overflow becomes ±Inf, as it must). */
function rounded(r: RefTensor, dtype: DType): RefTensor {
  return dtype === 'float32' ? refUnary(r, Math.fround) : r;
}

function check(msg: string | null, what: string): void {
  if (msg !== null) throw new Error(`${what}: ${msg}`);
}
const show = (r: RefTensor) => `[${r.shape.join(', ')}] ${JSON.stringify(Array.from(r.data))}`;

/** Every property must leave the live-tensor counters where it found them. */
function leakFree(
  t: { same(found: unknown, wanted: unknown, msg: string): boolean },
  name: string,
  body: () => void,
): void {
  const before = memory();
  body();
  t.same(memory(), before, `${name}: no tensor or buffer leaked`);
}

interface UnaryCase {
  name: string;
  op: string;
  fn: (x: Tensor) => Tensor;
  attrs?: { alpha?: number; min?: number; max?: number };
  min?: number;
  max?: number;
  ints?: boolean;
  /** For integer inputs when the float case uses fractional attributes. */
  intFn?: (x: Tensor) => Tensor;
  intAttrs?: { min?: number; max?: number };
}
const UNARY_CASES: UnaryCase[] = [
  { name: oracleCase('neg'), op: 'neg', fn: C.neg, ints: true },
  { name: oracleCase('exp'), op: 'exp', fn: C.exp, min: -10, max: 10 },
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
    intFn: (x) => C.clamp(x, -7, 12),
    intAttrs: { min: -7, max: 12 },
  },
];

for (const c of UNARY_CASES) {
  t.test(c.name, async (t) => {
    leakFree(t, c.op, () => {
      fc.assert(
        fc.property(
          arbShape(0, 4, 4).chain((s) =>
            fc.tuple(
              fc.constant(s),
              fc.constantFrom<DType>('float32', 'float64'),
              arbNums(size(s), c.min ?? -5, c.max ?? 5, true, true),
            ),
          ),
          ([shape, dtype, values]) =>
            tidy(() => {
              const x = tensor(Float64Array.from(values), shape, dtype);
              const y = c.fn(x);
              if (y.dtype !== dtype) throw new Error(`${c.op}: dtype ${y.dtype}, expected ${dtype}`);
              const f = REF_UNARY[c.op];
              check(
                compare(
                  y,
                  rounded(
                    refUnary(toRef(x), (v) => f(v, c.attrs)),
                    dtype,
                  ),
                  TOL[dtype as 'float32'],
                ),
                `${c.op} ${dtype} of ${show(toRef(x))}`,
              );
            }),
        ),
        { numRuns: FC_RUNS },
      );
      if (c.ints) {
        fc.assert(
          fc.property(
            arbShape(0, 3, 4).chain((s) => fc.tuple(fc.constant(s), arbInts(size(s), -50, 50))),
            ([shape, values]) =>
              tidy(() => {
                const x = tensor(Int32Array.from(values), shape);
                const y = (c.intFn ?? c.fn)(x);
                if (y.dtype !== 'int32') throw new Error(`${c.op}: int32 input gave ${y.dtype}`);
                const f = REF_UNARY[c.op];
                check(
                  compare(
                    y,
                    refUnary(toRef(x), (v) => f(v, c.intAttrs ?? c.attrs)),
                    { rtol: 0, atol: 0 },
                  ),
                  `${c.op} int32 of ${values}`,
                );
              }),
          ),
          { numRuns: Math.ceil(FC_RUNS / 3) },
        );
      }
    });
    if (!c.ints && c.op !== 'neg') {
      const x = tensor([1, 2], [2], 'int32');
      t.throws(() => c.fn(x), { name: 'OpError', message: new RegExp(`^${c.op}: .*float`) }, 'rejects integer input');
      x.dispose();
    }
  });
}

t.test('unary edge values', async (t) => {
  const x = tensor([NaN, -0, 0, Infinity, -Infinity, -2, 3]);
  t.same(Array.from(C.relu(x).dataSync()), [NaN, 0, 0, Infinity, 0, 0, 3], 'relu propagates NaN, clips -inf');
  t.same(Array.from(C.sign(x).dataSync()), [NaN, 0, 0, 1, -1, -1, 1], 'sign propagates NaN');
  t.same(
    Array.from(C.sigmoid(x).dataSync()).map((v) => (Number.isNaN(v) ? 'nan' : v)),
    ['nan', 0.5, 0.5, 1, 0, Math.fround(1 / (1 + Math.exp(2))), Math.fround(1 / (1 + Math.exp(-3)))],
    'sigmoid saturates exactly',
  );
  t.same(Array.from(C.clamp(x, -1, 1).dataSync()), [NaN, 0, 0, 1, -1, -1, 1], 'clamp keeps NaN');
  t.same(
    Array.from(C.leakyRelu(x).dataSync()),
    [NaN, 0, 0, Infinity, -Infinity, Math.fround(-0.02), 3],
    'leakyRelu default slope 0.01',
  );
  // Large-magnitude sigmoid must not overflow into NaN in either tail.
  const big = tensor([-1000, 1000], [2], 'float64');
  t.same(Array.from(C.sigmoid(big).dataSync()), [0, 1]);
  t.throws(() => C.clamp(x, 1, 0), { name: 'OpError', message: /^clamp: min 1 > max 0/ });
  t.throws(() => C.leakyRelu(x, NaN), { name: 'OpError', message: /^leakyRelu/ });
});

/** Oracle for cast: truncation toward zero for integers, rounding for float32. */
function refCast(r: RefTensor, dtype: DType): RefTensor {
  const f = dtype === 'float32' ? Math.fround : dtype === 'float64' ? (v: number) => v : Math.trunc;
  return refUnary(r, f);
}

t.test(oracleCase('cast'), async (t) => {
  const pairs: [DType, DType, number, number][] = [
    ['float32', 'float64', -5, 5],
    ['float64', 'float32', -5, 5],
    ['float64', 'float64', -5, 5],
    ['float32', 'int32', -1000, 1000],
    ['float64', 'uint8', 0, 255.9],
    ['float32', 'uint8', 0, 255],
    ['int32', 'float32', -1000, 1000],
    ['uint8', 'int32', 0, 255],
    ['int32', 'uint8', 0, 255],
    ['uint8', 'float64', 0, 255],
  ];
  leakFree(t, 'cast', () => {
    for (const [from, to, lo, hi] of pairs) {
      fc.assert(
        fc.property(
          arbShape(0, 3, 4).chain((s) => fc.tuple(fc.constant(s), arbNums(size(s), lo, hi, from === 'float32', false))),
          ([shape, values]) =>
            tidy(() => {
              const src = from === 'int32' || from === 'uint8' ? values.map(Math.trunc) : values;
              const x = tensor(Float64Array.from(src), shape, from);
              const y = C.cast(x, to);
              if (y.dtype !== to) throw new Error(`cast to ${to} gave ${y.dtype}`);
              check(compare(y, refCast(toRef(x), to), { rtol: 0, atol: 0 }), `cast ${from}->${to} of ${src}`);
            }),
        ),
        { numRuns: Math.ceil(FC_RUNS / 4) },
      );
    }
  });
  // NaN has no integer value; the CPU backend writes 0 (what a typed array stores).
  t.same(Array.from(C.cast(tensor([NaN, 2.7, -2.7]), 'int32').dataSync()), [0, 2, -2]);
});

interface BinaryCase {
  name: string;
  op: string;
  fn: (a: C.TensorLike, b: C.TensorLike) => Tensor;
  min?: number;
  max?: number;
  ints?: boolean;
  cmp?: boolean;
}
const BINARY_CASES: BinaryCase[] = [
  { name: oracleCase('add'), op: 'add', fn: C.add, ints: true },
  { name: oracleCase('sub'), op: 'sub', fn: C.sub, ints: true },
  { name: oracleCase('mul'), op: 'mul', fn: C.mul, ints: true },
  { name: oracleCase('div'), op: 'div', fn: C.div },
  { name: oracleCase('pow'), op: 'pow', fn: C.pow, min: -3, max: 3 },
  { name: oracleCase('maximum'), op: 'maximum', fn: C.maximum, ints: true },
  { name: oracleCase('minimum'), op: 'minimum', fn: C.minimum, ints: true },
  { name: oracleCase('equal'), op: 'equal', fn: C.equal, ints: true, cmp: true },
  { name: oracleCase('notEqual'), op: 'notEqual', fn: C.notEqual, ints: true, cmp: true },
  { name: oracleCase('less'), op: 'less', fn: C.less, ints: true, cmp: true },
  { name: oracleCase('lessEqual'), op: 'lessEqual', fn: C.lessEqual, ints: true, cmp: true },
  { name: oracleCase('greater'), op: 'greater', fn: C.greater, ints: true, cmp: true },
  { name: oracleCase('greaterEqual'), op: 'greaterEqual', fn: C.greaterEqual, ints: true, cmp: true },
  { name: oracleCase('logicalAnd'), op: 'logicalAnd', fn: C.logicalAnd, ints: true, cmp: true },
  { name: oracleCase('logicalOr'), op: 'logicalOr', fn: C.logicalOr, ints: true, cmp: true },
];

for (const c of BINARY_CASES) {
  t.test(c.name, async (t) => {
    const f = REF_BINARY[c.op];
    leakFree(t, c.op, () => {
      // Float tensors with broadcasting; comparisons see ties through a coarse grid.
      fc.assert(
        fc.property(
          arbShapePair().chain(([sa, sb]) =>
            fc.tuple(
              fc.constant(sa),
              fc.constant(sb),
              fc.constantFrom<DType>('float32', 'float64'),
              c.cmp
                ? fc.array(fc.constantFrom(-1, 0, 0.5, 2, NaN, Infinity), { minLength: size(sa), maxLength: size(sa) })
                : arbNums(size(sa), c.min ?? -4, c.max ?? 4, true, true),
              c.cmp
                ? fc.array(fc.constantFrom(-1, 0, 0.5, 2, NaN, -Infinity), { minLength: size(sb), maxLength: size(sb) })
                : arbNums(size(sb), c.min ?? -4, c.max ?? 4, true, true),
            ),
          ),
          ([sa, sb, dtype, va, vb]) =>
            tidy(() => {
              const a = tensor(Float64Array.from(va), sa, dtype),
                b = tensor(Float64Array.from(vb), sb, dtype);
              const y = c.fn(a, b);
              const want: DType = c.cmp ? 'uint8' : dtype;
              if (y.dtype !== want) throw new Error(`${c.op}: dtype ${y.dtype}, expected ${want}`);
              check(
                compare(
                  y,
                  rounded(refBinary(toRef(a), toRef(b), f), want),
                  c.cmp ? { rtol: 0, atol: 0 } : TOL[dtype as 'float32'],
                ),
                `${c.op} ${dtype} of ${show(toRef(a))} and ${show(toRef(b))}`,
              );
            }),
        ),
        { numRuns: FC_RUNS },
      );
      // A plain number on either side adopts the tensor's dtype.
      fc.assert(
        fc.property(
          arbShape(0, 3, 4).chain((s) =>
            fc.tuple(
              fc.constant(s),
              arbNums(size(s), 0.25, 3, true, false),
              fc.constantFrom(-2, 0.5, 1.5, 3),
              fc.boolean(),
            ),
          ),
          ([shape, values, num, left]) =>
            tidy(() => {
              const a = tensor(Float64Array.from(values), shape, 'float64');
              const y = left ? c.fn(num, a) : c.fn(a, num);
              const n = refTensor([], [num]);
              const want = left ? refBinary(n, toRef(a), f) : refBinary(toRef(a), n, f);
              check(
                compare(y, want, c.cmp ? { rtol: 0, atol: 0 } : TOL.float64),
                `${c.op} with number ${num} (${left ? 'left' : 'right'})`,
              );
            }),
        ),
        { numRuns: Math.ceil(FC_RUNS / 3) },
      );
      if (c.ints) {
        fc.assert(
          fc.property(
            arbShapePair(3, 4).chain(([sa, sb]) =>
              fc.tuple(fc.constant(sa), fc.constant(sb), arbInts(size(sa), -20, 20), arbInts(size(sb), -20, 20)),
            ),
            ([sa, sb, va, vb]) =>
              tidy(() => {
                const a = tensor(Int32Array.from(va), sa),
                  b = tensor(Int32Array.from(vb), sb);
                const y = c.fn(a, b);
                if (y.dtype !== (c.cmp ? 'uint8' : 'int32')) throw new Error(`${c.op}: int32 inputs gave ${y.dtype}`);
                check(compare(y, refBinary(toRef(a), toRef(b), f), { rtol: 0, atol: 0 }), `${c.op} int32`);
              }),
          ),
          { numRuns: Math.ceil(FC_RUNS / 3) },
        );
      }
    });
  });
}

t.test('binary NaN and infinity behaviour', async (t) => {
  const a = tensor([NaN, 1, NaN, Infinity, -Infinity, 0]);
  const b = tensor([1, NaN, NaN, Infinity, Infinity, 0]);
  const arr = (x: Tensor) => Array.from(x.dataSync()).map((v) => (Number.isNaN(v) ? 'nan' : v));
  t.same(arr(C.maximum(a, b)), ['nan', 'nan', 'nan', Infinity, Infinity, 0], 'maximum propagates NaN');
  t.same(arr(C.minimum(a, b)), ['nan', 'nan', 'nan', Infinity, -Infinity, 0], 'minimum propagates NaN');
  t.same(arr(C.equal(a, b)), [0, 0, 0, 1, 0, 1], 'NaN == NaN is false');
  t.same(arr(C.notEqual(a, b)), [1, 1, 1, 0, 1, 0], 'NaN != x is true');
  t.same(arr(C.less(a, b)), [0, 0, 0, 0, 1, 0]);
  t.same(arr(C.greaterEqual(a, b)), [0, 0, 0, 1, 0, 1]);
  t.same(arr(C.logicalAnd(a, b)), [1, 1, 1, 1, 1, 0], 'NaN is true for logical ops');
  t.same(arr(C.logicalOr(a, b)), [1, 1, 1, 1, 1, 0]);
  t.same(arr(C.sub(a, b)), ['nan', 'nan', 'nan', 'nan', -Infinity, 0], 'inf - inf is NaN');
  t.same(arr(C.div(a, b)), ['nan', 'nan', 'nan', 'nan', 'nan', 'nan'], '0/0 and inf/inf are NaN');
  t.same(arr(C.div(tensor([1, -1]), tensor([0, 0]))), [Infinity, -Infinity]);
  t.same(arr(C.pow(tensor([-8, 0, 2]), tensor([1 / 3, -1, 0]))), ['nan', Infinity, 1]);
});

t.test('binary dtype promotion', async (t) => {
  const f32 = tensor([1.5, 2]),
    f64 = tensor([1, 2], [2], 'float64'),
    i32 = tensor([1, 2], [2], 'int32'),
    u8 = tensor([1, 2], [2], 'uint8');
  t.equal(C.add(f32, f64).dtype, 'float64');
  t.equal(C.add(i32, f32).dtype, 'float32');
  t.equal(C.mul(u8, i32).dtype, 'int32');
  t.equal(C.add(u8, 3).dtype, 'uint8', 'an integral number adopts the tensor dtype');
  t.equal(C.mul(i32, 0.5).dtype, 'float32', 'a fractional number makes an integer op float32');
  t.same(Array.from(C.mul(i32, 0.5).dataSync()), [0.5, 1]);
  t.equal(C.add(f64, 0.1).dtype, 'float64');
  t.equal(C.add(f64, 0.1).dataSync()[0], 1.1, 'number kept in float64 precision');
  t.throws(() => C.add(1 as never, 2 as never), {
    name: 'OpError',
    message: /^add: at least one argument must be a Tensor/,
  });
});

t.test(oracleCase('where'), async (t) => {
  leakFree(t, 'where', () => {
    fc.assert(
      fc.property(
        arbShape(0, 4, 4)
          .chain((out) =>
            fc.tuple(
              arbBroadcastable(out),
              arbBroadcastable(out),
              arbBroadcastable(out),
              fc.constantFrom<DType>('uint8', 'float32'),
            ),
          )
          .chain(([sc, sa, sb, cdt]) =>
            fc.tuple(
              fc.constant(sc),
              fc.constant(sa),
              fc.constant(sb),
              fc.constant(cdt),
              fc.array(fc.constantFrom(0, 1, 2, NaN), { minLength: size(sc), maxLength: size(sc) }),
              arbNums(size(sa), -4, 4, true, true),
              arbNums(size(sb), -4, 4, true, true),
            ),
          ),
        ([sc, sa, sb, cdt, vc, va, vb]) =>
          tidy(() => {
            const cv = cdt === 'uint8' ? vc.map((v) => (Number.isNaN(v) ? 0 : v)) : vc;
            const c = tensor(Float64Array.from(cv), sc, cdt);
            const a = tensor(Float64Array.from(va), sa),
              b = tensor(Float64Array.from(vb), sb);
            check(
              compare(C.where(c, a, b), refWhere(toRef(c), toRef(a), toRef(b)), TOL.float32),
              `where cond ${show(toRef(c))}`,
            );
            // Scalars for either branch.
            check(
              compare(C.where(c, a, 7), refWhere(toRef(c), toRef(a), refTensor([], [7])), TOL.float32),
              'where(c, a, 7)',
            );
            check(
              compare(C.where(c, -1, b), refWhere(toRef(c), refTensor([], [-1]), toRef(b)), TOL.float32),
              'where(c, -1, b)',
            );
          }),
      ),
      { numRuns: FC_RUNS },
    );
  });
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
