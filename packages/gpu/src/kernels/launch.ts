import { sizeOf, type TensorInfo } from '@largo/core';
import type { GpuData, WebGpuBackend } from '../backend.js';
import { F32_HELPERS, Uniforms, roDecl, rwDecl, uniformDecl, uw, type WType } from '../wgsl.js';

/*
 * Small launch helpers shared by the nn / index kernels: a thread per index,
 * or a workgroup per group (with a power-of-two size for tree reductions).
 * Bindings: inputs (read-only), outputs (read-write), then one uniform
 * block; every dispatch here binds at most 4 storage buffers (the minimum
 * of compatibility mode).
 */

export interface Buf {
  name: string;
  data: GpuData;
  type?: WType;
}

export interface LaunchSpec {
  /** Pipeline key: must determine every generated line (the uniform size is added here). */
  key: string;
  inputs: Buf[];
  outputs: Buf[];
  /** Appends the kernel's uniform words (called before the launch's own words). */
  words?: (u: Uniforms) => void;
  /** Module-scope WGSL (functions, workgroup arrays); a function is called once per pipeline, after `words`. */
  helpers?: string | (() => string);
  /** The body; called once per pipeline, after `words`. */
  body: () => string;
}

function decls(spec: LaunchSpec, u: Uniforms): string {
  let b = 0;
  const d: string[] = [];
  for (const x of spec.inputs) d.push(roDecl(b++, x.name, x.type ?? 'f32'));
  for (const x of spec.outputs) d.push(rwDecl(b++, x.name, x.type ?? 'f32'));
  if (spec.inputs.length + spec.outputs.length > 4)
    throw new Error(`webgpu: ${spec.key} would bind more than 4 storage buffers`);
  return `${F32_HELPERS}${d.join('')}${uniformDecl(b, u.vec4s)}`;
}

const helpersOf = (spec: LaunchSpec): string =>
  typeof spec.helpers === 'function' ? spec.helpers() : (spec.helpers ?? '');

/** A thread per index in [0, n): the body sees `idx` (u32). */
export function launch1d(be: WebGpuBackend, n: number, spec: LaunchSpec): void {
  if (n <= 0) return;
  const u = new Uniforms();
  spec.words?.(u);
  const wg = be.wgSize;
  const [gx, gy] = be.grid(Math.ceil(n / wg));
  const nW = u.u(n),
    gW = u.u(gx);
  be.dispatch({
    key: `${spec.key}:t${wg}:w${u.length}`,
    inputs: spec.inputs.map((x) => x.data),
    outputs: spec.outputs.map((x) => x.data),
    uniforms: u,
    workgroups: [gx, gy],
    wgsl: () => `${decls(spec, u)}
${helpersOf(spec)}
@compute @workgroup_size(${wg})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let idx = gid.y * (${uw(gW)} * ${wg}u) + gid.x;
  if (idx >= ${uw(nW)}) { return; }
  ${spec.body()}
}`,
  });
}

/** Power-of-two workgroup size for tree reductions. */
function treeSize(be: WebGpuBackend, cap = 256): number {
  let p = 1;
  while (p * 2 <= Math.min(cap, be.limits.maxInvocations, be.limits.maxSizeX)) p *= 2;
  return p;
}

/**
 * A workgroup per group in [0, groups): the body sees `grp` (u32), `lid`
 * (u32) and the constant `WG`; `helpers` may declare workgroup arrays of
 * size WG. The body must keep barriers in uniform control flow.
 */
export function launchGroups(be: WebGpuBackend, groups: number, spec: LaunchSpec, wg = treeSize(be)): void {
  if (groups <= 0) return;
  const u = new Uniforms();
  spec.words?.(u);
  const [gx, gy] = be.grid(groups);
  const nW = u.u(groups),
    gW = u.u(gx);
  be.dispatch({
    key: `${spec.key}:g${wg}:w${u.length}`,
    inputs: spec.inputs.map((x) => x.data),
    outputs: spec.outputs.map((x) => x.data),
    uniforms: u,
    workgroups: [gx, gy],
    wgsl: () => `${decls(spec, u)}
const WG: u32 = ${wg}u;
${helpersOf(spec)}
@compute @workgroup_size(${wg})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let grp = wid.y * ${uw(gW)} + wid.x;
  if (grp >= ${uw(nW)}) { return; }
  ${spec.body()}
}`,
  });
}

/** WGSL: a tree reduction of workgroup array `arr` (size WG) into arr[0] with `comb(a, b)` (an expression). */
export function treeReduce(arr: string, comb: (a: string, b: string) => string): string {
  return `workgroupBarrier();
  for (var hs = WG / 2u; hs > 0u; hs = hs >> 1u) {
    if (lid < hs) { ${arr}[lid] = ${comb(`${arr}[lid]`, `${arr}[lid + hs]`)}; }
    workgroupBarrier();
  }`;
}

/** Chunks per row for two-level row reductions: enough workgroups for the GPU, chunks of ≥ 2048 elements. */
export function rowChunks(rows: number, len: number): number {
  if (rows >= 128 || len < 4096) return 1;
  return Math.max(1, Math.min(64, Math.ceil(256 / rows), Math.floor(len / 2048)));
}

/** The WebGPU kernels compute in f32 only: any other dtype is an error naming the op. */
export function checkF32(op: string, ...ts: TensorInfo[]): void {
  for (const t of ts)
    if (t.dtype !== 'float32') throw new Error(`${op}: the webgpu kernel takes float32 tensors, got ${t.dtype}`);
}

/** The GPU storage behind a kernel input. */
export const gd = (t: TensorInfo) => t.dataId as GpuData;

/** Packs the float32 tensors into one new buffer (buffer copies); returns it and each one's offset. */
export function pack(be: WebGpuBackend, parts: (TensorInfo | null | undefined)[]): { buf: GpuData; at: number[] } {
  const at: number[] = [];
  let n = 0;
  for (const p of parts) {
    at.push(n);
    n += p ? sizeOf(p.shape) : 0;
  }
  const buf = be.alloc('float32', Math.max(n, 1));
  parts.forEach((p, i) => {
    if (p) be.copyRange(gd(p), 0, buf, at[i], sizeOf(p.shape));
  });
  return { buf, at };
}
