// Float64 oracle of softmax / logSoftmax: textbook formulas over multi-indices,
// written independently of the fast kernels.
import { flatIndex, multiIndex, refTensor, type RefTensor } from './types.js';

/** Softmax along `axis`: exp(x − max)/Σ exp(x − max). */
export function refSoftmax(x: RefTensor, axis: number): RefTensor {
  const out = refTensor(x.shape);
  const n = x.shape[axis];
  for (let i = 0; i < x.data.length; i++) {
    const idx = multiIndex(x.shape, i);
    const lane: number[] = [];
    for (let j = 0; j < n; j++) {
      const q = [...idx];
      q[axis] = j;
      lane.push(x.data[flatIndex(x.shape, q)]);
    }
    const m = Math.max(...lane);
    let s = 0;
    for (const v of lane) s += Math.exp(v - m);
    out.data[i] = Math.exp(x.data[i] - m) / s;
  }
  return out;
}

/** log softmax along `axis`: x − (max + log Σ exp(x − max)). */
export function refLogSoftmax(x: RefTensor, axis: number): RefTensor {
  const out = refTensor(x.shape);
  const n = x.shape[axis];
  for (let i = 0; i < x.data.length; i++) {
    const idx = multiIndex(x.shape, i);
    const lane: number[] = [];
    for (let j = 0; j < n; j++) {
      const q = [...idx];
      q[axis] = j;
      lane.push(x.data[flatIndex(x.shape, q)]);
    }
    const m = Math.max(...lane);
    let s = 0;
    for (const v of lane) s += Math.exp(v - m);
    out.data[i] = x.data[i] - m - Math.log(s);
  }
  return out;
}
