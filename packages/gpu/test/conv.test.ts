// The WebGPU convolution kernels (implicit GEMMs) against the float64
// oracle: random geometry (stride, padding, dilation, kernel sizes, batch,
// bias), the stride phases of grad-input, 1×1×1 convolutions, tiles with
// several row/column blocks, split-K, and conv2d / convTranspose3d, which
// run on the same kernels.
import t from 'tap';
import fc from 'fast-check';
import { Philox, conv2d, conv3d, conv3dGradInput, conv3dGradWeight, convTranspose3d, tensor, tidy } from '@largo/core';
import {
  refConv2d,
  refConv3d,
  refConv3dGradInput,
  refConv3dGradWeight,
  refConvTranspose3d,
  refTensor,
} from '@largo/core/reference';
import { GPU_RUNS, check, compareTo, gpuOpts, leakFree, oracleCase, size, take, wg, type Tol } from './helpers.js';

const normals = (n: number, seed: number) => Float32Array.from(new Philox(seed).normal(n));

/** float32 against float64: error grows with the reduction length n (values ~ N(0, 1)). */
const convTol = (n: number): Tol => ({ rtol: 2e-5, atol: 2e-6 * Math.max(n, 1) + 1e-6 });

interface Geom {
  N: number;
  C: number;
  O: number;
  inSp: number[];
  k: number[];
  stride: number[];
  padding: number[];
  dilation: number[];
  bias: boolean;
  seed: number;
}

/** Random 3-d geometry whose dilated kernel fits the padded input. */
const arbGeom = (maxSp = 6, maxC = 4, maxO = 5): fc.Arbitrary<Geom> => {
  const axis = fc.record({
    n: fc.integer({ min: 1, max: maxSp }),
    k: fc.integer({ min: 1, max: 3 }),
    s: fc.integer({ min: 1, max: 3 }),
    p: fc.integer({ min: 0, max: 2 }),
    d: fc.integer({ min: 1, max: 2 }),
  });
  return fc
    .record({
      N: fc.integer({ min: 1, max: 2 }),
      C: fc.integer({ min: 1, max: maxC }),
      O: fc.integer({ min: 1, max: maxO }),
      axes: fc.array(axis, { minLength: 3, maxLength: 3 }),
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
      };
    });
};

const outSp = (g: Geom) =>
  g.inSp.map((n, i) => Math.floor((n + 2 * g.padding[i] - g.dilation[i] * (g.k[i] - 1) - 1) / g.stride[i]) + 1);
const opts = (g: Geom) => ({ stride: g.stride, padding: g.padding, dilation: g.dilation });
const describe = (g: Geom) => JSON.stringify(g);

async function forwardCase(g: Geom): Promise<string | null> {
  const xs = [g.N, g.C, ...g.inSp],
    ws = [g.O, g.C, ...g.k];
  const xv = normals(size(xs), g.seed),
    wv = normals(size(ws), g.seed + 1),
    bv = normals(g.O, g.seed + 2);
  const y = tidy(() => conv3d(tensor(xv, xs), tensor(wv, ws), g.bias ? tensor(bv, [g.O]) : null, opts(g)));
  const want = refConv3d(refTensor(xs, xv), refTensor(ws, wv), g.bias ? refTensor([g.O], bv) : null, opts(g));
  return compareTo(await take(y), want, convTol(g.C * size(g.k)));
}

async function gradInputCase(g: Geom): Promise<string | null> {
  const xs = [g.N, g.C, ...g.inSp],
    ws = [g.O, g.C, ...g.k],
    ys = [g.N, g.O, ...outSp(g)];
  const dyv = normals(size(ys), g.seed),
    wv = normals(size(ws), g.seed + 1);
  const dx = tidy(() => conv3dGradInput(tensor(dyv, ys), tensor(wv, ws), xs, opts(g)));
  const want = refConv3dGradInput(refTensor(ys, dyv), refTensor(ws, wv), xs, opts(g));
  return compareTo(await take(dx), want, convTol(g.O * size(g.k)));
}

async function gradWeightCase(g: Geom): Promise<string | null> {
  const xs = [g.N, g.C, ...g.inSp],
    ws = [g.O, g.C, ...g.k],
    ys = [g.N, g.O, ...outSp(g)];
  const xv = normals(size(xs), g.seed),
    dyv = normals(size(ys), g.seed + 1);
  const dw = tidy(() => conv3dGradWeight(tensor(xv, xs), tensor(dyv, ys), ws, opts(g)));
  const want = refConv3dGradWeight(refTensor(xs, xv), refTensor(ys, dyv), ws, opts(g));
  return compareTo(await take(dw), want, convTol(g.N * size(outSp(g))));
}

/** Fixed geometries: several row tiles (O = 70), long reductions (split-K), 1×1×1, strided phases with empty tap sets. */
const FIXED: Geom[] = [
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

const KERNELS = [
  { name: oracleCase('conv3d'), run: forwardCase },
  { name: oracleCase('conv3dGradInput'), run: gradInputCase },
  { name: oracleCase('conv3dGradWeight'), run: gradWeightCase },
];

for (const k of KERNELS) {
  t.test(wg(k.name), gpuOpts(), async (t) => {
    await leakFree(t, async () => {
      await fc.assert(
        fc.asyncProperty(arbGeom(), async (g) => check(await k.run(g), describe(g))),
        { numRuns: GPU_RUNS },
      );
      for (const g of FIXED) t.equal(await k.run(g), null, `O=${g.O} C=${g.C} [${g.inSp}] k=[${g.k}] s=[${g.stride}]`);
    });
  });
}

t.test(wg('conv2d and convTranspose3d run on the conv3d kernels'), gpuOpts(), async (t) => {
  await leakFree(t, async () => {
    const xs = [2, 3, 7, 6],
      ws = [4, 3, 3, 2];
    const xv = normals(size(xs), 11),
      wv = normals(size(ws), 12),
      bv = normals(4, 13);
    const o2 = { stride: [2, 1], padding: [1, 0], dilation: [1, 2] };
    const y = tidy(() => conv2d(tensor(xv, xs), tensor(wv, ws), tensor(bv, [4]), o2));
    t.equal(
      compareTo(await take(y), refConv2d(refTensor(xs, xv), refTensor(ws, wv), refTensor([4], bv), o2), convTol(18)),
      null,
      'conv2d',
    );
    const ts = [1, 3, 3, 4, 2],
      tw = [3, 2, 3, 2, 3];
    const tv = normals(size(ts), 14),
      twv = normals(size(tw), 15),
      tb = normals(2, 16);
    const ot = { stride: [2, 2, 1], padding: [1, 0, 1], outputPadding: [1, 1, 0], dilation: [1, 1, 1] };
    const z = tidy(() => convTranspose3d(tensor(tv, ts), tensor(twv, tw), tensor(tb, [2]), ot));
    t.equal(
      compareTo(
        await take(z),
        refConvTranspose3d(refTensor(ts, tv), refTensor(tw, twv), refTensor([2], tb), ot),
        convTol(54),
      ),
      null,
      'convTranspose3d',
    );
  });
});

t.test(wg('conv3d: adjoint identity <conv(x, w), y> = <x, conv3dGradInput(y, w)>'), gpuOpts(), async (t) => {
  await leakFree(t, async () => {
    const g: Geom = {
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
    const cx = await take(tidy(() => conv3d(tensor(xv, xs), tensor(wv, ws), null, opts(g))));
    const gy = await take(tidy(() => conv3dGradInput(tensor(yv, ys), tensor(wv, ws), xs, opts(g))));
    let lhs = 0,
      rhs = 0,
      mag = 0;
    cx.data.forEach((v, i) => {
      lhs += v * yv[i];
      mag += Math.abs(v * yv[i]);
    });
    gy.data.forEach((v, i) => {
      rhs += v * xv[i];
    });
    t.ok(Math.abs(lhs - rhs) <= 1e-5 * mag, `${lhs} vs ${rhs}`);
  });
});
