/**
 * Property tests of the inference ops against the float64 oracle, written
 * once for any backend and any environment: Node runs them for gpujs (its
 * WebAssembly mode, packages/gpu/test/gpujs.test.ts), the browser test page runs them for
 * gpujs on WebGL2 and webgpu on SwiftShader (packages/web/test). Reads are
 * asynchronous (`await t.data()`), so WebGPU in a browser works too.
 */
import fc from 'fast-check';
import * as core from '@largo/core';
import { tensor, tidy, type Tensor } from '@largo/core';
import * as ref from '@largo/core/reference';
import type { RefTensor } from '@largo/core/reference';

export interface OpResult {
  op: string;
  backend: string;
  runs: number;
  error: string | null;
  ms: number;
}

const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/** Null when `got` matches the oracle within atol + rtol·|want| (NaN must match NaN). */
function compare(
  got: ArrayLike<number>,
  gotShape: readonly number[],
  want: RefTensor,
  rtol: number,
  atol: number,
): string | null {
  if (gotShape.join(',') !== want.shape.join(','))
    return `shape [${gotShape.join(', ')}] != expected [${want.shape.join(', ')}]`;
  for (let i = 0; i < want.data.length; i++) {
    const x = got[i]!,
      y = want.data[i]!;
    if (Number.isNaN(x) || Number.isNaN(y)) {
      if (Number.isNaN(x) !== Number.isNaN(y)) return `element ${i}: got ${x}, expected ${y}`;
      continue;
    }
    if (Math.abs(x - y) > atol + rtol * Math.abs(y))
      return `element ${i}: got ${x}, expected ${y} (rtol ${rtol}, atol ${atol})`;
  }
  return null;
}

async function check(t: Tensor, want: RefTensor, rtol = 2e-5, atol = 1e-5): Promise<void> {
  const d = await t.data();
  const shape = [...t.shape];
  t.dispose();
  const msg = compare(d as ArrayLike<number>, shape, want, rtol, atol);
  if (msg) throw new Error(msg);
}

const shapeArb = (minRank: number, maxRank: number, maxDim = 5) =>
  fc.array(fc.integer({ min: 1, max: maxDim }), { minLength: minRank, maxLength: maxRank });
const valuesArb = (n: number, lo = -3, hi = 3) =>
  fc.array(fc.double({ min: lo, max: hi, noNaN: true }).map(Math.fround), { minLength: n, maxLength: n });
/** A shape and float32 values for it. */
const tensorArb = (minRank = 1, maxRank = 4, lo = -3, hi = 3) =>
  shapeArb(minRank, maxRank).chain((s) => valuesArb(size(s), lo, hi).map((v) => ({ s, v })));

const UNARY: Record<string, { f: (x: Tensor) => Tensor; r: (v: number) => number; lo?: number; hi?: number }> = {
  neg: { f: core.neg, r: (v) => -v },
  exp: { f: core.exp, r: Math.exp },
  log: { f: core.log, r: Math.log, lo: 0.01, hi: 10 },
  sqrt: { f: core.sqrt, r: Math.sqrt, lo: 0, hi: 10 },
  abs: { f: core.abs, r: Math.abs },
  relu: { f: core.relu, r: (v) => (v > 0 ? v : 0) },
  sigmoid: { f: core.sigmoid, r: (v) => 1 / (1 + Math.exp(-v)) },
  tanh: { f: core.tanh, r: Math.tanh },
  leakyRelu: { f: (x) => core.leakyRelu(x, 0.01), r: (v) => (v > 0 ? v : 0.01 * v) },
  clamp: { f: (x) => core.clamp(x, -1, 0.5), r: (v) => Math.min(0.5, Math.max(-1, v)) },
  sign: { f: core.sign, r: (v) => (v > 0 ? 1 : v < 0 ? -1 : 0) },
  floor: { f: core.floor, r: Math.floor },
};

const BINARY: Record<string, { f: (a: Tensor, b: Tensor) => Tensor; r: (a: number, b: number) => number }> = {
  add: { f: core.add, r: (a, b) => a + b },
  sub: { f: core.sub, r: (a, b) => a - b },
  mul: { f: core.mul, r: (a, b) => a * b },
  div: { f: core.div, r: (a, b) => a / b },
  maximum: { f: core.maximum, r: Math.max },
  minimum: { f: core.minimum, r: Math.min },
  pow: { f: core.pow, r: Math.pow },
  greater: { f: core.greater, r: (a, b) => (a > b ? 1 : 0) },
  greaterEqual: { f: core.greaterEqual, r: (a, b) => (a >= b ? 1 : 0) },
  less: { f: core.less, r: (a, b) => (a < b ? 1 : 0) },
  lessEqual: { f: core.lessEqual, r: (a, b) => (a <= b ? 1 : 0) },
  equal: { f: core.equal, r: (a, b) => (a === b ? 1 : 0) },
  notEqual: { f: core.notEqual, r: (a, b) => (a !== b ? 1 : 0) },
  logicalAnd: { f: core.logicalAnd, r: (a, b) => (a !== 0 && b !== 0 ? 1 : 0) },
  logicalOr: { f: core.logicalOr, r: (a, b) => (a !== 0 || b !== 0 ? 1 : 0) },
};

const COARSE = new Set([
  'greater',
  'greaterEqual',
  'less',
  'lessEqual',
  'equal',
  'notEqual',
  'logicalAnd',
  'logicalOr',
]);

/** Two shapes that broadcast: b drops leading axes and sets some axes to 1. */
const broadcastPair = shapeArb(1, 4)
  .chain((s) =>
    fc.tuple(
      fc.constant(s),
      fc.integer({ min: 0, max: s.length - 1 }),
      fc.array(fc.boolean(), { minLength: s.length, maxLength: s.length }),
    ),
  )
  .map(([s, drop, ones]) => ({ a: s, b: s.slice(drop).map((d, i) => (ones[i + drop] ? 1 : d)) }))
  .chain(({ a, b }) => fc.tuple(valuesArb(size(a)), valuesArb(size(b), 0.25, 3)).map(([va, vb]) => ({ a, b, va, vb })));

interface ConvGeom {
  N: number;
  C: number;
  O: number;
  sp: number[];
  k: number[];
  stride: number[];
  padding: number[];
  dilation: number[];
  bias: boolean;
}
const convGeom = fc
  .record({
    N: fc.integer({ min: 1, max: 2 }),
    C: fc.integer({ min: 1, max: 3 }),
    O: fc.integer({ min: 1, max: 3 }),
    bias: fc.boolean(),
    axes: fc.array(
      fc.record({
        n: fc.integer({ min: 1, max: 5 }),
        k: fc.integer({ min: 1, max: 3 }),
        s: fc.integer({ min: 1, max: 2 }),
        p: fc.integer({ min: 0, max: 1 }),
        d: fc.integer({ min: 1, max: 2 }),
      }),
      { minLength: 3, maxLength: 3 },
    ),
  })
  .map((g): ConvGeom => {
    const ax = g.axes.map((a) => ({ ...a, n: Math.max(a.n, a.d * (a.k - 1) + 1 - 2 * a.p) }));
    return {
      N: g.N,
      C: g.C,
      O: g.O,
      bias: g.bias,
      sp: ax.map((a) => a.n),
      k: ax.map((a) => a.k),
      stride: ax.map((a) => a.s),
      padding: ax.map((a) => a.p),
      dilation: ax.map((a) => a.d),
    };
  });
const convOut = (g: ConvGeom) =>
  g.sp.map((n, i) => Math.floor((n + 2 * g.padding[i]! - g.dilation[i]! * (g.k[i]! - 1) - 1) / g.stride[i]!) + 1);
const seq = (n: number, seed: number) =>
  Float32Array.from({ length: n }, (_, i) => Math.fround(Math.sin(seed * 7.13 + i * 1.37) * 1.5));

type Case = { name: string; run: (runs: number, seed: number) => Promise<void> };

function prop<T>(arb: fc.Arbitrary<T>, body: (x: T) => Promise<void>): (runs: number, seed: number) => Promise<void> {
  return (runs, seed) => fc.assert(fc.asyncProperty(arb, body), { numRuns: runs, seed });
}

const CASES: Case[] = [
  ...Object.entries(UNARY).map(([op, u]): Case => ({
    name: op,
    run: prop(tensorArb(1, 4, u.lo ?? -3, u.hi ?? 3), async ({ s, v }) =>
      check(
        tidy(() => u.f(tensor(Float32Array.from(v), s))),
        ref.refUnary(ref.refTensor(s, v), u.r),
      ),
    ),
  })),
  ...Object.entries(BINARY).map(([op, b]): Case => ({
    name: op,
    run: prop(broadcastPair, async ({ a, b: bs, va, vb }) => {
      // pow on positive bases; comparisons and logic on a coarse grid, so that ties and zeros occur
      const grid = (v: number[]) => v.map((x) => Math.round(x));
      const xa = op === 'pow' ? va.map((x) => Math.abs(x) + 0.1) : COARSE.has(op) ? grid(va) : va;
      const xb = COARSE.has(op) ? grid(vb) : vb;
      await check(
        tidy(() => b.f(tensor(Float32Array.from(xa), a), tensor(Float32Array.from(xb), bs))),
        ref.refBinary(ref.refTensor(a, xa), ref.refTensor(bs, xb), b.r),
        op === 'pow' ? 1e-4 : 2e-5,
      );
    }),
  })),
  {
    name: 'leakyReluGrad',
    run: prop(
      tensorArb(1, 4).chain(({ s, v }) => valuesArb(size(s)).map((g) => ({ s, v, g }))),
      async ({ s, v, g }) =>
        check(
          tidy(() => core.leakyReluGrad(tensor(Float32Array.from(v), s), tensor(Float32Array.from(g), s), 0.2)),
          ref.refLeakyReluGrad(ref.refTensor(s, v), ref.refTensor(s, g), 0.2),
        ),
    ),
  },
  {
    name: 'slice',
    run: prop(
      tensorArb(1, 4).chain(({ s, v }) =>
        fc
          .tuple(
            ...s.map((d) =>
              fc
                .integer({ min: 0, max: d - 1 })
                .chain((b) => fc.tuple(fc.constant(b), fc.integer({ min: 1, max: d - b }))),
            ),
          )
          .map((bs) => ({ s, v, begin: bs.map((x) => x[0]), sz: bs.map((x) => x[1]) })),
      ),
      async ({ s, v, begin, sz }) =>
        check(
          tidy(() => core.slice(tensor(Float32Array.from(v), s), begin, sz)),
          ref.refSlice(ref.refTensor(s, v), begin, sz),
        ),
    ),
  },
  {
    name: 'pad',
    run: prop(
      tensorArb(1, 4).chain(({ s, v }) =>
        fc
          .tuple(
            fc.array(fc.tuple(fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 2 })), {
              minLength: s.length,
              maxLength: s.length,
            }),
            fc.double({ min: -2, max: 2, noNaN: true }).map(Math.fround),
          )
          .map(([p, val]) => ({ s, v, p, val })),
      ),
      async ({ s, v, p, val }) =>
        check(
          tidy(() => core.pad(tensor(Float32Array.from(v), s), p, val)),
          ref.refPad(ref.refTensor(s, v), p, val),
        ),
    ),
  },
  {
    name: 'concat',
    run: prop(
      shapeArb(1, 4).chain((s) =>
        fc.tuple(
          fc.constant(s),
          fc.integer({ min: 0, max: s.length - 1 }),
          fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 1, maxLength: 3 }),
        ),
      ),
      async ([s, axis, widths]) => {
        const shapes = widths.map((w) => s.map((d, i) => (i === axis ? w : d)));
        const vs = shapes.map((sh, i) => seq(size(sh), i + 1));
        await check(
          tidy(() =>
            core.concat(
              shapes.map((sh, i) => tensor(vs[i]!, sh)),
              axis,
            ),
          ),
          ref.refConcat(
            shapes.map((sh, i) => ref.refTensor(sh, vs[i]!)),
            axis,
          ),
        );
      },
    ),
  },
  {
    name: 'indexSelect',
    run: prop(
      tensorArb(1, 4).chain(({ s, v }) =>
        fc
          .integer({ min: 0, max: s.length - 1 })
          .chain((axis) =>
            fc
              .array(fc.integer({ min: 0, max: s[axis]! - 1 }), { minLength: 1, maxLength: 5 })
              .map((idx) => ({ s, v, axis, idx })),
          ),
      ),
      async ({ s, v, axis, idx }) =>
        check(
          tidy(() => core.indexSelect(tensor(Float32Array.from(v), s), axis, idx)),
          ref.refIndexSelect(ref.refTensor(s, v), axis, idx),
        ),
    ),
  },
  {
    name: 'broadcastTo',
    run: prop(broadcastPair, async ({ a, b, vb }) =>
      check(
        tidy(() => core.broadcastTo(tensor(Float32Array.from(vb), b), a)),
        ref.refBroadcastTo(ref.refTensor(b, vb), a),
      ),
    ),
  },
  ...(['sum', 'max', 'min'] as const).map((kind): Case => ({
    name: kind,
    run: prop(
      tensorArb(1, 4).chain(({ s, v }) =>
        fc
          .tuple(
            fc.subarray(
              s.map((_, i) => i),
              { minLength: 1 },
            ),
            fc.boolean(),
          )
          .map(([axes, keep]) => ({ s, v, axes, keep })),
      ),
      async ({ s, v, axes, keep }) => {
        const f = kind === 'sum' ? core.sum : kind === 'max' ? core.max : core.min;
        const want = ref.refReduce(
          ref.refTensor(s, v),
          axes,
          keep,
          kind === 'sum' ? 0 : kind === 'max' ? -Infinity : Infinity,
          kind === 'sum' ? (a, b) => a + b : kind === 'max' ? Math.max : Math.min,
        );
        await check(
          tidy(() => f(tensor(Float32Array.from(v), s), axes, keep)),
          want,
          2e-5,
          1e-5 * size(s),
        );
      },
    ),
  })),
  ...(['softmax', 'logSoftmax'] as const).map((op): Case => ({
    name: op,
    run: prop(
      tensorArb(1, 4).chain(({ s, v }) => fc.integer({ min: 0, max: s.length - 1 }).map((axis) => ({ s, v, axis }))),
      async ({ s, v, axis }) =>
        check(
          tidy(() => (op === 'softmax' ? core.softmax : core.logSoftmax)(tensor(Float32Array.from(v), s), axis)),
          (op === 'softmax' ? ref.refSoftmax : ref.refLogSoftmax)(ref.refTensor(s, v), axis),
          1e-4,
          1e-5,
        ),
    ),
  })),
  {
    name: 'instanceNorm',
    run: prop(
      fc.record({
        N: fc.integer({ min: 1, max: 2 }),
        C: fc.integer({ min: 1, max: 3 }),
        sp: shapeArb(1, 3, 5),
        affine: fc.boolean(),
        seed: fc.integer({ min: 0, max: 1000 }),
      }),
      async ({ N, C, sp, affine, seed }) => {
        const s = [N, C, ...sp];
        const v = seq(size(s), seed),
          w = seq(C, seed + 1),
          b = seq(C, seed + 2);
        await check(
          tidy(() =>
            core.instanceNorm(tensor(v, s), affine ? tensor(w, [C]) : null, affine ? tensor(b, [C]) : null, 1e-5),
          ),
          ref.refInstanceNorm(
            ref.refTensor(s, v),
            affine ? ref.refTensor([C], w) : null,
            affine ? ref.refTensor([C], b) : null,
            1e-5,
          ),
          1e-3,
          1e-3,
        );
      },
    ),
  },
  {
    name: 'conv3d',
    run: prop(convGeom, async (g) => {
      const xs = [g.N, g.C, ...g.sp],
        ws = [g.O, g.C, ...g.k];
      const xv = seq(size(xs), 1),
        wv = seq(size(ws), 2),
        bv = seq(g.O, 3);
      const o = { stride: g.stride, padding: g.padding, dilation: g.dilation };
      const n = g.C * size(g.k);
      await check(
        tidy(() => core.conv3d(tensor(xv, xs), tensor(wv, ws), g.bias ? tensor(bv, [g.O]) : null, o)),
        ref.refConv3d(ref.refTensor(xs, xv), ref.refTensor(ws, wv), g.bias ? ref.refTensor([g.O], bv) : null, o),
        2e-5,
        2e-6 * n + 1e-5,
      );
    }),
  },
  {
    name: 'convTranspose3d',
    run: prop(convGeom, async (g) => {
      // input [N, O, out] → [N, C, sp]: the transposed conv of conv3d's geometry (kernel conv3dGradInput, bias per output channel)
      const xs = [g.N, g.O, ...convOut(g)],
        ws = [g.O, g.C, ...g.k];
      const xv = seq(size(xs), 4),
        wv = seq(size(ws), 5),
        bv = seq(g.C, 6);
      const outPad = g.sp.map(
        (n, i) => n - ((convOut(g)[i]! - 1) * g.stride[i]! - 2 * g.padding[i]! + g.dilation[i]! * (g.k[i]! - 1) + 1),
      );
      const o = { stride: g.stride, padding: g.padding, dilation: g.dilation, outputPadding: outPad };
      if (outPad.some((p, i) => p < 0 || (p >= g.stride[i]! && p >= g.dilation[i]!))) return;
      const n = g.O * size(g.k);
      await check(
        tidy(() => core.convTranspose3d(tensor(xv, xs), tensor(wv, ws), g.bias ? tensor(bv, [g.C]) : null, o)),
        ref.refConvTranspose3d(
          ref.refTensor(xs, xv),
          ref.refTensor(ws, wv),
          g.bias ? ref.refTensor([g.C], bv) : null,
          o,
        ),
        2e-5,
        2e-6 * n + 1e-5,
      );
    }),
  },
  {
    name: 'cpReconstruct',
    run: prop(
      fc.record({
        R: fc.integer({ min: 1, max: 6 }),
        O: fc.integer({ min: 1, max: 5 }),
        I: fc.integer({ min: 1, max: 5 }),
        S: fc.integer({ min: 1, max: 27 }),
        seed: fc.integer({ min: 0, max: 1000 }),
      }),
      async ({ R, O, I, S, seed }) => {
        const w = seq(R, seed),
          a = seq(O * R, seed + 1),
          b = seq(I * R, seed + 2),
          k = seq(S * R, seed + 3);
        await check(
          tidy(() => core.cpReconstruct(tensor(w, [R]), tensor(a, [O, R]), tensor(b, [I, R]), tensor(k, [S, R]))),
          ref.refCpReconstruct(
            ref.refTensor([R], w),
            ref.refTensor([O, R], a),
            ref.refTensor([I, R], b),
            ref.refTensor([S, R], k),
          ),
          2e-5,
          1e-5 * R,
        );
      },
    ),
  },
];

/** Op names covered by the suite (the ones every inference backend must pass; leakyReluGrad too). */
export const SUITE_OPS: readonly string[] = CASES.map((c) => c.name);

/** Runs every case on `backend` (already registered); never throws, a failure is in `error`. */
export async function runOpSuite(
  backend: string,
  runs: number,
  seed = 42,
  only?: readonly string[],
): Promise<OpResult[]> {
  const prev = core.engine().backend.name;
  core.setBackend(backend);
  const out: OpResult[] = [];
  try {
    for (const c of CASES) {
      if (only && !only.includes(c.name)) continue;
      const t0 = performance.now();
      let error: string | null = null;
      try {
        await c.run(runs, seed);
      } catch (e) {
        error = (e as Error).message.slice(0, 2000);
      }
      out.push({ op: c.name, backend, runs, error, ms: performance.now() - t0 });
    }
  } finally {
    core.setBackend(prev);
  }
  return out;
}
