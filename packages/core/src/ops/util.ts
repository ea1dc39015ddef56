import type { DType } from '../dtype.js';
import { engine } from '../engine.js';
import { OpError, fmtShape } from '../errors.js';
import { shapesEqual } from '../shape.js';
import { Tensor } from '../tensor.js';
import type { AttrsOf, OpName } from './schema.js';

export type TensorLike = Tensor | number;

export function run1<Op extends OpName>(op: Op, inputs: readonly Tensor[], attrs: AttrsOf<Op>): Tensor {
  return engine().runKernel(op, inputs, attrs)[0];
}

export function assertTensor(op: string, x: unknown, what = 'input'): asserts x is Tensor {
  if (!(x instanceof Tensor)) throw new OpError(op, `${what} must be a Tensor, got ${typeof x}`);
  x.assertAlive(op);
}

/**
 * Turns a number into a scalar tensor of the given dtype, on the backend of
 * `like` (the other operand) when given, else on the active backend.
 */
export function scalarLike(x: TensorLike, dtype: DType, like?: Tensor): Tensor {
  if (x instanceof Tensor) return x;
  const arr =
    dtype === 'float64'
      ? new Float64Array([x])
      : dtype === 'int32'
        ? new Int32Array([x])
        : dtype === 'uint8'
          ? new Uint8Array([x])
          : new Float32Array([x]);
  return engine().fromValues(arr, [], dtype, like?.backend);
}

export function assertFloat(op: string, x: Tensor, what = 'input'): void {
  if (x.dtype !== 'float32' && x.dtype !== 'float64')
    throw new OpError(op, `${what} must be float32 or float64, got ${x.dtype}`);
}

export function assertSameDtype(op: string, a: Tensor, b: Tensor): void {
  if (a.dtype !== b.dtype)
    throw new OpError(op, `dtype mismatch: ${a.dtype} ${fmtShape(a.shape)} vs ${b.dtype} ${fmtShape(b.shape)}`);
}

/** Expands an int or tuple argument (stride, padding, ...) to `n` entries. */
export function tuple(
  op: string,
  name: string,
  v: number | readonly number[] | undefined,
  n: number,
  dflt: number,
  min = 0,
): number[] {
  const arr =
    v === undefined ? new Array<number>(n).fill(dflt) : typeof v === 'number' ? new Array<number>(n).fill(v) : [...v];
  if (arr.length !== n) throw new OpError(op, `${name} must have ${n} entries, got ${arr.length}`);
  for (const a of arr)
    if (!Number.isInteger(a) || a < min)
      throw new OpError(op, `${name} must be integers >= ${min}, got [${arr.join(', ')}]`);
  return arr;
}

/** `b` must have the shape and dtype of `a` (named `an`, `bn` in the error). */
export function assertSame(op: string, a: Tensor, b: Tensor, an: string, bn: string): void {
  if (!shapesEqual(a.shape, b.shape)) {
    throw new OpError(op, `${bn} shape ${fmtShape(b.shape)} must equal ${an} shape ${fmtShape(a.shape)}`);
  }
  if (a.dtype !== b.dtype) {
    throw new OpError(
      op,
      `${bn} dtype ${b.dtype} ${fmtShape(b.shape)} must equal ${an} dtype ${a.dtype} ${fmtShape(a.shape)}`,
    );
  }
}

/** `dy` must be a one-element tensor of the dtype of `x` (the cotangent of a scalar loss). */
export function assertScalarLike(op: string, dy: Tensor, x: Tensor): void {
  assertTensor(op, dy, 'dy');
  if (dy.size !== 1 || dy.dtype !== x.dtype) {
    throw new OpError(op, `dy must be a one-element ${x.dtype} tensor, got ${dy.dtype} ${fmtShape(dy.shape)}`);
  }
}
