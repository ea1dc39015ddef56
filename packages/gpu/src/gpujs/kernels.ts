/**
 * gpu.js kernels for every op that segmentation inference runs: conv3d and
 * transposed conv3d (conv3dGradInput), instance norm, the unary and binary
 * elementwise ops (broadcasting), sum / max / min, softmax / logSoftmax, the
 * CP reconstruction, slice, pad, concat, indexSelect and broadcastTo; and
 * leakyReluGrad, the one training op (a one-line kernel).
 *
 * Each kernel computes one output element per thread (`this.thread.x` over
 * the flattened output). Index arithmetic runs in float32 in GLSL, so
 * integer division is written `Math.floor((a + 0.5) / b)`, which is exact for
 * the integer operands below 2^23 that these shapes give. Kernel sources are
 * strings: gpu.js parses them, and a bundler's minifier must not rewrite them.
 * (Over 500 lines on purpose: the backend's whole kernel table, typed against
 * the op schema with `satisfies`, in one file as the compile-time checklist.)
 */
import {
  sizeOf,
  broadcastShapes,
  reducedShape,
  convOutputSize,
  type DType,
  type KernelTable,
  type TensorInfo,
  type TypedArray,
} from '@largo/core';
import type { GpuJsBackend, GpuJsData } from './backend.js';

type Inputs = readonly TensorInfo[];

const RANK = 6;

function vals(t: TensorInfo): TypedArray {
  return (t.dataId as GpuJsData).values;
}

/** Kernel arguments are float32 textures. */
function f32(t: TensorInfo | TypedArray): Float32Array {
  const v = ArrayBuffer.isView(t) ? t : vals(t);
  if (v instanceof Float32Array) return v.length ? v : new Float32Array(1);
  const out = Float32Array.from(v as ArrayLike<number>);
  return out.length ? out : new Float32Array(1);
}

function output(be: GpuJsBackend, shape: readonly number[], dtype: DType, values: Float32Array): TensorInfo {
  const id = be.alloc(dtype, sizeOf(shape));
  if (dtype === 'float32') id.values = values;
  else id.values.set(values.subarray(0, id.values.length));
  return { dataId: id, shape: [...shape], dtype };
}

/** Pads a shape (or strides) on the left to RANK entries. */
function pad6(a: readonly number[], fill: number): Float32Array {
  const out = new Float32Array(RANK).fill(fill);
  out.set(a, RANK - a.length);
  return out;
}

function stridesOf(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    s[d] = acc;
    acc *= shape[d]!;
  }
  return s;
}

/** Source text that splits `rem` into six digits of `sh` (innermost last) and accumulates `+= digit * st[d]` into each named offset. */
function digits(rem: string, sh: string, acc: [string, string][]): string {
  let s = `let rem = ${rem};\n`;
  for (let d = RANK - 1; d >= 0; d--) {
    s += `{ const q = Math.floor((rem + 0.5) / ${sh}[${d}]); const j = rem - q * ${sh}[${d}]; rem = q;\n`;
    for (const [v, st] of acc) s += `  ${v} += j * ${st}[${d}];\n`;
    s += '}\n';
  }
  return s;
}

// ---------------------------------------------------------------- elementwise

const UNARY_EXPR: Record<string, string> = {
  neg: '-v',
  exp: 'Math.exp(v)',
  log: 'Math.log(v)',
  sqrt: 'Math.sqrt(v)',
  abs: 'Math.abs(v)',
  sign: 'v > 0 ? 1 : (v < 0 ? -1 : 0)',
  relu: 'v > 0 ? v : 0',
  sigmoid: 'v >= 0 ? 1 / (1 + Math.exp(-v)) : Math.exp(v) / (1 + Math.exp(v))',
  tanh: 'Math.tanh(v)',
  leakyRelu: 'v > 0 ? v : p0 * v',
  clamp: 'v < p0 ? p0 : (v > p1 ? p1 : v)',
  floor: 'Math.floor(v)',
};

function unaryKernel(op: string) {
  const src = `function (x, p0, p1) { const v = x[this.thread.x]; return ${UNARY_EXPR[op]}; }`;
  return (inputs: Inputs, attrs: { alpha?: number; min?: number; max?: number }, be: GpuJsBackend): TensorInfo => {
    const x = inputs[0]!;
    const a = attrs ?? {};
    const p0 = op === 'leakyRelu' ? (a.alpha ?? 0.01) : op === 'clamp' ? (a.min ?? -3.4e38) : 0;
    const p1 = op === 'clamp' ? (a.max ?? 3.4e38) : 0;
    return output(be, x.shape, x.dtype, be.run(`unary.${op}`, src, sizeOf(x.shape), [f32(x), p0, p1]));
  };
}

/** leakyRelu's gradient: x > 0 ? dy : alpha·dy, x and dy of one shape (the one training op here: cheap, and every backend has it). */
const LEAKY_RELU_GRAD = `function (x, g, p0) { const v = x[this.thread.x]; const d = g[this.thread.x]; return v > 0 ? d : p0 * d; }`;
function leakyReluGradKernel(inputs: Inputs, attrs: { alpha: number }, be: GpuJsBackend): TensorInfo {
  const [x, dy] = inputs as [TensorInfo, TensorInfo];
  return output(
    be,
    dy.shape,
    dy.dtype,
    be.run('leakyReluGrad', LEAKY_RELU_GRAD, sizeOf(dy.shape), [f32(x), f32(dy), attrs.alpha]),
  );
}

const BINARY_EXPR: Record<string, string> = {
  add: 'a + b',
  sub: 'a - b',
  mul: 'a * b',
  div: 'a / b',
  pow: 'Math.pow(a, b)',
  maximum: 'a >= b ? a : b',
  minimum: 'a <= b ? a : b',
  equal: 'a == b ? 1 : 0',
  notEqual: 'a != b ? 1 : 0',
  less: 'a < b ? 1 : 0',
  lessEqual: 'a <= b ? 1 : 0',
  greater: 'a > b ? 1 : 0',
  greaterEqual: 'a >= b ? 1 : 0',
  logicalAnd: '(a != 0 && b != 0) ? 1 : 0',
  logicalOr: '(a != 0 || b != 0) ? 1 : 0',
};
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

/** Strides of `shape` inside the broadcast `out` shape (0 along broadcast axes), padded to RANK. */
function broadcastStrides(shape: readonly number[], out: readonly number[]): Float32Array {
  const st = stridesOf(shape);
  const full = out.map((_, i) => {
    const j = i - (out.length - shape.length);
    return j < 0 || shape[j] === 1 ? 0 : st[j]!;
  });
  return pad6(full, 0);
}

function binaryKernel(op: string) {
  const src = `function (x, y, sh, sa, sb) {
  let ia = 0; let ib = 0;
  ${digits('this.thread.x', 'sh', [
    ['ia', 'sa'],
    ['ib', 'sb'],
  ])}
  const a = x[ia]; const b = y[ib];
  return ${BINARY_EXPR[op]};
}`;
  return (inputs: Inputs, attrs: { dtype?: DType }, be: GpuJsBackend): TensorInfo => {
    const [a, b] = inputs as [TensorInfo, TensorInfo];
    const shape = broadcastShapes(op, a.shape, b.shape);
    const dtype: DType = COMPARISONS.has(op) ? 'uint8' : (attrs?.dtype ?? a.dtype);
    const res = be.run(`binary.${op}`, src, sizeOf(shape), [
      f32(a),
      f32(b),
      pad6(shape, 1),
      broadcastStrides(a.shape, shape),
      broadcastStrides(b.shape, shape),
    ]);
    if (dtype === 'int32') for (let i = 0; i < res.length; i++) res[i] = Math.trunc(res[i]!);
    return output(be, shape, dtype, res);
  };
}

// ---------------------------------------------------------------- layout

/** out[i] = x[Σ (digit_d + off_d)·st_d] when every 0 ≤ digit_d + off_d < lim_d, else `fill`. */
const GATHER = `function (x, sh, st, off, lim, fill) {
  let src = 0; let ok = 1;
  let rem = this.thread.x;
  for (let d = 5; d >= 0; d--) {
    const q = Math.floor((rem + 0.5) / sh[d]);
    const j = rem - q * sh[d] + off[d];
    rem = q;
    if (j < 0 || j >= lim[d]) { ok = 0; }
    src += j * st[d];
  }
  if (ok == 0) { return fill; }
  return x[src];
}`;

function gather(
  be: GpuJsBackend,
  x: TensorInfo,
  outShape: readonly number[],
  off: readonly number[],
  fill: number,
): TensorInfo {
  const st = pad6(stridesOf(x.shape), 0);
  const res = be.run('gather', GATHER, sizeOf(outShape), [
    f32(x),
    pad6(outShape, 1),
    st,
    pad6(off, 0),
    pad6(x.shape, 1),
    fill,
  ]);
  return output(be, outShape, x.dtype, res);
}

const sliceKernel = (
  inputs: Inputs,
  attrs: { begin: readonly number[]; size: readonly number[] },
  be: GpuJsBackend,
): TensorInfo => gather(be, inputs[0]!, attrs.size, attrs.begin, 0);

const padKernel = (
  inputs: Inputs,
  attrs: { pads: readonly (readonly [number, number])[]; value: number },
  be: GpuJsBackend,
): TensorInfo => {
  const x = inputs[0]!;
  const shape = x.shape.map((d, i) => d + attrs.pads[i]![0] + attrs.pads[i]![1]);
  return gather(
    be,
    x,
    shape,
    attrs.pads.map((p) => -p[0]),
    attrs.value,
  );
};

const broadcastToKernel = (inputs: Inputs, attrs: { shape: readonly number[] }, be: GpuJsBackend): TensorInfo => {
  const x = inputs[0]!;
  const shape = broadcastShapes('broadcastTo', x.shape, attrs.shape);
  if (shape.length !== attrs.shape.length || shape.some((d, i) => d !== attrs.shape[i])) {
    throw new Error(`broadcastTo: cannot broadcast [${x.shape.join(', ')}] to [${attrs.shape.join(', ')}]`);
  }
  const src = `function (x, sh, sa) { let ia = 0; ${digits('this.thread.x', 'sh', [['ia', 'sa']])} return x[ia]; }`;
  return output(
    be,
    shape,
    x.dtype,
    be.run('broadcastTo', src, sizeOf(shape), [f32(x), pad6(shape, 1), broadcastStrides(x.shape, shape)]),
  );
};

/** Two inputs joined along an axis: [outer, nA + nB, inner]. */
const CONCAT2 = `function (a, b, nA, nB, inner) {
  const i = this.thread.x;
  const n = nA + nB;
  const o = Math.floor((i + 0.5) / (n * inner));
  const rest = i - o * n * inner;
  const j = Math.floor((rest + 0.5) / inner);
  const r = rest - j * inner;
  if (j < nA) { return a[(o * nA + j) * inner + r]; }
  return b[(o * nB + j - nA) * inner + r];
}`;

const concatKernel = (inputs: Inputs, attrs: { axis: number }, be: GpuJsBackend): TensorInfo => {
  const ax = attrs.axis;
  const inner = sizeOf(inputs[0]!.shape.slice(ax + 1));
  // joined pairwise, left to right
  let acc = inputs[0]!;
  let accValues = f32(acc);
  for (let t = 1; t < inputs.length; t++) {
    const b = inputs[t]!;
    const shape = [...acc.shape];
    shape[ax] = acc.shape[ax]! + b.shape[ax]!;
    accValues = be.run('concat2', CONCAT2, sizeOf(shape), [accValues, f32(b), acc.shape[ax]!, b.shape[ax]!, inner]);
    acc = { dataId: acc.dataId, shape, dtype: acc.dtype };
  }
  return output(be, acc.shape, inputs[0]!.dtype, inputs.length === 1 ? accValues.slice() : accValues);
};

const indexSelectKernel = (inputs: Inputs, attrs: { axis: number }, be: GpuJsBackend): TensorInfo => {
  const [x, ix] = inputs as [TensorInfo, TensorInfo];
  const ax = attrs.axis;
  const k = vals(ix).length;
  const shape = [...x.shape];
  shape[ax] = k;
  const src = `function (x, idx, n, k, inner) {
  const i = this.thread.x;
  const o = Math.floor((i + 0.5) / (k * inner));
  const rest = i - o * k * inner;
  const j = Math.floor((rest + 0.5) / inner);
  const r = rest - j * inner;
  return x[(o * n + idx[j]) * inner + r];
}`;
  return output(
    be,
    shape,
    x.dtype,
    be.run('indexSelect', src, sizeOf(shape), [f32(x), f32(ix), x.shape[ax]!, k, sizeOf(x.shape.slice(ax + 1))]),
  );
};

// ---------------------------------------------------------------- reductions

interface ReduceAttrs {
  axes: readonly number[];
  keepDims: boolean;
}

function reduceSource(kind: 'sum' | 'max' | 'min'): string {
  const init = kind === 'sum' ? '0' : 'x[base]';
  const step =
    kind === 'sum' ? 'acc += v;' : kind === 'max' ? 'if (v > acc) { acc = v; }' : 'if (v < acc) { acc = v; }';
  return `function (x, ksh, kst, rsh, rst, count) {
  let base = 0;
  ${digits('this.thread.x', 'ksh', [['base', 'kst']])}
  let acc = ${init};
  for (let r = 0; r < count; r++) {
    let off = base;
    let rr = r;
    for (let d = 5; d >= 0; d--) {
      const q = Math.floor((rr + 0.5) / rsh[d]);
      off += (rr - q * rsh[d]) * rst[d];
      rr = q;
    }
    const v = x[off];
    ${step}
  }
  return acc;
}`;
}

function reduceKernel(kind: 'sum' | 'max' | 'min') {
  const src = reduceSource(kind);
  return (inputs: Inputs, attrs: ReduceAttrs, be: GpuJsBackend): TensorInfo => {
    const x = inputs[0]!;
    const shape = reducedShape(x.shape, attrs.axes, attrs.keepDims);
    const dtype: DType = x.dtype === 'uint8' && kind === 'sum' ? 'int32' : x.dtype;
    const st = stridesOf(x.shape);
    const kept = x.shape.map((_, i) => i).filter((i) => !attrs.axes.includes(i));
    const count = sizeOf(attrs.axes.map((a) => x.shape[a]!));
    const res = be.run(`reduce.${kind}`, src, sizeOf(shape), [
      f32(x),
      pad6(
        kept.map((i) => x.shape[i]!),
        1,
      ),
      pad6(
        kept.map((i) => st[i]!),
        0,
      ),
      pad6(
        attrs.axes.map((a) => x.shape[a]!),
        1,
      ),
      pad6(
        attrs.axes.map((a) => st[a]!),
        0,
      ),
      count,
    ]);
    return output(be, shape, dtype, res);
  };
}

/** softmax / logSoftmax along one axis: [outer, n, inner], max-shifted. */
function softmaxSource(log: boolean): string {
  return `function (x, n, inner) {
  const i = this.thread.x;
  const o = Math.floor((i + 0.5) / (n * inner));
  const rest = i - o * n * inner;
  const j = Math.floor((rest + 0.5) / inner);
  const r = rest - j * inner;
  const base = o * n * inner + r;
  let mx = x[base];
  // loop variables need distinct names: gpu.js declares them at function scope in GLSL
  for (let t1 = 1; t1 < n; t1++) { const v = x[base + t1 * inner]; if (v > mx) { mx = v; } }
  let s = 0;
  for (let t2 = 0; t2 < n; t2++) { s += Math.exp(x[base + t2 * inner] - mx); }
  ${log ? 'return x[i] - mx - Math.log(s);' : 'return Math.exp(x[i] - mx) / s;'}
}`;
}

function softmaxKernel(log: boolean) {
  const src = softmaxSource(log);
  return (inputs: Inputs, attrs: { axis: number }, be: GpuJsBackend): TensorInfo => {
    const x = inputs[0]!;
    const n = x.shape[attrs.axis]!,
      inner = sizeOf(x.shape.slice(attrs.axis + 1));
    return output(
      be,
      x.shape,
      x.dtype,
      be.run(log ? 'logSoftmax' : 'softmax', src, sizeOf(x.shape), [f32(x), n, inner]),
    );
  };
}

// ---------------------------------------------------------------- instance norm

const IN_MEAN = `function (x, S) {
  const base = this.thread.x * S;
  let s = 0;
  for (let j = 0; j < S; j++) { s += x[base + j]; }
  return s / S;
}`;
/** Two-pass variance with the compensating term, as the CPU kernel: Σd² − (Σd)²/S. */
const IN_INVSTD = `function (x, mean, S, eps) {
  const base = this.thread.x * S;
  const m = mean[this.thread.x];
  let sd = 0; let sq = 0;
  for (let j = 0; j < S; j++) { const d = x[base + j] - m; sd += d; sq += d * d; }
  let v = (sq - (sd * sd) / S) / S;
  if (v < 0) { v = 0; }
  return 1 / Math.sqrt(v + eps);
}`;
const IN_APPLY = `function (x, mean, invstd, w, b, S, C, hasW, hasB) {
  const i = this.thread.x;
  const nc = Math.floor((i + 0.5) / S);
  const c = nc - Math.floor((nc + 0.5) / C) * C;
  let scale = invstd[nc];
  if (hasW > 0) { scale = scale * w[c]; }
  let shift = 0;
  if (hasB > 0) { shift = b[c]; }
  return (x[i] - mean[nc]) * scale + shift;
}`;

const instanceNormKernel = (
  inputs: Inputs,
  attrs: { eps: number; hasWeight: boolean; hasBias: boolean },
  be: GpuJsBackend,
): TensorInfo[] => {
  const x = inputs[0]!;
  let k = 1;
  const w = attrs.hasWeight ? f32(inputs[k++]!) : new Float32Array(1);
  const b = attrs.hasBias ? f32(inputs[k++]!) : new Float32Array(1);
  const N = x.shape[0]!,
    C = x.shape[1]!,
    S = sizeOf(x.shape.slice(2));
  const xv = f32(x);
  const mean = be.run('in.mean', IN_MEAN, N * C, [xv, S]);
  const invstd = be.run('in.invstd', IN_INVSTD, N * C, [xv, mean, S, attrs.eps]);
  const y = be.run('in.apply', IN_APPLY, N * C * S, [
    xv,
    mean,
    invstd,
    w,
    b,
    S,
    C,
    attrs.hasWeight ? 1 : 0,
    attrs.hasBias ? 1 : 0,
  ]);
  return [
    output(be, x.shape, x.dtype, y),
    output(be, [N, C], x.dtype, mean.slice()),
    output(be, [N, C], x.dtype, invstd.slice()),
  ];
};

// ---------------------------------------------------------------- convolution

interface ConvAttrs {
  stride: readonly number[];
  padding: readonly number[];
  dilation: readonly number[];
}

/** Direct convolution: one output voxel per thread, loops over input channels and the kernel window. */
const CONV3D = `function (x, w, bias, g, hasBias) {
  const C = g[0]; const D = g[1]; const H = g[2]; const W = g[3];
  const O = g[4]; const KD = g[5]; const KH = g[6]; const KW = g[7];
  const OD = g[8]; const OH = g[9]; const OW = g[10];
  let i = this.thread.x;
  let q = Math.floor((i + 0.5) / OW); const ox = i - q * OW; i = q;
  q = Math.floor((i + 0.5) / OH); const oy = i - q * OH; i = q;
  q = Math.floor((i + 0.5) / OD); const oz = i - q * OD; i = q;
  q = Math.floor((i + 0.5) / O); const o = i - q * O; const n = q;
  let acc = 0;
  if (hasBias > 0) { acc = bias[o]; }
  for (let c = 0; c < C; c++) {
    for (let a = 0; a < KD; a++) {
      const iz = oz * g[11] - g[14] + a * g[17];
      if (iz >= 0 && iz < D) {
        for (let b = 0; b < KH; b++) {
          const iy = oy * g[12] - g[15] + b * g[18];
          if (iy >= 0 && iy < H) {
            for (let e = 0; e < KW; e++) {
              const ix = ox * g[13] - g[16] + e * g[19];
              if (ix >= 0 && ix < W) {
                acc += x[(((n * C + c) * D + iz) * H + iy) * W + ix] * w[(((o * C + c) * KD + a) * KH + b) * KW + e];
              }
            }
          }
        }
      }
    }
  }
  return acc;
}`;

/** Transposed convolution (the adjoint of CONV3D in x): one input voxel per thread, plus an optional bias per channel. */
const CONV3D_T = `function (dy, w, bias, g, hasBias) {
  const C = g[0]; const D = g[1]; const H = g[2]; const W = g[3];
  const O = g[4]; const KD = g[5]; const KH = g[6]; const KW = g[7];
  const OD = g[8]; const OH = g[9]; const OW = g[10];
  let i = this.thread.x;
  let q = Math.floor((i + 0.5) / W); const ix = i - q * W; i = q;
  q = Math.floor((i + 0.5) / H); const iy = i - q * H; i = q;
  q = Math.floor((i + 0.5) / D); const iz = i - q * D; i = q;
  q = Math.floor((i + 0.5) / C); const c = i - q * C; const n = q;
  let acc = 0;
  if (hasBias > 0) { acc = bias[c]; }
  for (let o = 0; o < O; o++) {
    for (let a = 0; a < KD; a++) {
      const tz = iz + g[14] - a * g[17];
      const oz = Math.floor((tz + 0.5) / g[11]);
      if (tz >= 0 && oz * g[11] == tz && oz < OD) {
        for (let b = 0; b < KH; b++) {
          const ty = iy + g[15] - b * g[18];
          const oy = Math.floor((ty + 0.5) / g[12]);
          if (ty >= 0 && oy * g[12] == ty && oy < OH) {
            for (let e = 0; e < KW; e++) {
              const tx = ix + g[16] - e * g[19];
              const ox = Math.floor((tx + 0.5) / g[13]);
              if (tx >= 0 && ox * g[13] == tx && ox < OW) {
                acc += dy[(((n * O + o) * OD + oz) * OH + oy) * OW + ox] * w[(((o * C + c) * KD + a) * KH + b) * KW + e];
              }
            }
          }
        }
      }
    }
  }
  return acc;
}`;

/** [C, D, H, W, O, KD, KH, KW, OD, OH, OW, stride×3, padding×3, dilation×3] */
function convGeometry(
  xShape: readonly number[],
  wShape: readonly number[],
  out: readonly number[],
  a: ConvAttrs,
): Float32Array {
  return Float32Array.from([
    xShape[1]!,
    xShape[2]!,
    xShape[3]!,
    xShape[4]!,
    wShape[0]!,
    wShape[2]!,
    wShape[3]!,
    wShape[4]!,
    out[0]!,
    out[1]!,
    out[2]!,
    ...a.stride,
    ...a.padding,
    ...a.dilation,
  ]);
}

const conv3dKernel = (inputs: Inputs, attrs: ConvAttrs, be: GpuJsBackend): TensorInfo => {
  const [x, w, b] = inputs as [TensorInfo, TensorInfo, TensorInfo?];
  const sp = [2, 3, 4].map((i) =>
    convOutputSize(x.shape[i]!, w.shape[i]!, attrs.stride[i - 2]!, attrs.padding[i - 2]!, attrs.dilation[i - 2]!),
  );
  const shape = [x.shape[0]!, w.shape[0]!, ...sp];
  const res = be.run('conv3d', CONV3D, sizeOf(shape), [
    f32(x),
    f32(w),
    b ? f32(b) : new Float32Array(1),
    convGeometry(x.shape, w.shape, sp, attrs),
    b ? 1 : 0,
  ]);
  return output(be, shape, x.dtype, res);
};

const conv3dGradInputKernel = (
  inputs: Inputs,
  attrs: ConvAttrs & { inputShape: readonly number[] },
  be: GpuJsBackend,
): TensorInfo => {
  const [dy, w, b] = inputs as [TensorInfo, TensorInfo, TensorInfo?];
  const res = be.run('conv3dT', CONV3D_T, sizeOf(attrs.inputShape), [
    f32(dy),
    f32(w),
    b ? f32(b) : new Float32Array(1),
    convGeometry(attrs.inputShape, w.shape, dy.shape.slice(2), attrs),
    b ? 1 : 0,
  ]);
  return output(be, attrs.inputShape, dy.dtype, res);
};

// ---------------------------------------------------------------- CP reconstruction

/** W[o, i, s] = Σ_r weights[r]·aOut[o, r]·aIn[i, r]·aKernel[s, r]. */
const CP = `function (wt, ao, ai, ak, R, I, S) {
  const t = this.thread.x;
  const oi = Math.floor((t + 0.5) / S);
  const s = t - oi * S;
  const o = Math.floor((oi + 0.5) / I);
  const i = oi - o * I;
  let acc = 0;
  for (let r = 0; r < R; r++) { acc += wt[r] * ao[o * R + r] * ai[i * R + r] * ak[s * R + r]; }
  return acc;
}`;

const cpReconstructKernel = (inputs: Inputs, _attrs: unknown, be: GpuJsBackend): TensorInfo => {
  const [wt, ao, ai, ak] = inputs as [TensorInfo, TensorInfo, TensorInfo, TensorInfo];
  const R = wt.shape[0]!,
    O = ao.shape[0]!,
    I = ai.shape[0]!,
    S = ak.shape[0]!;
  return output(
    be,
    [O, I, S],
    wt.dtype,
    be.run('cpReconstruct', CP, O * I * S, [f32(wt), f32(ao), f32(ai), f32(ak), R, I, S]),
  );
};

/** The kernel table (the inference set, and leakyReluGrad; the other training-only ops are not here). */
export const gpuJsKernels = {
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
  slice: sliceKernel,
  pad: padKernel,
  broadcastTo: broadcastToKernel,
  concat: concatKernel,
  indexSelect: indexSelectKernel,
  sum: reduceKernel('sum'),
  max: reduceKernel('max'),
  min: reduceKernel('min'),
  softmax: softmaxKernel(false),
  logSoftmax: softmaxKernel(true),
  instanceNorm: instanceNormKernel,
  conv3d: conv3dKernel,
  conv3dGradInput: conv3dGradInputKernel,
  cpReconstruct: cpReconstructKernel,
} satisfies Partial<KernelTable<GpuJsBackend>>;

/** The ops this backend implements. */
export const GPUJS_OPS: readonly string[] = Object.keys(gpuJsKernels);
