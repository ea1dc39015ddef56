// Creation ops: tensor() from nested and typed arrays, zeros/ones/full,
// scalar, arange, and the seeded rand/randn.
import t from 'tap';
import fc from 'fast-check';
import * as C from '@largo/core';
import { tensor, memory, tidy, type DType } from '@largo/core';
import { FC_RUNS, arbShape } from '@largo/test-support';

const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/** Builds a nested JS array of `shape` from flat values (the inverse of what tensor() must do). */
function nest(shape: readonly number[], flat: readonly number[], off = 0): unknown {
  if (shape.length === 0) return flat[off];
  const stride = size(shape.slice(1));
  return Array.from({ length: shape[0] }, (_, i) => nest(shape.slice(1), flat, off + i * stride));
}

t.test('tensor() from nested arrays', async (t) => {
  fc.assert(
    fc.property(
      arbShape(1, 4, 4).chain((s) =>
        fc.tuple(
          fc.constant(s),
          fc.array(fc.integer({ min: -1000, max: 1000 }), { minLength: size(s), maxLength: size(s) }),
        ),
      ),
      ([shape, values]) =>
        tidy(() => {
          const x = tensor(nest(shape, values) as number[]);
          if (JSON.stringify(x.shape) !== JSON.stringify(shape))
            throw new Error(`shape ${JSON.stringify(x.shape)} != ${JSON.stringify(shape)}`);
          if (x.dtype !== 'float32') throw new Error(`default dtype ${x.dtype}`);
          if (JSON.stringify(Array.from(x.dataSync())) !== JSON.stringify(values)) throw new Error('values differ');
          if (JSON.stringify(x.toArray()) !== JSON.stringify(nest(shape, values)))
            throw new Error('toArray does not round-trip');
        }),
    ),
    { numRuns: FC_RUNS },
  );
  const s = tensor(3.5);
  t.same(s.shape, [], 'a number is a scalar');
  t.equal(s.item(), 3.5);
  t.same(tensor([]).shape, [0]);
  t.same(tensor([[], []]).shape, [2, 0]);
  t.same(
    tensor([1, 2, 3, 4], [2, 2]).toArray(),
    [
      [1, 2],
      [3, 4],
    ],
    'flat values with a shape',
  );
  t.equal(tensor([1.7, -1.7], undefined, 'int32').dtype, 'int32');
  t.same(Array.from(tensor([1.7, -1.7], undefined, 'int32').dataSync()), [1, -1], 'int32 truncates');
  t.throws(
    () => tensor([[1, 2], [3]]),
    {
      name: 'OpError',
      message: /^tensor: ragged nested array: expected length 2 at depth 1 for shape \[2, 2\], got length 1/,
    },
    'ragged',
  );
  t.throws(
    () =>
      tensor([
        [1, 2],
        [3, [4]],
      ] as never),
    { name: 'OpError', message: /^tensor: nested arrays are deeper than the inferred shape \[2, 2\]/ },
    'ragged depth with the right count',
  );
  t.throws(
    () => tensor([[1, 2], 3, 4] as never),
    { name: 'OpError', message: /^tensor: ragged nested array/ },
    'number where an array belongs',
  );
  const before = memory();
  try {
    tensor([[1], [2, 3]]);
  } catch {
    /* expected */
  }
  t.same(memory(), before, 'a rejected nested array allocates nothing');
  t.throws(() => tensor([1, 2, 3], [2, 2]), {
    name: 'OpError',
    message: /^tensor: 3 values do not fill shape \[2, 2\]/,
  });
  t.throws(() => tensor([1, 2], [2, -1]), { name: 'OpError', message: /^tensor: invalid shape \[2, -1\]/ });
});

t.test('tensor() from typed arrays', async (t) => {
  const cases: [ArrayLike<number> & { constructor: unknown }, DType][] = [
    [new Float32Array([1.5, -2]), 'float32'],
    [new Float64Array([0.1, 2]), 'float64'],
    [new Int32Array([-3, 7]), 'int32'],
    [new Uint8Array([0, 255]), 'uint8'],
  ];
  for (const [arr, dt] of cases) {
    const x = tensor(arr as Float32Array);
    t.equal(x.dtype, dt, `${dt} kept`);
    t.same(x.shape, [2]);
    t.same(Array.from(x.dataSync()), Array.from(arr), `${dt} values`);
  }
  const src = new Float32Array([1, 2, 3, 4]);
  const x = tensor(src, [2, 2]);
  src[0] = 99;
  t.equal(x.dataSync()[0], 1, 'the tensor owns a copy of the typed array');
  const y = tensor(new Float64Array([0.1]), [1], 'float32');
  t.equal(y.dtype, 'float32');
  t.equal(y.dataSync()[0], Math.fround(0.1), 'float64 -> float32 conversion');
  const d = x.dataSync();
  d[1] = 42;
  t.equal(x.dataSync()[1], 2, 'dataSync returns a copy');
  t.equal(Math.fround(0.1), tensor([0.1]).item(), 'float32 default rounds once');
  t.equal(tensor(new Float64Array([0.1])).item(), 0.1, 'float64 keeps precision');
});

t.test('zeros, ones, full, scalar', async (t) => {
  fc.assert(
    fc.property(
      arbShape(0, 4, 4),
      fc.constantFrom<DType>('float32', 'float64', 'int32', 'uint8'),
      fc.integer({ min: 0, max: 100 }),
      (shape, dtype, v) =>
        tidy(() => {
          for (const [x, want] of [
            [C.zeros(shape, dtype), 0],
            [C.ones(shape, dtype), 1],
            [C.full(shape, v, dtype), v],
          ] as const) {
            if (x.dtype !== dtype || JSON.stringify(x.shape) !== JSON.stringify(shape))
              throw new Error(`bad meta ${x.dtype} ${JSON.stringify(x.shape)}`);
            if (x.size !== size(shape) || Array.from(x.dataSync()).some((q) => q !== want))
              throw new Error(`bad values for ${want}`);
          }
        }),
    ),
    { numRuns: FC_RUNS },
  );
  t.equal(C.zeros([2]).dtype, 'float32', 'float32 by default');
  t.equal(C.full([2], 0.1, 'float64').dataSync()[0], 0.1);
  t.same(C.scalar(2.5).shape, []);
  t.equal(C.scalar(2.5).item(), 2.5);
  t.equal(C.scalar(3, 'int32').dtype, 'int32');
  t.same(C.zeros([0, 4]).shape, [0, 4], 'empty tensors');
  t.throws(() => C.zeros([2.5]), { name: 'OpError', message: /^full: invalid shape \[2\.5\]/ });
  t.throws(() => C.ones([2]).item(), {
    name: 'OpError',
    message: /^item: tensor of shape \[2\] has 2 elements, not 1/,
  });
});

t.test('arange matches numpy.arange', async (t) => {
  const arr = (x: C.Tensor) => Array.from(x.dataSync());
  t.same(arr(C.arange(5)), [0, 1, 2, 3, 4]);
  t.same(arr(C.arange(2, 5)), [2, 3, 4]);
  t.same(arr(C.arange(1, 2, 0.25)), [1, 1.25, 1.5, 1.75]);
  t.same(arr(C.arange(5, 0, -2)), [5, 3, 1]);
  t.same(arr(C.arange(0, 1, 0.1, 'float64')).length, 10);
  t.same(arr(C.arange(3, 3)), []);
  t.same(arr(C.arange(5, 0)), [], 'empty when stop < start with positive step');
  t.equal(C.arange(4, undefined, 1, 'int32').dtype, 'int32');
  t.throws(() => C.arange(0, 5, 0), { name: 'OpError', message: /^arange: step must be non-zero/ });
  fc.assert(
    fc.property(
      fc.integer({ min: -20, max: 20 }),
      fc.integer({ min: -20, max: 20 }),
      fc.integer({ min: -4, max: 4 }).filter((s) => s !== 0),
      (a, b, step) =>
        tidy(() => {
          const want: number[] = [];
          for (let v = a; step > 0 ? v < b : v > b; v += step) want.push(v);
          const got = arr(C.arange(a, b, step));
          if (JSON.stringify(got) !== JSON.stringify(want))
            throw new Error(`arange(${a}, ${b}, ${step}) = ${got}, expected ${want}`);
        }),
    ),
    { numRuns: FC_RUNS },
  );
});

const bits = (x: C.Tensor) => Array.from(new Uint32Array(Float32Array.from(x.dataSync() as Float32Array).buffer));

t.test('rand/randn: same seed gives bitwise the same tensor', async (t) => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 2 ** 40 }), arbShape(0, 3, 5), (seed, shape) =>
      tidy(() => {
        for (const f of [C.rand, C.randn]) {
          const a = bits(f(shape, { seed })),
            b = bits(f(shape, { seed }));
          if (JSON.stringify(a) !== JSON.stringify(b)) throw new Error(`${f.name}: seed ${seed} not reproducible`);
          const g1 = new C.Philox(seed),
            g2 = new C.Philox(seed);
          const c = bits(f(shape, { generator: g1 })),
            d = bits(f(shape, { generator: g2 }));
          if (JSON.stringify(c) !== JSON.stringify(a) || JSON.stringify(d) !== JSON.stringify(a))
            throw new Error(`${f.name}: generator and seed streams differ`);
        }
      }),
    ),
    { numRuns: Math.ceil(FC_RUNS / 2) },
  );
  const a = C.rand([64], { seed: 1 }),
    b = C.rand([64], { seed: 2 });
  t.notSame(bits(a), bits(b), 'different seeds differ');
  // A generator advances: two draws differ, and the default generator follows manualSeed.
  const g = new C.Philox(7);
  t.notSame(bits(C.randn([8], { generator: g })), bits(C.randn([8], { generator: g })));
  C.manualSeed(123);
  const r1 = bits(C.rand([10]));
  C.manualSeed(123);
  t.same(bits(C.rand([10])), r1, 'manualSeed resets the default stream');
  t.same(
    bits(C.randn([3], { seed: 5, dtype: 'float64' })),
    bits(C.randn([3], { seed: 5 })),
    'float64 and float32 draws agree after rounding',
  );
});

t.test('rand range and randn moments', async (t) => {
  const n = 200000;
  const u = C.rand([n], { seed: 11 }).dataSync();
  let mn = Infinity,
    mx = -Infinity,
    s = 0;
  for (const v of u) {
    mn = Math.min(mn, v);
    mx = Math.max(mx, v);
    s += v;
  }
  t.ok(mn >= 0 && mx < 1, `rand in [0, 1): [${mn}, ${mx}]`);
  t.ok(Math.abs(s / n - 0.5) < 0.005, `rand mean ${s / n}`);
  const w = C.rand([1000], { seed: 3, low: -2, high: 5 }).dataSync();
  t.ok(
    Array.from(w).every((v) => v >= -2 && v < 5),
    'rand honours low/high',
  );
  const z = C.randn([n], { seed: 12, dtype: 'float64' }).dataSync();
  let m = 0;
  for (const v of z) m += v;
  m /= n;
  let v2 = 0,
    m3 = 0,
    m4 = 0;
  for (const v of z) {
    const d = v - m;
    v2 += d * d;
    m3 += d * d * d;
    m4 += d * d * d * d;
  }
  v2 /= n;
  m3 /= n;
  m4 /= n;
  t.ok(Math.abs(m) < 0.01, `randn mean ${m}`);
  t.ok(Math.abs(Math.sqrt(v2) - 1) < 0.01, `randn std ${Math.sqrt(v2)}`);
  t.ok(Math.abs(m3 / v2 ** 1.5) < 0.03, `randn skewness ${m3 / v2 ** 1.5}`);
  t.ok(Math.abs(m4 / (v2 * v2) - 3) < 0.06, `randn kurtosis ${m4 / (v2 * v2)}`);
  // Fraction within one standard deviation: 68.27 %.
  let inside = 0;
  for (const v of z) if (Math.abs(v) < 1) inside++;
  t.ok(Math.abs(inside / n - 0.6827) < 0.005, `P(|z| < 1) = ${inside / n}`);
  const shifted = C.randn([n], { seed: 13, mean: 3, std: 0.5 });
  t.ok(Math.abs(C.mean(shifted).item() - 3) < 0.01, 'randn mean option');
  t.ok(Math.abs(Math.sqrt(C.variance(shifted).item()) - 0.5) < 0.01, 'randn std option');
  t.ok(C.randn([5], { seed: 1 }).dataSync().every(Number.isFinite), 'finite');
  t.throws(() => C.rand([-1]), { name: 'OpError', message: /^rand: invalid shape \[-1\]/ });
});

t.test('creation leaks nothing inside tidy', async (t) => {
  const before = memory();
  tidy(() => {
    C.zeros([3]);
    C.rand([4], { seed: 1 });
    C.arange(3);
    tensor([[1]]);
    C.randn([2], { seed: 2 });
  });
  t.same(memory(), before);
});
