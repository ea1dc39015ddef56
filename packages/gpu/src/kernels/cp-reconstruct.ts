import { type TensorInfo } from '@largo/core';
import type { GpuData, WebGpuBackend, GpuKernel, GpuKernelTable } from '../backend.js';
import { uw, type Uniforms } from '../wgsl.js';
import { gemm } from './igemm.js';
import { checkF32, gd, launch1d, pack } from './launch.js';

/*
 * WebGPU kernels of LARGO's CP reconstruction: W[o, i, s] = Σ_r w_r·A[o, r]·B[i, r]·K[s, r].
 * Drop-in replacements of the CPU kernels in packages/core/src/cpu/ (same
 * op names, inputs, attrs and outputs). Accumulation is f32 (the CPU uses
 * doubles), with tree reductions in workgroup memory, so errors grow with log(length).
 *
 *  - cpReconstruct (+Grad): GEMM-shaped contractions on the tiled
 *    implicit-GEMM generator; the small factors (weights, aIn, aKernel) are
 *    packed into one buffer by buffer copies so that no dispatch binds more
 *    than 4 storage buffers.
 */

function cpDims(wt: TensorInfo, ao: TensorInfo, ai: TensorInfo, ak: TensorInfo) {
  return { R: wt.shape[0], O: ao.shape[0], I: ai.shape[0], S: ak.shape[0] };
}

/** Uniform words of the CP kernels and the packed factor buffer [w R | aIn I·R | aKernel S·R]. */
function cpWords(d: { R: number; O: number; I: number; S: number }) {
  const W: Record<string, string> = {};
  const words = (u: Uniforms) => {
    W.R = uw(u.u(d.R));
    W.O = uw(u.u(d.O));
    W.I = uw(u.u(d.I));
    W.S = uw(u.u(d.S));
    W.IS = uw(u.u(d.I * d.S));
    W.bAt = uw(u.u(d.R));
    W.kAt = uw(u.u(d.R + d.I * d.R));
  };
  /** KR[(i, s), r] = w_r·aIn[i, r]·aKernel[s, r] from the packed buffer PK. */
  const kr = (i: string, s: string, r: string) =>
    `PK[${r}] * PK[${W.bAt} + ${i} * ${W.R} + ${r}] * PK[${W.kAt} + ${s} * ${W.R} + ${r}]`;
  return { W, words, kr };
}

const cpReconstructKernel: GpuKernel<'cpReconstruct'> = (inputs, _attrs, be) => {
  const [wt, ao, ai, ak] = inputs;
  checkF32('cpReconstruct', ...inputs);
  const d = cpDims(wt, ao, ai, ak);
  const o = be.out([d.O, d.I, d.S], 'float32');
  if (o.data.size === 0) return o.info;
  const pk = pack(be, [wt, ai, ak]);
  try {
    const { W, words, kr } = cpWords(d);
    gemm(be, {
      key: 'cpReconstruct',
      M: d.O,
      N: d.I * d.S,
      K: d.R,
      words,
      loadInputs: [
        { name: 'AO', data: gd(ao) },
        { name: 'PK', data: pk.buf },
      ],
      out: o.data,
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
};

const cpReconstructGradKernel: GpuKernel<'cpReconstructGrad'> = (inputs, _attrs, be) => {
  const [gW, wt, ao, ai, ak] = inputs;
  checkF32('cpReconstructGrad', ...inputs);
  const d = cpDims(wt, ao, ai, ak);
  const dwo = be.out([d.R], 'float32'),
    dao = be.out([d.O, d.R], 'float32'),
    dio = be.out([d.I, d.R], 'float32'),
    dko = be.out([d.S, d.R], 'float32');
  const outs = [dwo.info, dao.info, dio.info, dko.info];
  if (d.R === 0) return outs;
  const zero = (x: GpuData) =>
    launch1d(be, x.size, { key: 'zeros', inputs: [], outputs: [{ name: 'P', data: x }], body: () => 'P[idx] = 0.0f;' });
  if (d.O * d.I * d.S === 0) {
    for (const x of [dwo, dao, dio, dko]) zero(x.data);
    return outs;
  }
  const pk = pack(be, [wt, ai, ak]);
  const H = be.alloc('float32', d.I * d.S * d.R);
  const T = be.alloc('float32', d.I * d.R);
  try {
    const { W, words, kr } = cpWords(d);
    // daOut[o, r] = Σ_(i,s) dW[o, (i,s)]·KR[(i,s), r]
    gemm(be, {
      key: 'cpGrad:daOut',
      M: d.O,
      N: d.R,
      K: d.I * d.S,
      words,
      loadInputs: [
        { name: 'GW', data: gd(gW) },
        { name: 'PK', data: pk.buf },
      ],
      out: dao.data,
      A: { kFast: true, load: (m, k) => `v = GW[${m} * ${W.IS} + ${k}];` },
      B: { kFast: false, load: (n, k) => `v = ${kr(`(${k} / ${W.S})`, `(${k} % ${W.S})`, n)};` },
      store: (m, n, acc) => `Y[${m} * ${W.R} + ${n}] = ${acc};`,
    });
    // H[(i,s), r] = Σ_o dW[o, (i,s)]·aOut[o, r]
    gemm(be, {
      key: 'cpGrad:H',
      M: d.I * d.S,
      N: d.R,
      K: d.O,
      words,
      loadInputs: [
        { name: 'GW', data: gd(gW) },
        { name: 'AO', data: gd(ao) },
      ],
      out: H,
      A: { kFast: false, load: (m, k) => `v = GW[${k} * ${W.IS} + ${m}];` },
      B: { kFast: false, load: (n, k) => `v = AO[${k} * ${W.R} + ${n}];` },
      store: (m, n, acc) => `Y[${m} * ${W.R} + ${n}] = ${acc};`,
    });
    // T[i, r] = Σ_s H[(i,s), r]·aKernel[s, r];  daIn = w·T
    launch1d(be, d.I * d.R, {
      key: 'cpGrad:T',
      inputs: [
        { name: 'H', data: H },
        { name: 'PK', data: pk.buf },
      ],
      outputs: [
        { name: 'T', data: T },
        { name: 'DI', data: dio.data },
      ],
      words,
      body: () => `let i = idx / ${W.R}; let r = idx % ${W.R};
  var t = 0.0f;
  for (var s = 0u; s < ${W.S}; s = s + 1u) { t = t + H[(i * ${W.S} + s) * ${W.R} + r] * PK[${W.kAt} + s * ${W.R} + r]; }
  T[idx] = t; DI[idx] = PK[r] * t;`,
    });
    // dweights[r] = Σ_i aIn[i, r]·T[i, r]
    launch1d(be, d.R, {
      key: 'cpGrad:dw',
      inputs: [
        { name: 'T', data: T },
        { name: 'PK', data: pk.buf },
      ],
      outputs: [{ name: 'DW', data: dwo.data }],
      words,
      body: () => `var a = 0.0f;
  for (var i = 0u; i < ${W.I}; i = i + 1u) { a = a + PK[${W.bAt} + i * ${W.R} + idx] * T[i * ${W.R} + idx]; }
  DW[idx] = a;`,
    });
    // daKernel[s, r] = Σ_i w_r·aIn[i, r]·H[(i,s), r]
    launch1d(be, d.S * d.R, {
      key: 'cpGrad:daK',
      inputs: [
        { name: 'H', data: H },
        { name: 'PK', data: pk.buf },
      ],
      outputs: [{ name: 'DK', data: dko.data }],
      words,
      body: () => `let s = idx / ${W.R}; let r = idx % ${W.R};
  var a = 0.0f;
  for (var i = 0u; i < ${W.I}; i = i + 1u) { a = a + PK[r] * PK[${W.bAt} + i * ${W.R} + r] * H[(i * ${W.S} + s) * ${W.R} + r]; }
  DK[idx] = a;`,
    });
  } finally {
    be.free(pk.buf);
    be.free(H);
    be.free(T);
  }
  return outs;
};

export const cpReconstructKernels = {
  cpReconstruct: cpReconstructKernel,
  cpReconstructGrad: cpReconstructGradKernel,
} satisfies Partial<GpuKernelTable>;
