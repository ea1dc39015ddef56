// Float64 oracle of the network ops: textbook formulas over multi-indices,
// written independently of the fast kernels (no shared helpers, no tricks
// beyond subtracting the max where the textbook does).
import type { Philox } from '../rng.js';
import { flatIndex, multiIndex, refTensor, type RefTensor } from './types.js';

function prod(xs: readonly number[]): number {
  let p = 1;
  for (const v of xs) p *= v;
  return p;
}

/** Softmax along `axis`: exp(x − max)/Σ exp(x − max). */
export function refSoftmax(x: RefTensor, axis: number): RefTensor {
  const out = refTensor(x.shape);
  const n = x.shape[axis];
  for (let i = 0; i < x.data.length; i++) {
    const idx = multiIndex(x.shape, i);
    const lane: number[] = [];
    for (let j = 0; j < n; j++) { const q = [...idx]; q[axis] = j; lane.push(x.data[flatIndex(x.shape, q)]); }
    const m = Math.max(...lane);
    let s = 0;
    for (const v of lane) s += Math.exp(v - m);
    out.data[i] = Math.exp(x.data[i] - m) / s;
  }
  return out;
}

/** log softmax along `axis`: x − (max + log Σ exp(x − max)). */
export function refLogSoftmax(x: RefTensor, axis: number): RefTensor {
  const out = refTensor(x.shape);
  const n = x.shape[axis];
  for (let i = 0; i < x.data.length; i++) {
    const idx = multiIndex(x.shape, i);
    const lane: number[] = [];
    for (let j = 0; j < n; j++) { const q = [...idx]; q[axis] = j; lane.push(x.data[flatIndex(x.shape, q)]); }
    const m = Math.max(...lane);
    let s = 0;
    for (const v of lane) s += Math.exp(v - m);
    out.data[i] = x.data[i] - m - Math.log(s);
  }
  return out;
}

/** Mean and biased variance (two-pass) of every (n, c) over the spatial axes. */
function refInstanceStats(x: RefTensor) {
  const N = x.shape[0], C = x.shape[1], S = prod(x.shape.slice(2));
  const mean = new Float64Array(N * C), vr = new Float64Array(N * C);
  for (let n = 0; n < N; n++) {
    for (let c = 0; c < C; c++) {
      let s = 0;
      for (let j = 0; j < S; j++) s += x.data[(n * C + c) * S + j];
      const m = s / S;
      let q = 0;
      for (let j = 0; j < S; j++) { const d = x.data[(n * C + c) * S + j] - m; q += d * d; }
      mean[n * C + c] = m; vr[n * C + c] = q / S;
    }
  }
  return { N, C, S, mean, vr };
}

/** Instance norm of x [N, C, ...]: (x − mean)/sqrt(var + eps)·weight + bias. */
export function refInstanceNorm(x: RefTensor, weight: RefTensor | null, bias: RefTensor | null, eps: number): RefTensor {
  const { N, C, S, mean, vr } = refInstanceStats(x);
  const out = refTensor(x.shape);
  for (let n = 0; n < N; n++) {
    for (let c = 0; c < C; c++) {
      const k = n * C + c;
      for (let j = 0; j < S; j++) {
        const xh = (x.data[k * S + j] - mean[k]) / Math.sqrt(vr[k] + eps);
        out.data[k * S + j] = xh * (weight ? weight.data[c] : 1) + (bias ? bias.data[c] : 0);
      }
    }
  }
  return out;
}

/**
 * Backward of instance norm by the explicit Jacobian
 * ∂y_j/∂x_k = w·σ⁻¹·(δ_jk − 1/S − x̂_j·x̂_k/S), summed against dy; plus the
 * cotangents of the statistics (mean, invstd) when given.
 */
export function refInstanceNormGrad(dy: RefTensor, x: RefTensor, weight: RefTensor | null, eps: number,
  statGrads?: { dmean: RefTensor; dinvstd: RefTensor }): { dx: RefTensor; dweight: RefTensor; dbias: RefTensor } {
  const { N, C, S, mean, vr } = refInstanceStats(x);
  const dx = refTensor(x.shape), dweight = refTensor([C]), dbias = refTensor([C]);
  for (let n = 0; n < N; n++) {
    for (let c = 0; c < C; c++) {
      const k = n * C + c, sig = Math.sqrt(vr[k] + eps), w = weight ? weight.data[c] : 1;
      const xh = (j: number) => (x.data[k * S + j] - mean[k]) / sig;
      for (let j = 0; j < S; j++) {
        dbias.data[c] += dy.data[k * S + j];
        dweight.data[c] += dy.data[k * S + j] * xh(j);
      }
      for (let q = 0; q < S; q++) {
        let g = 0;
        for (let j = 0; j < S; j++) g += dy.data[k * S + j] * (w / sig) * ((j === q ? 1 : 0) - 1 / S - (xh(j) * xh(q)) / S);
        if (statGrads) {
          // ∂mean/∂x_q = 1/S; ∂(var + eps)^(−1/2)/∂x_q = −(var + eps)^(−3/2)·(x_q − mean)/S.
          g += statGrads.dmean.data[k] / S;
          g -= (statGrads.dinvstd.data[k] * (x.data[k * S + q] - mean[k])) / (S * sig * sig * sig);
        }
        dx.data[k * S + q] = g;
      }
    }
  }
  return { dx, dweight, dbias };
}

export interface RefCrossEntropyOpts { ignoreIndex?: number; weight?: RefTensor | null }

/** Per-element −log softmax(logits)[target] with class weights; returns the weighted mean. */
export function refCrossEntropy(logits: RefTensor, target: RefTensor, opts: RefCrossEntropyOpts = {}): RefTensor {
  const ig = opts.ignoreIndex ?? -100;
  const C = logits.shape[1];
  let num = 0, den = 0;
  for (let i = 0; i < target.data.length; i++) {
    const t = target.data[i];
    if (t === ig) continue;
    if (t < 0 || t >= C) throw new Error(`reference crossEntropy: label ${t} out of range`);
    const ti = multiIndex(target.shape, i);
    const at = (c: number) => logits.data[flatIndex(logits.shape, [ti[0], c, ...ti.slice(1)])];
    let m = -Infinity;
    for (let c = 0; c < C; c++) m = Math.max(m, at(c));
    let s = 0;
    for (let c = 0; c < C; c++) s += Math.exp(at(c) - m);
    const w = opts.weight ? opts.weight.data[t] : 1;
    num += w * -(at(t) - m - Math.log(s));
    den += w;
  }
  return refTensor([], [num / den]);
}

/** d mean-CE / d logits, times the scalar dy. */
export function refCrossEntropyGrad(logits: RefTensor, target: RefTensor, dy: number, opts: RefCrossEntropyOpts = {}): RefTensor {
  const ig = opts.ignoreIndex ?? -100;
  const C = logits.shape[1];
  const out = refTensor(logits.shape);
  let den = 0;
  for (let i = 0; i < target.data.length; i++) {
    const t = target.data[i];
    if (t !== ig) den += opts.weight ? opts.weight.data[t] : 1;
  }
  for (let i = 0; i < target.data.length; i++) {
    const t = target.data[i];
    if (t === ig) continue;
    const ti = multiIndex(target.shape, i);
    const pos = (c: number) => flatIndex(logits.shape, [ti[0], c, ...ti.slice(1)]);
    let m = -Infinity;
    for (let c = 0; c < C; c++) m = Math.max(m, logits.data[pos(c)]);
    let s = 0;
    for (let c = 0; c < C; c++) s += Math.exp(logits.data[pos(c)] - m);
    const w = opts.weight ? opts.weight.data[t] : 1;
    for (let c = 0; c < C; c++) {
      const p = Math.exp(logits.data[pos(c)] - m) / s;
      out.data[pos(c)] = (dy * w * (p - (c === t ? 1 : 0))) / den;
    }
  }
  return out;
}

/** Mean binary cross-entropy on logits: −[t·log σ(x) + (1 − t)·log(1 − σ(x))], with log σ written stably. */
export function refBceWithLogits(x: RefTensor, t: RefTensor): RefTensor {
  let s = 0;
  for (let i = 0; i < x.data.length; i++) {
    const v = x.data[i];
    // log σ(v) = −log(1 + e^{−v}); log(1 − σ(v)) = −v − log(1 + e^{−v}); each evaluated on the safe side.
    const logSig = v >= 0 ? -Math.log1p(Math.exp(-v)) : v - Math.log1p(Math.exp(v));
    const log1mSig = v >= 0 ? -v - Math.log1p(Math.exp(-v)) : -Math.log1p(Math.exp(v));
    s += -(t.data[i] * logSig + (1 - t.data[i]) * log1mSig);
  }
  return refTensor([], [s / x.data.length]);
}

/** Gradients of the mean BCE: (σ(x) − t)/n and −x/n, times dy. */
export function refBceWithLogitsGrad(x: RefTensor, t: RefTensor, dy: number): { dlogits: RefTensor; dtarget: RefTensor } {
  const n = x.data.length;
  const dlogits = refTensor(x.shape), dtarget = refTensor(x.shape);
  for (let i = 0; i < n; i++) {
    const sig = 1 / (1 + Math.exp(-x.data[i]));
    dlogits.data[i] = (dy * (sig - t.data[i])) / n;
    dtarget.data[i] = (dy * -x.data[i]) / n;
  }
  return { dlogits, dtarget };
}

export interface RefDiceOpts { smooth?: number; batchDice?: boolean; reduction?: 'mean' | 'none' }

/** Dice coefficient of every group: (n, c), or c with batchDice. Returns the sums too. */
function refDiceParts(p: RefTensor, t: RefTensor, batchDice: boolean, smooth: number) {
  const N = p.shape[0], C = p.shape[1];
  const G = batchDice ? C : N * C;
  const I = new Float64Array(G), P = new Float64Array(G), T = new Float64Array(G);
  for (let i = 0; i < p.data.length; i++) {
    const idx = multiIndex(p.shape, i);
    const g = batchDice ? idx[1] : idx[0] * C + idx[1];
    I[g] += p.data[i] * t.data[i];
    P[g] += p.data[i];
    T[g] += t.data[i];
  }
  const d = new Float64Array(G);
  for (let g = 0; g < G; g++) d[g] = (2 * I[g] + smooth) / (P[g] + T[g] + smooth);
  return { N, C, G, I, P, T, d };
}

/** 1 − mean Dice, or 1 − Dice per group ([N, C], or [C] with batchDice) for reduction 'none'. */
export function refSoftDiceLoss(p: RefTensor, t: RefTensor, opts: RefDiceOpts = {}): RefTensor {
  const smooth = opts.smooth ?? 1e-5, batchDice = opts.batchDice ?? false;
  const { N, C, G, d } = refDiceParts(p, t, batchDice, smooth);
  if ((opts.reduction ?? 'mean') === 'none') {
    const out = refTensor(batchDice ? [C] : [N, C]);
    for (let g = 0; g < G; g++) out.data[g] = 1 - d[g];
    return out;
  }
  let s = 0;
  for (let g = 0; g < G; g++) s += d[g];
  return refTensor([], [1 - s / G]);
}

/** Gradients of the soft Dice loss by the quotient rule, for cotangent dy (scalar or per group). */
export function refSoftDiceLossGrad(p: RefTensor, t: RefTensor, dy: RefTensor, opts: RefDiceOpts = {}): { dprobs: RefTensor; dtarget: RefTensor } {
  const smooth = opts.smooth ?? 1e-5, batchDice = opts.batchDice ?? false;
  const none = (opts.reduction ?? 'mean') === 'none';
  const { C, G, I, P, T } = refDiceParts(p, t, batchDice, smooth);
  const dprobs = refTensor(p.shape), dtarget = refTensor(p.shape);
  for (let i = 0; i < p.data.length; i++) {
    const idx = multiIndex(p.shape, i);
    const g = batchDice ? idx[1] : idx[0] * C + idx[1];
    const num = 2 * I[g] + smooth, den = P[g] + T[g] + smooth;
    const dL = none ? -dy.data[g] : -dy.data[0] / G;
    // d(num/den) = (dnum·den − num·dden)/den²
    dprobs.data[i] = (dL * (2 * t.data[i] * den - num)) / (den * den);
    dtarget.data[i] = (dL * (2 * p.data[i] * den - num)) / (den * den);
  }
  return { dprobs, dtarget };
}

/** W[o, i, s] = Σ_r w[r]·A[o, r]·B[i, r]·K[s, r], directly. */
export function refCpReconstruct(w: RefTensor, aOut: RefTensor, aIn: RefTensor, aKernel: RefTensor): RefTensor {
  const R = w.shape[0], O = aOut.shape[0], I = aIn.shape[0], S = aKernel.shape[0];
  const out = refTensor([O, I, S]);
  for (let o = 0; o < O; o++) {
    for (let i = 0; i < I; i++) {
      for (let s = 0; s < S; s++) {
        let acc = 0;
        for (let r = 0; r < R; r++) acc += w.data[r] * aOut.data[o * R + r] * aIn.data[i * R + r] * aKernel.data[s * R + r];
        out.data[(o * I + i) * S + s] = acc;
      }
    }
  }
  return out;
}

/** The four factor gradients of `refCpReconstruct`, each a direct quadruple sum. */
export function refCpReconstructGrad(dW: RefTensor, w: RefTensor, aOut: RefTensor, aIn: RefTensor, aKernel: RefTensor):
  { dweights: RefTensor; daOut: RefTensor; daIn: RefTensor; daKernel: RefTensor } {
  const R = w.shape[0], O = aOut.shape[0], I = aIn.shape[0], S = aKernel.shape[0];
  const dweights = refTensor([R]), daOut = refTensor([O, R]), daIn = refTensor([I, R]), daKernel = refTensor([S, R]);
  for (let o = 0; o < O; o++) {
    for (let i = 0; i < I; i++) {
      for (let s = 0; s < S; s++) {
        const g = dW.data[(o * I + i) * S + s];
        for (let r = 0; r < R; r++) {
          const a = aOut.data[o * R + r], b = aIn.data[i * R + r], k = aKernel.data[s * R + r], wr = w.data[r];
          dweights.data[r] += g * a * b * k;
          daOut.data[o * R + r] += g * wr * b * k;
          daIn.data[i * R + r] += g * wr * a * k;
          daKernel.data[s * R + r] += g * wr * a * b;
        }
      }
    }
  }
  return { dweights, daOut, daIn, daKernel };
}

/**
 * Inverted dropout with the mask drawn from `gen` (pass a generator in the
 * same state as the op's): keep where u < 1 − p, scale by 1/(1 − p).
 */
export function refDropout(x: RefTensor, p: number, gen: Philox): RefTensor {
  const out = refTensor(x.shape);
  if (p === 0) { out.data.set(x.data); return out; }
  if (p === 1) { for (let i = 0; i < x.data.length; i++) out.data[i] = x.data[i] * 0; return out; }
  const u = gen.uniform(x.data.length);
  for (let i = 0; i < x.data.length; i++) out.data[i] = u[i] < 1 - p ? x.data[i] / (1 - p) : 0;
  return out;
}
