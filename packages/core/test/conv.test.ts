import t from 'tap';
import fc from 'fast-check';
import {
  conv2d,
  conv3d,
  conv3dGradInput,
  conv3dGradWeight,
  convTranspose3d,
  convOutputSize,
  convTransposeOutputSize,
  memory,
  OpError,
  randn,
  tensor,
  tidy,
  zeros,
  type DType,
  type Tensor,
} from '@largo/core';
import {
  refConv2d,
  refConv3d,
  refConv3dGradInput,
  refConv3dGradWeight,
  refConvTranspose3d,
  type RefTensor,
} from '@largo/core/reference';
import { compare, oracleCase, toRef, reductionTol, FC_RUNS, type Tol } from '@largo/test-support';

/** Random convolution geometry over `nsp` spatial axes whose dilated kernel always fits the padded input. */
function arbGeom(nsp: number, maxSp = 6) {
  const axis = fc.record({
    n: fc.integer({ min: 1, max: maxSp }),
    k: fc.integer({ min: 1, max: 3 }),
    s: fc.integer({ min: 1, max: 3 }),
    p: fc.integer({ min: 0, max: 2 }),
    d: fc.integer({ min: 1, max: 2 }),
    op: fc.nat(2),
  });
  return fc
    .record({
      N: fc.integer({ min: 1, max: 2 }),
      C: fc.integer({ min: 1, max: 3 }),
      O: fc.integer({ min: 1, max: 4 }),
      axes: fc.array(axis, { minLength: nsp, maxLength: nsp }),
      bias: fc.boolean(),
      seed: fc.integer({ min: 0, max: 1 << 30 }),
    })
    .map((g) => {
      const axes = g.axes.map((a) => ({ ...a, n: Math.max(a.n, a.d * (a.k - 1) + 1 - 2 * a.p) }));
      return {
        ...g,
        inSp: axes.map((a) => a.n),
        k: axes.map((a) => a.k),
        stride: axes.map((a) => a.s),
        padding: axes.map((a) => a.p),
        dilation: axes.map((a) => a.d),
        // A valid output padding: below stride or dilation.
        outputPadding: axes.map((a) => a.op % Math.max(a.s, a.d)),
      };
    });
}
type Geom = ReturnType<typeof arbGeom> extends fc.Arbitrary<infer G> ? G : never;

const tolFor = (dtype: DType, n: number): Tol => (dtype === 'float64' ? { rtol: 1e-11, atol: 1e-11 } : reductionTol(n));
const prod = (xs: readonly number[]) => xs.reduce((a, b) => a * b, 1);

/** Runs `body` on fresh tensors inside tidy and throws the compare() message, with the case, on mismatch. */
function expectClose(name: string, g: unknown, body: () => [Tensor, RefTensor, Tol]): void {
  const msg = tidy(() => {
    const [y, r, tol] = body();
    return compare(y, r, tol);
  });
  if (msg) throw new Error(`${name}: ${msg} for ${JSON.stringify(g)}`);
}

const DTYPES: DType[] = ['float32', 'float64'];

t.test(oracleCase('conv3d'), async (t) => {
  const before = memory().tensors;
  for (const dtype of DTYPES) {
    fc.assert(
      fc.property(arbGeom(3), (g) =>
        expectClose('conv3d', g, () => {
          const x = randn([g.N, g.C, ...g.inSp], { seed: g.seed, dtype });
          const w = randn([g.O, g.C, ...g.k], { seed: g.seed + 1, dtype });
          const b = g.bias ? randn([g.O], { seed: g.seed + 2, dtype }) : null;
          const o = { stride: g.stride, padding: g.padding, dilation: g.dilation };
          return [conv3d(x, w, b, o), refConv3d(toRef(x), toRef(w), b && toRef(b), o), tolFor(dtype, g.C * prod(g.k))];
        }),
      ),
      { numRuns: FC_RUNS },
    );
  }
  t.equal(memory().tensors, before, 'no leaked tensors');
});

t.test(oracleCase('conv3dGradInput'), async (t) => {
  for (const dtype of DTYPES) {
    fc.assert(
      fc.property(arbGeom(3), (g) =>
        expectClose('conv3dGradInput', g, () => {
          const o = { stride: g.stride, padding: g.padding, dilation: g.dilation };
          const out = g.inSp.map((n, i) => convOutputSize(n, g.k[i], g.stride[i], g.padding[i], g.dilation[i]));
          const dy = randn([g.N, g.O, ...out], { seed: g.seed, dtype });
          const w = randn([g.O, g.C, ...g.k], { seed: g.seed + 1, dtype });
          const inputShape = [g.N, g.C, ...g.inSp];
          return [
            conv3dGradInput(dy, w, inputShape, o),
            refConv3dGradInput(toRef(dy), toRef(w), inputShape, o),
            tolFor(dtype, g.O * prod(g.k)),
          ];
        }),
      ),
      { numRuns: FC_RUNS },
    );
  }
  t.pass('matches the oracle in float32 and float64');
});

t.test(oracleCase('conv3dGradWeight'), async (t) => {
  for (const dtype of DTYPES) {
    fc.assert(
      fc.property(arbGeom(3), (g) =>
        expectClose('conv3dGradWeight', g, () => {
          const o = { stride: g.stride, padding: g.padding, dilation: g.dilation };
          const out = g.inSp.map((n, i) => convOutputSize(n, g.k[i], g.stride[i], g.padding[i], g.dilation[i]));
          const x = randn([g.N, g.C, ...g.inSp], { seed: g.seed, dtype });
          const dy = randn([g.N, g.O, ...out], { seed: g.seed + 1, dtype });
          const ws = [g.O, g.C, ...g.k];
          return [
            conv3dGradWeight(x, dy, ws, o),
            refConv3dGradWeight(toRef(x), toRef(dy), ws, o),
            tolFor(dtype, g.N * prod(out)),
          ];
        }),
      ),
      { numRuns: FC_RUNS },
    );
  }
  t.pass('matches the oracle in float32 and float64');
});

t.test(oracleCase('conv2d'), async (t) => {
  for (const dtype of DTYPES) {
    fc.assert(
      fc.property(arbGeom(2, 8), (g) =>
        expectClose('conv2d', g, () => {
          const x = randn([g.N, g.C, ...g.inSp], { seed: g.seed, dtype });
          const w = randn([g.O, g.C, ...g.k], { seed: g.seed + 1, dtype });
          const b = g.bias ? randn([g.O], { seed: g.seed + 2, dtype }) : null;
          const o = { stride: g.stride, padding: g.padding, dilation: g.dilation };
          return [conv2d(x, w, b, o), refConv2d(toRef(x), toRef(w), b && toRef(b), o), tolFor(dtype, g.C * prod(g.k))];
        }),
      ),
      { numRuns: FC_RUNS },
    );
  }
  t.pass('matches the oracle in float32 and float64');
});

t.test(oracleCase('convTranspose3d'), async (t) => {
  for (const dtype of DTYPES) {
    fc.assert(
      fc.property(arbGeom(3, 4), (g) =>
        expectClose('convTranspose3d', g, () => {
          // Keep the output non-empty: padding may not eat the whole extent.
          const padding = g.inSp.map((n, i) =>
            Math.min(
              g.padding[i],
              Math.floor(((n - 1) * g.stride[i] + g.dilation[i] * (g.k[i] - 1) + g.outputPadding[i]) / 2),
            ),
          );
          const o = { stride: g.stride, padding, dilation: g.dilation, outputPadding: g.outputPadding };
          const x = randn([g.N, g.C, ...g.inSp], { seed: g.seed, dtype });
          const w = randn([g.C, g.O, ...g.k], { seed: g.seed + 1, dtype });
          const b = g.bias ? randn([g.O], { seed: g.seed + 2, dtype }) : null;
          return [
            convTranspose3d(x, w, b, o),
            refConvTranspose3d(toRef(x), toRef(w), b && toRef(b), o),
            tolFor(dtype, g.C * prod(g.k)),
          ];
        }),
      ),
      { numRuns: FC_RUNS },
    );
  }
  t.pass('matches the oracle in float32 and float64');
});

t.test(oracleCase('conv3d') + ' (shapes crossing the voxel and reduction blocks)', async (t) => {
  // 990 output voxels (> 256 per block) and Kc = 162 (> 128 rows per block), odd row lengths.
  for (const [xs, ws, o] of [
    [[2, 6, 9, 10, 11], [5, 6, 3, 3, 3], { stride: [1, 1, 1], padding: [1, 1, 1], dilation: [1, 1, 1] }],
    [[1, 5, 7, 19, 23], [7, 5, 3, 2, 3], { stride: [2, 1, 2], padding: [1, 0, 2], dilation: [1, 2, 1] }],
  ] as const) {
    const g = { xs, ws, o };
    expectClose('conv3d', g, () => {
      const x = randn([...xs], { seed: 11 }),
        w = randn([...ws], { seed: 12 }),
        b = randn([ws[0]], { seed: 13 });
      return [conv3d(x, w, b, o), refConv3d(toRef(x), toRef(w), toRef(b), o), reductionTol(prod(ws.slice(1)))];
    });
    const out = xs.slice(2).map((n, i) => convOutputSize(n, ws[i + 2], o.stride[i], o.padding[i], o.dilation[i]));
    expectClose('conv3dGradInput', g, () => {
      const dy = randn([xs[0], ws[0], ...out], { seed: 14 }),
        w = randn([...ws], { seed: 15 });
      return [
        conv3dGradInput(dy, w, xs, o),
        refConv3dGradInput(toRef(dy), toRef(w), [...xs], o),
        reductionTol(ws[0] * prod(ws.slice(2))),
      ];
    });
    expectClose('conv3dGradWeight', g, () => {
      const x = randn([...xs], { seed: 16 }),
        dy = randn([xs[0], ws[0], ...out], { seed: 17 });
      return [
        conv3dGradWeight(x, dy, ws, o),
        refConv3dGradWeight(toRef(x), toRef(dy), [...ws], o),
        reductionTol(xs[0] * prod(out)),
      ];
    });
  }
  t.pass('blocked shapes match the oracle');
});

t.test('conv: known values and output sizes', async (t) => {
  // 1-channel 3×3 box filter over a 3×3 image of ones, padding 1: counts of in-bounds taps.
  const y = conv2d(
    tensor(new Float32Array(9).fill(1), [1, 1, 3, 3]),
    tensor(new Float32Array(9).fill(1), [1, 1, 3, 3]),
    null,
    { padding: 1 },
  );
  t.same(y.toArray(), [
    [
      [
        [4, 6, 4],
        [6, 9, 6],
        [4, 6, 4],
      ],
    ],
  ]);
  t.equal(convOutputSize(32, 3, 2, 1, 1), 16);
  t.equal(convTransposeOutputSize(16, 2, 2, 0, 1, 0), 32);
  t.same(
    conv3d(zeros([2, 3, 8, 8, 8]), zeros([4, 3, 3, 3, 3]), null, { stride: 2, padding: 1 }).shape,
    [2, 4, 4, 4, 4],
  );
  t.same(convTranspose3d(zeros([2, 4, 4, 4, 4]), zeros([4, 3, 2, 2, 2]), null, { stride: 2 }).shape, [2, 3, 8, 8, 8]);
  // Empty batch and channel-free input (the bias alone).
  t.same(conv3d(zeros([0, 3, 4, 4, 4]), zeros([2, 3, 3, 3, 3])).shape, [0, 2, 2, 2, 2]);
  t.same(conv3d(zeros([1, 0, 2, 2, 2]), zeros([2, 0, 1, 1, 1]), tensor([1, 2])).toArray(), [
    [
      [
        [
          [1, 1],
          [1, 1],
        ],
        [
          [1, 1],
          [1, 1],
        ],
      ],
      [
        [
          [2, 2],
          [2, 2],
        ],
        [
          [2, 2],
          [2, 2],
        ],
      ],
    ],
  ]);
});

t.test('conv: errors name the op and the shapes', async (t) => {
  const err = (op: string, f: () => unknown, ...parts: string[]) => {
    try {
      f();
    } catch (e) {
      const m = (e as Error).message;
      t.ok(e instanceof OpError && m.startsWith(op + ':'), `${op}: ${m}`);
      for (const p of parts) t.ok(m.includes(p), `'${m}' mentions ${p}`);
      return;
    }
    t.fail(`${op}: did not throw (${parts.join(', ')})`);
  };
  const x = zeros([1, 2, 5, 5, 5]),
    w = zeros([3, 2, 3, 3, 3]);
  err('conv3d', () => conv3d(zeros([1, 2, 5, 5]), w), '[1, 2, 5, 5]', '[3, 2, 3, 3, 3]', 'rank 5');
  err('conv3d', () => conv3d(x, zeros([3, 2, 3, 3])), '[1, 2, 5, 5, 5]', '[3, 2, 3, 3]', 'rank 5');
  err('conv3d', () => conv3d(x, zeros([3, 4, 3, 3, 3])), '[1, 2, 5, 5, 5]', '[3, 4, 3, 3, 3]', 'channels');
  err('conv3d', () => conv3d(x, w, null, { padding: -1 }), '[1, 2, 5, 5, 5]', '[3, 2, 3, 3, 3]', 'padding');
  err('conv3d', () => conv3d(x, w, null, { stride: 0 }), '[1, 2, 5, 5, 5]', '[3, 2, 3, 3, 3]', 'stride');
  err('conv3d', () => conv3d(x, w, null, { stride: [1, -2, 1] }), '[1, 2, 5, 5, 5]', 'stride');
  err('conv3d', () => conv3d(x, w, null, { dilation: 0 }), '[1, 2, 5, 5, 5]', '[3, 2, 3, 3, 3]', 'dilation');
  err('conv3d', () => conv3d(x, w, null, { stride: [1, 1] }), '[1, 2, 5, 5, 5]', 'stride');
  err(
    'conv3d',
    () => conv3d(zeros([1, 2, 2, 5, 5]), w),
    '[1, 2, 2, 5, 5]',
    '[3, 2, 3, 3, 3]',
    'larger than the padded input',
  );
  err(
    'conv3d',
    () => conv3d(x, w, null, { dilation: 3 }),
    '[1, 2, 5, 5, 5]',
    '[3, 2, 3, 3, 3]',
    'larger than the padded input',
  );
  err('conv3d', () => conv3d(x, zeros([3, 2, 3, 3, 3], 'float64')), '[1, 2, 5, 5, 5]', '[3, 2, 3, 3, 3]', 'float64');
  err(
    'conv3d',
    () => conv3d(zeros([1, 2, 5, 5, 5], 'int32'), zeros([3, 2, 3, 3, 3], 'int32')),
    '[1, 2, 5, 5, 5]',
    'int32',
  );
  err(
    'conv3d',
    () => conv3d(x, w, zeros([4])),
    '[1, 2, 5, 5, 5]',
    '[3, 2, 3, 3, 3]',
    'bias [4]',
    'must have shape [3]',
  );
  err('conv3d', () => conv3d(x, w, zeros([1, 3])), '[3, 2, 3, 3, 3]', 'bias [1, 3]');
  err('conv3d', () => conv3d(x, w, zeros([3], 'float64')), '[3, 2, 3, 3, 3]', 'bias [3]', 'float64');

  const x2 = zeros([1, 2, 5, 5]),
    w2 = zeros([3, 2, 3, 3]);
  err('conv2d', () => conv2d(x, w2), '[1, 2, 5, 5, 5]', '[3, 2, 3, 3]', 'rank 4');
  err('conv2d', () => conv2d(x2, zeros([3, 1, 3, 3])), '[1, 2, 5, 5]', '[3, 1, 3, 3]', 'channels');
  err('conv2d', () => conv2d(x2, w2, null, { padding: [0, -1] }), '[1, 2, 5, 5]', '[3, 2, 3, 3]', 'padding');
  err('conv2d', () => conv2d(x2, w2, null, { stride: 0 }), '[1, 2, 5, 5]', 'stride');
  err('conv2d', () => conv2d(zeros([1, 2, 2, 2]), w2), '[1, 2, 2, 2]', '[3, 2, 3, 3]', 'larger than the padded input');
  err('conv2d', () => conv2d(x2, w2, zeros([2])), '[1, 2, 5, 5]', 'bias [2]');

  const wt = zeros([2, 3, 2, 2, 2]);
  err(
    'convTranspose3d',
    () => convTranspose3d(zeros([1, 3, 4, 4, 4]), wt),
    '[1, 3, 4, 4, 4]',
    '[2, 3, 2, 2, 2]',
    'channels',
  );
  err(
    'convTranspose3d',
    () => convTranspose3d(x, wt, null, { stride: 2, outputPadding: 2 }),
    '[1, 2, 5, 5, 5]',
    '[2, 3, 2, 2, 2]',
    'outputPadding',
  );
  err('convTranspose3d', () => convTranspose3d(x, wt, null, { padding: -1 }), '[1, 2, 5, 5, 5]', 'padding');
  err('convTranspose3d', () => convTranspose3d(x, wt, null, { dilation: 0 }), '[1, 2, 5, 5, 5]', 'dilation');
  err(
    'convTranspose3d',
    () => convTranspose3d(zeros([1, 2, 1, 1, 1]), wt, null, { padding: 1 }),
    '[1, 2, 1, 1, 1]',
    'not positive',
  );
  err('convTranspose3d', () => convTranspose3d(x, wt, zeros([2])), '[2, 3, 2, 2, 2]', 'bias [2]');
  err('convTranspose3d', () => convTranspose3d(zeros([1, 2, 5, 5]), wt), '[1, 2, 5, 5]', 'rank 5');

  err(
    'conv3dGradInput',
    () => conv3dGradInput(zeros([1, 4, 3, 3, 3]), w, [1, 2, 5, 5, 5]),
    '[1, 4, 3, 3, 3]',
    '[3, 2, 3, 3, 3]',
    'channels',
  );
  err(
    'conv3dGradInput',
    () => conv3dGradInput(zeros([1, 3, 3, 3, 3]), w, [1, 5, 5, 5, 5]),
    'inputShape [1, 5, 5, 5, 5]',
    'channels',
  );
  err(
    'conv3dGradWeight',
    () => conv3dGradWeight(x, zeros([1, 4, 3, 3, 3]), [3, 2, 3, 3, 3]),
    '[1, 2, 5, 5, 5]',
    '[1, 4, 3, 3, 3]',
    'channels',
  );
  err(
    'conv3dGradWeight',
    () => conv3dGradWeight(x, zeros([2, 3, 3, 3, 3]), [3, 2, 3, 3, 3]),
    '[1, 2, 5, 5, 5]',
    '[2, 3, 3, 3, 3]',
    'batch',
  );
});
