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
  randn,
  slice,
  tidy,
  type Tensor,
} from '@largo/core';
import { gradcheck, type GradcheckResult } from '@largo/autograd';
import { gradCase, FC_RUNS, verifiedTest } from '@largo/test-support';
import { expectOk } from './helpers/grad-props.js';

/**
 * Tiny float64 geometries (gradcheck runs two forward passes per input
 * element); the dilated kernel always fits the padded input and the output
 * padding is below stride or dilation.
 */
function arbGeom(nsp: number, maxSp: number, maxK = 2) {
  const axis = fc.record({
    n: fc.integer({ min: 1, max: maxSp }),
    k: fc.integer({ min: 1, max: maxK }),
    s: fc.integer({ min: 1, max: 3 }),
    p: fc.integer({ min: 0, max: 2 }),
    d: fc.integer({ min: 1, max: 2 }),
    op: fc.nat(2),
  });
  return fc
    .record({
      N: fc.integer({ min: 1, max: 2 }),
      C: fc.integer({ min: 1, max: 2 }),
      O: fc.integer({ min: 1, max: 2 }),
      axes: fc.array(axis, { minLength: nsp, maxLength: nsp }),
      bias: fc.boolean(),
      seed: fc.integer({ min: 0, max: 1 << 30 }),
    })
    .map((g) => {
      const axes = g.axes.map((a) => ({ ...a, n: Math.max(a.n, a.d * (a.k - 1) + 1 - 2 * a.p) }));
      const stride = axes.map((a) => a.s),
        dilation = axes.map((a) => a.d),
        k = axes.map((a) => a.k),
        inSp = axes.map((a) => a.n);
      const outputPadding = axes.map((a) => a.op % Math.max(a.s, a.d));
      // For the transposed conv, keep its output non-empty.
      const tPadding = axes.map((a, i) =>
        Math.min(a.p, Math.floor(((a.n - 1) * a.s + a.d * (a.k - 1) + outputPadding[i]) / 2)),
      );
      return {
        ...g,
        inSp,
        k,
        stride,
        dilation,
        outputPadding,
        tPadding,
        padding: axes.map((a) => a.p),
        outSp: axes.map((a) => convOutputSize(a.n, a.k, a.s, a.p, a.d)),
      };
    });
}

const RUNS = Math.max(4, Math.ceil(FC_RUNS / 3));
const f64 = (shape: number[], seed: number): Tensor => randn(shape, { seed, dtype: 'float64' });

function expectGrad(name: string, g: unknown, run: () => GradcheckResult): void {
  expectOk(tidy(run), `${name} ${JSON.stringify(g)}`);
}

verifiedTest(t, gradCase('conv3d'), async (t) => {
  const before = memory().tensors;
  fc.assert(
    fc.property(arbGeom(3, 3), (g) =>
      expectGrad('conv3d', g, () => {
        const o = { stride: g.stride, padding: g.padding, dilation: g.dilation };
        const ins = [f64([g.N, g.C, ...g.inSp], g.seed), f64([g.O, g.C, ...g.k], g.seed + 1)];
        if (g.bias) ins.push(f64([g.O], g.seed + 2));
        return gradcheck((x, w, b) => conv3d(x, w, b ?? null, o), ins);
      }),
    ),
    { numRuns: RUNS },
  );
  t.equal(memory().tensors, before, 'no leaked tensors');
});

verifiedTest(t, gradCase('conv3dGradInput'), async (t) => {
  fc.assert(
    fc.property(arbGeom(3, 3), (g) =>
      expectGrad('conv3dGradInput', g, () => {
        const o = { stride: g.stride, padding: g.padding, dilation: g.dilation };
        const inputShape = [g.N, g.C, ...g.inSp];
        return gradcheck(
          (dy, w) => conv3dGradInput(dy, w, inputShape, o),
          [f64([g.N, g.O, ...g.outSp], g.seed), f64([g.O, g.C, ...g.k], g.seed + 1)],
        );
      }),
    ),
    { numRuns: RUNS },
  );
  t.pass('gradcheck ok');
});

verifiedTest(t, gradCase('conv3dGradWeight'), async (t) => {
  fc.assert(
    fc.property(arbGeom(3, 3), (g) =>
      expectGrad('conv3dGradWeight', g, () => {
        const o = { stride: g.stride, padding: g.padding, dilation: g.dilation };
        const ws = [g.O, g.C, ...g.k];
        return gradcheck(
          (x, dy) => conv3dGradWeight(x, dy, ws, o),
          [f64([g.N, g.C, ...g.inSp], g.seed), f64([g.N, g.O, ...g.outSp], g.seed + 1)],
        );
      }),
    ),
    { numRuns: RUNS },
  );
  t.pass('gradcheck ok');
});

verifiedTest(t, gradCase('conv2d'), async (t) => {
  fc.assert(
    fc.property(arbGeom(2, 5, 3), (g) =>
      expectGrad('conv2d', g, () => {
        const o = { stride: g.stride, padding: g.padding, dilation: g.dilation };
        const ins = [f64([g.N, g.C, ...g.inSp], g.seed), f64([g.O, g.C, ...g.k], g.seed + 1)];
        if (g.bias) ins.push(f64([g.O], g.seed + 2));
        return gradcheck((x, w, b) => conv2d(x, w, b ?? null, o), ins);
      }),
    ),
    { numRuns: RUNS },
  );
  t.pass('gradcheck ok');
});

verifiedTest(t, gradCase('convTranspose3d'), async (t) => {
  fc.assert(
    fc.property(arbGeom(3, 2), (g) =>
      expectGrad('convTranspose3d', g, () => {
        const o = { stride: g.stride, padding: g.tPadding, dilation: g.dilation, outputPadding: g.outputPadding };
        const ins = [f64([g.N, g.C, ...g.inSp], g.seed), f64([g.C, g.O, ...g.k], g.seed + 1)];
        if (g.bias) ins.push(f64([g.O], g.seed + 2));
        return gradcheck((x, w, b) => convTranspose3d(x, w, b ?? null, o), ins);
      }),
    ),
    { numRuns: RUNS },
  );
  t.pass('gradcheck ok');
});

// ---- Adjoint identities, float64, larger random geometries ----

function dot(a: Tensor, b: Tensor): number {
  const x = a.dataSync(),
    y = b.dataSync();
  if (x.length !== y.length) throw new Error(`dot: ${x.length} vs ${y.length} elements`);
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i] * y[i];
  return s;
}

function expectEqualDots(what: string, g: unknown, l: number, r: number, scale: number): void {
  if (!(Math.abs(l - r) <= 1e-10 * scale)) throw new Error(`${what}: ${l} != ${r} for ${JSON.stringify(g)}`);
}

/** Σ|a|·|b|, the natural scale of a rounding error in ⟨a, b⟩ (plus 1 to avoid a zero scale). */
function absDotScale(a: Tensor, b: Tensor): number {
  const x = a.dataSync(),
    y = b.dataSync();
  let s = 1;
  for (let i = 0; i < x.length; i++) s += Math.abs(x[i] * y[i]);
  return s;
}

t.test('adjoint identities: conv3d, conv3dGradInput, conv3dGradWeight', async (t) => {
  fc.assert(
    fc.property(arbGeom(3, 7, 3), (g) =>
      tidy(() => {
        const o = { stride: g.stride, padding: g.padding, dilation: g.dilation };
        const x = f64([g.N, g.C, ...g.inSp], g.seed),
          w = f64([g.O + 1, g.C, ...g.k], g.seed + 1);
        const y = f64([g.N, g.O + 1, ...g.outSp], g.seed + 2);
        const cxw = conv3d(x, w, null, o);
        const lhs = dot(cxw, y),
          scale = absDotScale(cxw, y) * 10;
        // ⟨conv(x, w), y⟩ = ⟨x, convᵀ(y, w)⟩ = ⟨w, conv3dGradWeight(x, y)⟩
        expectEqualDots('⟨conv(x,w),y⟩ = ⟨x,GI(y,w)⟩', g, lhs, dot(x, conv3dGradInput(y, w, x.shape, o)), scale);
        expectEqualDots('⟨conv(x,w),y⟩ = ⟨w,GW(x,y)⟩', g, lhs, dot(w, conv3dGradWeight(x, y, w.shape, o)), scale);
      }),
    ),
    { numRuns: FC_RUNS },
  );
  t.pass('adjoint identities hold');
});

t.test('adjoint identities: convTranspose3d against conv3d', async (t) => {
  fc.assert(
    fc.property(arbGeom(3, 5, 3), (g) =>
      tidy(() => {
        const o = { stride: g.stride, padding: g.tPadding, dilation: g.dilation };
        const x = f64([g.N, g.C, ...g.inSp], g.seed),
          w = f64([g.C, g.O + 1, ...g.k], g.seed + 1);
        const outSp = g.inSp.map((n, i) =>
          convTransposeOutputSize(n, g.k[i], g.stride[i], g.tPadding[i], g.dilation[i], g.outputPadding[i]),
        );
        const y = f64([g.N, g.O + 1, ...outSp], g.seed + 2);
        const z = convTranspose3d(x, w, null, { ...o, outputPadding: g.outputPadding });
        const lhs = dot(z, y),
          scale = absDotScale(z, y) * 10;
        // conv3d(y, w) covers at least x's extent (more when outputPadding >= stride): keep x's part.
        const cy = conv3d(y, w, null, o);
        const cyx = slice(
          cy,
          cy.shape.map(() => 0),
          x.shape,
        );
        expectEqualDots('⟨convT(x,w),y⟩ = ⟨x,conv(y,w)⟩', g, lhs, dot(x, cyx), scale);
        expectEqualDots('⟨convT(x,w),y⟩ = ⟨w,GW(y,x)⟩', g, lhs, dot(w, conv3dGradWeight(y, x, w.shape, o)), scale);
      }),
    ),
    { numRuns: FC_RUNS },
  );
  t.pass('adjoint identities hold');
});
