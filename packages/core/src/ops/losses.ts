// Losses: cross-entropy, BCE with logits, soft Dice (PyTorch semantics unless
// noted). Each backward kernel is an op of its own (`*Grad`) so that gradient
// rules stay backend-agnostic.
import { isFloat } from '../dtype.js';
import { engine } from '../engine.js';
import { OpError, fmtShape } from '../errors.js';
import { shapesEqual, sizeOf } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { assertScalarLike, assertSame, assertTensor, run1 } from './util.js';

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
  if (!isFloat(logits.dtype))
    throw new OpError(op, `logits must be float32 or float64, got ${logits.dtype} ${fmtShape(logits.shape)}`);
  if (logits.rank < 2) throw new OpError(op, `logits must be [N, C, ...] (rank >= 2), got ${fmtShape(logits.shape)}`);
  if (target.dtype !== 'int32' && target.dtype !== 'uint8') {
    throw new OpError(
      op,
      `target must hold class indices (int32 or uint8), got ${target.dtype} ${fmtShape(target.shape)}`,
    );
  }
  const expect = [logits.shape[0], ...logits.shape.slice(2)];
  if (!shapesEqual(target.shape, expect)) {
    throw new OpError(
      op,
      `target shape ${fmtShape(target.shape)} must be ${fmtShape(expect)} for logits ${fmtShape(logits.shape)}`,
    );
  }
  const ignoreIndex = opts.ignoreIndex ?? -100;
  if (!Number.isInteger(ignoreIndex)) throw new OpError(op, `ignoreIndex must be an integer, got ${ignoreIndex}`);
  const w = opts.weight ?? null;
  if (w) {
    assertTensor(op, w, 'weight');
    if (w.rank !== 1 || w.shape[0] !== logits.shape[1] || w.dtype !== logits.dtype) {
      throw new OpError(
        op,
        `weight must be ${logits.dtype} [${logits.shape[1]}] for logits ${fmtShape(logits.shape)}, got ${w.dtype} ${fmtShape(w.shape)}`,
      );
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
  if (!isFloat(logits.dtype))
    throw new OpError(op, `logits must be float32 or float64, got ${logits.dtype} ${fmtShape(logits.shape)}`);
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
  if (!isFloat(probs.dtype))
    throw new OpError(op, `probs must be float32 or float64, got ${probs.dtype} ${fmtShape(probs.shape)}`);
  if (probs.rank < 2)
    throw new OpError(op, `probs must be [N, C, ...spatial] (rank >= 2), got ${fmtShape(probs.shape)}`);
  assertSame(op, probs, target, 'probs', 'target');
  const smooth = opts.smooth ?? 1e-5;
  if (!Number.isFinite(smooth) || smooth < 0) throw new OpError(op, `smooth must be finite and >= 0, got ${smooth}`);
  const reduction = opts.reduction ?? 'mean';
  if (reduction !== 'mean' && reduction !== 'none')
    throw new OpError(op, `reduction must be 'mean' or 'none', got '${String(reduction)}'`);
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
export function softDiceLossGrad(
  probs: Tensor,
  target: Tensor,
  dy: Tensor,
  opts: SoftDiceOpts = {},
): { dprobs: Tensor; dtarget: Tensor } {
  const op = 'softDiceLossGrad';
  const attrs = checkDice(op, probs, target, opts);
  assertTensor(op, dy, 'dy');
  const expect =
    attrs.reduction === 'mean' ? [] : attrs.batchDice ? [probs.shape[1]] : [probs.shape[0], probs.shape[1]];
  if (dy.size !== sizeOf(expect) || dy.dtype !== probs.dtype) {
    throw new OpError(
      op,
      `dy must be ${probs.dtype} ${fmtShape(expect)} for probs ${fmtShape(probs.shape)}, got ${dy.dtype} ${fmtShape(dy.shape)}`,
    );
  }
  const [dprobs, dtarget] = engine().runKernel(op, [probs, target, dy], attrs);
  return { dprobs, dtarget };
}
