import { multiIndex, refTensor, flatIndex, type RefTensor } from './types.js';

/** Generic reduction: visits every element and folds it into its output cell. */
export function refReduce(
  x: RefTensor,
  axes: readonly number[],
  keepDims: boolean,
  init: number,
  fold: (acc: number, v: number) => number,
): RefTensor {
  const keptShape = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const acc = refTensor(keptShape);
  acc.data.fill(init);
  for (let i = 0; i < x.data.length; i++) {
    const idx = multiIndex(x.shape, i).map((v, d) => (axes.includes(d) ? 0 : v));
    const o = flatIndex(keptShape, idx);
    acc.data[o] = fold(acc.data[o], x.data[i]);
  }
  if (keepDims) return acc;
  return { shape: x.shape.filter((_, i) => !axes.includes(i)), data: acc.data };
}

export const refSum = (x: RefTensor, axes: readonly number[], keepDims = false) =>
  refReduce(x, axes, keepDims, 0, (a, v) => a + v);
export const refMax = (x: RefTensor, axes: readonly number[], keepDims = false) =>
  refReduce(x, axes, keepDims, -Infinity, (a, v) => (Number.isNaN(a) || Number.isNaN(v) ? NaN : Math.max(a, v)));
export const refMin = (x: RefTensor, axes: readonly number[], keepDims = false) =>
  refReduce(x, axes, keepDims, Infinity, (a, v) => (Number.isNaN(a) || Number.isNaN(v) ? NaN : Math.min(a, v)));

export function refMean(x: RefTensor, axes: readonly number[], keepDims = false): RefTensor {
  const s = refSum(x, axes, keepDims);
  let n = 1;
  for (const a of axes) n *= x.shape[a];
  for (let i = 0; i < s.data.length; i++) s.data[i] /= n;
  return s;
}

/** Two-pass variance with `correction` (0: population, 1: unbiased). */
export function refVariance(x: RefTensor, axes: readonly number[], keepDims = false, correction = 0): RefTensor {
  const m = refMean(x, axes, true);
  const keptShape = m.shape;
  const sq = refTensor(x.shape);
  for (let i = 0; i < x.data.length; i++) {
    const idx = multiIndex(x.shape, i).map((v, d) => (axes.includes(d) ? 0 : v));
    const dev = x.data[i] - m.data[flatIndex(keptShape, idx)];
    sq.data[i] = dev * dev;
  }
  const s = refSum(sq, axes, keepDims);
  let n = 1;
  for (const a of axes) n *= x.shape[a];
  for (let i = 0; i < s.data.length; i++) s.data[i] /= Math.max(n - correction, 0);
  return s;
}

/** Index of the first extreme along one axis. */
export function refArg(x: RefTensor, axis: number, kind: 'max' | 'min', keepDims = false): RefTensor {
  const outShape = x.shape.map((d, i) => (i === axis ? 1 : d));
  const out = refTensor(outShape);
  const best = new Float64Array(out.data.length).fill(NaN);
  const seen = new Uint8Array(out.data.length);
  for (let i = 0; i < x.data.length; i++) {
    const idx = multiIndex(x.shape, i);
    const k = idx[axis];
    idx[axis] = 0;
    const o = flatIndex(outShape, idx);
    const v = x.data[i];
    if (!seen[o]) {
      seen[o] = 1;
      best[o] = v;
      out.data[o] = k;
      continue;
    }
    if (Number.isNaN(best[o])) continue;
    if (Number.isNaN(v) || (kind === 'max' ? v > best[o] : v < best[o])) {
      best[o] = v;
      out.data[o] = k;
    }
  }
  return keepDims ? out : { shape: x.shape.filter((_, i) => i !== axis), data: out.data };
}
