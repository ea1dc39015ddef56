// CPU kernels of instance norm (forward with statistics, backward).
// Accumulations run in doubles; outputs take the input's dtype.
import { sizeOf } from '../shape.js';
import { CpuBackend, fvals, type CpuKernel, type CpuKernelTable } from './backend.js';
import type { InstanceNormAttrs, InstanceNormGradAttrs } from '../ops/schema.js';

/** 1/σ of a row from the corrected two-pass sums (Σd, Σd² with d = x − mean), biased variance (÷S). */
export function rowInvStd(sd: number, sq: number, S: number, eps: number): number {
  const variance = Math.max((sq - (sd * sd) / S) / S, 0);
  return 1 / Math.sqrt(variance + eps);
}

/**
 * The backward's per-row scalars from Σdy, Σdy·d and Σd (d = x − mu0, mu0 the
 * saved, possibly rounded mean, refined here to μ = mu0 + Σd/S):
 * dx = scale·dy − A − (x − μ)·B, and Σdy·x̂ (the weight gradient's term).
 * `gm`, `gi`: cotangents of the saved mean and 1/σ, used when `stats`.
 */
export function gradRow(
  S: number,
  mu0: number,
  is: number,
  sdy: number,
  sdyd: number,
  sd: number,
  weight: number,
  stats: boolean,
  gm: number,
  gi: number,
): { sdyx: number; scale: number; A: number; mu: number; B: number } {
  const delta = sd / S,
    mu = mu0 + delta;
  const sdyx = (sdyd - delta * sdy) * is;
  const scale = is * weight;
  let A = (scale * sdy) / S,
    B = (scale * sdyx * is) / S;
  if (stats) {
    A -= gm / S;
    B += (gi * is * is * is) / S;
  }
  return { sdyx, scale, A, mu, B };
}

/**
 * inputs [x (N,C,...), weight? (C), bias? (C)] → [y, mean (N,C), invstd (N,C)].
 * Two-pass variance with the compensation term Σd (corrected two-pass
 * algorithm), biased (÷S), as PyTorch's instance norm.
 */
const instanceNormKernel: CpuKernel<'instanceNorm'> = (inputs, attrs, be) => {
  const x = inputs[0];
  let k = 1;
  const w = attrs.hasWeight ? fvals(inputs[k++]) : null;
  const b = attrs.hasBias ? fvals(inputs[k++]) : null;
  const N = x.shape[0],
    C = x.shape[1],
    S = sizeOf(x.shape.slice(2));
  const y = be.out(x.shape, x.dtype),
    mo = be.out([N, C], x.dtype),
    io = be.out([N, C], x.dtype);
  const xv = fvals(x),
    yv = y.values,
    mv = mo.values,
    iv = io.values;
  const eps = attrs.eps;
  for (let nc = 0; nc < N * C; nc++) {
    const c = nc % C,
      base = nc * S;
    let s = 0;
    for (let j = 0; j < S; j++) s += xv[base + j];
    const mean = s / S;
    let sd = 0,
      sq = 0;
    for (let j = 0; j < S; j++) {
      const d = xv[base + j] - mean;
      sd += d;
      sq += d * d;
    }
    const invstd = rowInvStd(sd, sq, S, eps);
    mv[nc] = mean;
    iv[nc] = invstd;
    const scale = invstd * (w ? w[c] : 1),
      shift = b ? b[c] : 0;
    for (let j = 0; j < S; j++) yv[base + j] = (xv[base + j] - mean) * scale + shift;
  }
  return [y.info, mo.info, io.info];
};

/**
 * inputs [dy, x, mean, invstd, weight?, dmean?, dinvstd?] → [dx, dweight (C), dbias (C)].
 * With x̂ = (x − μ)·σ⁻¹: dbias = Σ dy, dweight = Σ dy·x̂,
 * dx = w·σ⁻¹·(dy − mean(dy) − x̂·mean(dy·x̂)) + dμ/S − dσ⁻¹·σ⁻³·(x − μ)/S,
 * the last two terms only when cotangents of the saved statistics are given.
 */
const instanceNormGradKernel: CpuKernel<'instanceNormGrad'> = (inputs, attrs, be) => {
  const [dy, x, mean, invstd] = inputs;
  let k = 4;
  const w = attrs.hasWeight ? fvals(inputs[k++]) : null;
  const gm = attrs.hasStatGrads ? fvals(inputs[k++]) : null;
  const gi = attrs.hasStatGrads ? fvals(inputs[k++]) : null;
  const N = x.shape[0],
    C = x.shape[1],
    S = sizeOf(x.shape.slice(2));
  const dxo = be.out(x.shape, x.dtype),
    dwo = be.out([C], x.dtype),
    dbo = be.out([C], x.dtype);
  const dyv = fvals(dy),
    xv = fvals(x),
    mv = fvals(mean),
    iv = fvals(invstd),
    dxv = dxo.values;
  const dw = new Float64Array(C),
    db = new Float64Array(C);
  for (let nc = 0; nc < N * C; nc++) {
    const c = nc % C,
      base = nc * S,
      mu0 = mv[nc],
      is = iv[nc];
    // The saved mean may be rounded (float32): refine it in the same pass,
    // mean = mu0 + Σ(x − mu0)/S, so that x − mean keeps full precision.
    let sdy = 0,
      sdyd = 0,
      sd = 0;
    for (let j = 0; j < S; j++) {
      const g = dyv[base + j],
        d = xv[base + j] - mu0;
      sdy += g;
      sdyd += g * d;
      sd += d;
    }
    const r = gradRow(S, mu0, is, sdy, sdyd, sd, w ? w[c] : 1, !!(gm && gi), gm ? gm[nc] : 0, gi ? gi[nc] : 0);
    db[c] += sdy;
    dw[c] += r.sdyx;
    const { scale, A, mu, B } = r;
    for (let j = 0; j < S; j++) dxv[base + j] = scale * dyv[base + j] - A - (xv[base + j] - mu) * B;
  }
  dwo.values.set(dw);
  dbo.values.set(db);
  return [dxo.info, dwo.info, dbo.info];
};

export const instanceNormKernels = {
  instanceNorm: instanceNormKernel,
  instanceNormGrad: instanceNormGradKernel,
} satisfies Partial<CpuKernelTable>;
