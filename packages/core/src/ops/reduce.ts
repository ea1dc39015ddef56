import { OpError, fmtShape } from '../errors.js';
import { normalizeAxes, normalizeAxis, sizeOf } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { div, mul, sub } from './elementwise.js';
import { reshape } from './layout.js';
import { assertFloat, assertTensor, run1 } from './util.js';
import { engine } from '../engine.js';

type Axes = number | readonly number[] | undefined;

function reduce(op: 'sum' | 'max' | 'min', x: Tensor, axes: Axes, keepDims: boolean): Tensor {
  assertTensor(op, x);
  const ax = normalizeAxes(op, axes, x.shape);
  if ((op === 'max' || op === 'min') && ax.some((a) => x.shape[a] === 0)) {
    throw new OpError(op, `cannot reduce an empty axis of shape ${fmtShape(x.shape)}`);
  }
  return run1(op, [x], { axes: ax, keepDims });
}

export const sum = (x: Tensor, axes?: Axes, keepDims = false): Tensor => reduce('sum', x, axes, keepDims);
export const max = (x: Tensor, axes?: Axes, keepDims = false): Tensor => reduce('max', x, axes, keepDims);
export const min = (x: Tensor, axes?: Axes, keepDims = false): Tensor => reduce('min', x, axes, keepDims);

function argReduce(op: 'argmax' | 'argmin', x: Tensor, axis: number | undefined, keepDims: boolean): Tensor {
  assertTensor(op, x);
  // A scalar has a single element: its index along "axis 0" is 0.
  if (axis !== undefined && x.rank === 0) normalizeAxes(op, axis, x.shape);
  if (axis === undefined || x.rank === 0) {
    const flat = engine().tidy(() => reshape(x, [x.size]));
    const r = run1(op, [flat], { axes: [0], keepDims: false });
    flat.dispose();
    return r;
  }
  const a = normalizeAxis(op, axis, x.shape);
  if (x.shape[a] === 0) throw new OpError(op, `cannot reduce an empty axis of shape ${fmtShape(x.shape)}`);
  return run1(op, [x], { axes: [a], keepDims });
}
/** Index of the largest value along `axis` (flattened when omitted); int32. */
export const argmax = (x: Tensor, axis?: number, keepDims = false): Tensor => argReduce('argmax', x, axis, keepDims);
export const argmin = (x: Tensor, axis?: number, keepDims = false): Tensor => argReduce('argmin', x, axis, keepDims);

export function mean(x: Tensor, axes?: Axes, keepDims = false): Tensor {
  assertFloat('mean', x);
  const ax = normalizeAxes('mean', axes, x.shape);
  const n = sizeOf(ax.map((a) => x.shape[a]));
  return engine().tidy(() => div(sum(x, ax, keepDims), n));
}

/**
 * Variance by the two-pass formula mean((x - mean(x))^2), never E[x²]−E[x]²;
 * `correction` = 1 gives the unbiased estimate (PyTorch's default is 1).
 */
export function variance(x: Tensor, axes?: Axes, keepDims = false, correction = 0): Tensor {
  assertFloat('variance', x);
  const ax = normalizeAxes('variance', axes, x.shape);
  const n = sizeOf(ax.map((a) => x.shape[a]));
  return engine().tidy(() => {
    const d = sub(x, mean(x, ax, true));
    return div(sum(mul(d, d), ax, keepDims), Math.max(n - correction, 0));
  });
}
