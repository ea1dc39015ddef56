// Instance normalization and its backward kernel (exposed as an op of its
// own, `instanceNormGrad`, so that the gradient rule stays backend-agnostic).
import { engine } from '../engine.js';
import { OpError, fmtShape } from '../errors.js';
import { shapesEqual, sizeOf } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { assertFloat, assertSame, assertTensor } from './util.js';

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
export function instanceNormWithStats(
  x: Tensor,
  weight?: Tensor | null,
  bias?: Tensor | null,
  eps = 1e-5,
): { y: Tensor; mean: Tensor; invstd: Tensor } {
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
export function instanceNormGrad(
  dy: Tensor,
  x: Tensor,
  mean: Tensor,
  invstd: Tensor,
  weight?: Tensor | null,
  statGrads?: { dmean: Tensor; dinvstd: Tensor } | null,
): { dx: Tensor; dweight: Tensor; dbias: Tensor } {
  const op = 'instanceNormGrad';
  checkInstanceInput(op, x);
  assertTensor(op, dy, 'dy');
  assertSame(op, x, dy, 'x', 'dy');
  const nc = [x.shape[0], x.shape[1]];
  const stats: [Tensor, string][] = [
    [mean, 'mean'],
    [invstd, 'invstd'],
  ];
  if (statGrads) stats.push([statGrads.dmean, 'dmean'], [statGrads.dinvstd, 'dinvstd']);
  for (const [t, what] of stats) {
    assertTensor(op, t, what);
    if (!shapesEqual(t.shape, nc) || t.dtype !== x.dtype) {
      throw new OpError(
        op,
        `${what} must be ${x.dtype} ${fmtShape(nc)} for input ${fmtShape(x.shape)}, got ${t.dtype} ${fmtShape(t.shape)}`,
      );
    }
  }
  const hasWeight = checkAffine(op, x, weight, 'weight');
  const inputs = [dy, x, mean, invstd];
  if (hasWeight) inputs.push(weight);
  if (statGrads) inputs.push(statGrads.dmean, statGrads.dinvstd);
  const [dx, dweight, dbias] = engine().runKernel(op, inputs, { hasWeight, hasStatGrads: !!statGrads });
  return { dx, dweight, dbias };
}
