import { sizeOf, type TensorInfo, type CrossEntropyAttrs, type SoftDiceAttrs } from '@largo/core';
import type { GpuData, WebGpuBackend, GpuKernel, GpuKernelTable } from '../backend.js';
import { uw, uwf, wtype, type Uniforms } from '../wgsl.js';
import { checkF32, gd, launch1d, launchGroups, rowChunks, treeReduce, type Buf } from './launch.js';

/*
 * WebGPU kernels of the losses.
 * Drop-in replacements of the CPU kernels in packages/core/src/cpu/ (same
 * op names, inputs, attrs and outputs). Accumulation is f32 (the CPU uses
 * doubles), with tree reductions in workgroup memory, so errors grow with log(length).
 * (Just over 500 lines: three losses and their backward kernels share the
 * partial-sum helpers defined at the top of this file.)
 *
 *  - crossEntropy / bceWithLogits / softDiceLoss (+Grad): per-element terms,
 *    per-workgroup partial sums, one final workgroup (deterministic order).
 *    A label outside [0, C) that is not ignoreIndex cannot throw from the
 *    GPU: it makes the loss (and its gradient's column) NaN.
 */

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
function finalSum(
  be: WebGpuBackend,
  key: string,
  partial: GpuData,
  np: number,
  extraIn: Buf[],
  out: Buf,
  fin: string,
): void {
  let npW = 0;
  launchGroups(be, 1, {
    key,
    inputs: [{ name: 'P', data: partial }, ...extraIn],
    outputs: [out],
    words: (u) => {
      npW = u.u(np);
    },
    helpers: 'var<workgroup> sv: array<vec2<f32>, WG>;',
    body: () => `var a = vec2<f32>(0.0f, 0.0f);
  for (var j = lid; j < ${uw(npW)}; j = j + WG) { a = a + vec2<f32>(P[2u * j], P[2u * j + 1u]); }
  sv[lid] = a;
  ${treeReduce('sv', (p, q) => `${p} + ${q}`)}
  if (lid == 0u) { let tot = sv[0]; ${fin} }`,
  });
}

/**
 * WGSL helpers of cross-entropy: the label at position `pos` and the log-sum-exp over classes,
 * returned as (max, log Σ exp(x − max)) and never added up: with logits of size 30,
 * max + log Σ in f32 rounds to ulp(30) ≈ 2e-6, which exp(x − lse) turns into a 2e-6 error
 * on every probability; (x − max) − log Σ keeps it at ulp(1).
 */
function ceHelpers(W: Record<string, string>): string {
  return `fn label(pos: u32) -> i32 { return bitcast<i32>(T[pos]); }
fn lse_at(base: u32) -> vec2<f32> {
  let C = ${W.C}; let inner = ${W.inner};
  var m = -f32_inf(); var bad = false;
  for (var c = 0u; c < C; c = c + 1u) { let v = L[base + c * inner]; if (is_nan(v)) { bad = true; } else if (v > m) { m = v; } }
  if (bad || is_inf(m)) { return vec2<f32>(f32_nan(), f32_nan()); }
  var s = 0.0f;
  for (var c = 0u; c < C; c = c + 1u) { s = s + exp_s(L[base + c * inner] - m); }
  return vec2<f32>(m, log(s));
}`;
}

function ceWords(logits: TensorInfo, attrs: CrossEntropyAttrs, extra: Record<string, number> = {}) {
  const N = logits.shape[0],
    C = logits.shape[1],
    inner = sizeOf(logits.shape.slice(2));
  const W: Record<string, string> = {};
  const words = (u: Uniforms) => {
    W.C = uw(u.u(C));
    W.inner = uw(u.u(inner));
    W.npos = uw(u.u(N * inner));
    W.ig = `bitcast<i32>(${uw(u.i(attrs.ignoreIndex))})`;
    W.hw = uw(u.u(attrs.hasWeight ? 1 : 0));
    for (const [k, v] of Object.entries(extra)) W[k] = uw(u.u(v));
  };
  return { N, C, inner, npos: N * inner, W, words };
}

const crossEntropyKernel: GpuKernel<'crossEntropy'> = (inputs, attrs, be) => {
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
    launchGroups(
      be,
      groups,
      {
        // int32 and uint8 labels are both 32-bit words on the GPU (bitcast); the weight is a flag, logits stand in when there is none.
        key: 'crossEntropy:terms',
        inputs: [
          { name: 'L', data: gd(logits) },
          { name: 'T', data: gd(target), type: 'u32' },
          { name: 'CW', data: gd(w ?? logits) },
        ],
        outputs: [{ name: 'P', data: partial }],
        words: (u) => {
          words(u);
          gW = u.u(groups);
        },
        helpers: () => `var<workgroup> sv: array<vec2<f32>, WG>;\n${ceHelpers(W)}
fn term(pos: u32) -> vec2<f32> {
  let t = label(pos);
  if (t == ${W.ig}) { return vec2<f32>(0.0f, 0.0f); }
  if (t < 0i || t >= i32(${W.C})) { return vec2<f32>(f32_nan(), f32_nan()); }
  let base = (pos / ${W.inner}) * ${W.C} * ${W.inner} + pos % ${W.inner};
  var wt = 1.0f;
  if (${W.hw} != 0u) { wt = CW[u32(t)]; }
  let ml = lse_at(base);
  return vec2<f32>(wt * ((ml.x - L[base + u32(t) * ${W.inner}]) + ml.y), wt);
}`,
        body: () => partialSum2('term(i)', W.npos, uw(gW)),
      },
      wg,
    );
    finalSum(
      be,
      'crossEntropy:final',
      partial,
      groups,
      [],
      { name: 'Y', data: o.data },
      'if (tot.y == 0.0f) { Y[0] = f32_nan(); } else { Y[0] = tot.x / tot.y; }',
    );
  } finally {
    be.free(partial);
  }
  return o.info;
};

const crossEntropyGradKernel: GpuKernel<'crossEntropyGrad'> = (inputs, attrs, be) => {
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
    launchGroups(
      be,
      groups,
      {
        key: 'crossEntropyGrad:wsum',
        inputs: [
          { name: 'T', data: gd(target), type: 'u32' },
          { name: 'CW', data: gd(w ?? logits) },
        ],
        outputs: [{ name: 'P', data: partial }],
        words: (u) => {
          words(u);
          gW = u.u(groups);
        },
        helpers: () => `var<workgroup> sv: array<vec2<f32>, WG>;
fn term(pos: u32) -> vec2<f32> {
  let t = bitcast<i32>(T[pos]);
  if (t == ${W.ig}) { return vec2<f32>(0.0f, 0.0f); }
  if (t < 0i || t >= i32(${W.C})) { return vec2<f32>(f32_nan(), 0.0f); }
  if (${W.hw} != 0u) { return vec2<f32>(CW[u32(t)], 0.0f); }
  return vec2<f32>(1.0f, 0.0f);
}`,
        body: () => partialSum2('term(i)', W.npos, uw(gW)),
      },
      wg,
    );
    finalSum(
      be,
      'crossEntropyGrad:scale',
      partial,
      groups,
      [{ name: 'DYB', data: gd(dy) }],
      { name: 'AUX', data: aux },
      'AUX[0] = DYB[0] / tot.x;',
    );
    launch1d(be, npos, {
      key: 'crossEntropyGrad:apply',
      inputs: [
        { name: 'L', data: gd(logits) },
        { name: 'T', data: gd(target), type: 'u32' },
        { name: 'AUX', data: aux },
      ],
      outputs: [{ name: 'G', data: o.data }],
      words,
      helpers: () => ceHelpers(W),
      body: () => `let C = ${W.C}; let inner = ${W.inner};
  let base = (idx / inner) * C * inner + idx % inner;
  let t = label(idx);
  if (t == ${W.ig}) { for (var c = 0u; c < C; c = c + 1u) { G[base + c * inner] = 0.0f; } return; }
  if (t < 0i || t >= i32(C)) { for (var c = 0u; c < C; c = c + 1u) { G[base + c * inner] = f32_nan(); } return; }
  var s = AUX[0];
  if (${W.hw} != 0u) { s = s * AUX[1u + u32(t)]; }
  let ml = lse_at(base);
  for (var c = 0u; c < C; c = c + 1u) {
    let q = base + c * inner;
    G[q] = s * (exp_s((L[q] - ml.x) - ml.y) - select(0.0f, 1.0f, i32(c) == t));
  }`,
    });
  } finally {
    be.free(partial);
    be.free(aux);
  }
  return o.info;
};

// ---------------------------------------------------------------------------
// BCE with logits

/** log(1 + u) for u in [0, 1], accurate for small u. */
const LOG1P = `fn log1p_s(u: f32) -> f32 { let w = 1.0f + u; if (w == 1.0f) { return u; } return log(w) * (u / (w - 1.0f)); }`;

const bceWithLogitsKernel: GpuKernel<'bceWithLogits'> = (inputs, _attrs, be) => {
  const [x, t] = inputs;
  checkF32('bceWithLogits', x, t);
  const n = sizeOf(x.shape);
  const o = be.out([], 'float32');
  const wg = 256;
  const groups = strideGroups(n, wg);
  const partial = be.alloc('float32', groups * 2);
  try {
    let nW = 0,
      gW = 0;
    launchGroups(
      be,
      groups,
      {
        key: 'bceWithLogits:terms',
        inputs: [
          { name: 'X', data: gd(x) },
          { name: 'T', data: gd(t) },
        ],
        outputs: [{ name: 'P', data: partial }],
        words: (u) => {
          nW = u.u(n);
          gW = u.u(groups);
        },
        helpers: `var<workgroup> sv: array<vec2<f32>, WG>;\n${LOG1P}
fn term(i: u32) -> vec2<f32> { let v = X[i]; return vec2<f32>(max(v, 0.0f) - v * T[i] + log1p_s(exp_s(-abs(v))), 0.0f); }`,
        body: () => partialSum2('term(i)', uw(nW), uw(gW)),
      },
      wg,
    );
    let nF = 0,
      npW = 0;
    launchGroups(be, 1, {
      key: 'bceWithLogits:final',
      inputs: [{ name: 'P', data: partial }],
      outputs: [{ name: 'Y', data: o.data }],
      words: (u) => {
        nF = u.f(n);
        npW = u.u(groups);
      },
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
};

const bceWithLogitsGradKernel: GpuKernel<'bceWithLogitsGrad'> = (inputs, _attrs, be) => {
  const [x, t, dy] = inputs;
  checkF32('bceWithLogitsGrad', x, t, dy);
  const n = sizeOf(x.shape);
  const dx = be.out(x.shape, 'float32'),
    dt = be.out(x.shape, 'float32');
  let nF = 0;
  const words = (u: Uniforms) => {
    nF = u.f(n);
  };
  launch1d(be, n, {
    key: 'bceWithLogitsGrad:dx',
    inputs: [
      { name: 'X', data: gd(x) },
      { name: 'T', data: gd(t) },
      { name: 'DYB', data: gd(dy) },
    ],
    outputs: [{ name: 'DX', data: dx.data }],
    words,
    body: () => `let g = DYB[0] / ${uwf(nF)}; let v = X[idx];
  var sg: f32;
  if (v >= 0.0f) { sg = 1.0f / (1.0f + exp_s(-v)); } else { let e = exp_s(v); sg = e / (1.0f + e); }
  DX[idx] = g * (sg - T[idx]);`,
  });
  launch1d(be, n, {
    key: 'bceWithLogitsGrad:dt',
    inputs: [
      { name: 'X', data: gd(x) },
      { name: 'DYB', data: gd(dy) },
    ],
    outputs: [{ name: 'DT', data: dt.data }],
    words,
    body: () => `let g = DYB[0] / ${uwf(nF)}; DT[idx] = -g * X[idx];`,
  });
  return [dx.info, dt.info];
};

// ---------------------------------------------------------------------------
// soft Dice

/** Per (row, chunk) sums (Σp·t, Σp, Σt) into a new buffer [rows·chunks·3]. */
function diceSums(be: WebGpuBackend, p: TensorInfo, t: TensorInfo) {
  const N = p.shape[0],
    C = p.shape[1],
    S = sizeOf(p.shape.slice(2)),
    R = N * C;
  let chunks = rowChunks(R, S);
  const L = Math.max(1, Math.ceil(S / chunks));
  chunks = Math.max(1, Math.ceil(S / L));
  const partial = be.alloc('float32', Math.max(1, R * chunks * 3));
  let W: Record<string, string> = {};
  if (R > 0 && S > 0) {
    launchGroups(be, R * chunks, {
      key: 'softDice:chunk',
      inputs: [
        { name: 'PR', data: gd(p) },
        { name: 'TG', data: gd(t) },
      ],
      outputs: [{ name: 'P', data: partial }],
      words: (u) => {
        W = { S: uw(u.u(S)), chunks: uw(u.u(chunks)), L: uw(u.u(L)) };
      },
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
    launch1d(be, R * chunks * 3, {
      key: 'zeros',
      inputs: [],
      outputs: [{ name: 'P', data: partial }],
      body: () => 'P[idx] = 0.0f;',
    });
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

const softDiceLossKernel: GpuKernel<'softDiceLoss'> = (inputs, attrs, be) => {
  const [p, t] = inputs;
  checkF32('softDiceLoss', p, t);
  const d = diceSums(be, p, t);
  const G = attrs.batchDice ? d.C : d.R;
  const none = attrs.reduction === 'none';
  const o = be.out(none ? (attrs.batchDice ? [d.C] : [d.N, d.C]) : [], 'float32');
  try {
    let W: Record<string, string> = {};
    const words = (u: Uniforms) => {
      W = {
        N: uw(u.u(d.N)),
        C: uw(u.u(d.C)),
        chunks: uw(u.u(d.chunks)),
        G: uw(u.u(G)),
        sm: uwf(u.f(attrs.smooth)),
        bd: uw(u.u(attrs.batchDice ? 1 : 0)),
      };
    };
    const helpers = () => `${diceGroupSums(W)}
fn dice(g: u32) -> f32 { let s = group_sums(g); return (2.0f * s.x + ${W.sm}) / (s.y + s.z + ${W.sm}); }`;
    if (none) {
      launch1d(be, G, {
        key: 'softDice:none',
        inputs: [{ name: 'P', data: d.partial }],
        outputs: [{ name: 'Y', data: o.data }],
        words,
        helpers,
        body: () => 'Y[idx] = 1.0f - dice(idx);',
      });
    } else {
      launchGroups(be, 1, {
        key: 'softDice:mean',
        inputs: [{ name: 'P', data: d.partial }],
        outputs: [{ name: 'Y', data: o.data }],
        words,
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
};

const softDiceLossGradKernel: GpuKernel<'softDiceLossGrad'> = (inputs, attrs, be) => {
  const [p, t, dy] = inputs;
  checkF32('softDiceLossGrad', p, t, dy);
  const dp = be.out(p.shape, 'float32'),
    dt = be.out(p.shape, 'float32');
  const d = diceSums(be, p, t);
  const G = attrs.batchDice ? d.C : d.R;
  const none = attrs.reduction === 'none';
  const coef = be.alloc('float32', Math.max(1, 2 * G));
  try {
    let W: Record<string, string> = {};
    const words = (u: Uniforms) => {
      W = {
        N: uw(u.u(d.N)),
        C: uw(u.u(d.C)),
        chunks: uw(u.u(d.chunks)),
        G: uw(u.u(G)),
        sm: uwf(u.f(attrs.smooth)),
        S: uw(u.u(d.S)),
        bd: uw(u.u(attrs.batchDice ? 1 : 0)),
        none: uw(u.u(none ? 1 : 0)),
      };
    };
    launch1d(be, G, {
      key: 'softDiceGrad:coef',
      inputs: [
        { name: 'P', data: d.partial },
        { name: 'DYB', data: gd(dy) },
      ],
      outputs: [{ name: 'CF', data: coef }],
      words,
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
    for (const [src, dst] of [
      [t, dp],
      [p, dt],
    ] as const) {
      launch1d(be, sizeOf(p.shape), {
        key: 'softDiceGrad:apply',
        inputs: [
          { name: 'SRC', data: gd(src) },
          { name: 'CF', data: coef },
        ],
        outputs: [{ name: 'OUT', data: dst.data }],
        words,
        body: () => `let row = idx / ${W.S}; let g = select(row, row % ${W.C}, ${W.bd} != 0u);
  OUT[idx] = CF[2u * g] * SRC[idx] - CF[2u * g + 1u];`,
      });
    }
  } finally {
    be.free(d.partial);
    be.free(coef);
  }
  return [dp.info, dt.info];
};

export const lossKernels = {
  crossEntropy: crossEntropyKernel,
  crossEntropyGrad: crossEntropyGradKernel,
  bceWithLogits: bceWithLogitsKernel,
  bceWithLogitsGrad: bceWithLogitsGradKernel,
  softDiceLoss: softDiceLossKernel,
  softDiceLossGrad: softDiceLossGradKernel,
} satisfies Partial<GpuKernelTable>;
