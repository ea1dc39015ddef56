import { registerKernel, type TensorInfo, sizeOf } from '@largo/core';
import type { GpuData, WebGpuBackend } from '../backend.js';
import { uw, uwf, wtype, type Uniforms } from '../wgsl.js';
import { gemm } from './igemm.js';
import { launch1d, launchGroups, rowChunks, treeReduce, type Buf } from './launch.js';

/*
 * WebGPU kernels of the network ops, drop-in replacements of the CPU
 * kernels of packages/core/src/cpu/nn.ts (same op names, inputs, attrs and
 * outputs). Accumulation is f32 (the CPU uses doubles), with tree
 * reductions in workgroup memory, so errors grow with log(length).
 *
 *  - softmax / logSoftmax: a workgroup per row (shared-memory max and sum)
 *    when the axis is innermost and long, else a thread per (outer, inner)
 *    position walking the axis (coalesced along inner: the NCDHW channel
 *    softmax). A NaN in a row, or an infinite row maximum, makes the row NaN
 *    (what the CPU's arithmetic gives).
 *  - instanceNorm: two passes over each (n, c) row, cut into chunks (a
 *    workgroup each) when rows are long and few: the mean hi from chunk sums,
 *    then Σd and Σd² about hi (the corrected two-pass algorithm, never
 *    E[x²] − E[x]²); lo = Σd/S refines the mean, and y = ((x − hi) − lo)·…,
 *    so that x − mean keeps full precision even for large offsets.
 *  - instanceNormGrad: chunk sums of dy, dy·(x − μ₀), x − μ₀ (μ₀ the saved
 *    mean, refined as on the CPU), a per-channel pass for the row constants
 *    and dweight/dbias (summed over n in order), an elementwise pass for dx.
 *  - crossEntropy / bceWithLogits / softDiceLoss (+Grad): per-element terms,
 *    per-workgroup partial sums, one final workgroup (deterministic order).
 *    A label outside [0, C) that is not ignoreIndex cannot throw from the
 *    GPU: it makes the loss (and its gradient's column) NaN.
 *  - cpReconstruct (+Grad): GEMM-shaped contractions on the tiled
 *    implicit-GEMM generator; the small factors (weights, aIn, aKernel) are
 *    packed into one buffer by buffer copies so that no dispatch binds more
 *    than 4 storage buffers.
 */

function checkF32(op: string, ...ts: TensorInfo[]): void {
  for (const t of ts) if (t.dtype !== 'float32') throw new Error(`${op}: the webgpu kernel takes float32 tensors, got ${t.dtype}`);
}

const gd = (t: TensorInfo) => t.dataId as GpuData;

/** Packs the float32 tensors into one new buffer (buffer copies); returns it and each one's offset. */
function pack(be: WebGpuBackend, parts: (TensorInfo | null | undefined)[]): { buf: GpuData; at: number[] } {
  const at: number[] = [];
  let n = 0;
  for (const p of parts) { at.push(n); n += p ? sizeOf(p.shape) : 0; }
  const buf = be.alloc('float32', Math.max(n, 1));
  parts.forEach((p, i) => { if (p) be.copyRange(gd(p), 0, buf, at[i], sizeOf(p.shape)); });
  return { buf, at };
}

// ---------------------------------------------------------------------------
// softmax / logSoftmax

function softmaxKernel(logOut: boolean) {
  const op = logOut ? 'logSoftmax' : 'softmax';
  return (inputs: readonly TensorInfo[], attrs: { axis: number }, backend: unknown): TensorInfo => {
    const be = backend as WebGpuBackend;
    const x = inputs[0];
    checkF32(op, x);
    const ax = attrs.axis;
    const outer = sizeOf(x.shape.slice(0, ax)), n = x.shape[ax], inner = sizeOf(x.shape.slice(ax + 1));
    const o = be.out(x.shape, 'float32');
    if (o.data.size === 0) return o.info;
    const write = (v: string, mx: string, tot: string, bad: string) => logOut
      ? `if (${bad}) { Y[q] = f32_nan(); } else if (is_inf(${v})) { Y[q] = ${v}; } else { Y[q] = ${v} - (${mx} + log(${tot})); }`
      : `if (${bad}) { Y[q] = f32_nan(); } else { Y[q] = exp_s(${v} - ${mx}) * (1.0f / ${tot}); }`;
    let nW = 0, innerW = 0;
    const words = (u: Uniforms) => { nW = u.u(n); innerW = u.u(inner); };
    const io: Pick<Buf, 'name' | 'data'>[][] = [[{ name: 'X', data: gd(x) }], [{ name: 'Y', data: o.data }]];
    if (inner === 1 && n >= 64) {
      launchGroups(be, outer, {
        key: `${op}:row`, inputs: io[0], outputs: io[1], words,
        helpers: 'var<workgroup> sm: array<f32, WG>;\nvar<workgroup> sb: array<u32, WG>;',
        body: () => `let n = ${uw(nW)};
  let base = grp * n;
  var m = -f32_inf(); var bad = 0u;
  for (var j = lid; j < n; j = j + WG) { let v = X[base + j]; if (is_nan(v)) { bad = 1u; } else if (v > m) { m = v; } }
  sm[lid] = m; sb[lid] = bad;
  workgroupBarrier();
  for (var hs = WG / 2u; hs > 0u; hs = hs >> 1u) {
    if (lid < hs) { sm[lid] = max(sm[lid], sm[lid + hs]); sb[lid] = sb[lid] | sb[lid + hs]; }
    workgroupBarrier();
  }
  let mx = sm[0];
  let isBad = sb[0] != 0u || is_inf(mx);
  workgroupBarrier();
  var s = 0.0f;
  if (!isBad) { for (var j = lid; j < n; j = j + WG) { s = s + exp_s(X[base + j] - mx); } }
  sm[lid] = s;
  ${treeReduce('sm', (a, b) => `${a} + ${b}`)}
  let tot = sm[0];
  for (var j = lid; j < n; j = j + WG) { let q = base + j; let v = X[q]; ${write('v', 'mx', 'tot', 'isBad')} }`,
      });
      return o.info;
    }
    launch1d(be, outer * inner, {
      key: `${op}:lane`, inputs: io[0], outputs: io[1], words,
      body: () => `let n = ${uw(nW)}; let inner = ${uw(innerW)};
  let base = (idx / inner) * n * inner + idx % inner;
  var m = -f32_inf(); var bad = false;
  for (var j = 0u; j < n; j = j + 1u) { let v = X[base + j * inner]; if (is_nan(v)) { bad = true; } else if (v > m) { m = v; } }
  bad = bad || is_inf(m);
  var tot = 0.0f;
  if (!bad) { for (var j = 0u; j < n; j = j + 1u) { tot = tot + exp_s(X[base + j * inner] - m); } }
  for (var j = 0u; j < n; j = j + 1u) { let q = base + j * inner; let v = X[q]; ${write('v', 'm', 'tot', 'bad')} }`,
    });
    return o.info;
  };
}
registerKernel('softmax', 'webgpu', softmaxKernel(false));
registerKernel('logSoftmax', 'webgpu', softmaxKernel(true));

// ---------------------------------------------------------------------------
// instance norm

const CLAMP0 = 'fn clamp0(v: f32) -> f32 { if (is_nan(v)) { return v; } return max(v, 0.0f); }';

registerKernel<{ eps: number; hasWeight: boolean; hasBias: boolean }>('instanceNorm', 'webgpu', (inputs, attrs, backend) => {
  const be = backend as WebGpuBackend;
  const x = inputs[0];
  let k = 1;
  const w = attrs.hasWeight ? inputs[k++] : null;
  const b = attrs.hasBias ? inputs[k++] : null;
  checkF32('instanceNorm', x, ...(w ? [w] : []), ...(b ? [b] : []));
  const N = x.shape[0], C = x.shape[1], S = sizeOf(x.shape.slice(2)), R = N * C;
  const y = be.out(x.shape, 'float32'), mo = be.out([N, C], 'float32'), io = be.out([N, C], 'float32');
  if (R === 0 || S === 0) return [y.info, mo.info, io.info];
  let chunks = rowChunks(R, S);
  const L = Math.ceil(S / chunks);
  chunks = Math.ceil(S / L);
  const partial = be.alloc('float32', R * chunks * 2);
  // stats = [saved mean | invstd | hi | lo], mean = hi + lo
  const stats = be.alloc('float32', 4 * R);
  const wb = w && b ? pack(be, [w, b]).buf : null;
  try {
    let W: Record<string, string> = {};
    const words = (u: Uniforms) => {
      W = {
        S: uw(u.u(S)), chunks: uw(u.u(chunks)), L: uw(u.u(L)), R: uw(u.u(R)), C: uw(u.u(C)), eps: uwf(u.f(attrs.eps)),
        hw: uw(u.u(w ? 1 : 0)), hb: uw(u.u(b ? 1 : 0)), bAt: uw(u.u(w && b ? C : 0)),
      };
    };
    // Pass 1: the mean (hi) from chunk sums added in order.
    launchGroups(be, R * chunks, {
      key: 'instanceNorm:sum', inputs: [{ name: 'X', data: gd(x) }], outputs: [{ name: 'P', data: partial }], words,
      helpers: 'var<workgroup> sa: array<f32, WG>;',
      body: () => `let row = grp / ${W.chunks}; let k = grp % ${W.chunks};
  let j0 = k * ${W.L}; let j1 = min(${W.S}, j0 + ${W.L}); let base = row * ${W.S};
  var s = 0.0f;
  for (var j = j0 + lid; j < j1; j = j + WG) { s = s + X[base + j]; }
  sa[lid] = s;
  ${treeReduce('sa', (p, q) => `${p} + ${q}`)}
  if (lid == 0u) { P[grp] = sa[0]; }`,
    });
    launch1d(be, R, {
      key: 'instanceNorm:mean', inputs: [{ name: 'P', data: partial }], outputs: [{ name: 'ST', data: stats }], words,
      body: () => `var s = 0.0f;
  for (var k = 0u; k < ${W.chunks}; k = k + 1u) { s = s + P[idx * ${W.chunks} + k]; }
  ST[2u * ${W.R} + idx] = s / f32(${W.S});`,
    });
    // Pass 2: Σd and Σd² about hi (corrected two-pass); lo = Σd/S refines the mean, so that x − mean keeps full precision.
    launchGroups(be, R * chunks, {
      key: 'instanceNorm:dev', inputs: [{ name: 'X', data: gd(x) }, { name: 'ST', data: stats }], outputs: [{ name: 'P', data: partial }], words,
      helpers: 'var<workgroup> sv: array<vec2<f32>, WG>;',
      body: () => `let row = grp / ${W.chunks}; let k = grp % ${W.chunks};
  let j0 = k * ${W.L}; let j1 = min(${W.S}, j0 + ${W.L}); let base = row * ${W.S};
  let hi = ST[2u * ${W.R} + row];
  var q = vec2<f32>(0.0f, 0.0f);
  for (var j = j0 + lid; j < j1; j = j + WG) { let d = X[base + j] - hi; q = q + vec2<f32>(d, d * d); }
  sv[lid] = q;
  ${treeReduce('sv', (p, r) => `${p} + ${r}`)}
  if (lid == 0u) { P[grp * 2u] = sv[0].x; P[grp * 2u + 1u] = sv[0].y; }`,
    });
    launch1d(be, R, {
      key: 'instanceNorm:var', inputs: [{ name: 'P', data: partial }], outputs: [{ name: 'ST', data: stats }], words, helpers: CLAMP0,
      body: () => `var sd = 0.0f; var sq = 0.0f;
  for (var k = 0u; k < ${W.chunks}; k = k + 1u) { sd = sd + P[(idx * ${W.chunks} + k) * 2u]; sq = sq + P[(idx * ${W.chunks} + k) * 2u + 1u]; }
  let S = f32(${W.S});
  let hi = ST[2u * ${W.R} + idx];
  let lo = sd / S;
  let variance = clamp0((sq - sd * sd / S) / S);
  ST[idx] = hi + lo;
  ST[${W.R} + idx] = 1.0f / sqrt(variance + ${W.eps});
  ST[3u * ${W.R} + idx] = lo;`,
    });
    // Weight and bias are flags in the uniforms (one pipeline); without either, x stands in as an unread binding.
    const affine = wb ?? (w ? gd(w) : b ? gd(b) : gd(x));
    launch1d(be, R * S, {
      key: 'instanceNorm:apply',
      inputs: [{ name: 'X', data: gd(x) }, { name: 'ST', data: stats }, { name: 'WB', data: affine }], outputs: [{ name: 'Y', data: y.data }], words,
      body: () => `let row = idx / ${W.S}; let c = row % ${W.C};
  var scale = ST[${W.R} + row];
  if (${W.hw} != 0u) { scale = scale * WB[c]; }
  var shift = 0.0f;
  if (${W.hb} != 0u) { shift = WB[${W.bAt} + c]; }
  Y[idx] = ((X[idx] - ST[2u * ${W.R} + row]) - ST[3u * ${W.R} + row]) * scale + shift;`,
    });
    be.copyRange(stats, 0, mo.data, 0, R);
    be.copyRange(stats, R, io.data, 0, R);
  } finally {
    be.free(partial); be.free(stats);
    if (wb) be.free(wb);
  }
  return [y.info, mo.info, io.info];
});

registerKernel<{ hasWeight: boolean; hasStatGrads?: boolean }>('instanceNormGrad', 'webgpu', (inputs, attrs, backend) => {
  const be = backend as WebGpuBackend;
  const [dy, x, mean, invstd] = inputs;
  let k = 4;
  const w = attrs.hasWeight ? inputs[k++] : null;
  const gm = attrs.hasStatGrads ? inputs[k++] : null;
  const gi = attrs.hasStatGrads ? inputs[k++] : null;
  checkF32('instanceNormGrad', ...inputs);
  const N = x.shape[0], C = x.shape[1], S = sizeOf(x.shape.slice(2)), R = N * C;
  const dxo = be.out(x.shape, 'float32'), dwo = be.out([C], 'float32'), dbo = be.out([C], 'float32');
  if (C === 0) return [dxo.info, dwo.info, dbo.info];
  let chunks = rowChunks(R, S);
  const L = Math.max(1, Math.ceil(S / chunks));
  chunks = Math.max(1, Math.ceil(S / L));
  // aux = [mean R | invstd R | dmean R | dinvstd R | weight C]
  const aux = pack(be, [mean, invstd, gm, gi, w]);
  const partial = be.alloc('float32', Math.max(1, R * chunks * 3));
  const rowc = be.alloc('float32', Math.max(1, R * 4));
  const dwdb = be.alloc('float32', 2 * C);
  try {
    let W: Record<string, string> = {};
    const words = (u: Uniforms) => {
      W = {
        S: uw(u.u(S)), chunks: uw(u.u(chunks)), L: uw(u.u(L)), R: uw(u.u(R)), C: uw(u.u(C)), N: uw(u.u(N)),
        gmAt: uw(u.u(aux.at[2])), giAt: uw(u.u(aux.at[3])), wAt: uw(u.u(aux.at[4])), hw: uw(u.u(w ? 1 : 0)), hs: uw(u.u(gm ? 1 : 0)),
      };
    };
    if (R > 0 && S > 0) {
      launchGroups(be, R * chunks, {
        key: 'instanceNormGrad:chunk',
        inputs: [{ name: 'DY', data: gd(dy) }, { name: 'X', data: gd(x) }, { name: 'AUX', data: aux.buf }],
        outputs: [{ name: 'P', data: partial }], words,
        helpers: 'var<workgroup> sv: array<vec4<f32>, WG>;',
        body: () => `let row = grp / ${W.chunks}; let k = grp % ${W.chunks};
  let j0 = k * ${W.L}; let j1 = min(${W.S}, j0 + ${W.L}); let base = row * ${W.S};
  let mu0 = AUX[row];
  var a = vec4<f32>(0.0f, 0.0f, 0.0f, 0.0f);
  for (var j = j0 + lid; j < j1; j = j + WG) { let g = DY[base + j]; let d = X[base + j] - mu0; a = a + vec4<f32>(g, g * d, d, 0.0f); }
  sv[lid] = a;
  ${treeReduce('sv', (p, q) => `${p} + ${q}`)}
  if (lid == 0u) { P[grp * 3u] = sv[0].x; P[grp * 3u + 1u] = sv[0].y; P[grp * 3u + 2u] = sv[0].z; }`,
      });
    }
    launch1d(be, C, {
      key: 'instanceNormGrad:rows',
      inputs: [{ name: 'P', data: partial }, { name: 'AUX', data: aux.buf }],
      outputs: [{ name: 'RC', data: rowc }, { name: 'DWDB', data: dwdb }], words,
      body: () => `let c = idx; let S = f32(${W.S});
  var dw = 0.0f; var db = 0.0f;
  for (var n = 0u; n < ${W.N}; n = n + 1u) {
    let row = n * ${W.C} + c;
    var sdy = 0.0f; var sdyd = 0.0f; var sd = 0.0f;
    for (var k = 0u; k < ${W.chunks}; k = k + 1u) {
      let at = (row * ${W.chunks} + k) * 3u;
      sdy = sdy + P[at]; sdyd = sdyd + P[at + 1u]; sd = sd + P[at + 2u];
    }
    let mu0 = AUX[row]; let is = AUX[${W.R} + row];
    let delta = sd / S;
    let sdyx = (sdyd - delta * sdy) * is;
    db = db + sdy; dw = dw + sdyx;
    var scale = is;
    if (${W.hw} != 0u) { scale = is * AUX[${W.wAt} + c]; }
    var A = (scale * sdy) / S; var B = (scale * sdyx * is) / S;
    if (${W.hs} != 0u) { A = A - AUX[${W.gmAt} + row] / S; B = B + (AUX[${W.giAt} + row] * is * is * is) / S; }
    // dx = scale·dy − A − (x − μ)·B with x − μ = (x − μ₀) − δ: δ folds into A, so that x − μ₀ stays exact.
    RC[row * 4u] = scale; RC[row * 4u + 1u] = A - delta * B; RC[row * 4u + 2u] = B; RC[row * 4u + 3u] = mu0;
  }
  DWDB[c] = dw; DWDB[${W.C} + c] = db;`,
    });
    launch1d(be, R * S, {
      key: 'instanceNormGrad:dx',
      inputs: [{ name: 'DY', data: gd(dy) }, { name: 'X', data: gd(x) }, { name: 'RC', data: rowc }],
      outputs: [{ name: 'DX', data: dxo.data }], words,
      body: () => `let r = (idx / ${W.S}) * 4u;
  DX[idx] = RC[r] * DY[idx] - RC[r + 1u] - (X[idx] - RC[r + 3u]) * RC[r + 2u];`,
    });
    be.copyRange(dwdb, 0, dwo.data, 0, C);
    be.copyRange(dwdb, C, dbo.data, 0, C);
  } finally {
    be.free(aux.buf); be.free(partial); be.free(rowc); be.free(dwdb);
  }
  return [dxo.info, dwo.info, dbo.info];
});

// ---------------------------------------------------------------------------
// losses: per-element terms → per-workgroup partials → one final workgroup

/** Workgroups for a grid-stride loop over n elements (partials stay few). */
const strideGroups = (n: number, wg: number) => Math.max(1, Math.min(1024, Math.ceil(n / wg)));

/**
 * WGSL that sums `term(i)` (a vec2<f32> expression using `i`) over a
 * grid-stride loop into workgroup array sv and writes the workgroup's sum
 * to P[grp·2], P[grp·2 + 1].
 */
const partialSum2 = (term: string, nExpr: string, groupsExpr: string) => `var a = vec2<f32>(0.0f, 0.0f);
  for (var i = grp * WG + lid; i < ${nExpr}; i = i + ${groupsExpr} * WG) { a = a + ${term}; }
  sv[lid] = a;
  ${treeReduce('sv', (p, q) => `${p} + ${q}`)}
  if (lid == 0u) { P[grp * 2u] = sv[0].x; P[grp * 2u + 1u] = sv[0].y; }`;

/** One workgroup: (Σ P[2j], Σ P[2j+1]) over j < np, then `fin` (statements using `tot`, run by lane 0). */
function finalSum(be: WebGpuBackend, key: string, partial: GpuData, np: number, extraIn: Buf[], out: Buf, fin: string): void {
  let npW = 0;
  launchGroups(be, 1, {
    key, inputs: [{ name: 'P', data: partial }, ...extraIn], outputs: [out], words: (u) => { npW = u.u(np); },
    helpers: 'var<workgroup> sv: array<vec2<f32>, WG>;',
    body: () => `var a = vec2<f32>(0.0f, 0.0f);
  for (var j = lid; j < ${uw(npW)}; j = j + WG) { a = a + vec2<f32>(P[2u * j], P[2u * j + 1u]); }
  sv[lid] = a;
  ${treeReduce('sv', (p, q) => `${p} + ${q}`)}
  if (lid == 0u) { let tot = sv[0]; ${fin} }`,
  });
}

interface CeAttrs { ignoreIndex: number; hasWeight: boolean }

/** WGSL helpers of cross-entropy: the label at position `pos` and the log-sum-exp over classes. */
function ceHelpers(W: Record<string, string>): string {
  return `fn label(pos: u32) -> i32 { return bitcast<i32>(T[pos]); }
fn lse_at(base: u32) -> f32 {
  let C = ${W.C}; let inner = ${W.inner};
  var m = -f32_inf(); var bad = false;
  for (var c = 0u; c < C; c = c + 1u) { let v = L[base + c * inner]; if (is_nan(v)) { bad = true; } else if (v > m) { m = v; } }
  if (bad || is_inf(m)) { return f32_nan(); }
  var s = 0.0f;
  for (var c = 0u; c < C; c = c + 1u) { s = s + exp_s(L[base + c * inner] - m); }
  return m + log(s);
}`;
}

function ceWords(logits: TensorInfo, attrs: CeAttrs, extra: Record<string, number> = {}) {
  const N = logits.shape[0], C = logits.shape[1], inner = sizeOf(logits.shape.slice(2));
  const W: Record<string, string> = {};
  const words = (u: Uniforms) => {
    W.C = uw(u.u(C)); W.inner = uw(u.u(inner)); W.npos = uw(u.u(N * inner));
    W.ig = `bitcast<i32>(${uw(u.i(attrs.ignoreIndex))})`;
    W.hw = uw(u.u(attrs.hasWeight ? 1 : 0));
    for (const [k, v] of Object.entries(extra)) W[k] = uw(u.u(v));
  };
  return { N, C, inner, npos: N * inner, W, words };
}

registerKernel<CeAttrs>('crossEntropy', 'webgpu', (inputs, attrs, backend) => {
  const be = backend as WebGpuBackend;
  const [logits, target] = inputs;
  const w = attrs.hasWeight ? inputs[2] : null;
  checkF32('crossEntropy', logits, ...(w ? [w] : []));
  wtype(target.dtype, 'crossEntropy');
  const o = be.out([], 'float32');
  const wg = 256;
  const { npos, words, W } = ceWords(logits, attrs);
  const groups = strideGroups(npos, wg);
  const partial = be.alloc('float32', groups * 2);
  try {
    let gW = 0;
    launchGroups(be, groups, {
      // int32 and uint8 labels are both 32-bit words on the GPU (bitcast); the weight is a flag, logits stand in when there is none.
      key: 'crossEntropy:terms',
      inputs: [{ name: 'L', data: gd(logits) }, { name: 'T', data: gd(target), type: 'u32' }, { name: 'CW', data: gd(w ?? logits) }],
      outputs: [{ name: 'P', data: partial }], words: (u) => { words(u); gW = u.u(groups); },
      helpers: () => `var<workgroup> sv: array<vec2<f32>, WG>;\n${ceHelpers(W)}
fn term(pos: u32) -> vec2<f32> {
  let t = label(pos);
  if (t == ${W.ig}) { return vec2<f32>(0.0f, 0.0f); }
  if (t < 0i || t >= i32(${W.C})) { return vec2<f32>(f32_nan(), f32_nan()); }
  let base = (pos / ${W.inner}) * ${W.C} * ${W.inner} + pos % ${W.inner};
  var wt = 1.0f;
  if (${W.hw} != 0u) { wt = CW[u32(t)]; }
  return vec2<f32>(wt * (lse_at(base) - L[base + u32(t) * ${W.inner}]), wt);
}`,
      body: () => partialSum2('term(i)', W.npos, uw(gW)),
    }, wg);
    finalSum(be, 'crossEntropy:final', partial, groups, [], { name: 'Y', data: o.data },
      'if (tot.y == 0.0f) { Y[0] = f32_nan(); } else { Y[0] = tot.x / tot.y; }');
  } finally {
    be.free(partial);
  }
  return o.info;
});

registerKernel<CeAttrs>('crossEntropyGrad', 'webgpu', (inputs, attrs, backend) => {
  const be = backend as WebGpuBackend;
  const [logits, target, dy] = inputs;
  const w = attrs.hasWeight ? inputs[3] : null;
  checkF32('crossEntropyGrad', logits, dy, ...(w ? [w] : []));
  wtype(target.dtype, 'crossEntropyGrad');
  const o = be.out(logits.shape, 'float32');
  if (o.data.size === 0) return o.info;
  const wg = 256;
  const { npos, words, W, C } = ceWords(logits, attrs);
  const groups = strideGroups(npos, wg);
  const partial = be.alloc('float32', groups * 2);
  // aux = [g = dy / Σw, class weights…]
  const aux = be.alloc('float32', 1 + (w ? C : 0));
  try {
    if (w) be.copyRange(gd(w), 0, aux, 1, C);
    let gW = 0;
    launchGroups(be, groups, {
      key: 'crossEntropyGrad:wsum',
      inputs: [{ name: 'T', data: gd(target), type: 'u32' }, { name: 'CW', data: gd(w ?? logits) }],
      outputs: [{ name: 'P', data: partial }], words: (u) => { words(u); gW = u.u(groups); },
      helpers: () => `var<workgroup> sv: array<vec2<f32>, WG>;
fn term(pos: u32) -> vec2<f32> {
  let t = bitcast<i32>(T[pos]);
  if (t == ${W.ig}) { return vec2<f32>(0.0f, 0.0f); }
  if (t < 0i || t >= i32(${W.C})) { return vec2<f32>(f32_nan(), 0.0f); }
  if (${W.hw} != 0u) { return vec2<f32>(CW[u32(t)], 0.0f); }
  return vec2<f32>(1.0f, 0.0f);
}`,
      body: () => partialSum2('term(i)', W.npos, uw(gW)),
    }, wg);
    finalSum(be, 'crossEntropyGrad:scale', partial, groups, [{ name: 'DYB', data: gd(dy) }], { name: 'AUX', data: aux },
      'AUX[0] = DYB[0] / tot.x;');
    launch1d(be, npos, {
      key: 'crossEntropyGrad:apply',
      inputs: [{ name: 'L', data: gd(logits) }, { name: 'T', data: gd(target), type: 'u32' }, { name: 'AUX', data: aux }],
      outputs: [{ name: 'G', data: o.data }], words, helpers: () => ceHelpers(W),
      body: () => `let C = ${W.C}; let inner = ${W.inner};
  let base = (idx / inner) * C * inner + idx % inner;
  let t = label(idx);
  if (t == ${W.ig}) { for (var c = 0u; c < C; c = c + 1u) { G[base + c * inner] = 0.0f; } return; }
  if (t < 0i || t >= i32(C)) { for (var c = 0u; c < C; c = c + 1u) { G[base + c * inner] = f32_nan(); } return; }
  var s = AUX[0];
  if (${W.hw} != 0u) { s = s * AUX[1u + u32(t)]; }
  let lse = lse_at(base);
  for (var c = 0u; c < C; c = c + 1u) {
    let q = base + c * inner;
    G[q] = s * (exp_s(L[q] - lse) - select(0.0f, 1.0f, i32(c) == t));
  }`,
    });
  } finally {
    be.free(partial); be.free(aux);
  }
  return o.info;
});

// ---------------------------------------------------------------------------
// BCE with logits

/** log(1 + u) for u in [0, 1], accurate for small u. */
const LOG1P = `fn log1p_s(u: f32) -> f32 { let w = 1.0f + u; if (w == 1.0f) { return u; } return log(w) * (u / (w - 1.0f)); }`;

registerKernel('bceWithLogits', 'webgpu', (inputs, _attrs, backend) => {
  const be = backend as WebGpuBackend;
  const [x, t] = inputs;
  checkF32('bceWithLogits', x, t);
  const n = sizeOf(x.shape);
  const o = be.out([], 'float32');
  const wg = 256;
  const groups = strideGroups(n, wg);
  const partial = be.alloc('float32', groups * 2);
  try {
    let nW = 0, gW = 0;
    launchGroups(be, groups, {
      key: 'bceWithLogits:terms', inputs: [{ name: 'X', data: gd(x) }, { name: 'T', data: gd(t) }], outputs: [{ name: 'P', data: partial }],
      words: (u) => { nW = u.u(n); gW = u.u(groups); },
      helpers: `var<workgroup> sv: array<vec2<f32>, WG>;\n${LOG1P}
fn term(i: u32) -> vec2<f32> { let v = X[i]; return vec2<f32>(max(v, 0.0f) - v * T[i] + log1p_s(exp_s(-abs(v))), 0.0f); }`,
      body: () => partialSum2('term(i)', uw(nW), uw(gW)),
    }, wg);
    let nF = 0, npW = 0;
    launchGroups(be, 1, {
      key: 'bceWithLogits:final', inputs: [{ name: 'P', data: partial }], outputs: [{ name: 'Y', data: o.data }],
      words: (u) => { nF = u.f(n); npW = u.u(groups); },
      helpers: 'var<workgroup> sa: array<f32, WG>;',
      body: () => `var a = 0.0f;
  for (var j = lid; j < ${uw(npW)}; j = j + WG) { a = a + P[2u * j]; }
  sa[lid] = a;
  ${treeReduce('sa', (p, q) => `${p} + ${q}`)}
  if (lid == 0u) { Y[0] = sa[0] / ${uwf(nF)}; }`,
    });
  } finally {
    be.free(partial);
  }
  return o.info;
});

registerKernel('bceWithLogitsGrad', 'webgpu', (inputs, _attrs, backend) => {
  const be = backend as WebGpuBackend;
  const [x, t, dy] = inputs;
  checkF32('bceWithLogitsGrad', x, t, dy);
  const n = sizeOf(x.shape);
  const dx = be.out(x.shape, 'float32'), dt = be.out(x.shape, 'float32');
  let nF = 0;
  const words = (u: Uniforms) => { nF = u.f(n); };
  launch1d(be, n, {
    key: 'bceWithLogitsGrad:dx', inputs: [{ name: 'X', data: gd(x) }, { name: 'T', data: gd(t) }, { name: 'DYB', data: gd(dy) }],
    outputs: [{ name: 'DX', data: dx.data }], words,
    body: () => `let g = DYB[0] / ${uwf(nF)}; let v = X[idx];
  var sg: f32;
  if (v >= 0.0f) { sg = 1.0f / (1.0f + exp_s(-v)); } else { let e = exp_s(v); sg = e / (1.0f + e); }
  DX[idx] = g * (sg - T[idx]);`,
  });
  launch1d(be, n, {
    key: 'bceWithLogitsGrad:dt', inputs: [{ name: 'X', data: gd(x) }, { name: 'DYB', data: gd(dy) }],
    outputs: [{ name: 'DT', data: dt.data }], words,
    body: () => `let g = DYB[0] / ${uwf(nF)}; DT[idx] = -g * X[idx];`,
  });
  return [dx.info, dt.info];
});

// ---------------------------------------------------------------------------
// soft Dice

interface DiceAttrs { smooth: number; batchDice: boolean; reduction: 'mean' | 'none' }

/** Per (row, chunk) sums (Σp·t, Σp, Σt) into a new buffer [rows·chunks·3]. */
function diceSums(be: WebGpuBackend, p: TensorInfo, t: TensorInfo) {
  const N = p.shape[0], C = p.shape[1], S = sizeOf(p.shape.slice(2)), R = N * C;
  let chunks = rowChunks(R, S);
  const L = Math.max(1, Math.ceil(S / chunks));
  chunks = Math.max(1, Math.ceil(S / L));
  const partial = be.alloc('float32', Math.max(1, R * chunks * 3));
  let W: Record<string, string> = {};
  if (R > 0 && S > 0) {
    launchGroups(be, R * chunks, {
      key: 'softDice:chunk', inputs: [{ name: 'PR', data: gd(p) }, { name: 'TG', data: gd(t) }], outputs: [{ name: 'P', data: partial }],
      words: (u) => { W = { S: uw(u.u(S)), chunks: uw(u.u(chunks)), L: uw(u.u(L)) }; },
      helpers: 'var<workgroup> sv: array<vec4<f32>, WG>;',
      body: () => `let row = grp / ${W.chunks}; let k = grp % ${W.chunks};
  let j0 = k * ${W.L}; let j1 = min(${W.S}, j0 + ${W.L}); let base = row * ${W.S};
  var a = vec4<f32>(0.0f, 0.0f, 0.0f, 0.0f);
  for (var j = j0 + lid; j < j1; j = j + WG) { let x = PR[base + j]; let y = TG[base + j]; a = a + vec4<f32>(x * y, x, y, 0.0f); }
  sv[lid] = a;
  ${treeReduce('sv', (q, r) => `${q} + ${r}`)}
  if (lid == 0u) { P[grp * 3u] = sv[0].x; P[grp * 3u + 1u] = sv[0].y; P[grp * 3u + 2u] = sv[0].z; }`,
    });
  } else {
    launch1d(be, R * chunks * 3, { key: 'zeros', inputs: [], outputs: [{ name: 'P', data: partial }], body: () => 'P[idx] = 0.0f;' });
  }
  return { N, C, S, R, chunks, partial };
}

/** WGSL: the Dice sums (I, P, T) of group g (rows of the group, chunks in order). */
const diceGroupSums = (W: Record<string, string>) => `fn group_sums(g: u32) -> vec3<f32> {
  var a = vec3<f32>(0.0f, 0.0f, 0.0f);
  let bd = ${W.bd} != 0u;
  for (var r = 0u; r < select(1u, ${W.N}, bd); r = r + 1u) {
    let row = select(g, r * ${W.C} + g, bd);
    var b = vec3<f32>(0.0f, 0.0f, 0.0f);
    for (var k = 0u; k < ${W.chunks}; k = k + 1u) { let at = (row * ${W.chunks} + k) * 3u; b = b + vec3<f32>(P[at], P[at + 1u], P[at + 2u]); }
    a = a + b;
  }
  return a;
}`;

registerKernel<DiceAttrs>('softDiceLoss', 'webgpu', (inputs, attrs, backend) => {
  const be = backend as WebGpuBackend;
  const [p, t] = inputs;
  checkF32('softDiceLoss', p, t);
  const d = diceSums(be, p, t);
  const G = attrs.batchDice ? d.C : d.R;
  const none = attrs.reduction === 'none';
  const o = be.out(none ? (attrs.batchDice ? [d.C] : [d.N, d.C]) : [], 'float32');
  try {
    let W: Record<string, string> = {};
    const words = (u: Uniforms) => {
      W = { N: uw(u.u(d.N)), C: uw(u.u(d.C)), chunks: uw(u.u(d.chunks)), G: uw(u.u(G)), sm: uwf(u.f(attrs.smooth)), bd: uw(u.u(attrs.batchDice ? 1 : 0)) };
    };
    const helpers = () => `${diceGroupSums(W)}
fn dice(g: u32) -> f32 { let s = group_sums(g); return (2.0f * s.x + ${W.sm}) / (s.y + s.z + ${W.sm}); }`;
    if (none) {
      launch1d(be, G, {
        key: 'softDice:none', inputs: [{ name: 'P', data: d.partial }], outputs: [{ name: 'Y', data: o.data }], words,
        helpers,
        body: () => 'Y[idx] = 1.0f - dice(idx);',
      });
    } else {
      launchGroups(be, 1, {
        key: 'softDice:mean', inputs: [{ name: 'P', data: d.partial }], outputs: [{ name: 'Y', data: o.data }], words,
        helpers: () => `var<workgroup> sa: array<f32, WG>;\n${helpers()}`,
        body: () => `var a = 0.0f;
  for (var g = lid; g < ${W.G}; g = g + WG) { a = a + dice(g); }
  sa[lid] = a;
  ${treeReduce('sa', (q, r) => `${q} + ${r}`)}
  if (lid == 0u) { Y[0] = 1.0f - sa[0] / f32(${W.G}); }`,
      });
    }
  } finally {
    be.free(d.partial);
  }
  return o.info;
});

registerKernel<DiceAttrs>('softDiceLossGrad', 'webgpu', (inputs, attrs, backend) => {
  const be = backend as WebGpuBackend;
  const [p, t, dy] = inputs;
  checkF32('softDiceLossGrad', p, t, dy);
  const dp = be.out(p.shape, 'float32'), dt = be.out(p.shape, 'float32');
  const d = diceSums(be, p, t);
  const G = attrs.batchDice ? d.C : d.R;
  const none = attrs.reduction === 'none';
  const coef = be.alloc('float32', Math.max(1, 2 * G));
  try {
    let W: Record<string, string> = {};
    const words = (u: Uniforms) => {
      W = {
        N: uw(u.u(d.N)), C: uw(u.u(d.C)), chunks: uw(u.u(d.chunks)), G: uw(u.u(G)), sm: uwf(u.f(attrs.smooth)), S: uw(u.u(d.S)),
        bd: uw(u.u(attrs.batchDice ? 1 : 0)), none: uw(u.u(none ? 1 : 0)),
      };
    };
    launch1d(be, G, {
      key: 'softDiceGrad:coef',
      inputs: [{ name: 'P', data: d.partial }, { name: 'DYB', data: gd(dy) }], outputs: [{ name: 'CF', data: coef }], words,
      helpers: () => diceGroupSums(W),
      body: () => `let s = group_sums(idx);
  var cf = -DYB[0] / f32(${W.G});
  if (${W.none} != 0u) { cf = -DYB[idx]; }
  let D = s.y + s.z + ${W.sm};
  let dd = (2.0f * s.x + ${W.sm}) / D;
  CF[2u * idx] = (2.0f * cf) / D;
  CF[2u * idx + 1u] = (cf * dd) / D;`,
    });
    // dp = a·t − b and dt = a·p − b: one shader, bound to (t → dp) and (p → dt).
    for (const [src, dst] of [[t, dp], [p, dt]] as const) {
      launch1d(be, sizeOf(p.shape), {
        key: 'softDiceGrad:apply',
        inputs: [{ name: 'SRC', data: gd(src) }, { name: 'CF', data: coef }], outputs: [{ name: 'OUT', data: dst.data }], words,
        body: () => `let row = idx / ${W.S}; let g = select(row, row % ${W.C}, ${W.bd} != 0u);
  OUT[idx] = CF[2u * g] * SRC[idx] - CF[2u * g + 1u];`,
      });
    }
  } finally {
    be.free(d.partial); be.free(coef);
  }
  return [dp.info, dt.info];
});

// ---------------------------------------------------------------------------
// CP reconstruction: W[o, i, s] = Σ_r w_r·A[o, r]·B[i, r]·K[s, r]

function cpDims(wt: TensorInfo, ao: TensorInfo, ai: TensorInfo, ak: TensorInfo) {
  return { R: wt.shape[0], O: ao.shape[0], I: ai.shape[0], S: ak.shape[0] };
}

/** Uniform words of the CP kernels and the packed factor buffer [w R | aIn I·R | aKernel S·R]. */
function cpWords(d: { R: number; O: number; I: number; S: number }) {
  const W: Record<string, string> = {};
  const words = (u: Uniforms) => {
    W.R = uw(u.u(d.R)); W.O = uw(u.u(d.O)); W.I = uw(u.u(d.I)); W.S = uw(u.u(d.S));
    W.IS = uw(u.u(d.I * d.S)); W.bAt = uw(u.u(d.R)); W.kAt = uw(u.u(d.R + d.I * d.R));
  };
  /** KR[(i, s), r] = w_r·aIn[i, r]·aKernel[s, r] from the packed buffer PK. */
  const kr = (i: string, s: string, r: string) => `PK[${r}] * PK[${W.bAt} + ${i} * ${W.R} + ${r}] * PK[${W.kAt} + ${s} * ${W.R} + ${r}]`;
  return { W, words, kr };
}

registerKernel('cpReconstruct', 'webgpu', (inputs, _attrs, backend) => {
  const be = backend as WebGpuBackend;
  const [wt, ao, ai, ak] = inputs;
  checkF32('cpReconstruct', ...inputs);
  const d = cpDims(wt, ao, ai, ak);
  const o = be.out([d.O, d.I, d.S], 'float32');
  if (o.data.size === 0) return o.info;
  const pk = pack(be, [wt, ai, ak]);
  try {
    const { W, words, kr } = cpWords(d);
    gemm(be, {
      key: 'cpReconstruct', M: d.O, N: d.I * d.S, K: d.R, words,
      loadInputs: [{ name: 'AO', data: gd(ao) }, { name: 'PK', data: pk.buf }], out: o.data,
      A: { kFast: true, load: (m, k) => `v = AO[${m} * ${W.R} + ${k}];` },
      B: {
        kFast: false,
        setup: (n, s) => `let ci${s} = ${n} / ${W.S}; let cs${s} = ${n} % ${W.S};`,
        load: (_n, k, s) => `v = ${kr(`ci${s}`, `cs${s}`, k)};`,
      },
      store: (m, n, acc) => `Y[${m} * ${W.IS} + ${n}] = ${acc};`,
    });
  } finally {
    be.free(pk.buf);
  }
  return o.info;
});

registerKernel('cpReconstructGrad', 'webgpu', (inputs, _attrs, backend) => {
  const be = backend as WebGpuBackend;
  const [gW, wt, ao, ai, ak] = inputs;
  checkF32('cpReconstructGrad', ...inputs);
  const d = cpDims(wt, ao, ai, ak);
  const dwo = be.out([d.R], 'float32'), dao = be.out([d.O, d.R], 'float32'), dio = be.out([d.I, d.R], 'float32'), dko = be.out([d.S, d.R], 'float32');
  const outs = [dwo.info, dao.info, dio.info, dko.info];
  if (d.R === 0) return outs;
  const zero = (x: GpuData) => launch1d(be, x.size, { key: 'zeros', inputs: [], outputs: [{ name: 'P', data: x }], body: () => 'P[idx] = 0.0f;' });
  if (d.O * d.I * d.S === 0) { for (const x of [dwo, dao, dio, dko]) zero(x.data); return outs; }
  const pk = pack(be, [wt, ai, ak]);
  const H = be.alloc('float32', d.I * d.S * d.R);
  const T = be.alloc('float32', d.I * d.R);
  try {
    const { W, words, kr } = cpWords(d);
    // daOut[o, r] = Σ_(i,s) dW[o, (i,s)]·KR[(i,s), r]
    gemm(be, {
      key: 'cpGrad:daOut', M: d.O, N: d.R, K: d.I * d.S, words,
      loadInputs: [{ name: 'GW', data: gd(gW) }, { name: 'PK', data: pk.buf }], out: dao.data,
      A: { kFast: true, load: (m, k) => `v = GW[${m} * ${W.IS} + ${k}];` },
      B: { kFast: false, load: (n, k) => `v = ${kr(`(${k} / ${W.S})`, `(${k} % ${W.S})`, n)};` },
      store: (m, n, acc) => `Y[${m} * ${W.R} + ${n}] = ${acc};`,
    });
    // H[(i,s), r] = Σ_o dW[o, (i,s)]·aOut[o, r]
    gemm(be, {
      key: 'cpGrad:H', M: d.I * d.S, N: d.R, K: d.O, words,
      loadInputs: [{ name: 'GW', data: gd(gW) }, { name: 'AO', data: gd(ao) }], out: H,
      A: { kFast: false, load: (m, k) => `v = GW[${k} * ${W.IS} + ${m}];` },
      B: { kFast: false, load: (n, k) => `v = AO[${k} * ${W.R} + ${n}];` },
      store: (m, n, acc) => `Y[${m} * ${W.R} + ${n}] = ${acc};`,
    });
    // T[i, r] = Σ_s H[(i,s), r]·aKernel[s, r];  daIn = w·T
    launch1d(be, d.I * d.R, {
      key: 'cpGrad:T', inputs: [{ name: 'H', data: H }, { name: 'PK', data: pk.buf }], outputs: [{ name: 'T', data: T }, { name: 'DI', data: dio.data }], words,
      body: () => `let i = idx / ${W.R}; let r = idx % ${W.R};
  var t = 0.0f;
  for (var s = 0u; s < ${W.S}; s = s + 1u) { t = t + H[(i * ${W.S} + s) * ${W.R} + r] * PK[${W.kAt} + s * ${W.R} + r]; }
  T[idx] = t; DI[idx] = PK[r] * t;`,
    });
    // dweights[r] = Σ_i aIn[i, r]·T[i, r]
    launch1d(be, d.R, {
      key: 'cpGrad:dw', inputs: [{ name: 'T', data: T }, { name: 'PK', data: pk.buf }], outputs: [{ name: 'DW', data: dwo.data }], words,
      body: () => `var a = 0.0f;
  for (var i = 0u; i < ${W.I}; i = i + 1u) { a = a + PK[${W.bAt} + i * ${W.R} + idx] * T[i * ${W.R} + idx]; }
  DW[idx] = a;`,
    });
    // daKernel[s, r] = Σ_i w_r·aIn[i, r]·H[(i,s), r]
    launch1d(be, d.S * d.R, {
      key: 'cpGrad:daK', inputs: [{ name: 'H', data: H }, { name: 'PK', data: pk.buf }], outputs: [{ name: 'DK', data: dko.data }], words,
      body: () => `let s = idx / ${W.R}; let r = idx % ${W.R};
  var a = 0.0f;
  for (var i = 0u; i < ${W.I}; i = i + 1u) { a = a + PK[r] * PK[${W.bAt} + i * ${W.R} + r] * H[(i * ${W.S} + s) * ${W.R} + r]; }
  DK[idx] = a;`,
    });
  } finally {
    be.free(pk.buf); be.free(H); be.free(T);
  }
  return outs;
});
