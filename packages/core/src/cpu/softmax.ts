// CPU kernels of softmax / logSoftmax. Accumulations run in doubles (JS
// numbers); outputs take the input's dtype.
import type { TensorInfo } from '../backend.js';
import { sizeOf } from '../shape.js';
import { CpuBackend, fvals, type CpuKernel, type CpuKernelTable } from './backend.js';
import type { SoftmaxAttrs } from '../ops/schema.js';

type FArr = Float32Array | Float64Array;

/** (outer, n, inner) split of `shape` around `axis`. */
function splitAt(shape: readonly number[], axis: number) {
  return { outer: sizeOf(shape.slice(0, axis)), n: shape[axis], inner: sizeOf(shape.slice(axis + 1)) };
}

function softmaxKernel(logOut: boolean) {
  return (inputs: readonly TensorInfo[], attrs: SoftmaxAttrs, be: CpuBackend): TensorInfo => {
    const x = inputs[0];
    const { outer, n, inner } = splitAt(x.shape, attrs.axis);
    const o = be.out(x.shape, x.dtype);
    const xv = fvals(x),
      ov = o.values as FArr;
    if (inner === 1) {
      const e = new Float64Array(n);
      for (let a = 0, base = 0; a < outer; a++, base += n) {
        let m = -Infinity;
        for (let j = 0; j < n; j++) {
          const v = xv[base + j];
          if (v > m) m = v;
        }
        // A NaN anywhere makes the whole row NaN through the sum below.
        let s = 0;
        if (logOut) {
          for (let j = 0; j < n; j++) s += Math.exp(xv[base + j] - m);
          const lse = m + Math.log(s);
          for (let j = 0; j < n; j++) ov[base + j] = xv[base + j] - lse;
        } else {
          for (let j = 0; j < n; j++) {
            const v = Math.exp(xv[base + j] - m);
            e[j] = v;
            s += v;
          }
          const inv = 1 / s;
          for (let j = 0; j < n; j++) ov[base + j] = e[j] * inv;
        }
      }
      return o.info;
    }
    const mx = new Float64Array(inner),
      sm = new Float64Array(inner);
    for (let a = 0; a < outer; a++) {
      const base = a * n * inner;
      mx.fill(-Infinity);
      sm.fill(0);
      for (let j = 0; j < n; j++) {
        const row = base + j * inner;
        for (let c = 0; c < inner; c++) {
          const v = xv[row + c];
          if (v > mx[c]) mx[c] = v;
        }
      }
      if (logOut) {
        for (let j = 0; j < n; j++) {
          const row = base + j * inner;
          for (let c = 0; c < inner; c++) sm[c] += Math.exp(xv[row + c] - mx[c]);
        }
        for (let c = 0; c < inner; c++) mx[c] += Math.log(sm[c]);
        for (let j = 0; j < n; j++) {
          const row = base + j * inner;
          for (let c = 0; c < inner; c++) ov[row + c] = xv[row + c] - mx[c];
        }
      } else {
        // The exponentials go to the output (one exp per element), then are
        // scaled: for float32 that is two roundings, within 1.2e-7 relative.
        for (let j = 0; j < n; j++) {
          const row = base + j * inner;
          for (let c = 0; c < inner; c++) {
            const e = Math.exp(xv[row + c] - mx[c]);
            ov[row + c] = e;
            sm[c] += e;
          }
        }
        for (let c = 0; c < inner; c++) sm[c] = 1 / sm[c];
        for (let j = 0; j < n; j++) {
          const row = base + j * inner;
          for (let c = 0; c < inner; c++) ov[row + c] *= sm[c];
        }
      }
    }
    return o.info;
  };
}

export const softmaxKernels = {
  softmax: softmaxKernel(false),
  logSoftmax: softmaxKernel(true),
} satisfies Partial<CpuKernelTable>;
