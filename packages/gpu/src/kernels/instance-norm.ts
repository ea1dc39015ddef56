import { sizeOf } from '@largo/core';
import type { WebGpuBackend, GpuKernel, GpuKernelTable } from '../backend.js';
import { uw, uwf, type Uniforms } from '../wgsl.js';
import { checkF32, gd, launch1d, launchGroups, pack, rowChunks, treeReduce } from './launch.js';

/*
 * WebGPU kernels of instance norm.
 * Drop-in replacements of the CPU kernels in packages/core/src/cpu/ (same
 * op names, inputs, attrs and outputs). Accumulation is f32 (the CPU uses
 * doubles), with tree reductions in workgroup memory, so errors grow with log(length).
 *
 *  - instanceNorm: two passes over each (n, c) row, cut into chunks (a
 *    workgroup each) when rows are long and few: the mean hi from chunk sums,
 *    then Σd and Σd² about hi (the corrected two-pass algorithm, never
 *    E[x²] − E[x]²); lo = Σd/S refines the mean, and y = ((x − hi) − lo)·…,
 *    so that x − mean keeps full precision even for large offsets.
 *  - instanceNormGrad: chunk sums of dy, dy·(x − μ₀), x − μ₀ (μ₀ the saved
 *    mean, refined as on the CPU), a per-channel pass for the row constants
 *    and dweight/dbias (summed over n in order), an elementwise pass for dx.
 */

const CLAMP0 = 'fn clamp0(v: f32) -> f32 { if (is_nan(v)) { return v; } return max(v, 0.0f); }';

const instanceNormKernel: GpuKernel<'instanceNorm'> = (inputs, attrs, be) => {
  const x = inputs[0];
  let k = 1;
  const w = attrs.hasWeight ? inputs[k++] : null;
  const b = attrs.hasBias ? inputs[k++] : null;
  checkF32('instanceNorm', x, ...(w ? [w] : []), ...(b ? [b] : []));
  const N = x.shape[0],
    C = x.shape[1],
    S = sizeOf(x.shape.slice(2)),
    R = N * C;
  const y = be.out(x.shape, 'float32'),
    mo = be.out([N, C], 'float32'),
    io = be.out([N, C], 'float32');
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
        S: uw(u.u(S)),
        chunks: uw(u.u(chunks)),
        L: uw(u.u(L)),
        R: uw(u.u(R)),
        C: uw(u.u(C)),
        eps: uwf(u.f(attrs.eps)),
        hw: uw(u.u(w ? 1 : 0)),
        hb: uw(u.u(b ? 1 : 0)),
        bAt: uw(u.u(w && b ? C : 0)),
      };
    };
    // Pass 1: the mean (hi) from chunk sums added in order.
    launchGroups(be, R * chunks, {
      key: 'instanceNorm:sum',
      inputs: [{ name: 'X', data: gd(x) }],
      outputs: [{ name: 'P', data: partial }],
      words,
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
      key: 'instanceNorm:mean',
      inputs: [{ name: 'P', data: partial }],
      outputs: [{ name: 'ST', data: stats }],
      words,
      body: () => `var s = 0.0f;
  for (var k = 0u; k < ${W.chunks}; k = k + 1u) { s = s + P[idx * ${W.chunks} + k]; }
  ST[2u * ${W.R} + idx] = s / f32(${W.S});`,
    });
    // Pass 2: Σd and Σd² about hi (corrected two-pass); lo = Σd/S refines the mean, so that x − mean keeps full precision.
    launchGroups(be, R * chunks, {
      key: 'instanceNorm:dev',
      inputs: [
        { name: 'X', data: gd(x) },
        { name: 'ST', data: stats },
      ],
      outputs: [{ name: 'P', data: partial }],
      words,
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
      key: 'instanceNorm:var',
      inputs: [{ name: 'P', data: partial }],
      outputs: [{ name: 'ST', data: stats }],
      words,
      helpers: CLAMP0,
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
      inputs: [
        { name: 'X', data: gd(x) },
        { name: 'ST', data: stats },
        { name: 'WB', data: affine },
      ],
      outputs: [{ name: 'Y', data: y.data }],
      words,
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
    be.free(partial);
    be.free(stats);
    if (wb) be.free(wb);
  }
  return [y.info, mo.info, io.info];
};

const instanceNormGradKernel: GpuKernel<'instanceNormGrad'> = (inputs, attrs, be) => {
  const [dy, x, mean, invstd] = inputs;
  let k = 4;
  const w = attrs.hasWeight ? inputs[k++] : null;
  const gm = attrs.hasStatGrads ? inputs[k++] : null;
  const gi = attrs.hasStatGrads ? inputs[k++] : null;
  checkF32('instanceNormGrad', ...inputs);
  const N = x.shape[0],
    C = x.shape[1],
    S = sizeOf(x.shape.slice(2)),
    R = N * C;
  const dxo = be.out(x.shape, 'float32'),
    dwo = be.out([C], 'float32'),
    dbo = be.out([C], 'float32');
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
        S: uw(u.u(S)),
        chunks: uw(u.u(chunks)),
        L: uw(u.u(L)),
        R: uw(u.u(R)),
        C: uw(u.u(C)),
        N: uw(u.u(N)),
        gmAt: uw(u.u(aux.at[2])),
        giAt: uw(u.u(aux.at[3])),
        wAt: uw(u.u(aux.at[4])),
        hw: uw(u.u(w ? 1 : 0)),
        hs: uw(u.u(gm ? 1 : 0)),
      };
    };
    if (R > 0 && S > 0) {
      launchGroups(be, R * chunks, {
        key: 'instanceNormGrad:chunk',
        inputs: [
          { name: 'DY', data: gd(dy) },
          { name: 'X', data: gd(x) },
          { name: 'AUX', data: aux.buf },
        ],
        outputs: [{ name: 'P', data: partial }],
        words,
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
      inputs: [
        { name: 'P', data: partial },
        { name: 'AUX', data: aux.buf },
      ],
      outputs: [
        { name: 'RC', data: rowc },
        { name: 'DWDB', data: dwdb },
      ],
      words,
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
      inputs: [
        { name: 'DY', data: gd(dy) },
        { name: 'X', data: gd(x) },
        { name: 'RC', data: rowc },
      ],
      outputs: [{ name: 'DX', data: dxo.data }],
      words,
      body: () => `let r = (idx / ${W.S}) * 4u;
  DX[idx] = RC[r] * DY[idx] - RC[r + 1u] - (X[idx] - RC[r + 3u]) * RC[r + 2u];`,
    });
    be.copyRange(dwdb, 0, dwo.data, 0, C);
    be.copyRange(dwdb, C, dbo.data, 0, C);
  } finally {
    be.free(aux.buf);
    be.free(partial);
    be.free(rowc);
    be.free(dwdb);
  }
  return [dxo.info, dwo.info, dbo.info];
};

export const instanceNormKernels = {
  instanceNorm: instanceNormKernel,
  instanceNormGrad: instanceNormGradKernel,
} satisfies Partial<GpuKernelTable>;
