import type { TensorInfo } from '../backend.js';
import type { DType } from '../dtype.js';
import { broadcastShapes, broadcastStrides, sizeOf } from '../shape.js';
import { CpuBackend, vals, type CpuKernel, type CpuKernelTable } from './backend.js';
import type { DTypeAttrs, UnaryAttrs } from '../ops/schema.js';

type Unary = (x: number) => number;

/** Unary math kernels; each returns the input's dtype unless noted. */
export const UNARY: Record<string, (a: UnaryAttrs) => Unary> = {
  neg: () => (x) => -x,
  exp: () => Math.exp,
  log: () => Math.log,
  sqrt: () => Math.sqrt,
  abs: () => Math.abs,
  // NaN propagates through sign and relu (as Math.sign and PyTorch's relu do).
  sign: () => (x) => (x > 0 ? 1 : x < 0 ? -1 : x === 0 ? 0 : NaN),
  relu: () => (x) => (x > 0 ? x : x <= 0 ? 0 : NaN),
  sigmoid: () => (x) => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x))),
  tanh: () => Math.tanh,
  leakyRelu: (a) => {
    const s = a.alpha ?? 0.01;
    return (x) => (x > 0 ? x : s * x);
  },
  clamp: (a) => {
    const lo = a.min ?? -Infinity,
      hi = a.max ?? Infinity;
    return (x) => (x < lo ? lo : x > hi ? hi : x);
  },
  floor: () => Math.floor,
};

function unaryKernel(op: string) {
  const make = UNARY[op];
  return (inputs: readonly TensorInfo[], attrs: UnaryAttrs, be: CpuBackend) => {
    const x = inputs[0];
    const f = make(attrs ?? {});
    const o = be.out(x.shape, x.dtype);
    const xv = vals(x),
      ov = o.values;
    for (let i = 0; i < xv.length; i++) ov[i] = f(xv[i]);
    return o.info;
  };
}

const castKernel: CpuKernel<'cast'> = (inputs, attrs, be) => {
  const x = inputs[0];
  const o = be.out(x.shape, attrs.dtype);
  const xv = vals(x),
    ov = o.values;
  if (attrs.dtype === 'int32' || attrs.dtype === 'uint8') {
    for (let i = 0; i < xv.length; i++) ov[i] = Math.trunc(xv[i]);
  } else ov.set(xv);
  return o.info;
};

/**
 * alpha as a tensor of `dtype` stores it: leakyReluGrad takes alpha in dy's
 * dtype, as mul(dy, alpha) does, so that it gives that formula's bits.
 */
const alphaIn = (alpha: number, dtype: DType): number => (dtype === 'float32' ? Math.fround(alpha) : alpha);

/**
 * dx = x > 0 ? dy : alpha·dy (NaN in x takes alpha·dy), in dy's dtype; x and
 * dy have one shape. Written dy·k[x > 0] with k = [alpha, 1]: dy·1 is dy
 * exactly, and the comparison becomes an index instead of a branch, which
 * activations' random signs mispredict half the time (2–3× slower).
 */
const leakyReluGradKernel: CpuKernel<'leakyReluGrad'> = (inputs, attrs, be) => {
  const [x, dy] = inputs;
  const k = new Float64Array([alphaIn(attrs.alpha, dy.dtype), 1]);
  const o = be.out(dy.shape, dy.dtype);
  const xv = vals(x),
    gv = vals(dy),
    ov = o.values;
  for (let i = 0; i < ov.length; i++) ov[i] = gv[i] * k[+(xv[i] > 0)];
  return o.info;
};

type Binary = (a: number, b: number) => number;

export const BINARY: Record<string, Binary> = {
  add: (a, b) => a + b,
  sub: (a, b) => a - b,
  mul: (a, b) => a * b,
  div: (a, b) => a / b,
  pow: (a, b) => Math.pow(a, b),
  // NaN propagates, as in PyTorch.
  maximum: (a, b) => (a !== a || b !== b ? NaN : a >= b ? a : b),
  minimum: (a, b) => (a !== a || b !== b ? NaN : a <= b ? a : b),
  equal: (a, b) => (a === b ? 1 : 0),
  notEqual: (a, b) => (a !== b ? 1 : 0),
  less: (a, b) => (a < b ? 1 : 0),
  lessEqual: (a, b) => (a <= b ? 1 : 0),
  greater: (a, b) => (a > b ? 1 : 0),
  greaterEqual: (a, b) => (a >= b ? 1 : 0),
  // Any non-zero value is true, NaN included (PyTorch, NumPy); JS truthiness would make NaN false.
  logicalAnd: (a, b) => (a !== 0 && b !== 0 ? 1 : 0),
  logicalOr: (a, b) => (a !== 0 || b !== 0 ? 1 : 0),
};
export const COMPARISONS = new Set([
  'equal',
  'notEqual',
  'less',
  'lessEqual',
  'greater',
  'greaterEqual',
  'logicalAnd',
  'logicalOr',
]);

/**
 * Calls `body(outIndex, offsetA, offsetB)` for every output element of a
 * broadcast, walking an N-d counter so that offsets update incrementally.
 */
export function forEachBroadcast(
  outShape: readonly number[],
  shapes: readonly (readonly number[])[],
  body: (i: number, offs: Int32Array) => void,
): void {
  const n = sizeOf(outShape);
  const rank = outShape.length;
  const k = shapes.length;
  const strides = shapes.map((s) => broadcastStrides(s, outShape));
  const offs = new Int32Array(k);
  const idx = new Int32Array(rank);
  for (let i = 0; i < n; i++) {
    body(i, offs);
    for (let d = rank - 1; d >= 0; d--) {
      idx[d]++;
      for (let j = 0; j < k; j++) offs[j] += strides[j][d];
      if (idx[d] < outShape[d]) break;
      for (let j = 0; j < k; j++) offs[j] -= strides[j][d] * outShape[d];
      idx[d] = 0;
    }
  }
}

function binaryKernel(op: string) {
  const f = BINARY[op];
  const cmp = COMPARISONS.has(op);
  return (inputs: readonly TensorInfo[], attrs: DTypeAttrs, be: CpuBackend) => {
    const [a, b] = inputs;
    const shape = broadcastShapes(op, a.shape, b.shape);
    const o = be.out(shape, cmp ? 'uint8' : attrs.dtype);
    const av = vals(a),
      bv = vals(b),
      ov = o.values;
    if (av.length === ov.length && bv.length === ov.length) {
      for (let i = 0; i < ov.length; i++) ov[i] = f(av[i], bv[i]);
    } else if (bv.length === 1 && av.length === ov.length) {
      const s = bv[0];
      for (let i = 0; i < ov.length; i++) ov[i] = f(av[i], s);
    } else if (av.length === 1 && bv.length === ov.length) {
      const s = av[0];
      for (let i = 0; i < ov.length; i++) ov[i] = f(s, bv[i]);
    } else {
      forEachBroadcast(shape, [a.shape, b.shape], (i, offs) => {
        ov[i] = f(av[offs[0]], bv[offs[1]]);
      });
    }
    return o.info;
  };
}

const whereKernel: CpuKernel<'where'> = (inputs, attrs, be) => {
  const [c, a, b] = inputs;
  const shape = broadcastShapes('where', broadcastShapes('where', c.shape, a.shape), b.shape);
  const o = be.out(shape, attrs.dtype);
  const cv = vals(c),
    av = vals(a),
    bv = vals(b),
    ov = o.values;
  forEachBroadcast(shape, [c.shape, a.shape, b.shape], (i, offs) => {
    ov[i] = cv[offs[0]] !== 0 ? av[offs[1]] : bv[offs[2]]; // NaN counts as true
  });
  return o.info;
};

export const elementwiseKernels = {
  neg: unaryKernel('neg'),
  exp: unaryKernel('exp'),
  log: unaryKernel('log'),
  sqrt: unaryKernel('sqrt'),
  abs: unaryKernel('abs'),
  sign: unaryKernel('sign'),
  relu: unaryKernel('relu'),
  sigmoid: unaryKernel('sigmoid'),
  tanh: unaryKernel('tanh'),
  leakyRelu: unaryKernel('leakyRelu'),
  leakyReluGrad: leakyReluGradKernel,
  clamp: unaryKernel('clamp'),
  floor: unaryKernel('floor'),
  cast: castKernel,
  add: binaryKernel('add'),
  sub: binaryKernel('sub'),
  mul: binaryKernel('mul'),
  div: binaryKernel('div'),
  pow: binaryKernel('pow'),
  maximum: binaryKernel('maximum'),
  minimum: binaryKernel('minimum'),
  equal: binaryKernel('equal'),
  notEqual: binaryKernel('notEqual'),
  less: binaryKernel('less'),
  lessEqual: binaryKernel('lessEqual'),
  greater: binaryKernel('greater'),
  greaterEqual: binaryKernel('greaterEqual'),
  logicalAnd: binaryKernel('logicalAnd'),
  logicalOr: binaryKernel('logicalOr'),
  where: whereKernel,
} satisfies Partial<CpuKernelTable>;
