import {
  conv3dOutputSpatial,
  convGeometry,
  sizeOf,
  type Conv3dAttrs,
  type Conv3dGradInputAttrs,
  type Conv3dGradWeightAttrs,
  type ConvGeometry,
  type TensorInfo,
} from '@largo/core';
import type { GpuData, WebGpuBackend, GpuKernel, GpuKernelTable } from '../backend.js';
import { Uniforms, uw, uwi } from '../wgsl.js';
import { directConv, directFits, directGradWeight, prepareWeights, type DirectGeom } from './conv-soft.js';
import { gemm, isSoftwareAdapter, type Operand } from './igemm.js';
import { checkF32 } from './launch.js';

/*
 * 3-D convolution (PyTorch semantics: cross-correlation, NCDHW, weight
 * [O, C, kd, kh, kw], zero padding, no groups) as three implicit GEMMs on
 * the tiled generator of igemm.ts. With Kc = C·kd·kh·kw reduction rows and
 * P = oD·oH·oW output voxels:
 *
 *   conv3d            Y[O × (N·P)]  = W[O × Kc] · col(x)[Kc × (N·P)]        (+ bias[o])
 *   conv3dGradInput   dX[C × (N·V)] = W'[C × O·taps] · dyᵀ-gather[O·taps × (N·V)] (+ bias[c])
 *   conv3dGradWeight  dW[O × Kc]    = dy[O × (N·P)] · col(x)ᵀ[(N·P) × Kc]     (split-K)
 *
 * col(x) is never materialized: the B loader decodes the reduction index k
 * into (c, a, b, e) and reads x at the tap (zero outside the volume); the
 * column's voxel (and batch) is decoded once per thread, before the K loop.
 * The batch is folded into the GEMM's columns, so small volumes with a
 * larger batch still fill the grid.
 *
 * Grad-input is a gather, not a scatter (no atomics, deterministic): dx
 * voxel z receives dy[(z + p − a·d)/s] from every tap a for which the
 * division is exact. The dx voxels are split into s_d·s_h·s_w stride
 * phases; within a phase the contributing taps are fixed, so each phase is
 * one GEMM over exactly those taps (no zero products for strided
 * convolutions) with dy offsets from a per-axis tap table in the uniforms.
 *
 * Grad-weight reduces over N·P (long) into a small O × Kc output: split-K
 * gives the grid enough workgroups. 1×1×1 convolutions with unit stride and
 * no padding use plain strided loaders (no tap decoding).
 */

type Geom = ConvGeometry;

/** Word indices of the geometry in the uniforms, as WGSL expressions. */
type G = Record<
  | 'C'
  | 'D'
  | 'H'
  | 'W'
  | 'O'
  | 'oD'
  | 'oH'
  | 'oW'
  | 'kd'
  | 'kh'
  | 'kw'
  | 'sd'
  | 'sh'
  | 'sw'
  | 'dd'
  | 'dh'
  | 'dw'
  | 'P'
  | 'DHW'
  | 'HW'
  | 'oHW'
  | 'k3'
  | 'khw'
  | 'Kc'
  | 'pd'
  | 'ph'
  | 'pw',
  string
>;

function geomWords(u: Uniforms, g: Geom): G {
  const w = (v: number) => uw(u.u(v));
  const wi = (v: number) => uwi(u.i(v));
  return {
    C: w(g.C),
    D: w(g.D),
    H: w(g.H),
    W: w(g.W),
    O: w(g.O),
    oD: w(g.oD),
    oH: w(g.oH),
    oW: w(g.oW),
    kd: w(g.kd),
    kh: w(g.kh),
    kw: w(g.kw),
    sd: w(g.stride[0]),
    sh: w(g.stride[1]),
    sw: w(g.stride[2]),
    dd: w(g.dilation[0]),
    dh: w(g.dilation[1]),
    dw: w(g.dilation[2]),
    P: w(g.oD * g.oH * g.oW),
    DHW: w(g.D * g.H * g.W),
    HW: w(g.H * g.W),
    oHW: w(g.oH * g.oW),
    k3: w(g.kd * g.kh * g.kw),
    khw: w(g.kh * g.kw),
    Kc: w(g.C * g.kd * g.kh * g.kw),
    pd: wi(g.padding[0]),
    ph: wi(g.padding[1]),
    pw: wi(g.padding[2]),
  };
}

/** 1×1×1 kernel, unit stride, no padding: col(x) is x itself (P = DHW). */
const pointwise = (g: Geom) =>
  g.kd === 1 && g.kh === 1 && g.kw === 1 && g.padding.every((v) => v === 0) && g.stride.every((v) => v === 1);

/** Statements decoding reduction row k = (c, a, b, e) into names suffixed `s`. */
const tapDecode = (G: G, k: string, s: string) =>
  `let c${s} = ${k} / ${G.k3}; let r${s} = ${k} % ${G.k3}; let a${s} = r${s} / ${G.khw}; let q${s} = r${s} % ${G.khw}; let b${s} = q${s} / ${G.kw}; let e${s} = q${s} % ${G.kw};`;

// ---------------------------------------------------------------- forward

const conv3dKernel: GpuKernel<'conv3d'> = (inputs, attrs, be) => {
  const [x, w, b] = inputs as [TensorInfo, TensorInfo, TensorInfo?];
  checkF32('conv3d', x, w, ...(b ? [b] : []));
  const sp = conv3dOutputSpatial(x.shape, w.shape, attrs);
  const g: Geom = convGeometry(x.shape, w.shape, sp, attrs);
  const { N, C, D, H, W, O, kd, kh, kw } = g;
  const o = be.out([N, O, ...sp], 'float32');
  const P = sizeOf(sp);
  if (o.data.size === 0) return o.info;
  const unit = (v: readonly number[]) => v.every((s) => s === 1);
  const dg: DirectGeom = {
    N,
    C,
    D,
    H,
    W,
    O,
    oD: g.oD,
    oH: g.oH,
    oW: g.oW,
    kd,
    kh,
    kw,
    pd: g.padding[0],
    ph: g.padding[1],
    pw: g.padding[2],
  };
  if (isSoftwareAdapter(be) && unit(g.stride) && unit(g.dilation) && directFits(dg)) {
    const wt = prepareWeights(be, w.dataId as GpuData, dg, false);
    try {
      directConv(be, x.dataId as GpuData, wt, b ? (b.dataId as GpuData) : null, o.data, dg);
    } finally {
      be.free(wt.data);
    }
    return o.info;
  }
  let G!: G;
  let hb = '';
  const pw = pointwise(g);
  const A: Operand = { kFast: true, load: (m, k) => `v = Wt[${m} * ${G.Kc} + ${k}];` };
  const B: Operand = pw
    ? {
        kFast: false,
        setup: (n, s) => `let xb${s} = (${n} / ${G.P}) * ${G.C} * ${G.P} + ${n} % ${G.P};`,
        load: (_n, k, s) => `v = X[xb${s} + ${k} * ${G.P}];`,
      }
    : {
        kFast: false,
        // The column's voxel is decoded once per thread: its window origin and base offset (may be negative: padding).
        setup: (n, s) => `let bb${s} = ${n} / ${G.P}; let bp${s} = ${n} % ${G.P};
  let ox${s} = bp${s} % ${G.oW}; let ot${s} = bp${s} / ${G.oW}; let oy${s} = ot${s} % ${G.oH}; let oz${s} = ot${s} / ${G.oH};
  let iz${s} = i32(oz${s} * ${G.sd}) - ${G.pd}; let iy${s} = i32(oy${s} * ${G.sh}) - ${G.ph}; let ix${s} = i32(ox${s} * ${G.sw}) - ${G.pw};
  let xb${s} = i32(bb${s} * ${G.C} * ${G.DHW}) + iz${s} * i32(${G.HW}) + iy${s} * i32(${G.W}) + ix${s};`,
        // The tap of row k comes decoded from the K-slice table (kFields).
        load: (_n, _k, s) => `let z = iz${s} + kf_za[slK]; let y = iy${s} + kf_yb[slK]; let x = ix${s} + kf_xe[slK];
      if (u32(z) < ${G.D} && u32(y) < ${G.H} && u32(x) < ${G.W}) { v = X[u32(xb${s} + kf_xo[slK])]; }`,
      };
  const kFields = pw
    ? undefined
    : {
        names: ['xo', 'za', 'yb', 'xe'],
        type: 'i32' as const,
        decode: (k: string) => `${tapDecode(G, k, '')}
      let za = i32(a * ${G.dd}); let yb = i32(b * ${G.dh}); let xe = i32(e * ${G.dw});
      let xo = i32(c * ${G.DHW}) + za * i32(${G.HW}) + yb * i32(${G.W}) + xe;`,
      };
  gemm(be, {
    key: `conv3d:${pw ? 'pw' : 'gen'}`,
    M: O,
    N: N * P,
    K: C * kd * kh * kw,
    words: (u) => {
      G = geomWords(u, g);
      hb = uw(u.u(b ? 1 : 0));
    },
    loadInputs: [
      { name: 'X', data: x.dataId as GpuData },
      { name: 'Wt', data: w.dataId as GpuData },
    ],
    // The bias is a flag (one pipeline); without one, w stands in as an unread binding.
    epiInputs: [{ name: 'Bias', data: (b ?? w).dataId as GpuData }],
    out: o.data,
    A,
    B,
    kFields,
    store: (m, n, acc) =>
      `{ var r = ${acc}; if (${hb} != 0u) { r = r + Bias[${m}]; } Y[((${n} / ${G.P}) * ${G.O} + ${m}) * ${G.P} + ${n} % ${G.P}] = r; }`,
  });
  return o.info;
};

// ------------------------------------------------------------- grad input

/** The taps of one axis that reach dx positions ≡ ph (mod s): [tap, dy offset q] with dy index = j + q. */
function phaseTaps(ph: number, k: number, s: number, p: number, d: number): [number, number][] {
  const out: [number, number][] = [];
  for (let a = 0; a < k; a++) {
    const r = ph + p - a * d;
    if (((r % s) + s) % s === 0) out.push([a, r / s]);
  }
  return out;
}

const conv3dGradInputKernel: GpuKernel<'conv3dGradInput'> = (inputs, attrs, be) => {
  const [dy, w, b] = inputs as [TensorInfo, TensorInfo, TensorInfo?];
  checkF32('conv3dGradInput', dy, w, ...(b ? [b] : []));
  const g: Geom = convGeometry(attrs.inputShape, w.shape, dy.shape.slice(2), attrs);
  const { N, C, D, H, W, O, kd, kh, kw, oD, oH, oW } = g;
  const o = be.out(attrs.inputShape, 'float32');
  if (o.data.size === 0) return o.info;
  const [sd, sh, sw] = attrs.stride;
  const ks = [kd, kh, kw];
  // Software adapters, unit stride and dilation, padding < kernel: dx = conv(dy, flipped wᵀ, padding k − 1 − p).
  const pads = attrs.padding;
  const dg: DirectGeom = {
    N,
    C: O,
    D: oD,
    H: oH,
    W: oW,
    O: C,
    oD: D,
    oH: H,
    oW: W,
    kd,
    kh,
    kw,
    pd: kd - 1 - pads[0],
    ph: kh - 1 - pads[1],
    pw: kw - 1 - pads[2],
  };
  if (
    isSoftwareAdapter(be) &&
    [...attrs.stride, ...attrs.dilation].every((v) => v === 1) &&
    dg.pd >= 0 &&
    dg.ph >= 0 &&
    dg.pw >= 0 &&
    directFits(dg)
  ) {
    const wt = prepareWeights(be, w.dataId as GpuData, dg, true);
    try {
      directConv(be, dy.dataId as GpuData, wt, b ? (b.dataId as GpuData) : null, o.data, dg);
    } finally {
      be.free(wt.data);
    }
    return o.info;
  }
  const cap = Math.max(8, kd, kh, kw);
  for (let pz = 0; pz < sd; pz++)
    for (let py = 0; py < sh; py++)
      for (let px = 0; px < sw; px++) {
        const ph = [pz, py, px];
        const ext = [D, H, W].map((n, i) => Math.max(0, Math.ceil((n - ph[i]) / attrs.stride[i])));
        if (sizeOf(ext) === 0) continue;
        const taps = [0, 1, 2].map((i) =>
          phaseTaps(ph[i], ks[i], attrs.stride[i], attrs.padding[i], attrs.dilation[i]),
        );
        const [na, nb, ne] = taps.map((t) => t.length);
        let G!: G;
        let hb = '';
        let F!: Record<
          'pz' | 'py' | 'px' | 'jD' | 'jH' | 'jW' | 'JV' | 'ne' | 'nbe' | 'nabe' | 'tz' | 'ty' | 'tx',
          string
        >;
        const words = (u: Uniforms) => {
          G = geomWords(u, g);
          hb = uw(u.u(b ? 1 : 0));
          const wv = (v: number) => uw(u.u(v));
          F = {
            pz: wv(pz),
            py: wv(py),
            px: wv(px),
            jD: wv(ext[0]),
            jH: wv(ext[1]),
            jW: wv(ext[2]),
            JV: wv(sizeOf(ext)),
            ne: wv(ne),
            nbe: wv(nb * ne),
            nabe: wv(na * nb * ne),
            tz: '',
            ty: '',
            tx: '',
          };
          // Tap tables, [tap, q] pairs, `cap` entries per axis: one layout (one pipeline) for every phase and every kernel size ≤ 8.
          const at = [0, 0, 0];
          for (let i = 0; i < 3; i++) {
            at[i] = u.length;
            for (let j = 0; j < cap; j++) {
              u.u(taps[i][j]?.[0] ?? 0);
              u.i(taps[i][j]?.[1] ?? 0);
            }
          }
          F.tz = `${at[0]}u`;
          F.ty = `${at[1]}u`;
          F.tx = `${at[2]}u`;
        };
        // Row k = (o, ia, ib, ie) of the phase's taps, decoded once per K-slice: the dy offset of the tap (relative to the
        // column's voxel), its three bounds shifts, and the weight offset.
        const kFields = {
          names: ['dyo', 'qa', 'qb', 'qc', 'wo'],
          type: 'i32' as const,
          decode: (
            k: string,
          ) => `let o = ${k} / ${F.nabe}; let r = ${k} % ${F.nabe}; let ia = r / ${F.nbe}; let r2 = r % ${F.nbe}; let ib = r2 / ${F.ne}; let ie = r2 % ${F.ne};
      let a = tw(${F.tz} + 2u * ia); let b = tw(${F.ty} + 2u * ib); let e = tw(${F.tx} + 2u * ie);
      let qa = bitcast<i32>(tw(${F.tz} + 2u * ia + 1u)); let qb = bitcast<i32>(tw(${F.ty} + 2u * ib + 1u)); let qc = bitcast<i32>(tw(${F.tx} + 2u * ie + 1u));
      let dyo = i32(o * ${G.P}) + qa * i32(${G.oHW}) + qb * i32(${G.oW}) + qc;
      let wo = i32(o * ${G.C} * ${G.k3} + (a * ${G.kh} + b) * ${G.kw} + e);`,
        };
        const A: Operand = { kFast: true, load: (c) => `v = Wt[u32(kf_wo[slK]) + ${c} * ${G.k3}];` };
        const B: Operand = {
          kFast: false,
          setup: (n, s) => `let bb${s} = ${n} / ${F.JV}; let vv${s} = ${n} % ${F.JV};
  let jx${s} = i32(vv${s} % ${F.jW}); let jt${s} = vv${s} / ${F.jW}; let jy${s} = i32(jt${s} % ${F.jH}); let jz${s} = i32(jt${s} / ${F.jH});
  let jb${s} = i32(bb${s} * ${G.O} * ${G.P}) + jz${s} * i32(${G.oHW}) + jy${s} * i32(${G.oW}) + jx${s};`,
          load: (_n, _k, s) => `let z = jz${s} + kf_qa[slK]; let y = jy${s} + kf_qb[slK]; let x = jx${s} + kf_qc[slK];
      if (u32(z) < ${G.oD} && u32(y) < ${G.oH} && u32(x) < ${G.oW}) { v = DY[u32(jb${s} + kf_dyo[slK])]; }`,
        };
        gemm(be, {
          key: 'conv3dGradInput',
          M: C,
          N: N * sizeOf(ext),
          K: O * na * nb * ne,
          words,
          helpers: 'fn tw(i: u32) -> u32 { return prm.v[i >> 2u][i & 3u]; }',
          loadInputs: [
            { name: 'Wt', data: w.dataId as GpuData },
            { name: 'DY', data: dy.dataId as GpuData },
          ],
          epiInputs: [{ name: 'Bias', data: (b ?? w).dataId as GpuData }],
          out: o.data,
          A,
          B,
          kFields,
          store: (m, n, acc) => `{ let bb = ${n} / ${F.JV}; let vv = ${n} % ${F.JV};
    let x = ${F.px} + ${G.sw} * (vv % ${F.jW}); let t = vv / ${F.jW}; let y = ${F.py} + ${G.sh} * (t % ${F.jH}); let z = ${F.pz} + ${G.sd} * (t / ${F.jH});
    var r = ${acc}; if (${hb} != 0u) { r = r + Bias[${m}]; }
    Y[(bb * ${G.C} + ${m}) * ${G.DHW} + z * ${G.HW} + y * ${G.W} + x] = r; }`,
        });
      }
  return o.info;
};

// ------------------------------------------------------------ grad weight

const conv3dGradWeightKernel: GpuKernel<'conv3dGradWeight'> = (inputs, attrs, be) => {
  const [x, dy] = inputs;
  checkF32('conv3dGradWeight', x, dy);
  const g: Geom = convGeometry(x.shape, attrs.weightShape, dy.shape.slice(2), attrs);
  const { N, C, D, H, W, O, kd, kh, kw, oD, oH, oW } = g;
  const o = be.out(attrs.weightShape, 'float32');
  if (o.data.size === 0) return o.info;
  const P = oD * oH * oW;
  const dg: DirectGeom = {
    N,
    C,
    D,
    H,
    W,
    O,
    oD,
    oH,
    oW,
    kd,
    kh,
    kw,
    pd: g.padding[0],
    ph: g.padding[1],
    pw: g.padding[2],
  };
  if (isSoftwareAdapter(be) && [...g.stride, ...g.dilation].every((v) => v === 1) && directFits(dg)) {
    directGradWeight(be, x.dataId as GpuData, dy.dataId as GpuData, o.data, dg);
    return o.info;
  }
  const pw = pointwise(g);
  let G!: G;
  // Row k = (batch, output voxel), decoded once per K-slice: the dy offset, and the x offset and coordinates of
  // the voxel's window origin (before padding and taps).
  const kFields = {
    names: pw ? ['dyo', 'xb'] : ['dyo', 'xb', 'zo', 'yo', 'xq'],
    type: 'i32' as const,
    decode: (k: string) =>
      pw
        ? `let bb = ${k} / ${G.P}; let p = ${k} % ${G.P}; let dyo = i32(bb * ${G.O} * ${G.P} + p); let xb = i32(bb * ${G.C} * ${G.P} + p);`
        : `let bb = ${k} / ${G.P}; let p = ${k} % ${G.P};
      let ox = p % ${G.oW}; let t = p / ${G.oW}; let oy = t % ${G.oH}; let oz = t / ${G.oH};
      let zo = i32(oz * ${G.sd}); let yo = i32(oy * ${G.sh}); let xq = i32(ox * ${G.sw});
      let dyo = i32(bb * ${G.O} * ${G.P} + p);
      let xb = i32(bb * ${G.C} * ${G.DHW}) + zo * i32(${G.HW}) + yo * i32(${G.W}) + xq;`,
  };
  const A: Operand = { kFast: true, load: (m) => `v = DY[u32(kf_dyo[slK]) + ${m} * ${G.P}];` };
  const B: Operand = pw
    ? { kFast: true, load: (n) => `v = X[u32(kf_xb[slK]) + ${n} * ${G.P}];` }
    : {
        // mn-fast: a thread keeps one column (tap) for all its slots, so the tap is decoded once per thread.
        kFast: false,
        // The column is a tap (c, a, b, e): its shifts and offset relative to a window origin.
        setup: (n, s) => `${tapDecode(G, n, s)}
  let fz${s} = i32(a${s} * ${G.dd}) - ${G.pd}; let fy${s} = i32(b${s} * ${G.dh}) - ${G.ph}; let fx${s} = i32(e${s} * ${G.dw}) - ${G.pw};
  let co${s} = i32(c${s} * ${G.DHW}) + fz${s} * i32(${G.HW}) + fy${s} * i32(${G.W}) + fx${s};`,
        load: (_n, _k, s) => `let z = kf_zo[slK] + fz${s}; let y = kf_yo[slK] + fy${s}; let x = kf_xq[slK] + fx${s};
      if (u32(z) < ${G.D} && u32(y) < ${G.H} && u32(x) < ${G.W}) { v = X[u32(kf_xb[slK] + co${s})]; }`,
      };
  gemm(be, {
    key: `conv3dGradWeight:${pw ? 'pw' : 'gen'}`,
    M: O,
    N: C * kd * kh * kw,
    K: N * P,
    words: (u) => {
      G = geomWords(u, g);
    },
    loadInputs: [
      { name: 'DY', data: dy.dataId as GpuData },
      { name: 'X', data: x.dataId as GpuData },
    ],
    out: o.data,
    A,
    B,
    kFields,
    store: (m, n, acc) => `Y[${m} * ${G.Kc} + ${n}] = ${acc};`,
  });
  return o.info;
};

export const convKernels = {
  conv3d: conv3dKernel,
  conv3dGradInput: conv3dGradInputKernel,
  conv3dGradWeight: conv3dGradWeightKernel,
} satisfies Partial<GpuKernelTable>;
