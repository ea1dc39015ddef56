import { arrayCtor, newArray, dtypeOfArray, type DType, type TypedArray } from '../dtype.js';
import { engine } from '../engine.js';
import { OpError, fmtShape } from '../errors.js';
import { checkShape, sizeOf } from '../shape.js';
import { defaultGenerator, Philox } from '../rng.js';
import type { Tensor } from '../tensor.js';

type Nested = number | Nested[];

function inferShape(x: Nested): number[] {
  const s: number[] = [];
  let cur: Nested = x;
  while (Array.isArray(cur)) {
    s.push(cur.length);
    cur = cur[0];
  }
  return s;
}

/** Every sub-array at depth d must have length shape[d], and the leaves must sit at depth shape.length. */
function checkNested(x: Nested, shape: readonly number[], depth = 0): void {
  if (depth === shape.length) {
    if (Array.isArray(x))
      throw new OpError('tensor', `nested arrays are deeper than the inferred shape ${fmtShape(shape)}`);
    return;
  }
  if (!Array.isArray(x) || x.length !== shape[depth]) {
    throw new OpError(
      'tensor',
      `ragged nested array: expected length ${shape[depth]} at depth ${depth} for shape ${fmtShape(shape)}, got ${Array.isArray(x) ? `length ${x.length}` : 'a number'}`,
    );
  }
  for (const v of x) checkNested(v, shape, depth + 1);
}

/**
 * Creates a tensor from values: a typed array (its dtype is kept unless
 * given), a flat or nested number array, or a number (a scalar).
 */
export function tensor(values: TypedArray | Nested, shape?: readonly number[], dtype?: DType): Tensor {
  let flat: TypedArray;
  if (ArrayBuffer.isView(values)) {
    const src = values as TypedArray;
    const dt = dtype ?? dtypeOfArray(src);
    flat = dt === dtypeOfArray(src) ? src : arrayCtor(dt).from(src as ArrayLike<number>);
    dtype = dt;
  } else {
    dtype = dtype ?? 'float32';
    const nested = values as Nested;
    const flatList = Array.isArray(nested) ? ((nested as unknown[]).flat(Infinity as 1) as number[]) : [nested];
    flat = arrayCtor(dtype).from(flatList);
    if (!shape && Array.isArray(nested)) {
      shape = inferShape(nested);
      checkNested(nested, shape);
    }
    shape = shape ?? [];
  }
  const s = shape ?? [flat.length];
  checkShape('tensor', s);
  if (sizeOf(s) !== flat.length) throw new OpError('tensor', `${flat.length} values do not fill shape ${fmtShape(s)}`);
  return engine().fromValues(flat, s, dtype);
}

export function full(shape: readonly number[], value: number, dtype: DType = 'float32'): Tensor {
  checkShape('full', shape);
  const a = newArray(dtype, sizeOf(shape));
  a.fill(value);
  return engine().fromValues(a, shape, dtype);
}

export const zeros = (shape: readonly number[], dtype: DType = 'float32'): Tensor => full(shape, 0, dtype);
export const ones = (shape: readonly number[], dtype: DType = 'float32'): Tensor => full(shape, 1, dtype);
export const scalar = (v: number, dtype: DType = 'float32'): Tensor => full([], v, dtype);

/** [start, stop) with `step`, like numpy.arange. */
export function arange(start: number, stop?: number, step = 1, dtype: DType = 'float32'): Tensor {
  if (stop === undefined) {
    stop = start;
    start = 0;
  }
  if (step === 0) throw new OpError('arange', 'step must be non-zero');
  // NaN or an infinite bound would otherwise surface as a RangeError from the typed array.
  if (![start, stop, step].every(Number.isFinite))
    throw new OpError('arange', `start, stop and step must be finite, got ${start}, ${stop}, ${step}`);
  const n = Math.max(0, Math.ceil((stop - start) / step));
  const a = newArray(dtype, n);
  for (let i = 0; i < n; i++) a[i] = start + i * step;
  return engine().fromValues(a, [n], dtype);
}

/** Uniform [lo, hi) from a Philox stream (the default one unless given). */
export function rand(
  shape: readonly number[],
  opts: { generator?: Philox; seed?: number; low?: number; high?: number; dtype?: DType } = {},
): Tensor {
  checkShape('rand', shape);
  const g = opts.generator ?? (opts.seed !== undefined ? new Philox(opts.seed) : defaultGenerator());
  const lo = opts.low ?? 0,
    hi = opts.high ?? 1;
  const u = g.uniform(sizeOf(shape));
  const dtype = opts.dtype ?? 'float32';
  const a = newArray(dtype, u.length);
  for (let i = 0; i < u.length; i++) a[i] = lo + (hi - lo) * u[i];
  return engine().fromValues(a, shape, dtype);
}

/** Normal(mean, std) from a Philox stream. */
export function randn(
  shape: readonly number[],
  opts: { generator?: Philox; seed?: number; mean?: number; std?: number; dtype?: DType } = {},
): Tensor {
  checkShape('randn', shape);
  const g = opts.generator ?? (opts.seed !== undefined ? new Philox(opts.seed) : defaultGenerator());
  const z = g.normal(sizeOf(shape));
  const m = opts.mean ?? 0,
    sd = opts.std ?? 1;
  const dtype = opts.dtype ?? 'float32';
  const a = newArray(dtype, z.length);
  for (let i = 0; i < z.length; i++) a[i] = m + sd * z[i];
  return engine().fromValues(a, shape, dtype);
}
