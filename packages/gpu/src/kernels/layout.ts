import { type DType, type TensorInfo } from '@largo/core';
import type { GpuData, WebGpuBackend, GpuKernel, GpuKernelTable } from '../backend.js';
import {
  Uniforms,
  broadcastStridesOf,
  collapse,
  contiguousStrides,
  linearIndex,
  offsetsCode,
  roDecl,
  rwDecl,
  uniformDecl,
  uw,
} from '../wgsl.js';

/*
 * Layout kernels move 32-bit words and never look at them, so one shader
 * serves every dtype. permute, slice and broadcastTo are one strided gather
 * (out[i] = in[offset + Σ coord_d · stride_d]) after collapsing axes; a
 * gather that turns out contiguous becomes a buffer-to-buffer copy. concat
 * copies each input into its band of the output.
 */

/** out (shape `shape`) = x gathered with per-axis `strides` from element `offset`. */
export function gather(
  be: WebGpuBackend,
  x: GpuData,
  out: GpuData,
  shape: readonly number[],
  strides: readonly number[],
  offset: number,
): void {
  const n = out.size;
  if (n === 0) return;
  const c = collapse(shape, [strides]);
  const rank = c.shape.length;
  if (rank === 0 || (rank === 1 && c.strides[0][0] === 1)) {
    be.copyRange(x, offset, out, 0, n);
    return;
  }
  const u = new Uniforms();
  const wg = be.wgSize;
  const [gx, gy] = be.grid(Math.ceil(n / wg));
  const nW = u.u(n),
    gW = u.u(gx),
    offW = u.u(offset);
  const shapeAt = u.us(c.shape),
    strideAt = u.us(c.strides[0]);
  be.dispatch({
    key: `gather:${rank}`,
    inputs: [x],
    outputs: [out],
    uniforms: u,
    workgroups: [gx, gy],
    wgsl: () => `${roDecl(0, 'X', 'u32')}${rwDecl(1, 'Y', 'u32')}${uniformDecl(2, u.vec4s)}
@compute @workgroup_size(${wg})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  ${linearIndex(wg, nW, gW)}
  ${offsetsCode(rank, shapeAt, [{ name: 'src', at: strideAt }])}
  Y[idx] = X[${uw(offW)} + src];
}`,
  });
}

const permuteKernel: GpuKernel<'permute'> = (inputs, attrs, be) => {
  const x = inputs[0];
  const st = contiguousStrides(x.shape);
  const shape = attrs.perm.map((p) => x.shape[p]);
  const o = be.out(shape, x.dtype);
  gather(
    be,
    x.dataId as GpuData,
    o.data,
    shape,
    attrs.perm.map((p) => st[p]),
    0,
  );
  return o.info;
};

const sliceKernel: GpuKernel<'slice'> = (inputs, attrs, be) => {
  const x = inputs[0];
  const st = contiguousStrides(x.shape);
  const o = be.out(attrs.size, x.dtype);
  const offset = attrs.begin.reduce((acc, b, d) => acc + b * st[d], 0);
  gather(be, x.dataId as GpuData, o.data, attrs.size, st, offset);
  return o.info;
};

const broadcastToKernel: GpuKernel<'broadcastTo'> = (inputs, attrs, be) => {
  const x = inputs[0];
  if (
    attrs.shape.length < x.shape.length ||
    x.shape.some((d, i) => d !== 1 && d !== attrs.shape[i + attrs.shape.length - x.shape.length])
  ) {
    throw new Error(`broadcastTo: cannot broadcast [${x.shape.join(', ')}] to [${attrs.shape.join(', ')}]`);
  }
  const o = be.out(attrs.shape, x.dtype);
  gather(be, x.dataId as GpuData, o.data, attrs.shape, broadcastStridesOf(x.shape, attrs.shape), 0);
  return o.info;
};

/** The 32-bit word a constant takes in a tensor of `dtype` (as a store into its typed array would convert it). */
function constantBits(value: number, dtype: DType): number {
  if (dtype === 'float32') return new Uint32Array(new Float32Array([value]).buffer)[0];
  if (dtype === 'int32') return new Uint32Array(new Int32Array([value]).buffer)[0];
  if (dtype === 'uint8') return new Uint8Array([value])[0];
  throw new Error(`webgpu: dtype ${dtype} is not supported`);
}

const padKernel: GpuKernel<'pad'> = (inputs, attrs, be) => {
  const x = inputs[0];
  const shape = x.shape.map((d, i) => d + attrs.pads[i][0] + attrs.pads[i][1]);
  const o = be.out(shape, x.dtype);
  const n = o.data.size;
  if (n === 0) return o.info;
  const rank = shape.length;
  const u = new Uniforms();
  const wg = be.wgSize;
  const [gx, gy] = be.grid(Math.ceil(n / wg));
  const nW = u.u(n),
    gW = u.u(gx),
    valW = u.u(constantBits(attrs.value ?? 0, x.dtype));
  const outAt = u.us(shape),
    beforeAt = u.us(attrs.pads.map((p) => p[0])),
    inAt = u.us(x.shape),
    strideAt = u.us(contiguousStrides(x.shape));
  const lines: string[] = ['var rem = idx;', 'var src = 0u;', 'var inside = true;'];
  for (let d = rank - 1; d >= 0; d--) {
    lines.push(`{ let c = rem % ${uw(outAt + d)}; rem = rem / ${uw(outAt + d)};`);
    // c - before wraps to a huge u32 when c < before, so one comparison tests both sides.
    lines.push(
      `  let ci = c - ${uw(beforeAt + d)}; if (ci >= ${uw(inAt + d)}) { inside = false; } src = src + ci * ${uw(strideAt + d)}; }`,
    );
  }
  be.dispatch({
    key: `pad:${rank}`,
    inputs: [x.dataId as GpuData],
    outputs: [o.data],
    uniforms: u,
    workgroups: [gx, gy],
    wgsl: () => `${roDecl(0, 'X', 'u32')}${rwDecl(1, 'Y', 'u32')}${uniformDecl(2, u.vec4s)}
@compute @workgroup_size(${wg})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  ${linearIndex(wg, nW, gW)}
  ${lines.join('\n  ')}
  if (inside) { Y[idx] = X[src]; } else { Y[idx] = ${uw(valW)}; }
}`,
  });
  return o.info;
};

/** Y[dstOff + r·dstStride + c] = X[r·cols + c] for r < rows, c < cols. */
function copyBand(
  be: WebGpuBackend,
  x: GpuData,
  out: GpuData,
  rows: number,
  cols: number,
  dstStride: number,
  dstOff: number,
): void {
  const n = rows * cols;
  if (n === 0) return;
  if (rows === 1 || cols === dstStride) {
    be.copyRange(x, 0, out, dstOff, n);
    return;
  }
  const u = new Uniforms();
  const wg = be.wgSize;
  const [gx, gy] = be.grid(Math.ceil(n / wg));
  const nW = u.u(n),
    gW = u.u(gx),
    colsW = u.u(cols),
    strideW = u.u(dstStride),
    offW = u.u(dstOff);
  be.dispatch({
    key: 'copyBand',
    inputs: [x],
    outputs: [out],
    uniforms: u,
    workgroups: [gx, gy],
    wgsl: () => `${roDecl(0, 'X', 'u32')}${rwDecl(1, 'Y', 'u32')}${uniformDecl(2, u.vec4s)}
@compute @workgroup_size(${wg})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  ${linearIndex(wg, nW, gW)}
  let r = idx / ${uw(colsW)};
  let c = idx % ${uw(colsW)};
  Y[${uw(offW)} + r * ${uw(strideW)} + c] = X[idx];
}`,
  });
}

const concatKernel: GpuKernel<'concat'> = (inputs, attrs, be) => {
  const ax = attrs.axis;
  const shape = [...inputs[0].shape];
  shape[ax] = inputs.reduce((s, t) => s + t.shape[ax], 0);
  const o = be.out(shape, inputs[0].dtype);
  const outer = shape.slice(0, ax).reduce((p, d) => p * d, 1);
  const inner = shape.slice(ax + 1).reduce((p, d) => p * d, 1);
  let at = 0;
  for (const t of inputs) {
    const cols = t.shape[ax] * inner;
    copyBand(be, t.dataId as GpuData, o.data, outer, cols, shape[ax] * inner, at * inner);
    at += t.shape[ax];
  }
  return o.info;
};

export type { TensorInfo };

export const layoutKernels = {
  permute: permuteKernel,
  slice: sliceKernel,
  broadcastTo: broadcastToKernel,
  pad: padKernel,
  concat: concatKernel,
} satisfies Partial<GpuKernelTable>;
