// softmax / logSoftmax along one axis (PyTorch semantics).
import { OpError, fmtShape } from '../errors.js';
import { normalizeAxis } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { assertFloat, assertTensor, run1 } from './util.js';

function softmaxLike(op: 'softmax' | 'logSoftmax', x: Tensor, axis: number): Tensor {
  assertTensor(op, x);
  assertFloat(op, x);
  if (x.rank === 0) throw new OpError(op, `input must have rank >= 1, got shape ${fmtShape(x.shape)}`);
  return run1(op, [x], { axis: normalizeAxis(op, axis, x.rank) });
}

/** exp(x − max) / Σ exp(x − max) along `axis` (numerically stable). */
export const softmax = (x: Tensor, axis = -1): Tensor => softmaxLike('softmax', x, axis);
/** x − max − log Σ exp(x − max) along `axis`. */
export const logSoftmax = (x: Tensor, axis = -1): Tensor => softmaxLike('logSoftmax', x, axis);
