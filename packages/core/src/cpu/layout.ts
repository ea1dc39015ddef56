import type { TensorInfo } from '../backend.js';
import type { TypedArray } from '../dtype.js';
import { sizeOf, stridesOf } from '../shape.js';
import { CpuBackend, vals, type CpuKernel, type CpuKernelTable } from './backend.js';

/** out[idx] = in[perm-mapped idx]; the walk follows the output so writes stay contiguous. */
const permuteKernel: CpuKernel<'permute'> = (inputs, attrs, be) => {
  const x = inputs[0];
  const { perm } = attrs;
  const outShape = perm.map((p) => x.shape[p]);
  const o = be.out(outShape, x.dtype);
  const src = vals(x),
    dst = o.values;
  const inStrides = stridesOf(x.shape);
  const st = perm.map((p) => inStrides[p]);
  const rank = outShape.length;
  if (rank === 0) {
    dst[0] = src[0];
    return o.info;
  }
  const last = rank - 1,
    lastN = outShape[last],
    lastS = st[last];
  const idx = new Int32Array(rank);
  let off = 0;
  for (let i = 0; i < dst.length; i += lastN) {
    for (let j = 0, q = off; j < lastN; j++, q += lastS) dst[i + j] = src[q];
    for (let d = last - 1; d >= 0; d--) {
      idx[d]++;
      off += st[d];
      if (idx[d] < outShape[d]) break;
      off -= st[d] * outShape[d];
      idx[d] = 0;
    }
  }
  return o.info;
};

/** Copies a box [begin, begin+size) of `src` (shape srcShape) into a box of `dst` (shape dstShape) at dstBegin. */
function copyBox(
  src: ArrayLike<number>,
  srcShape: readonly number[],
  srcBegin: readonly number[],
  dst: { [i: number]: number },
  dstShape: readonly number[],
  dstBegin: readonly number[],
  size: readonly number[],
): void {
  const rank = size.length;
  if (sizeOf(size) === 0) return;
  if (rank === 0) {
    dst[0] = src[0];
    return;
  }
  const ss = stridesOf(srcShape),
    ds = stridesOf(dstShape);
  // A row spans the trailing axes the box covers whole in both tensors (a
  // slice or concat along an outer axis copies one block per outer index).
  let last = rank - 1;
  while (last > 0 && size[last] === srcShape[last] && size[last] === dstShape[last]) last--;
  let n = 1;
  for (let d = last; d < rank; d++) n *= size[d];
  const idx = new Int32Array(rank);
  let so = 0,
    doff = 0;
  for (let d = 0; d < rank; d++) {
    so += srcBegin[d] * ss[d];
    doff += dstBegin[d] * ds[d];
  }
  const rows = sizeOf(size) / n;
  // Long rows between arrays of one type: a memcpy each.
  const block =
    n >= 16 && ArrayBuffer.isView(src) && ArrayBuffer.isView(dst) && src.constructor === dst.constructor
      ? (src as unknown as TypedArray)
      : null;
  for (let r = 0; r < rows; r++) {
    if (block) (dst as TypedArray).set(block.subarray(so, so + n), doff);
    else for (let j = 0; j < n; j++) dst[doff + j] = src[so + j];
    for (let d = last - 1; d >= 0; d--) {
      idx[d]++;
      so += ss[d];
      doff += ds[d];
      if (idx[d] < size[d]) break;
      so -= ss[d] * size[d];
      doff -= ds[d] * size[d];
      idx[d] = 0;
    }
  }
}

const sliceKernel: CpuKernel<'slice'> = (inputs, attrs, be) => {
  const x = inputs[0];
  const o = be.out(attrs.size, x.dtype);
  copyBox(
    vals(x),
    x.shape,
    attrs.begin,
    o.values,
    attrs.size,
    attrs.size.map(() => 0),
    attrs.size,
  );
  return o.info;
};

/** Constant padding; `pads[d] = [before, after]`, both non-negative (checked by the op). */
const padKernel: CpuKernel<'pad'> = (inputs, attrs, be) => {
  const x = inputs[0];
  const shape = x.shape.map((d, i) => d + attrs.pads[i][0] + attrs.pads[i][1]);
  const o = be.out(shape, x.dtype);
  o.values.fill(attrs.value);
  copyBox(
    vals(x),
    x.shape,
    x.shape.map(() => 0),
    o.values,
    shape,
    attrs.pads.map((p) => p[0]),
    x.shape,
  );
  return o.info;
};

const concatKernel: CpuKernel<'concat'> = (inputs, attrs, be) => {
  const ax = attrs.axis;
  const shape = [...inputs[0].shape];
  shape[ax] = inputs.reduce((s, t) => s + t.shape[ax], 0);
  const o = be.out(shape, inputs[0].dtype);
  let at = 0;
  for (const t of inputs) {
    const begin = shape.map((_, d) => (d === ax ? at : 0));
    copyBox(
      vals(t),
      t.shape,
      t.shape.map(() => 0),
      o.values,
      shape,
      begin,
      t.shape,
    );
    at += t.shape[ax];
  }
  return o.info;
};

/** out = x.index_select(axis, idx); indices are validated by the op. */
const indexSelectKernel: CpuKernel<'indexSelect'> = (inputs, attrs, be) => {
  const [x, ix] = inputs;
  const ax = attrs.axis;
  const idx = vals(ix);
  const shape = [...x.shape];
  shape[ax] = idx.length;
  const o = be.out(shape, x.dtype);
  const outer = sizeOf(x.shape.slice(0, ax)),
    inner = sizeOf(x.shape.slice(ax + 1)),
    n = x.shape[ax];
  const src = vals(x),
    dst = o.values;
  for (let a = 0; a < outer; a++) {
    for (let k = 0; k < idx.length; k++) {
      const s = (a * n + idx[k]) * inner,
        d = (a * idx.length + k) * inner;
      for (let c = 0; c < inner; c++) dst[d + c] = src[s + c];
    }
  }
  return o.info;
};

/** The adjoint of indexSelect: zeros of `shape`, then out[.., idx[k], ..] += src[.., k, ..]. */
const indexAddKernel: CpuKernel<'indexAdd'> = (inputs, attrs, be) => {
  const [src, ix] = inputs;
  const ax = attrs.axis;
  const idx = vals(ix);
  const o = be.zeros(attrs.shape, src.dtype);
  const outer = sizeOf(attrs.shape.slice(0, ax)),
    inner = sizeOf(attrs.shape.slice(ax + 1)),
    n = attrs.shape[ax];
  const sv = vals(src),
    dst = o.values;
  for (let a = 0; a < outer; a++) {
    for (let k = 0; k < idx.length; k++) {
      const d = (a * n + idx[k]) * inner,
        s = (a * idx.length + k) * inner;
      for (let c = 0; c < inner; c++) dst[d + c] += sv[s + c];
    }
  }
  return o.info;
};

export type { TensorInfo };

import { broadcastShapes } from '../shape.js';
import { forEachBroadcast } from './elementwise.js';

const broadcastToKernel: CpuKernel<'broadcastTo'> = (inputs, attrs, be) => {
  const x = inputs[0];
  const shape = broadcastShapes('broadcastTo', x.shape, attrs.shape);
  if (shape.length !== attrs.shape.length || shape.some((d, i) => d !== attrs.shape[i])) {
    throw new Error(`broadcastTo: cannot broadcast [${x.shape.join(', ')}] to [${attrs.shape.join(', ')}]`);
  }
  const o = be.out(shape, x.dtype);
  const xv = vals(x),
    ov = o.values;
  forEachBroadcast(shape, [x.shape], (i, offs) => {
    ov[i] = xv[offs[0]];
  });
  return o.info;
};

export const layoutKernels = {
  permute: permuteKernel,
  slice: sliceKernel,
  pad: padKernel,
  concat: concatKernel,
  indexSelect: indexSelectKernel,
  indexAdd: indexAddKernel,
  broadcastTo: broadcastToKernel,
} satisfies Partial<CpuKernelTable>;
