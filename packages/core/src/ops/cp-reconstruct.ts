// LARGO's per-subset weight reconstruction from CP factors, and its backward
// kernel (an op of its own, `cpReconstructGrad`).
import { isFloat } from '../dtype.js';
import { engine } from '../engine.js';
import { OpError, fmtShape } from '../errors.js';
import { shapesEqual } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { assertTensor, run1 } from './util.js';

function checkCp(op: string, weights: Tensor, aOut: Tensor, aIn: Tensor, aKernel: Tensor): void {
  const names = ['weights', 'aOut', 'aIn', 'aKernel'] as const;
  const ts = [weights, aOut, aIn, aKernel];
  ts.forEach((t, i) => assertTensor(op, t, names[i]));
  const shapes = () =>
    `weights ${fmtShape(weights.shape)}, aOut ${fmtShape(aOut.shape)}, aIn ${fmtShape(aIn.shape)}, aKernel ${fmtShape(aKernel.shape)}`;
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
export function cpReconstructGrad(
  dW: Tensor,
  weights: Tensor,
  aOut: Tensor,
  aIn: Tensor,
  aKernel: Tensor,
): { dweights: Tensor; daOut: Tensor; daIn: Tensor; daKernel: Tensor } {
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
