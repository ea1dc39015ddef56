import { sizeOf } from '@largo/core';
import type { GpuData, WebGpuBackend, GpuKernel, GpuKernelTable } from '../backend.js';
import { uw, wtype, type Uniforms } from '../wgsl.js';
import { launch1d } from './launch.js';

/*
 * indexSelect / indexAdd along one axis, for every dtype.
 *
 * indexSelect is a gather of 32-bit words (one shader for all dtypes):
 * out[a, k, c] = x[a, idx[k], c].
 *
 * indexAdd (the adjoint) is a gather too, with no atomics: a first kernel
 * builds, for every output row j, the list of source rows k with idx[k] = j
 * in ascending k (CSR: starts[0..n] then the lists); then a thread per
 * output element adds its source rows in that order. The order is the CPU's,
 * so float32 results are bitwise the CPU's; int32 wraps like an Int32Array,
 * uint8 like a Uint8Array (mod 256). Building the lists costs O(n·K) simple
 * integer compares (n output rows, K indices), which is small for the
 * index lists this engine uses (channel / sample subsets).
 *
 * Indices that live on the GPU cannot be range-checked by the op without a
 * synchronous read, so the kernels clamp them into [0, n − 1] (an index
 * list given as numbers, or on the CPU, is still checked by the op).
 */

const indexSelectKernel: GpuKernel<'indexSelect'> = (inputs, attrs, be) => {
  const [x, ix] = inputs;
  wtype(x.dtype, 'indexSelect');
  const ax = attrs.axis;
  const K = sizeOf(ix.shape);
  const shape = [...x.shape];
  shape[ax] = K;
  const o = be.out(shape, x.dtype);
  const n = x.shape[ax],
    inner = sizeOf(x.shape.slice(ax + 1));
  let W: Record<string, string> = {};
  const words = (u: Uniforms) => {
    W = { n: uw(u.u(n)), K: uw(u.u(K)), inner: uw(u.u(inner)) };
  };
  launch1d(be, o.data.size, {
    key: 'indexSelect',
    inputs: [
      { name: 'X', data: x.dataId as GpuData, type: 'u32' },
      { name: 'IX', data: ix.dataId as GpuData, type: 'i32' },
    ],
    outputs: [{ name: 'Y', data: o.data, type: 'u32' }],
    words,
    body: () => `let n = ${W.n}; let inner = ${W.inner};
  if (n == 0u) { Y[idx] = 0u; return; }
  let c = idx % inner; let t = idx / inner; let k = t % ${W.K}; let a = t / ${W.K};
  let j = u32(clamp(IX[k], 0i, i32(n) - 1i));
  Y[idx] = X[(a * n + j) * inner + c];`,
  });
  return o.info;
};

const indexAddKernel: GpuKernel<'indexAdd'> = (inputs, attrs, be) => {
  const [src, ix] = inputs;
  const t = wtype(src.dtype, 'indexAdd');
  const ax = attrs.axis;
  const K = sizeOf(ix.shape);
  const o = be.out(attrs.shape, src.dtype);
  if (o.data.size === 0) return o.info;
  const n = attrs.shape[ax],
    inner = sizeOf(attrs.shape.slice(ax + 1));
  // meta = [starts (n + 1) | source rows grouped by output row (K)]
  const meta = be.alloc('int32', n + 1 + K);
  try {
    let W: Record<string, string> = {};
    const words = (u: Uniforms) => {
      W = { n: uw(u.u(n)), K: uw(u.u(K)), inner: uw(u.u(inner)) };
    };
    launch1d(be, n + 1, {
      key: 'indexAdd:lists',
      inputs: [{ name: 'IX', data: ix.dataId as GpuData, type: 'i32' }],
      outputs: [{ name: 'MT', data: meta, type: 'u32' }],
      words,
      helpers: () => `fn row_of(k: u32) -> u32 { return u32(clamp(IX[k], 0i, i32(${W.n}) - 1i)); }`,
      body: () => `let n = ${W.n}; let K = ${W.K};
  var start = 0u;
  for (var k = 0u; k < K; k = k + 1u) { if (row_of(k) < idx) { start = start + 1u; } }
  MT[idx] = start;
  if (idx == n) { return; }
  var at = n + 1u + start;
  for (var k = 0u; k < K; k = k + 1u) { if (row_of(k) == idx) { MT[at] = k; at = at + 1u; } }`,
    });
    const add = t === 'u32' ? '(s + v) & 255u' : 's + v';
    launch1d(be, o.data.size, {
      key: `indexAdd:sum:${t}`,
      inputs: [
        { name: 'SRC', data: src.dataId as GpuData, type: t },
        { name: 'MT', data: meta, type: 'u32' },
      ],
      outputs: [{ name: 'Y', data: o.data, type: t }],
      words,
      body: () => `let n = ${W.n}; let inner = ${W.inner};
  let c = idx % inner; let q = idx / inner; let j = q % n; let a = q / n;
  var s = ${t}(0);
  for (var r = MT[j]; r < MT[j + 1u]; r = r + 1u) { let v = SRC[(a * ${W.K} + MT[n + 1u + r]) * inner + c]; s = ${add}; }
  Y[idx] = s;`,
    });
  } finally {
    be.free(meta);
  }
  return o.info;
};

export const indexKernels = {
  indexSelect: indexSelectKernel,
  indexAdd: indexAddKernel,
} satisfies Partial<GpuKernelTable>;
