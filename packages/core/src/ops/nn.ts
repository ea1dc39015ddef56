// Network ops: softmax / logSoftmax, instance norm, losses (cross-entropy,
// BCE with logits, soft Dice), LARGO's CP weight reconstruction, dropout.
// PyTorch semantics unless noted. Backward kernels are exposed as ops of
// their own (`*Grad`) so that gradient rules stay backend-agnostic.
import { isFloat } from '../dtype.js';
import { engine } from '../engine.js';
import { OpError, fmtShape } from '../errors.js';
import { defaultGenerator, type Philox } from '../rng.js';
import { normalizeAxis, shapesEqual, sizeOf } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { mul } from './elementwise.js';
import { reshape } from './layout.js';
import { assertFloat, assertTensor, run1 } from './util.js';

function assertSame(op: string, a: Tensor, b: Tensor, an: string, bn: string): void {
  if (!shapesEqual(a.shape, b.shape)) {
    throw new OpError(op, `${bn} shape ${fmtShape(b.shape)} must equal ${an} shape ${fmtShape(a.shape)}`);
  }
  if (a.dtype !== b.dtype) {
    throw new OpError(op, `${bn} dtype ${b.dtype} ${fmtShape(b.shape)} must equal ${an} dtype ${a.dtype} ${fmtShape(a.shape)}`);
  }
}

function assertScalarLike(op: string, dy: Tensor, x: Tensor): void {
  assertTensor(op, dy, 'dy');
  if (dy.size !== 1 || dy.dtype !== x.dtype) {
    throw new OpError(op, `dy must be a one-element ${x.dtype} tensor, got ${dy.dtype} ${fmtShape(dy.shape)}`);
  }
}

// ---------------------------------------------------------------------------
// softmax / logSoftmax

function softmaxLike(op: string, x: Tensor, axis: number): Tensor {
  assertTensor(op, x);
  assertFloat(op, x);
  if (x.rank === 0) throw new OpError(op, `input must have rank >= 1, got shape ${fmtShape(x.shape)}`);
  return run1(op, [x], { axis: normalizeAxis(op, axis, x.rank) });
}

/** exp(x − max) / Σ exp(x − max) along `axis` (numerically stable). */
export const softmax = (x: Tensor, axis = -1): Tensor => softmaxLike('softmax', x, axis);
/** x − max − log Σ exp(x − max) along `axis`. */
export const logSoftmax = (x: Tensor, axis = -1): Tensor => softmaxLike('logSoftmax', x, axis);

// ---------------------------------------------------------------------------
// instance norm

function checkAffine(op: string, x: Tensor, p: Tensor | null | undefined, what: string): p is Tensor {
  if (p === null || p === undefined) return false;
  assertTensor(op, p, what);
  const C = x.shape[1];
  if (p.rank !== 1 || p.shape[0] !== C) {
    throw new OpError(op, `${what} must have shape [${C}] for input ${fmtShape(x.shape)}, got ${fmtShape(p.shape)}`);
  }
  if (p.dtype !== x.dtype) throw new OpError(op, `${what} dtype ${p.dtype} must equal input dtype ${x.dtype}`);
  return true;
}

function checkInstanceInput(op: string, x: Tensor): void {
  assertTensor(op, x);
  assertFloat(op, x);
  if (x.rank < 3) throw new OpError(op, `input must be [N, C, ...spatial] (rank >= 3), got shape ${fmtShape(x.shape)}`);
  if (sizeOf(x.shape.slice(2)) === 0 && x.shape[0] * x.shape[1] > 0) {
    throw new OpError(op, `input ${fmtShape(x.shape)} has no spatial elements to normalize over`);
  }
}

/**
 * Instance normalization: per (n, c), (x − mean)/sqrt(var + eps) over the
 * spatial axes with the biased variance (two-pass), then ·weight[c] + bias[c].
 * Unlike PyTorch, a single spatial element is allowed (the output is the bias).
 */
export function instanceNorm(x: Tensor, weight?: Tensor | null, bias?: Tensor | null, eps = 1e-5): Tensor {
  const { y, mean, invstd } = instanceNormWithStats(x, weight, bias, eps);
  mean.dispose();
  invstd.dispose();
  return y;
}

/**
 * Like `instanceNorm`, also returning the statistics mean [N, C] and
 * invstd [N, C] = 1/sqrt(var + eps) (differentiable too).
 */
export function instanceNormWithStats(x: Tensor, weight?: Tensor | null, bias?: Tensor | null, eps = 1e-5): { y: Tensor; mean: Tensor; invstd: Tensor } {
  const op = 'instanceNorm';
  checkInstanceInput(op, x);
  if (!(eps >= 0) || !Number.isFinite(eps)) throw new OpError(op, `eps must be finite and >= 0, got ${eps}`);
  const hasWeight = checkAffine(op, x, weight, 'weight');
  const hasBias = checkAffine(op, x, bias, 'bias');
  const inputs = [x];
  if (hasWeight) inputs.push(weight);
  if (hasBias) inputs.push(bias);
  const [y, mean, invstd] = engine().runKernel(op, inputs, { eps, hasWeight, hasBias });
  return { y, mean, invstd };
}

/**
 * Backward of instance norm from the saved statistics: dx, and the gradients
 * of weight and bias (shape [C], returned even when there is no weight/bias).
 * `statGrads` are cotangents of the statistics themselves (mean, invstd [N, C]),
 * for when they were used downstream (see `instanceNormWithStats`).
 */
export function instanceNormGrad(dy: Tensor, x: Tensor, mean: Tensor, invstd: Tensor, weight?: Tensor | null,
  statGrads?: { dmean: Tensor; dinvstd: Tensor } | null): { dx: Tensor; dweight: Tensor; dbias: Tensor } {
  const op = 'instanceNormGrad';
  checkInstanceInput(op, x);
  assertTensor(op, dy, 'dy');
  assertSame(op, x, dy, 'x', 'dy');
  const nc = [x.shape[0], x.shape[1]];
  const stats: [Tensor, string][] = [[mean, 'mean'], [invstd, 'invstd']];
  if (statGrads) stats.push([statGrads.dmean, 'dmean'], [statGrads.dinvstd, 'dinvstd']);
  for (const [t, what] of stats) {
    assertTensor(op, t, what);
    if (!shapesEqual(t.shape, nc) || t.dtype !== x.dtype) {
      throw new OpError(op, `${what} must be ${x.dtype} ${fmtShape(nc)} for input ${fmtShape(x.shape)}, got ${t.dtype} ${fmtShape(t.shape)}`);
    }
  }
  const hasWeight = checkAffine(op, x, weight, 'weight');
  const inputs = [dy, x, mean, invstd];
  if (hasWeight) inputs.push(weight);
  if (statGrads) inputs.push(statGrads.dmean, statGrads.dinvstd);
  const [dx, dweight, dbias] = engine().runKernel(op, inputs, { hasWeight, hasStatGrads: !!statGrads });
  return { dx, dweight, dbias };
}

// ---------------------------------------------------------------------------
// cross-entropy

export interface CrossEntropyOpts {
  /** Target value that contributes neither loss nor gradient (default −100, as PyTorch). */
  ignoreIndex?: number;
  /** Per-class weights [C]; the mean is then Σ w_t·loss / Σ w_t. */
  weight?: Tensor | null;
}

function checkCrossEntropy(op: string, logits: Tensor, target: Tensor, opts: CrossEntropyOpts) {
  assertTensor(op, logits, 'logits');
  assertTensor(op, target, 'target');
  if (!isFloat(logits.dtype)) throw new OpError(op, `logits must be float32 or float64, got ${logits.dtype} ${fmtShape(logits.shape)}`);
  if (logits.rank < 2) throw new OpError(op, `logits must be [N, C, ...] (rank >= 2), got ${fmtShape(logits.shape)}`);
  if (target.dtype !== 'int32' && target.dtype !== 'uint8') {
    throw new OpError(op, `target must hold class indices (int32 or uint8), got ${target.dtype} ${fmtShape(target.shape)}`);
  }
  const expect = [logits.shape[0], ...logits.shape.slice(2)];
  if (!shapesEqual(target.shape, expect)) {
    throw new OpError(op, `target shape ${fmtShape(target.shape)} must be ${fmtShape(expect)} for logits ${fmtShape(logits.shape)}`);
  }
  const ignoreIndex = opts.ignoreIndex ?? -100;
  if (!Number.isInteger(ignoreIndex)) throw new OpError(op, `ignoreIndex must be an integer, got ${ignoreIndex}`);
  const w = opts.weight ?? null;
  if (w) {
    assertTensor(op, w, 'weight');
    if (w.rank !== 1 || w.shape[0] !== logits.shape[1] || w.dtype !== logits.dtype) {
      throw new OpError(op, `weight must be ${logits.dtype} [${logits.shape[1]}] for logits ${fmtShape(logits.shape)}, got ${w.dtype} ${fmtShape(w.shape)}`);
    }
  }
  return { ignoreIndex, w, attrs: { ignoreIndex, hasWeight: w !== null } };
}

/**
 * Mean cross-entropy of logits [N, C, ...] against class indices [N, ...]
 * over the non-ignored elements (weighted mean with `weight`). A label
 * outside [0, C) that is not `ignoreIndex` is an error naming the value.
 * When every element is ignored the result is NaN, as in PyTorch.
 */
export function crossEntropy(logits: Tensor, target: Tensor, opts: CrossEntropyOpts = {}): Tensor {
  const { w, attrs } = checkCrossEntropy('crossEntropy', logits, target, opts);
  return run1('crossEntropy', w ? [logits, target, w] : [logits, target], attrs);
}

/** d crossEntropy / d logits for the scalar cotangent dy: dy·w_t·(softmax − onehot)/Σw. */
export function crossEntropyGrad(logits: Tensor, target: Tensor, dy: Tensor, opts: CrossEntropyOpts = {}): Tensor {
  const { w, attrs } = checkCrossEntropy('crossEntropyGrad', logits, target, opts);
  assertScalarLike('crossEntropyGrad', dy, logits);
  return run1('crossEntropyGrad', w ? [logits, target, dy, w] : [logits, target, dy], attrs);
}

// ---------------------------------------------------------------------------
// BCE with logits

function checkBce(op: string, logits: Tensor, target: Tensor): void {
  assertTensor(op, logits, 'logits');
  assertTensor(op, target, 'target');
  if (!isFloat(logits.dtype)) throw new OpError(op, `logits must be float32 or float64, got ${logits.dtype} ${fmtShape(logits.shape)}`);
  assertSame(op, logits, target, 'logits', 'target');
}

/** Mean of max(x, 0) − x·t + log(1 + exp(−|x|)) (stable binary cross-entropy on logits). */
export function bceWithLogits(logits: Tensor, target: Tensor): Tensor {
  checkBce('bceWithLogits', logits, target);
  return run1('bceWithLogits', [logits, target], {});
}

/** Gradients of `bceWithLogits` for the scalar cotangent dy: dlogits = dy·(σ(x) − t)/n, dtarget = −dy·x/n. */
export function bceWithLogitsGrad(logits: Tensor, target: Tensor, dy: Tensor): { dlogits: Tensor; dtarget: Tensor } {
  checkBce('bceWithLogitsGrad', logits, target);
  assertScalarLike('bceWithLogitsGrad', dy, logits);
  const [dlogits, dtarget] = engine().runKernel('bceWithLogitsGrad', [logits, target, dy], {});
  return { dlogits, dtarget };
}

// ---------------------------------------------------------------------------
// soft Dice

export interface SoftDiceOpts {
  /** Added to numerator and denominator (default 1e-5). */
  smooth?: number;
  /** Sum over the batch axis too: one Dice per class (nnU-Net's batch_dice). */
  batchDice?: boolean;
  /** 'mean' (default): 1 − mean Dice, a scalar; 'none': 1 − Dice per (n, c), or per c with batchDice. */
  reduction?: 'mean' | 'none';
}

function checkDice(op: string, probs: Tensor, target: Tensor, opts: SoftDiceOpts) {
  assertTensor(op, probs, 'probs');
  assertTensor(op, target, 'target');
  if (!isFloat(probs.dtype)) throw new OpError(op, `probs must be float32 or float64, got ${probs.dtype} ${fmtShape(probs.shape)}`);
  if (probs.rank < 2) throw new OpError(op, `probs must be [N, C, ...spatial] (rank >= 2), got ${fmtShape(probs.shape)}`);
  assertSame(op, probs, target, 'probs', 'target');
  const smooth = opts.smooth ?? 1e-5;
  if (!Number.isFinite(smooth) || smooth < 0) throw new OpError(op, `smooth must be finite and >= 0, got ${smooth}`);
  const reduction = opts.reduction ?? 'mean';
  if (reduction !== 'mean' && reduction !== 'none') throw new OpError(op, `reduction must be 'mean' or 'none', got '${String(reduction)}'`);
  return { smooth, batchDice: opts.batchDice ?? false, reduction };
}

/**
 * Soft Dice loss of probabilities against a one-hot target, both [N, C, ...spatial]:
 * d = (2·Σ p·t + smooth)/(Σp + Σt + smooth) per (n, c) over the spatial axes
 * (per c over batch and spatial axes with batchDice); loss = 1 − mean d.
 */
export function softDiceLoss(probs: Tensor, target: Tensor, opts: SoftDiceOpts = {}): Tensor {
  const attrs = checkDice('softDiceLoss', probs, target, opts);
  return run1('softDiceLoss', [probs, target], attrs);
}

/** Gradients of `softDiceLoss` for the cotangent dy (a scalar, or the 'none' output's shape). */
export function softDiceLossGrad(probs: Tensor, target: Tensor, dy: Tensor, opts: SoftDiceOpts = {}): { dprobs: Tensor; dtarget: Tensor } {
  const op = 'softDiceLossGrad';
  const attrs = checkDice(op, probs, target, opts);
  assertTensor(op, dy, 'dy');
  const expect = attrs.reduction === 'mean' ? [] : attrs.batchDice ? [probs.shape[1]] : [probs.shape[0], probs.shape[1]];
  if (dy.size !== sizeOf(expect) || dy.dtype !== probs.dtype) {
    throw new OpError(op, `dy must be ${probs.dtype} ${fmtShape(expect)} for probs ${fmtShape(probs.shape)}, got ${dy.dtype} ${fmtShape(dy.shape)}`);
  }
  const [dprobs, dtarget] = engine().runKernel(op, [probs, target, dy], attrs);
  return { dprobs, dtarget };
}

// ---------------------------------------------------------------------------
// CP reconstruction (LARGO)

function checkCp(op: string, weights: Tensor, aOut: Tensor, aIn: Tensor, aKernel: Tensor): void {
  const names = ['weights', 'aOut', 'aIn', 'aKernel'] as const;
  const ts = [weights, aOut, aIn, aKernel];
  ts.forEach((t, i) => assertTensor(op, t, names[i]));
  const shapes = () => `weights ${fmtShape(weights.shape)}, aOut ${fmtShape(aOut.shape)}, aIn ${fmtShape(aIn.shape)}, aKernel ${fmtShape(aKernel.shape)}`;
  if (weights.rank !== 1 || aOut.rank !== 2 || aIn.rank !== 2 || aKernel.rank !== 2) {
    throw new OpError(op, `expects weights [R], aOut [O, R], aIn [I, R], aKernel [S, R]; got ${shapes()}`);
  }
  const R = weights.shape[0];
  if (aOut.shape[1] !== R || aIn.shape[1] !== R || aKernel.shape[1] !== R) {
    throw new OpError(op, `rank R of the factors disagrees: ${shapes()}`);
  }
  if (!isFloat(weights.dtype) || ts.some((t) => t.dtype !== weights.dtype)) {
    throw new OpError(op, `factors must share one float dtype, got ${ts.map((t) => t.dtype).join(', ')} (${shapes()})`);
  }
}

/**
 * LARGO's per-subset weight reconstruction from CP factors:
 * W[o, i, s] = Σ_r weights[r]·aOut[o, r]·aIn[i, r]·aKernel[s, r], W of shape [O, I, S].
 */
export function cpReconstruct(weights: Tensor, aOut: Tensor, aIn: Tensor, aKernel: Tensor): Tensor {
  checkCp('cpReconstruct', weights, aOut, aIn, aKernel);
  return run1('cpReconstruct', [weights, aOut, aIn, aKernel], {});
}

/** The four factor gradients of `cpReconstruct` for the cotangent dW [O, I, S]. */
export function cpReconstructGrad(dW: Tensor, weights: Tensor, aOut: Tensor, aIn: Tensor, aKernel: Tensor):
  { dweights: Tensor; daOut: Tensor; daIn: Tensor; daKernel: Tensor } {
  const op = 'cpReconstructGrad';
  checkCp(op, weights, aOut, aIn, aKernel);
  assertTensor(op, dW, 'dW');
  const expect = [aOut.shape[0], aIn.shape[0], aKernel.shape[0]];
  if (!shapesEqual(dW.shape, expect) || dW.dtype !== weights.dtype) {
    throw new OpError(op, `dW must be ${weights.dtype} ${fmtShape(expect)}, got ${dW.dtype} ${fmtShape(dW.shape)}`);
  }
  const [dweights, daOut, daIn, daKernel] = engine().runKernel(op, [dW, weights, aOut, aIn, aKernel], {});
  return { dweights, daOut, daIn, daKernel };
}

// ---------------------------------------------------------------------------
// dropout

export interface DropoutOpts {
  /** Source of the mask (the default generator when omitted); consumes one uniform per element. */
  generator?: Philox;
  /** When false the input passes through unchanged (default true). */
  training?: boolean;
}

/**
 * Inverted dropout: each element is kept with probability 1 − p (Philox
 * uniform u < 1 − p) and scaled by 1/(1 − p). p = 0 or training = false is
 * the identity (a view of x); p = 1 gives x·0. Composed of `mul` with a
 * constant mask, so the gradient is dy·mask/(1 − p). Bitwise reproducible
 * for a given generator state.
 */
export function dropout(x: Tensor, p: number, opts: DropoutOpts = {}): Tensor {
  const op = 'dropout';
  assertTensor(op, x);
  assertFloat(op, x);
  if (!(p >= 0 && p <= 1)) throw new OpError(op, `p must be in [0, 1], got ${p} (input ${fmtShape(x.shape)})`);
  if (p === 0 || opts.training === false) return reshape(x, x.shape);
  if (p === 1) return mul(x, 0);
  const u = (opts.generator ?? defaultGenerator()).uniform(x.size);
  const keep = 1 - p, scale = 1 / keep;
  const m = x.dtype === 'float64' ? new Float64Array(x.size) : new Float32Array(x.size);
  for (let i = 0; i < m.length; i++) m[i] = u[i] < keep ? scale : 0;
  const mask = engine().fromValues(m, x.shape, x.dtype, x.backend);
  const y = mul(x, mask);
  mask.dispose();
  return y;
}
