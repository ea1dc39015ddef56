// Float64 oracle of the losses (cross-entropy, BCE with logits, soft Dice) and
// their gradients: textbook formulas, written independently of the fast kernels.
import { flatIndex, multiIndex, refTensor, type RefTensor } from './types.js';

export interface RefCrossEntropyOpts {
  ignoreIndex?: number;
  weight?: RefTensor | null;
}

/** Per-element −log softmax(logits)[target] with class weights; returns the weighted mean. */
export function refCrossEntropy(logits: RefTensor, target: RefTensor, opts: RefCrossEntropyOpts = {}): RefTensor {
  const ig = opts.ignoreIndex ?? -100;
  const C = logits.shape[1];
  let num = 0,
    den = 0;
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
export function refCrossEntropyGrad(
  logits: RefTensor,
  target: RefTensor,
  dy: number,
  opts: RefCrossEntropyOpts = {},
): RefTensor {
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
export function refBceWithLogitsGrad(
  x: RefTensor,
  t: RefTensor,
  dy: number,
): { dlogits: RefTensor; dtarget: RefTensor } {
  const n = x.data.length;
  const dlogits = refTensor(x.shape),
    dtarget = refTensor(x.shape);
  for (let i = 0; i < n; i++) {
    const sig = 1 / (1 + Math.exp(-x.data[i]));
    dlogits.data[i] = (dy * (sig - t.data[i])) / n;
    dtarget.data[i] = (dy * -x.data[i]) / n;
  }
  return { dlogits, dtarget };
}

export interface RefDiceOpts {
  smooth?: number;
  batchDice?: boolean;
  reduction?: 'mean' | 'none';
}

/** Dice coefficient of every group: (n, c), or c with batchDice. Returns the sums too. */
function refDiceParts(p: RefTensor, t: RefTensor, batchDice: boolean, smooth: number) {
  const N = p.shape[0],
    C = p.shape[1];
  const G = batchDice ? C : N * C;
  const I = new Float64Array(G),
    P = new Float64Array(G),
    T = new Float64Array(G);
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
  const smooth = opts.smooth ?? 1e-5,
    batchDice = opts.batchDice ?? false;
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
export function refSoftDiceLossGrad(
  p: RefTensor,
  t: RefTensor,
  dy: RefTensor,
  opts: RefDiceOpts = {},
): { dprobs: RefTensor; dtarget: RefTensor } {
  const smooth = opts.smooth ?? 1e-5,
    batchDice = opts.batchDice ?? false;
  const none = (opts.reduction ?? 'mean') === 'none';
  const { C, G, I, P, T } = refDiceParts(p, t, batchDice, smooth);
  const dprobs = refTensor(p.shape),
    dtarget = refTensor(p.shape);
  for (let i = 0; i < p.data.length; i++) {
    const idx = multiIndex(p.shape, i);
    const g = batchDice ? idx[1] : idx[0] * C + idx[1];
    const num = 2 * I[g] + smooth,
      den = P[g] + T[g] + smooth;
    const dL = none ? -dy.data[g] : -dy.data[0] / G;
    // d(num/den) = (dnum·den − num·dden)/den²
    dprobs.data[i] = (dL * (2 * t.data[i] * den - num)) / (den * den);
    dtarget.data[i] = (dL * (2 * p.data[i] * den - num)) / (den * den);
  }
  return { dprobs, dtarget };
}
