// WebGPU elementwise kernels against the float64 oracle: every unary op,
// cast, every binary op and comparison with broadcasting, where.
import t from 'tap';
import fc from 'fast-check';
import * as C from '@largo/core';
import { tensor, tidy, type DType, type Tensor } from '@largo/core';
import { REF_BINARY, REF_UNARY, refBinary, refTensor, refUnary, refWhere } from '@largo/core/reference';
import {
  GPU_RUNS,
  gpuOpts,
  leakFree,
  arbBroadcastable,
  arbF32,
  arbInts,
  arbShape,
  arbShapePair,
  check,
  compareTo,
  oracleCase,
  size,
  stored,
  take,
  wg,
} from './helpers.js';

interface UnaryCase {
  name: string;
  op: string;
  fn: (x: Tensor) => Tensor;
  attrs?: { alpha?: number; min?: number; max?: number };
  min?: number;
  max?: number;
  tol?: number;
  ints?: boolean;
  intFn?: (x: Tensor) => Tensor;
  intAttrs?: { min?: number; max?: number };
}
const UNARY: UnaryCase[] = [
  { name: oracleCase('neg'), op: 'neg', fn: C.neg, ints: true },
  { name: oracleCase('exp'), op: 'exp', fn: C.exp, min: -10, max: 10, tol: 5e-6 },
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
    intFn: (x) => C.clamp(x, -7.5, 12),
    intAttrs: { min: -7.5, max: 12 },
  },
];

for (const c of UNARY) {
  t.test(wg(c.name), gpuOpts(), async (t) => {
    await leakFree(t, async () => {
      await fc.assert(
        fc.asyncProperty(
          arbShape(0, 4, 5).chain((s) => fc.tuple(fc.constant(s), arbF32(size(s), c.min ?? -5, c.max ?? 5))),
          async ([shape, values]) => {
            const y = tidy(() => c.fn(tensor(Float32Array.from(values), shape)));
            if (y.dtype !== 'float32') throw new Error(`${c.op}: dtype ${y.dtype}`);
            const want = refUnary(refTensor(shape, Float32Array.from(values)), (v) => REF_UNARY[c.op](v, c.attrs));
            check(compareTo(await take(y), want, { rtol: c.tol ?? 2e-6, atol: 1e-6 }), `${c.op} of [${values}]`);
          },
        ),
        { numRuns: GPU_RUNS },
      );
      if (c.ints) {
        for (const dtype of ['int32', 'uint8'] as DType[]) {
          await fc.assert(
            fc.asyncProperty(
              arbShape(0, 3, 5).chain((s) =>
                fc.tuple(fc.constant(s), arbInts(size(s), dtype === 'int32' ? -50 : 0, dtype === 'int32' ? 50 : 255)),
              ),
              async ([shape, values]) => {
                const y = tidy(() => (c.intFn ?? c.fn)(tensor(values, shape, dtype)));
                if (y.dtype !== dtype) throw new Error(`${c.op}: ${dtype} input gave ${y.dtype}`);
                // The CPU semantics: the float64 result stored into the dtype's typed array.
                const want = refTensor(
                  shape,
                  stored(
                    values.map((v) => REF_UNARY[c.op](v, c.intAttrs ?? c.attrs)),
                    dtype,
                  ),
                );
                check(compareTo(await take(y), want, { rtol: 0, atol: 0 }), `${c.op} ${dtype} of [${values}]`);
              },
            ),
            { numRuns: Math.ceil(GPU_RUNS / 2) },
          );
        }
      }
    });
  });
}

t.test(wg('unary edge values'), gpuOpts(), async (t) => {
  const x = tensor([NaN, -0, 0, Infinity, -Infinity, -2, 3, 100, -100]);
  const arr = async (y: Tensor) => (await take(y)).data.map((v) => (Number.isNaN(v) ? 'nan' : v));
  const near = async (y: Tensor, want: number[], what: string) =>
    check(compareTo(await take(y), refTensor([want.length], want), { rtol: 1e-6, atol: 1e-30 }), what);
  t.same(await arr(C.relu(x)), ['nan', 0, 0, Infinity, 0, 0, 3, 100, 0], 'relu propagates NaN');
  t.same(await arr(C.sign(x)), ['nan', 0, 0, 1, -1, -1, 1, 1, -1], 'sign propagates NaN');
  // Results below the float32 normal range may flush to 0 on a GPU (atol 1e-30).
  await near(
    C.sigmoid(x),
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
  t.same(await arr(C.log(tensor([-1, 0, Infinity, NaN, 1]))), ['nan', -Infinity, Infinity, 'nan', 0]);
  t.same(await arr(C.sqrt(tensor([-1, 0, Infinity, 4]))), ['nan', 0, Infinity, 2]);
  t.same(await arr(C.clamp(x, -1, 1)), ['nan', 0, 0, 1, -1, -1, 1, 1, -1]);
  x.dispose();
});

/** Oracle for cast: truncation toward zero (then the typed-array store) for integers, rounding for float32. */
t.test(wg(oracleCase('cast')), gpuOpts(), async (t) => {
  const pairs: [DType, DType, number, number][] = [
    ['float32', 'int32', -1000, 1000],
    ['float32', 'uint8', -300, 300],
    ['float32', 'float32', -5, 5],
    ['int32', 'float32', -1000, 1000],
    ['uint8', 'int32', 0, 255],
    ['int32', 'uint8', -1000, 1000],
    ['uint8', 'float32', 0, 255],
  ];
  await leakFree(t, async () => {
    for (const [from, to, lo, hi] of pairs) {
      await fc.assert(
        fc.asyncProperty(
          arbShape(0, 3, 5).chain((s) => fc.tuple(fc.constant(s), arbF32(size(s), lo, hi, false))),
          async ([shape, values]) => {
            const src = stored(from === 'float32' ? values : values.map(Math.trunc), from);
            const y = tidy(() => C.cast(tensor(src, shape, from), to));
            if (y.dtype !== to) throw new Error(`cast to ${to} gave ${y.dtype}`);
            const want = refTensor(
              shape,
              stored(
                src.map((v) => (to === 'float32' ? v : Math.trunc(v))),
                to,
              ),
            );
            check(compareTo(await take(y), want, { rtol: 0, atol: 0 }), `cast ${from}->${to} of [${src}]`);
          },
        ),
        { numRuns: Math.ceil(GPU_RUNS / 2) },
      );
    }
  });
  // What a typed-array store gives: NaN/±Inf → 0, wrap-around modulo 2^32 (then 2^8).
  const big = tensor([NaN, Infinity, -Infinity, 3e9, -3e9, 2.7, -2.7, 256.5, -1]);
  t.same((await take(C.cast(big, 'int32'))).data, stored([0, 0, 0, 3e9, -3e9, 2, -2, 256, -1], 'int32'));
  t.same((await take(C.cast(big, 'uint8'))).data, stored([0, 0, 0, 3e9, -3e9, 2, -2, 256, -1], 'uint8'));
  big.dispose();
});

interface BinaryCase {
  name: string;
  op: string;
  fn: (a: C.TensorLike, b: C.TensorLike) => Tensor;
  min?: number;
  max?: number;
  ints?: boolean;
  cmp?: boolean;
  rtol?: number;
}
const BINARY: BinaryCase[] = [
  { name: oracleCase('add'), op: 'add', fn: C.add, ints: true },
  { name: oracleCase('sub'), op: 'sub', fn: C.sub, ints: true },
  { name: oracleCase('mul'), op: 'mul', fn: C.mul, ints: true },
  { name: oracleCase('div'), op: 'div', fn: C.div, ints: true },
  { name: oracleCase('pow'), op: 'pow', fn: C.pow, min: -3, max: 3, rtol: 2e-5, ints: true },
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

function toF32(r: ReturnType<typeof refTensor>): ReturnType<typeof refTensor> {
  return { shape: r.shape, data: r.data.map(Math.fround) };
}

const cmpValues = (n: number, extra: number) =>
  fc.array(fc.constantFrom(-1, 0, 0.5, 2, NaN, extra), { minLength: n, maxLength: n });

for (const c of BINARY) {
  t.test(wg(c.name), gpuOpts(), async (t) => {
    const f = REF_BINARY[c.op];
    await leakFree(t, async () => {
      // float32 with broadcasting; comparisons see ties through a coarse grid.
      await fc.assert(
        fc.asyncProperty(
          arbShapePair().chain(([sa, sb]) =>
            fc.tuple(
              fc.constant(sa),
              fc.constant(sb),
              c.cmp ? cmpValues(size(sa), Infinity) : arbF32(size(sa), c.min ?? -4, c.max ?? 4),
              c.cmp ? cmpValues(size(sb), -Infinity) : arbF32(size(sb), c.min ?? -4, c.max ?? 4),
            ),
          ),
          async ([sa, sb, va, vb]) => {
            const y = tidy(() => c.fn(tensor(Float32Array.from(va), sa), tensor(Float32Array.from(vb), sb)));
            // The exact result stored as float32: beyond FLT_MAX it is Infinity, as the kernel must give.
            const want = toF32(
              refBinary(refTensor(sa, Float32Array.from(va)), refTensor(sb, Float32Array.from(vb)), f),
            );
            if (y.dtype !== (c.cmp ? 'uint8' : 'float32')) throw new Error(`${c.op}: dtype ${y.dtype}`);
            check(
              compareTo(await take(y), want, c.cmp ? { rtol: 0, atol: 0 } : { rtol: c.rtol ?? 1e-6, atol: 1e-6 }),
              `${c.op} of [${sa}] [${va}] and [${sb}] [${vb}]`,
            );
          },
        ),
        { numRuns: GPU_RUNS },
      );
      // A number on either side (a scalar tensor on the GPU).
      await fc.assert(
        fc.asyncProperty(
          arbShape(0, 3, 4).chain((s) =>
            fc.tuple(fc.constant(s), arbF32(size(s), 0.25, 3, false), fc.constantFrom(-2, 0.5, 1.5, 3), fc.boolean()),
          ),
          async ([shape, values, num, left]) => {
            const y = tidy(() => {
              const a = tensor(Float32Array.from(values), shape);
              return left ? c.fn(num, a) : c.fn(a, num);
            });
            const a = refTensor(shape, Float32Array.from(values)),
              n = refTensor([], [num]);
            check(
              compareTo(
                await take(y),
                toF32(left ? refBinary(n, a, f) : refBinary(a, n, f)),
                c.cmp ? { rtol: 0, atol: 0 } : { rtol: c.rtol ?? 1e-6, atol: 1e-6 },
              ),
              `${c.op} with ${num} on the ${left ? 'left' : 'right'}`,
            );
          },
        ),
        { numRuns: Math.ceil(GPU_RUNS / 3) },
      );
      if (c.ints) {
        for (const dtype of ['int32', 'uint8'] as DType[]) {
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
                if (y.dtype !== out) throw new Error(`${c.op}: ${dtype} inputs gave ${y.dtype}`);
                const r = refBinary(refTensor(sa, va), refTensor(sb, vb), f);
                check(
                  compareTo(await take(y), refTensor(r.shape, stored(r.data, out)), { rtol: 0, atol: 0 }),
                  `${c.op} ${dtype} of [${va}] and [${vb}]`,
                );
              },
            ),
            { numRuns: Math.ceil(GPU_RUNS / 3) },
          );
        }
      }
    });
  });
}

t.test(wg('binary NaN, infinity and integer edge cases'), gpuOpts(), async (t) => {
  const arr = async (y: Tensor) => (await take(y)).data.map((v) => (Number.isNaN(v) ? 'nan' : v));
  const res = await (async () => {
    const a = tensor([NaN, 1, NaN, Infinity, -Infinity, 0]);
    const b = tensor([1, NaN, NaN, Infinity, Infinity, 0]);
    const out = {
      max: await arr(C.maximum(a, b)),
      min: await arr(C.minimum(a, b)),
      eq: await arr(C.equal(a, b)),
      ne: await arr(C.notEqual(a, b)),
      and: await arr(C.logicalAnd(a, b)),
      sub: await arr(C.sub(a, b)),
      div: await arr(C.div(a, b)),
      pow: await arr(C.pow(tensor([-8, 0, 2, -2, 1, -0]), tensor([1 / 3, -1, 0, 3, Infinity, -1]))),
      idiv: await arr(C.div(tensor([7, -7, 5, 0], [4], 'int32'), tensor([2, 2, 0, 0], [4], 'int32'))),
      u8: await arr(C.sub(tensor([1, 200], [2], 'uint8'), tensor([3, 100], [2], 'uint8'))),
      u8mul: await arr(C.mul(tensor([16, 200], [2], 'uint8'), tensor([16, 2], [2], 'uint8'))),
      ipow: await arr(C.pow(tensor([2, -1, 2, 3], [4], 'int32'), tensor([-1, -3, 31, 2], [4], 'int32'))),
    };
    a.dispose();
    b.dispose();
    return out;
  })();
  t.same(res.max, ['nan', 'nan', 'nan', Infinity, Infinity, 0], 'maximum propagates NaN');
  t.same(res.min, ['nan', 'nan', 'nan', Infinity, -Infinity, 0], 'minimum propagates NaN');
  t.same(res.eq, [0, 0, 0, 1, 0, 1], 'NaN == NaN is false');
  t.same(res.ne, [1, 1, 1, 0, 1, 0], 'NaN != x is true');
  t.same(res.and, [1, 1, 1, 1, 1, 0], 'NaN is true for logical ops');
  t.same(res.sub, ['nan', 'nan', 'nan', 'nan', -Infinity, 0], 'inf - inf is NaN');
  t.same(res.div, ['nan', 'nan', 'nan', 'nan', 'nan', 'nan'], '0/0 and inf/inf are NaN');
  t.same(res.pow, ['nan', Infinity, 1, -8, 'nan', -Infinity], 'pow follows Math.pow');
  t.same(res.idiv, [3, -3, 0, 0], 'int32 division truncates; x/0 stores 0 as the CPU does');
  t.same(res.u8, [254, 100], 'uint8 wraps modulo 256');
  t.same(res.u8mul, [0, 144], 'uint8 products wrap modulo 256');
  t.same(res.ipow, [0, -1, -2147483648, 9], 'int32 pow');
});

t.test(wg('binary dtype promotion'), gpuOpts(), async (t) => {
  const i32 = tensor([1, 2], [2], 'int32'),
    f32 = tensor([1.5, 2]),
    u8 = tensor([1, 200], [2], 'uint8');
  const a = C.add(i32, f32),
    b = C.mul(u8, i32),
    c = C.mul(i32, 0.5);
  t.equal(a.dtype, 'float32');
  t.equal(b.dtype, 'int32');
  t.equal(c.dtype, 'float32');
  t.same((await take(a)).data, [2.5, 4]);
  t.same((await take(b)).data, [1, 400], 'uint8 × int32 is int32 (no wrap at 256)');
  t.same((await take(c)).data, [0.5, 1]);
  i32.dispose();
  f32.dispose();
  u8.dispose();
});

t.test(wg(oracleCase('where')), gpuOpts(), async (t) => {
  await leakFree(t, async () => {
    await fc.assert(
      fc.asyncProperty(
        arbShape(0, 4, 4)
          .chain((out) =>
            fc.tuple(
              arbBroadcastable(out),
              arbBroadcastable(out),
              arbBroadcastable(out),
              fc.constantFrom<DType>('uint8', 'float32', 'int32'),
            ),
          )
          .chain(([sc, sa, sb, cdt]) =>
            fc.tuple(
              fc.constant(sc),
              fc.constant(sa),
              fc.constant(sb),
              fc.constant(cdt),
              fc.array(fc.constantFrom(0, 1, 2, NaN, -0), { minLength: size(sc), maxLength: size(sc) }),
              arbF32(size(sa)),
              arbF32(size(sb)),
            ),
          ),
        async ([sc, sa, sb, cdt, vc, va, vb]) => {
          const cv = stored(vc, cdt);
          const [y1, y2, y3] = tidy(() => {
            const c = tensor(cv, sc, cdt),
              a = tensor(Float32Array.from(va), sa),
              b = tensor(Float32Array.from(vb), sb);
            return [C.where(c, a, b), C.where(c, a, 7), C.where(c, -1, b)];
          });
          const rc = refTensor(sc, cv),
            ra = refTensor(sa, Float32Array.from(va)),
            rb = refTensor(sb, Float32Array.from(vb));
          check(compareTo(await take(y1), refWhere(rc, ra, rb), { rtol: 0, atol: 0 }), `where cond ${cdt} [${cv}]`);
          check(
            compareTo(await take(y2), refWhere(rc, ra, refTensor([], [7])), { rtol: 0, atol: 0 }),
            'where(c, a, 7)',
          );
          check(
            compareTo(await take(y3), refWhere(rc, refTensor([], [-1]), rb), { rtol: 0, atol: 0 }),
            'where(c, -1, b)',
          );
        },
      ),
      { numRuns: GPU_RUNS },
    );
  });
});
