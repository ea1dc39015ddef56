import { type DType, type TensorInfo, type DTypeAttrs, type UnaryAttrs } from '@largo/core';
import type { GpuData, WebGpuBackend, GpuKernel, GpuKernelTable } from '../backend.js';
import {
  F32_HELPERS,
  Uniforms,
  broadcastStridesOf,
  collapse,
  contiguousStrides,
  convert,
  linearIndex,
  offsetsCode,
  roDecl,
  rwDecl,
  uniformDecl,
  uw,
  uwf,
  uwi,
  wtype,
  type WType,
} from '../wgsl.js';

/*
 * Elementwise kernels: one thread per output element on a 1-d (or 2-d when
 * large) grid. Semantics follow the CPU kernels of @largo/core exactly,
 * including NaN propagation and JavaScript's wrap-around on integer stores;
 * NaN/Inf are tested on the bits (WGSL lets compilers assume finite floats).
 * Broadcasting: axes are collapsed first (adjacent axes contiguous for every
 * operand merge, size-1 axes drop), so most calls run the rank-1 shader.
 */

const FLOAT_ONLY = new Set(['exp', 'log', 'sqrt', 'relu', 'sigmoid', 'tanh', 'floor', 'leakyRelu']);

/** WGSL body computing `y` from `x` (float32). Attribute words come from `u`. */
function unaryF32(op: string, u: Uniforms, a: UnaryAttrs): string {
  switch (op) {
    case 'neg':
      return 'y = -x;';
    case 'exp':
      return 'y = exp_s(x);';
    case 'log':
      return 'if (x < 0.0f) { y = f32_nan(); } else if (x == 0.0f) { y = -f32_inf(); } else if (is_inf(x)) { y = x; } else { y = log(x); }';
    case 'sqrt':
      return 'if (x < 0.0f) { y = f32_nan(); } else if (is_inf(x)) { y = x; } else { y = sqrt(x); }';
    case 'abs':
      return 'y = abs(x);';
    case 'sign':
      return 'y = select(select(0.0f, -1.0f, x < 0.0f), 1.0f, x > 0.0f);';
    case 'relu':
      return 'y = select(0.0f, x, x > 0.0f);';
    case 'sigmoid':
      return 'if (x >= 0.0f) { y = 1.0f / (1.0f + exp_s(-x)); } else { let e = exp_s(x); y = e / (1.0f + e); }';
    // tanh from exp(-2|x|): never Inf/Inf, exact ±1 in the tails.
    case 'tanh':
      return 'let ax = abs(x); if (ax > 20.0f) { y = sign(x); } else { let t = exp_s(-2.0f * ax); y = sign(x) * (1.0f - t) / (1.0f + t); }';
    case 'floor':
      return 'y = floor(x);';
    case 'leakyRelu': {
      const w = u.f(a.alpha ?? 0.01);
      return `y = select(${uwf(w)} * x, x, x > 0.0f);`;
    }
    case 'clamp': {
      const lo = u.f(a.min ?? -Infinity),
        hi = u.f(a.max ?? Infinity);
      return `y = select(select(x, ${uwf(hi)}, x > ${uwf(hi)}), ${uwf(lo)}, x < ${uwf(lo)});`;
    }
    default:
      throw new Error(`webgpu: unknown unary op ${op}`);
  }
}

const INT32_MIN = -2147483648,
  INT32_MAX = 2147483647;
const sat = (v: number, lo: number, hi: number) => (v < lo ? lo : v > hi ? hi : v);

/**
 * clamp on an integer tensor, as the CPU computes it: compare in double, then
 * store lo/hi with the dtype's wrap-around. x < lo ⟺ x < ceil(lo) for
 * integer x; thresholds saturate to the dtype's range.
 */
function clampInt(dtype: DType, u: Uniforms, a: UnaryAttrs): string {
  const lo = a.min ?? -Infinity,
    hi = a.max ?? Infinity;
  const cast = (v: number) => (dtype === 'int32' ? new Int32Array([v])[0] : new Uint8Array([v])[0]);
  // x < lo; with lo above every value use INT32_MAX (+1 would overflow) plus an "always" flag.
  const loT = u.i(sat(Math.ceil(lo), INT32_MIN, INT32_MAX)),
    loAll = u.u(Math.ceil(lo) > INT32_MAX ? 1 : 0);
  const hiT = u.i(sat(Math.floor(hi), INT32_MIN, INT32_MAX)),
    hiAll = u.u(Math.floor(hi) < INT32_MIN ? 1 : 0);
  const loV = u.i(cast(lo)),
    hiV = u.i(cast(hi));
  const xi = dtype === 'int32' ? 'x' : 'i32(x)';
  const back = (e: string) => (dtype === 'int32' ? e : `u32(${e}) & 255u`);
  return `let xi = ${xi};
  if (${uw(loAll)} != 0u || xi < ${uwi(loT)}) { y = ${back(uwi(loV))}; }
  else if (${uw(hiAll)} != 0u || xi > ${uwi(hiT)}) { y = ${back(uwi(hiV))}; }
  else { y = x; }`;
}

function unaryInt(op: string, dtype: DType, u: Uniforms, a: UnaryAttrs): string {
  const i32 = dtype === 'int32';
  switch (op) {
    case 'neg':
      return i32 ? 'y = 0i - x;' : 'y = (0u - x) & 255u;';
    case 'abs':
      return i32 ? 'y = abs(x);' : 'y = x;';
    case 'sign':
      return i32 ? 'y = sign(x);' : 'y = select(0u, 1u, x > 0u);';
    case 'clamp':
      return clampInt(dtype, u, a);
    default:
      throw new Error(`${op}: expects a float tensor, got ${dtype}`);
  }
}

function unaryKernel(op: string) {
  return (inputs: readonly TensorInfo[], attrs: UnaryAttrs, be: WebGpuBackend): TensorInfo => {
    const x = inputs[0];
    const t = wtype(x.dtype, op);
    if (FLOAT_ONLY.has(op) && t !== 'f32') throw new Error(`${op}: expects a float tensor, got ${x.dtype}`);
    const o = be.out(x.shape, x.dtype);
    const n = o.data.size;
    const u = new Uniforms();
    const wg = be.wgSize;
    const [gx, gy] = be.grid(Math.ceil(n / wg));
    const nW = u.u(n),
      gW = u.u(gx);
    const body = t === 'f32' ? unaryF32(op, u, attrs ?? {}) : unaryInt(op, x.dtype, u, attrs ?? {});
    const nanGuard = t === 'f32';
    be.dispatch({
      key: `unary:${op}:${x.dtype}`,
      inputs: [x.dataId as GpuData],
      outputs: [o.data],
      uniforms: u,
      workgroups: [n === 0 ? 0 : gx, gy],
      wgsl: () => `${F32_HELPERS}
${roDecl(0, 'X', t)}${rwDecl(1, 'Y', t)}${uniformDecl(2, u.vec4s)}
@compute @workgroup_size(${wg})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  ${linearIndex(wg, nW, gW)}
  let x = X[idx];
  var y: ${t};
  ${nanGuard ? `if (is_nan(x)) { y = x; } else {\n  ${body}\n  }` : body}
  Y[idx] = y;
}`,
    });
    return o.info;
  };
}

/**
 * leakyRelu's gradient in one pass: dx = x > 0 ? dy : alpha·dy, x and dy of
 * one shape (float32). NaN in x takes alpha·dy, as on the CPU; x's NaN test
 * is on the bits.
 */
const leakyReluGradKernel: GpuKernel<'leakyReluGrad'> = (inputs, attrs, be) => {
  const [x, dy] = inputs;
  const t = wtype(dy.dtype, 'leakyReluGrad'),
    tx = wtype(x.dtype, 'leakyReluGrad');
  if (t !== 'f32' || tx !== 'f32')
    throw new Error(`leakyReluGrad: expects float tensors, got x ${x.dtype} and dy ${dy.dtype}`);
  const o = be.out(dy.shape, dy.dtype);
  const n = o.data.size;
  const u = new Uniforms();
  const wg = be.wgSize;
  const [gx, gy] = be.grid(Math.ceil(n / wg));
  const nW = u.u(n),
    gW = u.u(gx);
  const w = u.f(attrs.alpha);
  be.dispatch({
    key: 'leakyReluGrad',
    inputs: [x.dataId as GpuData, dy.dataId as GpuData],
    outputs: [o.data],
    uniforms: u,
    workgroups: [n === 0 ? 0 : gx, gy],
    wgsl: () => `${F32_HELPERS}
${roDecl(0, 'X', 'f32')}${roDecl(1, 'G', 'f32')}${rwDecl(2, 'Y', 'f32')}${uniformDecl(3, u.vec4s)}
@compute @workgroup_size(${wg})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  ${linearIndex(wg, nW, gW)}
  let x = X[idx];
  let g = G[idx];
  Y[idx] = select(${uwf(w)} * g, g, x > 0.0f && !is_nan(x));
}`,
  });
  return o.info;
};

const castKernel: GpuKernel<'cast'> = (inputs, attrs, be) => {
  const x = inputs[0];
  const ti = wtype(x.dtype, 'cast'),
    to = wtype(attrs.dtype, 'cast');
  const o = be.out(x.shape, attrs.dtype);
  const n = o.data.size;
  if (x.dtype === attrs.dtype) {
    be.copy(x.dataId, o.data);
    return o.info;
  }
  const u = new Uniforms();
  const wg = be.wgSize;
  const [gx, gy] = be.grid(Math.ceil(n / wg));
  const nW = u.u(n),
    gW = u.u(gx);
  be.dispatch({
    key: `cast:${x.dtype}:${attrs.dtype}`,
    inputs: [x.dataId as GpuData],
    outputs: [o.data],
    uniforms: u,
    workgroups: [n === 0 ? 0 : gx, gy],
    wgsl: () => `${F32_HELPERS}
${roDecl(0, 'X', ti)}${rwDecl(1, 'Y', to)}${uniformDecl(2, u.vec4s)}
@compute @workgroup_size(${wg})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  ${linearIndex(wg, nW, gW)}
  Y[idx] = ${convert('X[idx]', x.dtype, attrs.dtype)};
}`,
  });
  return o.info;
};

// ------------------------------------------------------------------ binary

const COMPARISONS = new Set([
  'equal',
  'notEqual',
  'less',
  'lessEqual',
  'greater',
  'greaterEqual',
  'logicalAnd',
  'logicalOr',
]);

/** Helper functions for binary ops whose WGSL builtin differs from JavaScript. */
const BINARY_HELPERS = /* wgsl */ `
// Math.pow: pow(x, ±0) = 1 (NaN included), NaN elsewhere propagates, negative base needs an integer exponent.
fn pow_f(a: f32, b: f32) -> f32 {
  if (b == 0.0f) { return 1.0f; }
  if (is_nan(a) || is_nan(b)) { return f32_nan(); }
  let ab = abs(a);
  if (ab == 1.0f && is_inf(b)) { return f32_nan(); }
  let bi = b == floor(b);
  let odd = bi && abs(b) < 16777216.0f && (b - 2.0f * floor(b / 2.0f)) == 1.0f;
  // An infinite base has a defined power for any exponent (Math.pow(-Infinity, -0.5) = 0).
  if (a < 0.0f && !bi && !is_inf(b) && !is_inf(a)) { return f32_nan(); }
  var r: f32;
  if (ab == 0.0f) { r = select(0.0f, f32_inf(), b < 0.0f); }
  else if (is_inf(ab)) { r = select(f32_inf(), 0.0f, b < 0.0f); }
  else if (is_inf(b)) { r = select(select(0.0f, f32_inf(), ab > 1.0f), select(f32_inf(), 0.0f, ab > 1.0f), b < 0.0f); }
  else {
    let e = b * log2(ab);
    if (e > 128.0f) { r = f32_inf(); } else if (e < -150.0f) { r = 0.0f; } else { r = exp2(e); }
  }
  if (a < 0.0f && odd) { return -r; }
  if (bitcast<u32>(a) == 0x80000000u && odd) { return -r; }
  return r;
}
// Integer power with wrap-around; negative exponents as JavaScript truncates them.
fn pow_i(a: i32, b: i32) -> i32 {
  if (b < 0i) {
    if (a == 1i) { return 1i; }
    if (a == -1i) { return select(1i, -1i, (b & 1i) != 0i); }
    return 0i;
  }
  var r = 1i; var base = a; var e = b;
  loop {
    if (e == 0i) { break; }
    if ((e & 1i) != 0i) { r = r * base; }
    base = base * base;
    e = e >> 1u;
  }
  return r;
}
fn pow_u(a: u32, b: u32) -> u32 {
  var r = 1u; var base = a; var e = b;
  loop {
    if (e == 0u) { break; }
    if ((e & 1u) != 0u) { r = r * base; }
    base = base * base;
    e = e >> 1u;
  }
  return r & 255u;
}
`;

/** WGSL expression for op(a, b) in compute type `t`; comparisons give u32 0/1. */
function binaryExpr(op: string, t: WType): string {
  const f = t === 'f32',
    u8 = t === 'u32';
  const wrap = (e: string) => (u8 ? `((${e}) & 255u)` : e);
  const nz = (v: string) => (f ? `is_nonzero_f(${v})` : `${v} != ${t === 'i32' ? '0i' : '0u'}`);
  const nanAny = 'is_nan(a) || is_nan(b)';
  switch (op) {
    case 'add':
      return wrap('a + b');
    case 'sub':
      return wrap('a - b');
    case 'mul':
      return wrap('a * b');
    case 'div':
      return f ? 'a / b' : `select(a / b, ${t}(0), b == ${t}(0))`;
    case 'pow':
      return f ? 'pow_f(a, b)' : u8 ? 'pow_u(a, b)' : 'pow_i(a, b)';
    case 'maximum':
      return f ? `select(max(a, b), f32_nan(), ${nanAny})` : 'max(a, b)';
    case 'minimum':
      return f ? `select(min(a, b), f32_nan(), ${nanAny})` : 'min(a, b)';
    case 'equal':
      return f ? `select(0u, 1u, a == b && !(${nanAny}))` : 'select(0u, 1u, a == b)';
    case 'notEqual':
      return f ? `select(0u, 1u, a != b || ${nanAny})` : 'select(0u, 1u, a != b)';
    case 'less':
      return f ? `select(0u, 1u, a < b && !(${nanAny}))` : 'select(0u, 1u, a < b)';
    case 'lessEqual':
      return f ? `select(0u, 1u, a <= b && !(${nanAny}))` : 'select(0u, 1u, a <= b)';
    case 'greater':
      return f ? `select(0u, 1u, a > b && !(${nanAny}))` : 'select(0u, 1u, a > b)';
    case 'greaterEqual':
      return f ? `select(0u, 1u, a >= b && !(${nanAny}))` : 'select(0u, 1u, a >= b)';
    case 'logicalAnd':
      return `select(0u, 1u, ${nz('a')} && ${nz('b')})`;
    case 'logicalOr':
      return `select(0u, 1u, ${nz('a')} || ${nz('b')})`;
    default:
      throw new Error(`webgpu: unknown binary op ${op}`);
  }
}

/** Shape of NumPy broadcasting (the op has validated it). */
function broadcastShape(shapes: readonly (readonly number[])[]): number[] {
  const n = Math.max(...shapes.map((s) => s.length));
  const out = new Array<number>(n).fill(1);
  for (const s of shapes)
    for (let i = 0; i < s.length; i++) {
      const d = s[i],
        k = i + n - s.length;
      if (d !== 1) out[k] = d;
    }
  return out;
}

/**
 * Plans a broadcast walk: collapsed shape, and per operand its index
 * expression ('idx' when it is laid out like the output, '0u' when it is a
 * single element, an offset variable otherwise) and the key letter.
 */
function planBroadcast(outShape: readonly number[], shapes: readonly (readonly number[])[], u: Uniforms) {
  const c = collapse(
    outShape,
    shapes.map((s) => broadcastStridesOf(s, outShape)),
  );
  const rank = c.shape.length;
  const contig = contiguousStrides(c.shape);
  const kinds = c.strides.map((s) => (s.every((v, d) => v === contig[d]) ? 'f' : s.every((v) => v === 0) ? 's' : 'g'));
  const general = kinds.some((k) => k === 'g');
  const shapeAt = general ? u.us(c.shape) : -1;
  const operands: { name: string; at: number }[] = [];
  const index = kinds.map((k, j) => {
    if (k === 'f') return 'idx';
    if (k === 's') return '0u';
    operands.push({ name: `off${j}`, at: u.us(c.strides[j]) });
    return `off${j}`;
  });
  const key = general ? `${kinds.join('')}${rank}` : kinds.join('');
  const code = general ? offsetsCode(rank, shapeAt, operands) : '';
  return { key, code, index };
}

function binaryKernel(op: string) {
  const cmp = COMPARISONS.has(op);
  return (inputs: readonly TensorInfo[], attrs: DTypeAttrs, be: WebGpuBackend): TensorInfo => {
    const [a, b] = inputs;
    const dtype = attrs?.dtype ?? a.dtype;
    const t = wtype(dtype, op),
      ta = wtype(a.dtype, op),
      tb = wtype(b.dtype, op);
    const outDtype: DType = cmp ? 'uint8' : dtype;
    const shape = broadcastShape([a.shape, b.shape]);
    const o = be.out(shape, outDtype);
    const n = o.data.size;
    const u = new Uniforms();
    const wg = be.wgSize;
    const [gx, gy] = be.grid(Math.ceil(n / wg));
    const nW = u.u(n),
      gW = u.u(gx);
    const plan = planBroadcast(shape, [a.shape, b.shape], u);
    be.dispatch({
      key: `binary:${op}:${a.dtype}:${b.dtype}:${dtype}:${plan.key}`,
      inputs: [a.dataId as GpuData, b.dataId as GpuData],
      outputs: [o.data],
      uniforms: u,
      workgroups: [n === 0 ? 0 : gx, gy],
      wgsl: () => `${F32_HELPERS}${BINARY_HELPERS}
${roDecl(0, 'A', ta)}${roDecl(1, 'B', tb)}${rwDecl(2, 'Y', cmp ? 'u32' : t)}${uniformDecl(3, u.vec4s)}
@compute @workgroup_size(${wg})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  ${linearIndex(wg, nW, gW)}
  ${plan.code}
  let a = ${convert(`A[${plan.index[0]}]`, a.dtype, dtype)};
  let b = ${convert(`B[${plan.index[1]}]`, b.dtype, dtype)};
  Y[idx] = ${binaryExpr(op, t)};
}`,
    });
    return o.info;
  };
}

const whereKernel: GpuKernel<'where'> = (inputs, attrs, be) => {
  const [c, a, b] = inputs;
  const dtype = attrs?.dtype ?? a.dtype;
  const t = wtype(dtype, 'where'),
    tc = wtype(c.dtype, 'where');
  const shape = broadcastShape([c.shape, a.shape, b.shape]);
  const o = be.out(shape, dtype);
  const n = o.data.size;
  const u = new Uniforms();
  const wg = be.wgSize;
  const [gx, gy] = be.grid(Math.ceil(n / wg));
  const nW = u.u(n),
    gW = u.u(gx);
  const plan = planBroadcast(shape, [c.shape, a.shape, b.shape], u);
  // NaN counts as true, -0 as false (the CPU tests `!== 0`).
  const cond = tc === 'f32' ? `is_nonzero_f(C[${plan.index[0]}])` : `C[${plan.index[0]}] != ${tc}(0)`;
  be.dispatch({
    key: `where:${c.dtype}:${a.dtype}:${b.dtype}:${dtype}:${plan.key}`,
    inputs: [c.dataId as GpuData, a.dataId as GpuData, b.dataId as GpuData],
    outputs: [o.data],
    uniforms: u,
    workgroups: [n === 0 ? 0 : gx, gy],
    wgsl: () => `${F32_HELPERS}
${roDecl(0, 'C', tc)}${roDecl(1, 'A', wtype(a.dtype))}${roDecl(2, 'B', wtype(b.dtype))}${rwDecl(3, 'Y', t)}${uniformDecl(4, u.vec4s)}
@compute @workgroup_size(${wg})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  ${linearIndex(wg, nW, gW)}
  ${plan.code}
  if (${cond}) { Y[idx] = ${convert(`A[${plan.index[1]}]`, a.dtype, dtype)}; }
  else { Y[idx] = ${convert(`B[${plan.index[2]}]`, b.dtype, dtype)}; }
}`,
  });
  return o.info;
};

export const elementwiseKernels = {
  neg: unaryKernel('neg'),
  exp: unaryKernel('exp'),
  log: unaryKernel('log'),
  sqrt: unaryKernel('sqrt'),
  abs: unaryKernel('abs'),
  sign: unaryKernel('sign'),
  relu: unaryKernel('relu'),
  sigmoid: unaryKernel('sigmoid'),
  tanh: unaryKernel('tanh'),
  leakyRelu: unaryKernel('leakyRelu'),
  leakyReluGrad: leakyReluGradKernel,
  clamp: unaryKernel('clamp'),
  floor: unaryKernel('floor'),
  cast: castKernel,
  add: binaryKernel('add'),
  sub: binaryKernel('sub'),
  mul: binaryKernel('mul'),
  div: binaryKernel('div'),
  pow: binaryKernel('pow'),
  maximum: binaryKernel('maximum'),
  minimum: binaryKernel('minimum'),
  equal: binaryKernel('equal'),
  notEqual: binaryKernel('notEqual'),
  less: binaryKernel('less'),
  lessEqual: binaryKernel('lessEqual'),
  greater: binaryKernel('greater'),
  greaterEqual: binaryKernel('greaterEqual'),
  logicalAnd: binaryKernel('logicalAnd'),
  logicalOr: binaryKernel('logicalOr'),
  where: whereKernel,
} satisfies Partial<GpuKernelTable>;
