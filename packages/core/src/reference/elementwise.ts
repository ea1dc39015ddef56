import { flatIndex, multiIndex, refTensor, type RefTensor } from './types.js';

export function refUnary(x: RefTensor, f: (v: number) => number): RefTensor {
  const out = refTensor(x.shape);
  for (let i = 0; i < x.data.length; i++) out.data[i] = f(x.data[i]);
  return out;
}

export const REF_UNARY: Record<string, (v: number, a?: { alpha?: number; min?: number; max?: number }) => number> = {
  neg: (v) => -v,
  exp: (v) => Math.exp(v),
  log: (v) => Math.log(v),
  sqrt: (v) => Math.sqrt(v),
  abs: (v) => Math.abs(v),
  sign: (v) => Math.sign(v),
  relu: (v) => Math.max(v, 0),
  sigmoid: (v) => 1 / (1 + Math.exp(-v)),
  tanh: (v) => Math.tanh(v),
  floor: (v) => Math.floor(v),
  leakyRelu: (v, a) => (v > 0 ? v : (a?.alpha ?? 0.01) * v),
  clamp: (v, a) => Math.min(Math.max(v, a?.min ?? -Infinity), a?.max ?? Infinity),
};

/** leakyRelu's gradient: dy where x > 0, alpha·dy elsewhere (NaN in x included). Shapes must be equal. */
export function refLeakyReluGrad(x: RefTensor, dy: RefTensor, alpha: number): RefTensor {
  if (x.shape.join(',') !== dy.shape.join(',')) throw new Error('reference: leakyReluGrad shapes differ');
  const out = refTensor(x.shape);
  for (let i = 0; i < out.data.length; i++) out.data[i] = x.data[i] > 0 ? dy.data[i] : alpha * dy.data[i];
  return out;
}

export const REF_BINARY: Record<string, (a: number, b: number) => number> = {
  add: (a, b) => a + b,
  sub: (a, b) => a - b,
  mul: (a, b) => a * b,
  div: (a, b) => a / b,
  pow: (a, b) => a ** b,
  maximum: (a, b) => (Number.isNaN(a) || Number.isNaN(b) ? NaN : Math.max(a, b)),
  minimum: (a, b) => (Number.isNaN(a) || Number.isNaN(b) ? NaN : Math.min(a, b)),
  equal: (a, b) => Number(a === b),
  notEqual: (a, b) => Number(a !== b),
  less: (a, b) => Number(a < b),
  lessEqual: (a, b) => Number(a <= b),
  greater: (a, b) => Number(a > b),
  greaterEqual: (a, b) => Number(a >= b),
  logicalAnd: (a, b) => Number(a !== 0 && b !== 0),
  logicalOr: (a, b) => Number(a !== 0 || b !== 0),
};

/** Broadcast shape by the NumPy rule, written out directly. */
export function refBroadcastShape(a: readonly number[], b: readonly number[]): number[] {
  const n = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const x = a[a.length - n + i] ?? 1,
      y = b[b.length - n + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) throw new Error('reference: shapes do not broadcast');
    out.push(x === 1 ? y : x); // [0] with [1] is [0]: a size-1 axis stretches to any size, 0 included
  }
  return out;
}

/** Reads x at an output multi-index, applying broadcasting. */
export function refAt(x: RefTensor, outIdx: readonly number[]): number {
  const off = outIdx.length - x.shape.length;
  const idx = x.shape.map((d, i) => (d === 1 ? 0 : outIdx[i + off]));
  return x.data[flatIndex(x.shape, idx)];
}

export function refBinary(a: RefTensor, b: RefTensor, f: (x: number, y: number) => number): RefTensor {
  const shape = refBroadcastShape(a.shape, b.shape);
  const out = refTensor(shape);
  for (let i = 0; i < out.data.length; i++) {
    const idx = multiIndex(shape, i);
    out.data[i] = f(refAt(a, idx), refAt(b, idx));
  }
  return out;
}

export function refWhere(c: RefTensor, a: RefTensor, b: RefTensor): RefTensor {
  const shape = refBroadcastShape(refBroadcastShape(c.shape, a.shape), b.shape);
  const out = refTensor(shape);
  for (let i = 0; i < out.data.length; i++) {
    const idx = multiIndex(shape, i);
    out.data[i] = refAt(c, idx) !== 0 ? refAt(a, idx) : refAt(b, idx);
  }
  return out;
}
