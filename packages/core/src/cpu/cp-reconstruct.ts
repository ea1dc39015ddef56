// CPU kernels of LARGO's CP reconstruction: W[o,i,s] = Σ_r w_r·A[o,r]·B[i,r]·K[s,r],
// and its backward. Both are GEMM-shaped (cpu/gemm.ts); accumulations in doubles.
import { CpuBackend, fvals, type CpuKernel, type CpuKernelTable } from './backend.js';
import { gemmNNAcc, gemmNT } from './gemm.js';

type FArr = Float32Array | Float64Array;

/** The factor as float64 (the storage itself when it already is). */
function asF64(v: FArr): Float64Array {
  return v instanceof Float64Array ? v : Float64Array.from(v);
}

/**
 * inputs [weights (R), aOut (O,R), aIn (I,R), aKernel (S,R)] → W (O,I,S).
 * For each input channel i: KR_i[s,r] = w_r·aIn[i,r]·aKernel[s,r] (S×R), then
 * W[:, i, :] = aOut · KR_iᵀ, a GEMM of O×S outputs with dot products of length R.
 * Cost O·I·S·R multiply-adds, extra memory S·R.
 */
const cpReconstructKernel: CpuKernel<'cpReconstruct'> = (inputs, _attrs, be) => {
  const [wt, ao, ai, ak] = inputs;
  const R = wt.shape[0],
    O = ao.shape[0],
    I = ai.shape[0],
    S = ak.shape[0];
  const w = fvals(wt),
    A = asF64(fvals(ao)),
    B = fvals(ai),
    K = fvals(ak);
  const o = be.out([O, I, S], wt.dtype);
  const W = o.values;
  const kr = new Float64Array(S * R),
    cs = new Float64Array(O * S);
  for (let i = 0; i < I; i++) {
    const bi = i * R;
    for (let s = 0; s < S; s++) {
      const ks = s * R;
      for (let r = 0; r < R; r++) kr[ks + r] = w[r] * B[bi + r] * K[ks + r];
    }
    cs.fill(0);
    gemmNT(O, S, R, A, 0, R, kr, 0, R, cs, 0, S);
    for (let q = 0; q < O; q++) {
      const src = q * S,
        dst = (q * I + i) * S;
      for (let s = 0; s < S; s++) W[dst + s] = cs[src + s];
    }
  }
  return o.info;
};

/**
 * inputs [dW (O,I,S), weights, aOut, aIn, aKernel] → [dweights, daOut, daIn, daKernel].
 * Per input channel i, with G_i = dW[:, i, :] (O×S):
 *   daOut += G_i · KR_i               (O×S·S×R, KR_i as in the forward)
 *   H_i    = G_iᵀ · aOut              (S×O·O×R)
 *   T_i[r] = Σ_s H_i[s,r]·aKernel[s,r]
 *   daIn[i,r] = w_r·T_i[r],  dw[r] += aIn[i,r]·T_i[r],  daKernel += w_r·aIn[i,r]·H_i
 * Two GEMM-shaped contractions of O·I·S·R each: twice the forward's cost.
 */
const cpReconstructGradKernel: CpuKernel<'cpReconstructGrad'> = (inputs, _attrs, be) => {
  const [gW, wt, ao, ai, ak] = inputs;
  const R = wt.shape[0],
    O = ao.shape[0],
    I = ai.shape[0],
    S = ak.shape[0];
  const G = fvals(gW),
    w = fvals(wt),
    A = asF64(fvals(ao)),
    B = fvals(ai),
    K = fvals(ak);
  const dt = wt.dtype;
  const dwo = be.out([R], dt),
    dao = be.out([O, R], dt),
    dio = be.out([I, R], dt),
    dko = be.out([S, R], dt);
  const dB = dio.values;
  // Accumulators and scratch in float64 (sums over the I blocks; monomorphic GEMM loops).
  const dA = new Float64Array(O * R),
    dw = new Float64Array(R),
    dK = new Float64Array(S * R),
    H = new Float64Array(S * R);
  const kr = new Float64Array(S * R);
  for (let i = 0; i < I; i++) {
    const bi = i * R;
    for (let s = 0; s < S; s++) {
      const ks = s * R;
      for (let r = 0; r < R; r++) kr[ks + r] = w[r] * B[bi + r] * K[ks + r];
    }
    // daOut[o, r] += Σ_s G[o, i, s]·KR_i[s, r]
    gemmNNAcc(O, R, S, G, i * S, I * S, 1, kr, R, dA, R);
    // H_i[s, r] = Σ_o G[o, i, s]·aOut[o, r]
    H.fill(0);
    gemmNNAcc(S, R, O, G, i * S, 1, I * S, A, R, H, R);
    for (let r = 0; r < R; r++) {
      let t = 0;
      for (let s = 0; s < S; s++) t += H[s * R + r] * K[s * R + r];
      dB[bi + r] = w[r] * t;
      dw[r] += B[bi + r] * t;
    }
    for (let s = 0; s < S; s++) {
      const ks = s * R;
      for (let r = 0; r < R; r++) dK[ks + r] += w[r] * B[bi + r] * H[ks + r];
    }
  }
  dwo.values.set(dw);
  dao.values.set(dA);
  dko.values.set(dK);
  return [dwo.info, dao.info, dio.info, dko.info];
};

export const cpReconstructKernels = {
  cpReconstruct: cpReconstructKernel,
  cpReconstructGrad: cpReconstructGradKernel,
} satisfies Partial<CpuKernelTable>;
