import { isFloat, upcast, type DType } from '../dtype.js';
import { fmtShape, OpError } from '../errors.js';
import { broadcastShapes, shapesEqual } from '../shape.js';
import { Tensor } from '../tensor.js';
import type { AttrsOf, BinaryOpName, OpName } from './schema.js';
import { assertTensor, run1, scalarLike, type TensorLike } from './util.js';

function unary<Op extends OpName>(op: Op, x: Tensor, attrs: AttrsOf<Op>, floatOnly = true): Tensor {
  assertTensor(op, x);
  if (floatOnly && !isFloat(x.dtype)) throw new OpError(op, `expects a float tensor, got ${x.dtype}`);
  return run1(op, [x], attrs);
}

export const neg = (x: Tensor): Tensor => unary('neg', x, {}, false);
export const exp = (x: Tensor): Tensor => unary('exp', x, {});
export const log = (x: Tensor): Tensor => unary('log', x, {});
export const sqrt = (x: Tensor): Tensor => unary('sqrt', x, {});
export const abs = (x: Tensor): Tensor => unary('abs', x, {}, false);
export const sign = (x: Tensor): Tensor => unary('sign', x, {}, false);
export const relu = (x: Tensor): Tensor => unary('relu', x, {});
export const sigmoid = (x: Tensor): Tensor => unary('sigmoid', x, {});
export const tanh = (x: Tensor): Tensor => unary('tanh', x, {});
export const floor = (x: Tensor): Tensor => unary('floor', x, {});
export function leakyRelu(x: Tensor, alpha = 0.01): Tensor {
  if (!Number.isFinite(alpha)) throw new OpError('leakyRelu', `alpha must be finite, got ${alpha}`);
  return unary('leakyRelu', x, { alpha });
}
/**
 * The gradient of `leakyRelu` in one pass: dx = x > 0 ? dy : alpha·dy (NaN in
 * x is not > 0, so it takes alpha·dy, as at x = 0). x and dy: float tensors
 * of the same shape; dx has dy's dtype, and alpha is taken in that dtype
 * (as `mul(dy, alpha)` takes a number), so the result has exactly the bits of
 * `where(greater(x, 0), dy, mul(dy, alpha))`.
 */
export function leakyReluGrad(x: Tensor, dy: Tensor, alpha = 0.01): Tensor {
  const op = 'leakyReluGrad';
  assertTensor(op, x, 'x');
  assertTensor(op, dy, 'dy');
  if (!Number.isFinite(alpha)) throw new OpError(op, `alpha must be finite, got ${alpha}`);
  if (!isFloat(x.dtype) || !isFloat(dy.dtype))
    throw new OpError(op, `expects float tensors, got x ${x.dtype} and dy ${dy.dtype}`);
  if (!shapesEqual(x.shape, dy.shape))
    throw new OpError(op, `x ${fmtShape(x.shape)} and dy ${fmtShape(dy.shape)} must have the same shape`);
  return run1(op, [x, dy], { alpha });
}
export function clamp(x: Tensor, min = -Infinity, max = Infinity): Tensor {
  if (min > max) throw new OpError('clamp', `min ${min} > max ${max}`);
  return unary('clamp', x, { min, max }, false);
}

export function cast(x: Tensor, dtype: DType): Tensor {
  assertTensor('cast', x);
  return run1('cast', [x], { dtype });
}

function binary(op: BinaryOpName, a: TensorLike, b: TensorLike): Tensor {
  if (typeof a === 'number' && typeof b === 'number') throw new OpError(op, 'at least one argument must be a Tensor');
  const ta = a instanceof Tensor ? a : null,
    tb = b instanceof Tensor ? b : null;
  if (ta) assertTensor(op, ta, 'first argument');
  if (tb) assertTensor(op, tb, 'second argument');
  // A plain number adopts the tensor's dtype, like a Python scalar in PyTorch.
  let dtA = ta ? ta.dtype : tb!.dtype,
    dtB = tb ? tb.dtype : ta!.dtype;
  // ...except that a fractional number makes an integer op float32.
  if (!ta && !Number.isInteger(a)) dtA = isFloat(dtB) ? dtB : 'float32';
  if (!tb && !Number.isInteger(b)) dtB = isFloat(dtA) ? dtA : 'float32';
  const dtype = upcast(op, dtA, dtB);
  // Numbers live where the tensor operand lives, not on whichever backend is active.
  // Shapes are checked before a scalar is made for a number, so a failure leaves nothing behind.
  broadcastShapes(op, ta ? ta.shape : [], tb ? tb.shape : []);
  const like = ta ?? tb!;
  const x = scalarLike(a, dtype, like),
    y = scalarLike(b, dtype, like);
  const out = run1(op, [x, y], { dtype });
  if (x !== a) x.dispose();
  if (y !== b) y.dispose();
  return out;
}

export const add = (a: TensorLike, b: TensorLike): Tensor => binary('add', a, b);
export const sub = (a: TensorLike, b: TensorLike): Tensor => binary('sub', a, b);
export const mul = (a: TensorLike, b: TensorLike): Tensor => binary('mul', a, b);
export const div = (a: TensorLike, b: TensorLike): Tensor => binary('div', a, b);
export const pow = (a: TensorLike, b: TensorLike): Tensor => binary('pow', a, b);
export const maximum = (a: TensorLike, b: TensorLike): Tensor => binary('maximum', a, b);
export const minimum = (a: TensorLike, b: TensorLike): Tensor => binary('minimum', a, b);
export const equal = (a: TensorLike, b: TensorLike): Tensor => binary('equal', a, b);
export const notEqual = (a: TensorLike, b: TensorLike): Tensor => binary('notEqual', a, b);
export const less = (a: TensorLike, b: TensorLike): Tensor => binary('less', a, b);
export const lessEqual = (a: TensorLike, b: TensorLike): Tensor => binary('lessEqual', a, b);
export const greater = (a: TensorLike, b: TensorLike): Tensor => binary('greater', a, b);
export const greaterEqual = (a: TensorLike, b: TensorLike): Tensor => binary('greaterEqual', a, b);
export const logicalAnd = (a: TensorLike, b: TensorLike): Tensor => binary('logicalAnd', a, b);
export const logicalOr = (a: TensorLike, b: TensorLike): Tensor => binary('logicalOr', a, b);
export const square = (x: Tensor): Tensor => mul(x, x);

/** cond ? a : b elementwise, with broadcasting of all three. */
export function where(cond: Tensor, a: TensorLike, b: TensorLike): Tensor {
  assertTensor('where', cond, 'condition');
  const ta = a instanceof Tensor ? a : null,
    tb = b instanceof Tensor ? b : null;
  if (!ta && !tb) throw new OpError('where', 'a or b must be a Tensor');
  const dtype = upcast('where', ta ? ta.dtype : tb!.dtype, tb ? tb.dtype : ta!.dtype);
  broadcastShapes('where', broadcastShapes('where', cond.shape, ta ? ta.shape : []), tb ? tb.shape : []);
  const x = scalarLike(a, dtype, cond),
    y = scalarLike(b, dtype, cond);
  const out = run1('where', [cond, x, y], { dtype });
  if (x !== a) x.dispose();
  if (y !== b) y.dispose();
  return out;
}
