import type { TensorInfo } from '../backend.js';
import type { DType } from '../dtype.js';
import { reducedShape, sizeOf } from '../shape.js';
import { CpuBackend, vals, type CpuKernel, type CpuKernelTable } from './backend.js';
import type { ReduceAttrs } from '../ops/schema.js';

/**
 * Splits the input into (outer, reduced, inner) when the reduced axes are
 * contiguous; otherwise the caller permutes first. Returns null if not contiguous.
 */
function contiguousSplit(shape: readonly number[], axes: readonly number[]) {
  for (let i = 1; i < axes.length; i++) if (axes[i] !== axes[i - 1] + 1) return null;
  const lo = axes.length ? axes[0] : 0,
    hi = axes.length ? axes[axes.length - 1] + 1 : 0;
  return { outer: sizeOf(shape.slice(0, lo)), red: sizeOf(shape.slice(lo, hi)), inner: sizeOf(shape.slice(hi)) };
}

/** Gathers the values so that reduced axes become one contiguous block (copy only when needed). */
function arranged(
  x: TensorInfo,
  axes: readonly number[],
): { v: ArrayLike<number>; outer: number; red: number; inner: number } {
  const split = contiguousSplit(x.shape, axes);
  if (split) return { v: vals(x), ...split };
  // Move reduced axes to the end: outer = kept axes, inner = 1.
  const kept = x.shape.map((_, i) => i).filter((i) => !axes.includes(i));
  const perm = [...kept, ...axes];
  const src = vals(x);
  const out = new Float64Array(src.length);
  const shape = x.shape,
    rank = shape.length;
  const inStrides = new Array<number>(rank);
  let acc = 1;
  for (let d = rank - 1; d >= 0; d--) {
    inStrides[d] = acc;
    acc *= shape[d];
  }
  const pShape = perm.map((p) => shape[p]);
  const pStrides = perm.map((p) => inStrides[p]);
  const idx = new Int32Array(rank);
  let off = 0;
  for (let i = 0; i < out.length; i++) {
    out[i] = src[off];
    for (let d = rank - 1; d >= 0; d--) {
      idx[d]++;
      off += pStrides[d];
      if (idx[d] < pShape[d]) break;
      off -= pStrides[d] * pShape[d];
      idx[d] = 0;
    }
  }
  return { v: out, outer: sizeOf(kept.map((k) => shape[k])), red: sizeOf(axes.map((a) => shape[a])), inner: 1 };
}

type Combine = 'sum' | 'max' | 'min';

/**
 * The float32 sum of [outer, red, inner] over `red`, float64 accumulators, the
 * same order of additions as the generic loop below. A function of its own so
 * that its element loads see one array type: in the generic kernel, shared by
 * every dtype and by max/min, they were megamorphic (~8 ns per element for a
 * sum over the spatial axes of a [4,3,16³] map).
 */
function sumF32(v: Float32Array, outer: number, red: number, inner: number, ov: Float32Array): void {
  if (inner === 1) {
    for (let a = 0; a < outer; a++) {
      let s = 0;
      for (let r = a * red, e = r + red; r < e; r++) s += v[r];
      ov[a] = s;
    }
    return;
  }
  const acc = new Float64Array(inner);
  for (let a = 0; a < outer; a++) {
    acc.fill(0);
    for (let r = 0; r < red; r++) {
      const row = (a * red + r) * inner;
      for (let c = 0; c < inner; c++) acc[c] += v[row + c];
    }
    for (let c = 0; c < inner; c++) ov[a * inner + c] = acc[c];
  }
}

function reduceKernel(kind: Combine) {
  return (inputs: readonly TensorInfo[], attrs: ReduceAttrs, be: CpuBackend) => {
    const x = inputs[0];
    const shape = reducedShape(x.shape, attrs.axes, attrs.keepDims);
    const dtype: DType = x.dtype === 'uint8' && kind === 'sum' ? 'int32' : x.dtype;
    const o = be.out(shape, dtype);
    const { v, outer, red, inner } = arranged(x, attrs.axes);
    const ov = o.values;
    if (kind === 'sum' && v instanceof Float32Array && ov instanceof Float32Array) {
      sumF32(v, outer, red, inner, ov);
      return o.info;
    }
    // Accumulate in float64 so float32 sums over long axes stay accurate.
    const acc = new Float64Array(inner);
    for (let a = 0; a < outer; a++) {
      const base = a * red * inner;
      if (kind === 'sum') acc.fill(0);
      else if (red === 0) acc.fill(kind === 'max' ? -Infinity : Infinity);
      else for (let c = 0; c < inner; c++) acc[c] = v[base + c];
      for (let r = kind === 'sum' ? 0 : 1; r < red; r++) {
        const row = base + r * inner;
        if (kind === 'sum') for (let c = 0; c < inner; c++) acc[c] += v[row + c];
        else if (kind === 'max')
          for (let c = 0; c < inner; c++) {
            const y = v[row + c];
            if (y > acc[c] || y !== y) acc[c] = y;
          }
        else
          for (let c = 0; c < inner; c++) {
            const y = v[row + c];
            if (y < acc[c] || y !== y) acc[c] = y;
          }
      }
      for (let c = 0; c < inner; c++) ov[a * inner + c] = acc[c];
    }
    return o.info;
  };
}

function argKernel(kind: 'argmax' | 'argmin') {
  return (inputs: readonly TensorInfo[], attrs: ReduceAttrs, be: CpuBackend) => {
    const x = inputs[0];
    const o = be.out(reducedShape(x.shape, attrs.axes, attrs.keepDims), 'int32');
    const { v, outer, red, inner } = arranged(x, attrs.axes);
    const ov = o.values;
    for (let a = 0; a < outer; a++) {
      for (let c = 0; c < inner; c++) {
        let best = v[a * red * inner + c],
          bi = 0;
        for (let r = 1; r < red; r++) {
          const y = v[(a * red + r) * inner + c];
          // First occurrence wins ties; NaN counts as the extreme, as in PyTorch.
          if (best !== best) break;
          if (y !== y || (kind === 'argmax' ? y > best : y < best)) {
            best = y;
            bi = r;
          }
        }
        ov[a * inner + c] = bi;
      }
    }
    return o.info;
  };
}

export const reduceKernels = {
  sum: reduceKernel('sum'),
  max: reduceKernel('max'),
  min: reduceKernel('min'),
  argmax: argKernel('argmax'),
  argmin: argKernel('argmin'),
} satisfies Partial<CpuKernelTable>;
