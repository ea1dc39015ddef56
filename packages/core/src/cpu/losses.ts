// CPU kernels of the losses (cross-entropy, BCE with logits, soft Dice) and
// their backward kernels. Accumulations run in doubles (JS numbers); outputs
// take the input's dtype. Every kernel writes all of its (pooled, unzeroed) output.
import type { TensorInfo } from '../backend.js';
import { OpError, fmtShape } from '../errors.js';
import { sizeOf } from '../shape.js';
import { CpuBackend, fvals, vals, type CpuKernel, type CpuKernelTable } from './backend.js';
import type { CrossEntropyAttrs, SoftDiceAttrs } from '../ops/schema.js';

type FArr = Float32Array | Float64Array;

// ---------------------------------------------------------------------------
// cross-entropy

/** Checks labels before anything is allocated; the error names the offending value. */
function checkLabels(op: string, logits: TensorInfo, target: TensorInfo, ignoreIndex: number): void {
  const C = logits.shape[1],
    tv = vals(target);
  for (let i = 0; i < tv.length; i++) {
    const t = tv[i];
    if (t !== ignoreIndex && (t < 0 || t >= C)) {
      throw new OpError(
        op,
        `target value ${t} at flat index ${i} is out of range [0, ${C}) ` +
          `(logits ${fmtShape(logits.shape)}, target ${fmtShape(target.shape)}, ignoreIndex ${ignoreIndex})`,
      );
    }
  }
}

/**
 * Visits every (n, position) of logits [N, C, inner] with its log-sum-exp:
 * body(n, n·C·inner, p, lse). Positions are processed in vectors of `inner` so that
 * reads stay contiguous.
 */
function forEachLse(
  xv: FArr,
  N: number,
  C: number,
  inner: number,
  body: (n: number, base: number, p: number, lse: number) => void,
): void {
  const mx = new Float64Array(inner),
    sm = new Float64Array(inner);
  for (let n = 0; n < N; n++) {
    const base = n * C * inner;
    mx.fill(-Infinity);
    sm.fill(0);
    for (let c = 0; c < C; c++) {
      const row = base + c * inner;
      for (let p = 0; p < inner; p++) {
        const v = xv[row + p];
        if (v > mx[p]) mx[p] = v;
      }
    }
    for (let c = 0; c < C; c++) {
      const row = base + c * inner;
      for (let p = 0; p < inner; p++) sm[p] += Math.exp(xv[row + p] - mx[p]);
    }
    for (let p = 0; p < inner; p++) body(n, base, p, mx[p] + Math.log(sm[p]));
  }
}

/** inputs [logits (N,C,...), target int (N,...), weight? (C)] → mean loss (scalar). */
const crossEntropyKernel: CpuKernel<'crossEntropy'> = (inputs, attrs, be) => {
  const [logits, target] = inputs;
  checkLabels('crossEntropy', logits, target, attrs.ignoreIndex);
  const w = attrs.hasWeight ? fvals(inputs[2]) : null;
  const N = logits.shape[0],
    C = logits.shape[1],
    inner = sizeOf(logits.shape.slice(2));
  const xv = fvals(logits),
    tv = vals(target),
    ig = attrs.ignoreIndex;
  let total = 0,
    wsum = 0;
  forEachLse(xv, N, C, inner, (n, base, p, lse) => {
    const t = tv[n * inner + p];
    if (t === ig) return;
    const wt = w ? w[t] : 1;
    total += wt * (lse - xv[base + t * inner + p]);
    wsum += wt;
  });
  const o = be.out([], logits.dtype);
  o.values[0] = total / wsum; // 0/0 = NaN when every element is ignored, as PyTorch.
  return o.info;
};

/** inputs [logits, target, dy (scalar), weight?] → dlogits = dy·w_t·(softmax − onehot)/Σw. */
const crossEntropyGradKernel: CpuKernel<'crossEntropyGrad'> = (inputs, attrs, be) => {
  const [logits, target, dy] = inputs;
  checkLabels('crossEntropyGrad', logits, target, attrs.ignoreIndex);
  const w = attrs.hasWeight ? fvals(inputs[3]) : null;
  const N = logits.shape[0],
    C = logits.shape[1],
    inner = sizeOf(logits.shape.slice(2));
  const xv = fvals(logits),
    tv = vals(target),
    ig = attrs.ignoreIndex;
  let wsum = 0;
  for (let i = 0; i < tv.length; i++) {
    const t = tv[i];
    if (t !== ig) wsum += w ? w[t] : 1;
  }
  const g = fvals(dy)[0] / wsum;
  const o = be.out(logits.shape, logits.dtype),
    ov = o.values;
  forEachLse(xv, N, C, inner, (n, base, p, lse) => {
    const t = tv[n * inner + p];
    if (t === ig) {
      for (let c = 0; c < C; c++) ov[base + c * inner + p] = 0;
      return;
    }
    const s = g * (w ? w[t] : 1);
    for (let c = 0; c < C; c++) {
      const q = base + c * inner + p;
      ov[q] = s * (Math.exp(xv[q] - lse) - (c === t ? 1 : 0));
    }
  });
  return o.info;
};

// ---------------------------------------------------------------------------
// binary cross-entropy with logits

/** inputs [x, t] → mean of max(x,0) − x·t + log1p(exp(−|x|)). */
const bceWithLogitsKernel: CpuKernel<'bceWithLogits'> = (inputs, _attrs, be) => {
  const xv = fvals(inputs[0]),
    tv = fvals(inputs[1]);
  let s = 0;
  for (let i = 0; i < xv.length; i++) {
    const x = xv[i];
    s += (x > 0 ? x : 0) - x * tv[i] + Math.log1p(Math.exp(-Math.abs(x)));
  }
  const o = be.out([], inputs[0].dtype);
  o.values[0] = s / xv.length;
  return o.info;
};

/** inputs [x, t, dy (scalar)] → [dx = dy·(σ(x) − t)/n, dt = −dy·x/n]. */
const bceWithLogitsGradKernel: CpuKernel<'bceWithLogitsGrad'> = (inputs, _attrs, be) => {
  const [x, t, dy] = inputs;
  const xv = fvals(x),
    tv = fvals(t);
  const g = fvals(dy)[0] / xv.length;
  const dx = be.out(x.shape, x.dtype),
    dt = be.out(x.shape, x.dtype);
  const dxv = dx.values,
    dtv = dt.values;
  for (let i = 0; i < xv.length; i++) {
    const v = xv[i];
    const sg = v >= 0 ? 1 / (1 + Math.exp(-v)) : Math.exp(v) / (1 + Math.exp(v));
    dxv[i] = g * (sg - tv[i]);
    dtv[i] = -g * v;
  }
  return [dx.info, dt.info];
};

// ---------------------------------------------------------------------------
// soft Dice

/** Per-group sums (I = Σp·t, P = Σp, T = Σt); groups are (n, c), or c with batchDice. */
function diceSums(p: FArr, t: FArr, shape: readonly number[], batchDice: boolean) {
  const N = shape[0],
    C = shape[1],
    S = sizeOf(shape.slice(2));
  const G = batchDice ? C : N * C;
  const I = new Float64Array(G),
    P = new Float64Array(G),
    T = new Float64Array(G);
  for (let nc = 0; nc < N * C; nc++) {
    const base = nc * S,
      g = batchDice ? nc % C : nc;
    let si = 0,
      sp = 0,
      st = 0;
    for (let j = 0; j < S; j++) {
      const a = p[base + j],
        b = t[base + j];
      si += a * b;
      sp += a;
      st += b;
    }
    I[g] += si;
    P[g] += sp;
    T[g] += st;
  }
  return { N, C, S, G, I, P, T };
}

/** inputs [probs, target] → 1 − mean(d) (scalar), or 1 − d per group ('none'). */
const softDiceLossKernel: CpuKernel<'softDiceLoss'> = (inputs, attrs, be) => {
  const [p, t] = inputs;
  const { N, C, G, I, P, T } = diceSums(fvals(p), fvals(t), p.shape, attrs.batchDice);
  const sm = attrs.smooth;
  if (attrs.reduction === 'none') {
    const o = be.out(attrs.batchDice ? [C] : [N, C], p.dtype);
    for (let g = 0; g < G; g++) o.values[g] = 1 - (2 * I[g] + sm) / (P[g] + T[g] + sm);
    return o.info;
  }
  let s = 0;
  for (let g = 0; g < G; g++) s += (2 * I[g] + sm) / (P[g] + T[g] + sm);
  const o = be.out([], p.dtype);
  o.values[0] = 1 - s / G;
  return o.info;
};

/**
 * inputs [probs, target, dy] → [dprobs, dtarget]. With D = P + T + s and
 * d = (2I + s)/D: ∂d/∂p_j = 2t_j/D − d/D, ∂d/∂t_j = 2p_j/D − d/D; the loss
 * contributes −dy/G ('mean') or −dy_g ('none') per group.
 */
const softDiceLossGradKernel: CpuKernel<'softDiceLossGrad'> = (inputs, attrs, be) => {
  const [p, t, dy] = inputs;
  const pv = fvals(p),
    tv = fvals(t),
    dyv = fvals(dy);
  const { N, C, S, G, I, P, T } = diceSums(pv, tv, p.shape, attrs.batchDice);
  const sm = attrs.smooth;
  const a = new Float64Array(G),
    b = new Float64Array(G);
  for (let g = 0; g < G; g++) {
    const coef = attrs.reduction === 'none' ? -dyv[g] : -dyv[0] / G;
    const D = P[g] + T[g] + sm,
      d = (2 * I[g] + sm) / D;
    a[g] = (2 * coef) / D; // times t_j (for dp) or p_j (for dt)
    b[g] = (coef * d) / D; // subtracted
  }
  const dp = be.out(p.shape, p.dtype),
    dt = be.out(p.shape, p.dtype);
  const dpv = dp.values,
    dtv = dt.values;
  for (let nc = 0; nc < N * C; nc++) {
    const base = nc * S,
      g = attrs.batchDice ? nc % C : nc,
      ag = a[g],
      bg = b[g];
    for (let j = 0; j < S; j++) {
      dpv[base + j] = ag * tv[base + j] - bg;
      dtv[base + j] = ag * pv[base + j] - bg;
    }
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
} satisfies Partial<CpuKernelTable>;
