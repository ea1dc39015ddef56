// The convolutions against the float64 oracle, written once and run on every
// backend (forEachBackend): conv3d and its two backward kernels, conv2d and
// convTranspose3d (which run on them), over random geometry (stride,
// padding, dilation, kernel sizes, batch, bias, output padding) in the
// backend's float dtypes; fixed geometries that cross the CPU's voxel and
// reduction blocks and WebGPU's tiles (several row tiles, split-K, 1×1×1,
// strided phases with empty tap sets); the adjoint identity; known values,
// output sizes and errors.
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
  OpError,
  Philox,
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
  refTensor,
  type RefTensor,
} from '@largo/core/reference';
import {
  compareAsync,
  forEachBackend,
  oracleCase,
  reductionTol,
  type BackendCase,
  type Tol,
} from '@largo/test-support';

/** Random convolution geometry over `nsp` spatial axes whose dilated kernel always fits the padded input. */
function arbGeom(nsp: number, maxSp = 6, maxC = 4, maxO = 5) {
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
      C: fc.integer({ min: 1, max: maxC }),
      O: fc.integer({ min: 1, max: maxO }),
      axes: fc.array(axis, { minLength: nsp, maxLength: nsp }),
      bias: fc.boolean(),
      seed: fc.integer({ min: 0, max: 1 << 30 }),
    })
    .map((g) => {
      const axes = g.axes.map((a) => ({ ...a, n: Math.max(a.n, a.d * (a.k - 1) + 1 - 2 * a.p) }));
      return {
        N: g.N,
        C: g.C,
        O: g.O,
        bias: g.bias,
        seed: g.seed,
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
type FixedGeom = Omit<Geom, 'outputPadding'>;

const prod = (xs: readonly number[]) => xs.reduce((a, b) => a * b, 1);
const size = prod;
/** Normal values (rounded to float32 for a float32 case). */
const normals = (n: number, seed: number, dtype: DType = 'float32') => {
  const v = new Philox(seed).normal(n);
  return dtype === 'float32' ? Float32Array.from(v) : Float64Array.from(v);
};

/**
 * float64: near ulp level. float32 over a reduction of n products: the CPU
 * rounds once from doubles (reductionTol); an f32-accumulating backend
 * (WebGPU's implicit GEMMs) sums in float32, its error growing with n.
 */
const tolFor = (b: BackendCase, dtype: DType, n: number): Tol =>
  dtype === 'float64'
    ? { rtol: 1e-11, atol: 1e-11 }
    : b.pick({ f64: reductionTol(n), f32: { rtol: 2e-5, atol: 2e-6 * Math.max(n, 1) + 1e-6 } });

/** Runs `make` in tidy on the active backend, then compares its result with the oracle (async reads); null when close. */
async function closeTo(make: () => [Tensor, RefTensor, Tol]): Promise<string | null> {
  const [y, want, tol] = tidy(make);
  return compareAsync(y, want, tol, true);
}
async function expectClose(name: string, g: unknown, make: () => [Tensor, RefTensor, Tol]): Promise<void> {
  const msg = await closeTo(make);
  if (msg) throw new Error(`${name}: ${msg} for ${JSON.stringify(g)}`);
}

const outSp = (g: FixedGeom) =>
  g.inSp.map((n, i) => convOutputSize(n, g.k[i], g.stride[i], g.padding[i], g.dilation[i]));
const opts = (g: FixedGeom) => ({ stride: g.stride, padding: g.padding, dilation: g.dilation });

/** The three conv3d kernels on geometry `g` in `dtype`: the backend's result and the oracle's. */
const KERNELS: Record<
  'conv3d' | 'conv3dGradInput' | 'conv3dGradWeight',
  (b: BackendCase, g: FixedGeom, dtype: DType) => () => [Tensor, RefTensor, Tol]
> = {
  conv3d: (b, g, dtype) => () => {
    const xs = [g.N, g.C, ...g.inSp],
      ws = [g.O, g.C, ...g.k];
    const xv = normals(size(xs), g.seed, dtype),
      wv = normals(size(ws), g.seed + 1, dtype),
      bv = normals(g.O, g.seed + 2, dtype);
    return [
      conv3d(tensor(xv, xs, dtype), tensor(wv, ws, dtype), g.bias ? tensor(bv, [g.O], dtype) : null, opts(g)),
      refConv3d(refTensor(xs, xv), refTensor(ws, wv), g.bias ? refTensor([g.O], bv) : null, opts(g)),
      tolFor(b, dtype, g.C * prod(g.k)),
    ];
  },
  conv3dGradInput: (b, g, dtype) => () => {
    const xs = [g.N, g.C, ...g.inSp],
      ws = [g.O, g.C, ...g.k],
      ys = [g.N, g.O, ...outSp(g)];
    const dyv = normals(size(ys), g.seed, dtype),
      wv = normals(size(ws), g.seed + 1, dtype);
    return [
      conv3dGradInput(tensor(dyv, ys, dtype), tensor(wv, ws, dtype), xs, opts(g)),
      refConv3dGradInput(refTensor(ys, dyv), refTensor(ws, wv), xs, opts(g)),
      tolFor(b, dtype, g.O * prod(g.k)),
    ];
  },
  conv3dGradWeight: (b, g, dtype) => () => {
    const xs = [g.N, g.C, ...g.inSp],
      ws = [g.O, g.C, ...g.k],
      ys = [g.N, g.O, ...outSp(g)];
    const xv = normals(size(xs), g.seed, dtype),
      dyv = normals(size(ys), g.seed + 1, dtype);
    return [
      conv3dGradWeight(tensor(xv, xs, dtype), tensor(dyv, ys, dtype), ws, opts(g)),
      refConv3dGradWeight(refTensor(xs, xv), refTensor(ys, dyv), ws, opts(g)),
      tolFor(b, dtype, g.N * prod(outSp(g))),
    ];
  },
};

/** Fixed geometries: several row tiles (O = 70), long reductions (split-K), 1×1×1, strided phases with empty tap sets. */
const FIXED: FixedGeom[] = [
  {
    N: 1,
    C: 3,
    O: 70,
    inSp: [3, 4, 5],
    k: [3, 3, 3],
    stride: [1, 1, 1],
    padding: [1, 1, 1],
    dilation: [1, 1, 1],
    bias: true,
    seed: 1,
  },
  {
    N: 2,
    C: 2,
    O: 4,
    inSp: [10, 10, 8],
    k: [3, 3, 3],
    stride: [1, 1, 1],
    padding: [1, 1, 1],
    dilation: [1, 1, 1],
    bias: false,
    seed: 2,
  },
  {
    N: 1,
    C: 40,
    O: 6,
    inSp: [3, 3, 3],
    k: [3, 3, 3],
    stride: [1, 1, 1],
    padding: [0, 0, 0],
    dilation: [1, 1, 1],
    bias: true,
    seed: 3,
  },
  {
    N: 2,
    C: 5,
    O: 3,
    inSp: [4, 3, 5],
    k: [1, 1, 1],
    stride: [1, 1, 1],
    padding: [0, 0, 0],
    dilation: [1, 1, 1],
    bias: true,
    seed: 4,
  },
  {
    N: 1,
    C: 2,
    O: 3,
    inSp: [7, 6, 5],
    k: [1, 2, 1],
    stride: [3, 2, 2],
    padding: [0, 1, 0],
    dilation: [1, 1, 1],
    bias: false,
    seed: 5,
  },
  {
    N: 2,
    C: 3,
    O: 17,
    inSp: [9, 8, 7],
    k: [3, 3, 3],
    stride: [2, 2, 2],
    padding: [1, 1, 1],
    dilation: [1, 1, 1],
    bias: true,
    seed: 6,
  },
];

for (const op of ['conv3d', 'conv3dGradInput', 'conv3dGradWeight'] as const) {
  forEachBackend(t, oracleCase(op), async (t, b) => {
    for (const dtype of b.floatDtypes) {
      await fc.assert(
        fc.asyncProperty(arbGeom(3), async (g) => expectClose(`${op} ${dtype}`, g, KERNELS[op](b, g, dtype))),
        { numRuns: b.runs },
      );
    }
    for (const g of FIXED)
      t.equal(
        await closeTo(KERNELS[op](b, g, 'float32')),
        null,
        `O=${g.O} C=${g.C} [${g.inSp}] k=[${g.k}] s=[${g.stride}]`,
      );
  });
}

forEachBackend(t, oracleCase('conv2d'), async (t, b) => {
  for (const dtype of b.floatDtypes) {
    await fc.assert(
      fc.asyncProperty(arbGeom(2, 8), (g) =>
        expectClose(`conv2d ${dtype}`, g, () => {
          const xs = [g.N, g.C, ...g.inSp],
            ws = [g.O, g.C, ...g.k];
          const xv = normals(size(xs), g.seed, dtype),
            wv = normals(size(ws), g.seed + 1, dtype),
            bv = normals(g.O, g.seed + 2, dtype);
          const o = { stride: g.stride, padding: g.padding, dilation: g.dilation };
          return [
            conv2d(tensor(xv, xs, dtype), tensor(wv, ws, dtype), g.bias ? tensor(bv, [g.O], dtype) : null, o),
            refConv2d(refTensor(xs, xv), refTensor(ws, wv), g.bias ? refTensor([g.O], bv) : null, o),
            tolFor(b, dtype, g.C * prod(g.k)),
          ];
        }),
      ),
      { numRuns: b.runs },
    );
  }
  const o2 = { stride: [2, 1], padding: [1, 0], dilation: [1, 2] };
  t.equal(
    await closeTo(() => {
      const xv = normals(2 * 3 * 7 * 6, 11),
        wv = normals(4 * 3 * 3 * 2, 12),
        bv = normals(4, 13);
      return [
        conv2d(tensor(xv, [2, 3, 7, 6]), tensor(wv, [4, 3, 3, 2]), tensor(bv, [4]), o2),
        refConv2d(refTensor([2, 3, 7, 6], xv), refTensor([4, 3, 3, 2], wv), refTensor([4], bv), o2),
        tolFor(b, 'float32', 18),
      ];
    }),
    null,
    'conv2d, a fixed geometry',
  );
});

forEachBackend(t, oracleCase('convTranspose3d'), async (t, b) => {
  for (const dtype of b.floatDtypes) {
    await fc.assert(
      fc.asyncProperty(arbGeom(3, 4), (g) =>
        expectClose(`convTranspose3d ${dtype}`, g, () => {
          // Keep the output non-empty: padding may not eat the whole extent.
          const padding = g.inSp.map((n, i) =>
            Math.min(
              g.padding[i],
              Math.floor(((n - 1) * g.stride[i] + g.dilation[i] * (g.k[i] - 1) + g.outputPadding[i]) / 2),
            ),
          );
          const o = { stride: g.stride, padding, dilation: g.dilation, outputPadding: g.outputPadding };
          const xs = [g.N, g.C, ...g.inSp],
            ws = [g.C, g.O, ...g.k];
          const xv = normals(size(xs), g.seed, dtype),
            wv = normals(size(ws), g.seed + 1, dtype),
            bv = normals(g.O, g.seed + 2, dtype);
          return [
            convTranspose3d(tensor(xv, xs, dtype), tensor(wv, ws, dtype), g.bias ? tensor(bv, [g.O], dtype) : null, o),
            refConvTranspose3d(refTensor(xs, xv), refTensor(ws, wv), g.bias ? refTensor([g.O], bv) : null, o),
            tolFor(b, dtype, g.C * prod(g.k)),
          ];
        }),
      ),
      { numRuns: b.runs },
    );
  }
  const ot = { stride: [2, 2, 1], padding: [1, 0, 1], outputPadding: [1, 1, 0], dilation: [1, 1, 1] };
  t.equal(
    await closeTo(() => {
      const ts = [1, 3, 3, 4, 2],
        tw = [3, 2, 3, 2, 3];
      const tv = normals(size(ts), 14),
        twv = normals(size(tw), 15),
        tb = normals(2, 16);
      return [
        convTranspose3d(tensor(tv, ts), tensor(twv, tw), tensor(tb, [2]), ot),
        refConvTranspose3d(refTensor(ts, tv), refTensor(tw, twv), refTensor([2], tb), ot),
        tolFor(b, 'float32', 54),
      ];
    }),
    null,
    'convTranspose3d, a fixed geometry',
  );
});

forEachBackend(t, oracleCase('conv3d') + ' (shapes crossing the voxel and reduction blocks)', async (t, b) => {
  // 990 output voxels (> 256 per block) and Kc = 162 (> 128 rows per block), odd row lengths.
  for (const [xs, ws, o] of [
    [[2, 6, 9, 10, 11], [5, 6, 3, 3, 3], { stride: [1, 1, 1], padding: [1, 1, 1], dilation: [1, 1, 1] }],
    [[1, 5, 7, 19, 23], [7, 5, 3, 2, 3], { stride: [2, 1, 2], padding: [1, 0, 2], dilation: [1, 2, 1] }],
  ] as const) {
    const g = { xs, ws, o };
    await expectClose('conv3d', g, () => {
      const xv = normals(prod(xs), 11),
        wv = normals(prod(ws), 12),
        bv = normals(ws[0], 13);
      return [
        conv3d(tensor(xv, [...xs]), tensor(wv, [...ws]), tensor(bv, [ws[0]]), o),
        refConv3d(refTensor([...xs], xv), refTensor([...ws], wv), refTensor([ws[0]], bv), o),
        tolFor(b, 'float32', prod(ws.slice(1))),
      ];
    });
    const out = xs.slice(2).map((n, i) => convOutputSize(n, ws[i + 2], o.stride[i], o.padding[i], o.dilation[i]));
    const ys = [xs[0], ws[0], ...out];
    await expectClose('conv3dGradInput', g, () => {
      const dyv = normals(prod(ys), 14),
        wv = normals(prod(ws), 15);
      return [
        conv3dGradInput(tensor(dyv, ys), tensor(wv, [...ws]), xs, o),
        refConv3dGradInput(refTensor(ys, dyv), refTensor([...ws], wv), [...xs], o),
        tolFor(b, 'float32', ws[0] * prod(ws.slice(2))),
      ];
    });
    await expectClose('conv3dGradWeight', g, () => {
      const xv = normals(prod(xs), 16),
        dyv = normals(prod(ys), 17);
      return [
        conv3dGradWeight(tensor(xv, [...xs]), tensor(dyv, ys), ws, o),
        refConv3dGradWeight(refTensor([...xs], xv), refTensor(ys, dyv), [...ws], o),
        tolFor(b, 'float32', xs[0] * prod(out)),
      ];
    });
  }
  t.pass('blocked shapes match the oracle');
});

/**
 * Unit stride and dilation with rows of whole vec4s (W and the output's W multiples of 4), as a U-Net's
 * 3×3×3 layers: WebGPU's direct kernel on software adapters (output-channel blocks of 4, 8 and 16 with a
 * partial last block, 4- to 16-voxel row blocks with a partial last one, padded x taps on both sides).
 */
const arbDirect = fc
  .record({
    N: fc.integer({ min: 1, max: 2 }),
    C: fc.integer({ min: 1, max: 5 }),
    O: fc.integer({ min: 1, max: 20 }),
    dh: fc.array(fc.record({ n: fc.integer({ min: 1, max: 5 }), k: fc.integer({ min: 1, max: 3 }), p: fc.nat(2) }), {
      minLength: 2,
      maxLength: 2,
    }),
    // (kernel, padding) along x with an output width that stays a multiple of 4
    xkp: fc.constantFrom([3, 1], [3, 1], [1, 0], [5, 2], [3, 3], [1, 2], [7, 3]),
    W4: fc.integer({ min: 1, max: 6 }),
    bias: fc.boolean(),
    seed: fc.integer({ min: 0, max: 1 << 30 }),
  })
  .map((g): FixedGeom => ({
    N: g.N,
    C: g.C,
    O: g.O,
    inSp: [
      ...g.dh.map((a) => Math.max(a.n, a.k - 2 * a.p)),
      Math.max(4 * g.W4, 4 * Math.ceil((g.xkp[0] - 2 * g.xkp[1]) / 4)),
    ],
    k: [...g.dh.map((a) => a.k), g.xkp[0]],
    stride: [1, 1, 1],
    padding: [...g.dh.map((a) => a.p), g.xkp[1]],
    dilation: [1, 1, 1],
    bias: g.bias,
    seed: g.seed,
  }));

forEachBackend(t, oracleCase('conv3d') + ' (unit stride, rows of whole vec4s)', async (t, b) => {
  for (const op of ['conv3d', 'conv3dGradInput', 'conv3dGradWeight'] as const)
    await fc.assert(
      fc.asyncProperty(arbDirect, async (g) => expectClose(`${op} float32`, g, KERNELS[op](b, g, 'float32'))),
      { numRuns: b.runs },
    );
  const fixed: FixedGeom[] = [
    // A U-Net stage's shape at a small volume: 24 output channels (a partial block of 16), a 32-voxel row, bias;
    // the weight gradient splits its 3 (n, z) rows.
    {
      N: 1,
      C: 8,
      O: 24,
      inSp: [3, 5, 32],
      k: [3, 3, 3],
      stride: [1, 1, 1],
      padding: [1, 1, 1],
      dilation: [1, 1, 1],
      bias: true,
      seed: 31,
    },
    // One (n, z) row (the weight gradient does not split), 9 input channels (a partial block of 8).
    {
      N: 1,
      C: 9,
      O: 5,
      inSp: [1, 3, 12],
      k: [1, 3, 3],
      stride: [1, 1, 1],
      padding: [0, 1, 1],
      dilation: [1, 1, 1],
      bias: false,
      seed: 32,
    },
  ];
  for (const g of fixed)
    for (const op of ['conv3d', 'conv3dGradInput', 'conv3dGradWeight'] as const)
      t.equal(await closeTo(KERNELS[op](b, g, 'float32')), null, `${op} O=${g.O} C=${g.C} [${g.inSp}]`);
});

forEachBackend(t, 'conv3d: adjoint identity <conv(x, w), y> = <x, conv3dGradInput(y, w)>', async (t) => {
  const g: FixedGeom = {
    N: 2,
    C: 3,
    O: 4,
    inSp: [6, 5, 7],
    k: [3, 2, 3],
    stride: [2, 1, 2],
    padding: [1, 1, 0],
    dilation: [1, 2, 1],
    bias: false,
    seed: 21,
  };
  const xs = [g.N, g.C, ...g.inSp],
    ws = [g.O, g.C, ...g.k],
    ys = [g.N, g.O, ...outSp(g)];
  const xv = normals(size(xs), 1),
    wv = normals(size(ws), 2),
    yv = normals(size(ys), 3);
  const read = async (y: Tensor) => {
    const d = Array.from((await y.data()) as ArrayLike<number>);
    y.dispose();
    return d;
  };
  const cx = await read(tidy(() => conv3d(tensor(xv, xs), tensor(wv, ws), null, opts(g))));
  const gy = await read(tidy(() => conv3dGradInput(tensor(yv, ys), tensor(wv, ws), xs, opts(g))));
  let lhs = 0,
    rhs = 0,
    mag = 0;
  cx.forEach((v, i) => {
    lhs += v * yv[i];
    mag += Math.abs(v * yv[i]);
  });
  gy.forEach((v, i) => {
    rhs += v * xv[i];
  });
  t.ok(Math.abs(lhs - rhs) <= 1e-5 * mag, `${lhs} vs ${rhs}`);
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
