import type { DType } from '@largo/core';

/**
 * WGSL element types. WGSL has no 8-bit or 64-bit types in storage buffers:
 * uint8 tensors are stored as one u32 per element (values 0..255; every
 * kernel that produces uint8 masks its result with 255, which is exactly the
 * wrap-around of a Uint8Array store), and float64 is not supported.
 */
export type WType = 'f32' | 'i32' | 'u32';

export function wtype(dtype: DType, op = 'webgpu'): WType {
  switch (dtype) {
    case 'float32':
      return 'f32';
    case 'int32':
      return 'i32';
    case 'uint8':
      return 'u32';
    default:
      throw new Error(
        `${op}: dtype ${dtype} is not supported on the webgpu backend (WGSL has no f64); cast to float32 or use the cpu backend`,
      );
  }
}

/** WGSL for a conversion of `expr` (of dtype `from`) to the compute type of dtype `to`. */
export function convert(expr: string, from: DType, to: DType): string {
  if (from === to) return expr;
  const t = wtype(to);
  if (t === 'f32') return `f32(${expr})`;
  if (from === 'float32') return t === 'i32' ? `js_to_i32(${expr})` : `(bitcast<u32>(js_to_i32(${expr})) & 255u)`;
  if (from === 'int32' && to === 'uint8') return `(bitcast<u32>(${expr}) & 255u)`;
  if (from === 'uint8' && to === 'int32') return `i32(${expr})`;
  throw new Error(`webgpu: no conversion ${from} -> ${to}`);
}

/** Float helpers shared by kernels; NaN and infinity are tested on the bits so that no compiler assumption can drop them. */
export const F32_HELPERS = /* wgsl */ `
fn is_nan(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u; }
fn is_inf(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) == 0x7f800000u; }
// Private vars, not consts: a constant NaN/Inf is a WGSL compile error, a runtime bitcast is not.
var<private> NAN_BITS: u32 = 0x7fc00000u;
var<private> INF_BITS: u32 = 0x7f800000u;
fn f32_nan() -> f32 { return bitcast<f32>(NAN_BITS); }
fn f32_inf() -> f32 { return bitcast<f32>(INF_BITS); }
fn is_nonzero_f(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) != 0u; }
// exp with explicit overflow/underflow so that the result never depends on how exp2 treats huge inputs.
fn exp_s(x: f32) -> f32 {
  if (is_nan(x)) { return x; }
  if (x > 88.72284f) { return f32_inf(); }
  if (x < -103.97209f) { return 0.0f; }
  return exp(x);
}
// ToInt32 of JavaScript (a store into an Int32Array): truncate, NaN/±Inf -> 0, wrap modulo 2^32.
fn js_to_i32(x: f32) -> i32 {
  if (is_nan(x) || is_inf(x)) { return 0i; }
  let t = trunc(x);
  if (abs(t) < 2147483648.0f) { return i32(t); }
  let r = t - 4294967296.0f * floor(t / 4294967296.0f);
  return bitcast<i32>(u32(r));
}
`;

/**
 * A block of u32 words passed as one uniform binding. Fields are addressed by
 * word index; `field(i)` is the WGSL expression that reads word `i` (a
 * constant index, so no dynamic uniform indexing is needed).
 */
export class Uniforms {
  private words: number[] = [];
  private f32 = new Float32Array(1);
  private u32 = new Uint32Array(this.f32.buffer);

  /** Appends a u32 and returns its word index. */
  u(v: number): number {
    this.words.push(v >>> 0);
    return this.words.length - 1;
  }
  /** Appends an i32 (two's complement bits). */
  i(v: number): number {
    this.words.push((v | 0) >>> 0);
    return this.words.length - 1;
  }
  /** Appends an f32 (rounded) as bits. */
  f(v: number): number {
    this.f32[0] = v;
    this.words.push(this.u32[0]);
    return this.words.length - 1;
  }
  /** Appends several u32s and returns the index of the first. */
  us(vs: readonly number[]): number {
    const at = this.words.length;
    for (const v of vs) this.u(v);
    return at;
  }

  get length(): number {
    return this.words.length;
  }
  /** Number of vec4<u32> in the WGSL struct (at least 1). */
  get vec4s(): number {
    return Math.max(1, Math.ceil(this.words.length / 4));
  }

  bytes(): Uint32Array {
    const out = new Uint32Array(this.vec4s * 4);
    for (let i = 0; i < this.words.length; i++) out[i] = this.words[i];
    return out;
  }
}

/** WGSL expression reading u32 word `i` of the uniform block. */
export const uw = (i: number): string => `prm.v[${i >> 2}].${'xyzw'[i & 3]}`;
export const uwi = (i: number): string => `bitcast<i32>(${uw(i)})`;
export const uwf = (i: number): string => `bitcast<f32>(${uw(i)})`;

/** The uniform struct declaration for `vec4s` vec4<u32> at `binding`. */
export function uniformDecl(binding: number, vec4s: number): string {
  return `struct Params { v: array<vec4<u32>, ${vec4s}> }\n@group(0) @binding(${binding}) var<uniform> prm: Params;\n`;
}

/** Typed read-only / read-write storage declarations. */
export const roDecl = (binding: number, name: string, t: WType): string =>
  `@group(0) @binding(${binding}) var<storage, read> ${name}: array<${t}>;\n`;
export const rwDecl = (binding: number, name: string, t: WType): string =>
  `@group(0) @binding(${binding}) var<storage, read_write> ${name}: array<${t}>;\n`;

/**
 * Merges adjacent axes that are contiguous for every operand and drops
 * size-1 axes. `strides[j][d]` is operand j's stride (in elements) along
 * output axis d. Returns the reduced shape and strides (possibly rank 0).
 */
export function collapse(
  shape: readonly number[],
  strides: readonly (readonly number[])[],
): { shape: number[]; strides: number[][] } {
  const keep: number[] = [];
  for (let d = 0; d < shape.length; d++) if (shape[d] !== 1) keep.push(d);
  const outShape: number[] = [];
  const outStrides: number[][] = strides.map(() => []);
  for (const d of keep) {
    const r = outShape.length;
    if (r > 0 && strides.every((s, j) => outStrides[j][r - 1] === s[d] * shape[d])) {
      outShape[r - 1] *= shape[d];
      strides.forEach((s, j) => {
        outStrides[j][r - 1] = s[d];
      });
    } else {
      outShape.push(shape[d]);
      strides.forEach((s, j) => {
        outStrides[j].push(s[d]);
      });
    }
  }
  return { shape: outShape, strides: outStrides };
}

/**
 * WGSL statements that turn the linear output index `idx` into offsets for a
 * rank-r strided walk: for each operand `{ name, at }`, declares
 * `var <name>: u32` = Σ coord_d · stride_d, with shape words from `shapeAt`
 * and the operand's strides from word `at`.
 */
export function offsetsCode(
  rank: number,
  shapeAt: number,
  operands: readonly { name: string; at: number }[],
  idx = 'idx',
): string {
  const lines: string[] = [];
  for (const o of operands) lines.push(`var ${o.name}: u32 = 0u;`);
  if (rank === 0 || operands.length === 0) return lines.join('\n  ');
  lines.push(`var rem: u32 = ${idx};`);
  for (let d = rank - 1; d >= 0; d--) {
    if (d > 0) lines.push(`{ let c = rem % ${uw(shapeAt + d)}; rem = rem / ${uw(shapeAt + d)};`);
    else lines.push('{ let c = rem;');
    for (const o of operands) lines.push(`  ${o.name} = ${o.name} + c * ${uw(o.at + d)};`);
    lines.push('}');
  }
  return lines.join('\n  ');
}

/** Row-major strides. */
export function contiguousStrides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

/** Strides of `shape` broadcast into `outShape` (0 along broadcast axes). */
export function broadcastStridesOf(shape: readonly number[], outShape: readonly number[]): number[] {
  const st = contiguousStrides(shape);
  const off = outShape.length - shape.length;
  const r = new Array<number>(outShape.length).fill(0);
  for (let i = 0; i < shape.length; i++) r[i + off] = shape[i] === 1 ? 0 : st[i];
  return r;
}

/** Prologue of a 1-d kernel: `idx` from a 2-d grid of `wg`-wide workgroups; returns early past `n`. */
export function linearIndex(wg: number, nWord: number, gxWord: number): string {
  return `let idx = gid.y * (${uw(gxWord)} * ${wg}u) + gid.x;\n  if (idx >= ${uw(nWord)}) { return; }`;
}
