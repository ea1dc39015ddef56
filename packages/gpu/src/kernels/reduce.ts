import { sizeOf, type DType, type ReduceAttrs, type TensorInfo } from '@largo/core';
import type { GpuData, WebGpuBackend, GpuKernel, GpuKernelTable } from '../backend.js';
import { F32_HELPERS, Uniforms, roDecl, rwDecl, uniformDecl, uw, wtype, type WType } from '../wgsl.js';

/*
 * Reductions over arbitrary axes. The reduced axes are split into runs of
 * adjacent axes; each run is one [outer, red, inner] reduction (innermost run
 * first, keeping size-1 axes so that the other axes keep their numbers), so
 * no permuted copy of the input is ever made. Each run uses
 *  - a workgroup per output with a shared-memory tree reduction when the
 *    reduced length is long and reads along it are contiguous (inner = 1) or
 *    outputs are few; very long rows are first cut into chunks (two passes);
 *  - otherwise a thread per output walking the reduced axis (coalesced along
 *    `inner`).
 * Floats accumulate in f32 (the CPU uses float64); the tree keeps the error
 * growth logarithmic. max/min propagate NaN; argmax/argmin return the first
 * index of the extreme, the first NaN when there is one (as the CPU does).
 */

type Kind = 'sum' | 'max' | 'min' | 'argmax' | 'argmin';

function identity(kind: Kind, t: WType): string {
  if (kind === 'sum') return `${t}(0)`;
  const big = kind === 'max' || kind === 'argmax';
  if (t === 'f32') return big ? '-f32_inf()' : 'f32_inf()';
  if (t === 'i32') return big ? 'i32(-2147483648)' : '2147483647i';
  return big ? '0u' : '4294967295u';
}

/** WGSL `comb(a, b)` for sum/max/min. */
function combineFn(kind: Kind, t: WType): string {
  let body: string;
  if (kind === 'sum') body = 'return a + b;';
  else if (t !== 'f32') body = `return ${kind}(a, b);`;
  else body = `if (is_nan(a)) { return a; } if (is_nan(b)) { return b; } return ${kind}(a, b);`;
  return `fn comb(a: ${t}, b: ${t}) -> ${t} { ${body} }`;
}

/** WGSL `better(v1, i1, v2, i2)`: is candidate 2 preferred to 1 (EMPTY index = no candidate)? */
function betterFn(kind: 'argmax' | 'argmin', t: WType): string {
  const cmp = kind === 'argmax' ? '>' : '<';
  const nan = t === 'f32' ? 'if (is_nan(v1)) { return is_nan(v2) && i2 < i1; } if (is_nan(v2)) { return true; }' : '';
  return `const EMPTY: u32 = 4294967295u;
fn better(v1: ${t}, i1: u32, v2: ${t}, i2: u32) -> bool {
  if (i2 == EMPTY) { return false; }
  if (i1 == EMPTY) { return true; }
  ${nan}
  if (v2 ${cmp} v1) { return true; }
  return v2 == v1 && i2 < i1;
}`;
}

function pow2Below(n: number): number {
  let p = 1;
  while (p * 2 <= n) p *= 2;
  return p;
}

interface Stage {
  x: GpuData;
  xDtype: DType;
  outer: number;
  red: number;
  inner: number;
  out: GpuData;
  outDtype: DType;
}

/** Thread per output: Y[a, c] = reduce_r X[a, r, c]. */
function threadPerOutput(be: WebGpuBackend, kind: Kind, s: Stage): void {
  const ti = wtype(s.xDtype),
    to = wtype(s.outDtype);
  const n = s.outer * s.inner;
  const u = new Uniforms();
  const wg = be.wgSize;
  const [gx, gy] = be.grid(Math.ceil(n / wg));
  const nW = u.u(n),
    gW = u.u(gx),
    redW = u.u(s.red),
    innerW = u.u(s.inner);
  const arg = kind === 'argmax' || kind === 'argmin';
  const load = (e: string) => (kind === 'sum' && ti !== to ? `${to}(${e})` : e);
  const at = (r: string) => `X[(a * ${uw(redW)} + ${r}) * ${uw(innerW)} + c]`;
  const body = arg
    ? `var bv = ${at('0u')}; var bi = 0u;
  for (var r = 1u; r < ${uw(redW)}; r = r + 1u) {
    let v = ${at('r')};
    if (better(bv, bi, v, r)) { bv = v; bi = r; }
  }
  Y[idx] = i32(bi);`
    : `var acc: ${to} = ${identity(kind, to)};
  for (var r = 0u; r < ${uw(redW)}; r = r + 1u) { acc = comb(acc, ${load(at('r'))}); }
  Y[idx] = acc;`;
  be.dispatch({
    key: `reduceT:${kind}:${s.xDtype}`,
    inputs: [s.x],
    outputs: [s.out],
    uniforms: u,
    workgroups: [n === 0 ? 0 : gx, gy],
    wgsl: () => `${F32_HELPERS}
${arg ? betterFn(kind, ti) : combineFn(kind, to)}
${roDecl(0, 'X', ti)}${rwDecl(1, 'Y', arg ? 'i32' : to)}${uniformDecl(2, u.vec4s)}
@compute @workgroup_size(${wg})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let idx = gid.y * (${uw(gW)} * ${wg}u) + gid.x;
  if (idx >= ${uw(nW)}) { return; }
  let a = idx / ${uw(innerW)};
  let c = idx % ${uw(innerW)};
  ${body}
}`,
  });
}

/**
 * Workgroup per (output, chunk): threads stride over the chunk of the reduced
 * axis, then a shared-memory tree combines them. With `chunks` > 1 the result
 * is [outer, chunks, inner]-shaped partials (sum/max/min only).
 */
function workgroupTree(be: WebGpuBackend, kind: Kind, s: Stage, chunks: number): void {
  const ti = wtype(s.xDtype),
    to = wtype(s.outDtype);
  const arg = kind === 'argmax' || kind === 'argmin';
  const outputs = s.outer * s.inner;
  const groups = outputs * chunks;
  const wg = pow2Below(Math.min(256, be.limits.maxInvocations, be.limits.maxSizeX));
  const u = new Uniforms();
  const [gx, gy] = be.grid(groups);
  const gW = u.u(gx),
    groupsW = u.u(groups),
    redW = u.u(s.red),
    innerW = u.u(s.inner);
  const chunksW = u.u(chunks),
    chunkLenW = u.u(Math.ceil(s.red / chunks));
  const load = (e: string) => (kind === 'sum' && ti !== to ? `${to}(${e})` : e);
  const at = (r: string) => `X[(a * ${uw(redW)} + ${r}) * ${uw(innerW)} + c]`;
  const vt = arg ? ti : to;
  const local = arg
    ? `var bv: ${ti} = ${identity(kind, ti)}; var bi: u32 = EMPTY;
  for (var r = r0 + lid; r < r1; r = r + ${wg}u) {
    let v = ${at('r')};
    if (better(bv, bi, v, r)) { bv = v; bi = r; }
  }
  sv[lid] = bv; si[lid] = bi;`
    : `var acc: ${to} = ${identity(kind, to)};
  for (var r = r0 + lid; r < r1; r = r + ${wg}u) { acc = comb(acc, ${load(at('r'))}); }
  sv[lid] = acc;`;
  const step = arg
    ? `if (better(sv[lid], si[lid], sv[lid + s], si[lid + s])) { sv[lid] = sv[lid + s]; si[lid] = si[lid + s]; }`
    : 'sv[lid] = comb(sv[lid], sv[lid + s]);';
  const write = arg ? 'Y[o] = i32(si[0]);' : `Y[(a * ${uw(chunksW)} + k) * ${uw(innerW)} + c] = sv[0];`;
  be.dispatch({
    key: `reduceW:${kind}:${s.xDtype}:${wg}`,
    inputs: [s.x],
    outputs: [s.out],
    uniforms: u,
    workgroups: [groups === 0 ? 0 : gx, gy],
    wgsl: () => `${F32_HELPERS}
${arg ? betterFn(kind, ti) : combineFn(kind, to)}
${roDecl(0, 'X', ti)}${rwDecl(1, 'Y', arg ? 'i32' : to)}${uniformDecl(2, u.vec4s)}
var<workgroup> sv: array<${vt}, ${wg}>;
${arg ? `var<workgroup> si: array<u32, ${wg}>;` : ''}
@compute @workgroup_size(${wg})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let w = wid.y * ${uw(gW)} + wid.x;
  if (w >= ${uw(groupsW)}) { return; }
  let o = w / ${uw(chunksW)};
  let k = w % ${uw(chunksW)};
  let a = o / ${uw(innerW)};
  let c = o % ${uw(innerW)};
  let r0 = k * ${uw(chunkLenW)};
  let r1 = min(${uw(redW)}, r0 + ${uw(chunkLenW)});
  ${local}
  workgroupBarrier();
  for (var s = ${wg / 2}u; s > 0u; s = s >> 1u) {
    if (lid < s) { ${step} }
    workgroupBarrier();
  }
  if (lid == 0u) { ${write} }
}`,
  });
}

/** Reduces [outer, red, inner] of `x` into `out` ([outer, inner]). */
function reduceStage(be: WebGpuBackend, kind: Kind, s: Stage): void {
  const outputs = s.outer * s.inner;
  if (outputs === 0) return;
  const arg = kind === 'argmax' || kind === 'argmin';
  const tree = s.red >= 128 && (s.inner === 1 || outputs <= 1024);
  if (!tree) {
    threadPerOutput(be, kind, s);
    return;
  }
  // Long rows with few outputs: cut into chunks of ≥ 4096 so that many workgroups share the work.
  const chunks = arg ? 1 : Math.min(256, Math.floor(s.red / 4096));
  if (chunks <= 1 || outputs > 4096) {
    workgroupTree(be, kind, s, 1);
    return;
  }
  const partial = be.alloc(s.outDtype, s.outer * chunks * s.inner);
  try {
    workgroupTree(be, kind, { ...s, out: partial }, chunks);
    reduceStage(be, kind, {
      x: partial,
      xDtype: s.outDtype,
      outer: s.outer,
      red: chunks,
      inner: s.inner,
      out: s.out,
      outDtype: s.outDtype,
    });
  } finally {
    be.free(partial);
  }
}

function reduceKernel(kind: Kind) {
  return (inputs: readonly TensorInfo[], attrs: ReduceAttrs, be: WebGpuBackend): TensorInfo => {
    const x = inputs[0];
    wtype(x.dtype, kind);
    const axes = [...attrs.axes].sort((p, q) => p - q);
    const arg = kind === 'argmax' || kind === 'argmin';
    const outDtype: DType = arg ? 'int32' : kind === 'sum' && x.dtype === 'uint8' ? 'int32' : x.dtype;
    const finalShape = x.shape.flatMap((d, i) => (axes.includes(i) ? (attrs.keepDims ? [1] : []) : [d]));
    if (arg && axes.length !== 1)
      throw new Error(`${kind}: the webgpu kernel reduces exactly one axis, got [${axes.join(', ')}]`);
    // Runs of adjacent axes, innermost first.
    const runs: [number, number][] = [];
    for (const a of axes) {
      const last = runs[runs.length - 1];
      if (last && last[1] === a) last[1] = a + 1;
      else runs.push([a, a + 1]);
    }
    runs.reverse();
    const o = be.out(finalShape, outDtype);
    if (runs.length === 0) {
      // Nothing to reduce: the values themselves (uint8 sums widen to int32).
      if (x.dtype === outDtype) be.copy(x.dataId, o.data);
      else
        reduceStage(be, 'sum', {
          x: x.dataId as GpuData,
          xDtype: x.dtype,
          outer: o.data.size,
          red: 1,
          inner: 1,
          out: o.data,
          outDtype,
        });
      return o.info;
    }
    let cur = x.dataId as GpuData,
      curDtype = x.dtype;
    const shape = [...x.shape];
    const temps: GpuData[] = [];
    try {
      runs.forEach(([lo, hi], i) => {
        const outer = sizeOf(shape.slice(0, lo)),
          red = sizeOf(shape.slice(lo, hi)),
          inner = sizeOf(shape.slice(hi));
        const last = i === runs.length - 1;
        const dst = last ? o.data : be.alloc(outDtype, outer * inner);
        if (!last) temps.push(dst);
        if (red === 0 && outer * inner > 0) {
          // Sum over an empty axis: zeros (max/min/arg of an empty axis are rejected by the op).
          reduceStage(be, 'sum', {
            x: cur,
            xDtype: curDtype,
            outer: outer * inner,
            red: 0,
            inner: 1,
            out: dst,
            outDtype,
          });
        } else {
          reduceStage(be, kind, { x: cur, xDtype: curDtype, outer, red, inner, out: dst, outDtype });
        }
        for (let d = lo; d < hi; d++) shape[d] = 1;
        cur = dst;
        curDtype = outDtype;
      });
    } finally {
      for (const t of temps) be.free(t);
    }
    return o.info;
  };
}

export const reduceKernels = {
  sum: reduceKernel('sum'),
  max: reduceKernel('max'),
  min: reduceKernel('min'),
  argmax: reduceKernel('argmax'),
  argmin: reduceKernel('argmin'),
} satisfies Partial<GpuKernelTable>;
