/**
 * The float64 oracle: textbook kernels, plain loops, written independently
 * of the fast kernels. Used by tests and by `largo audit`, never by training.
 */
export interface RefTensor {
  shape: number[];
  data: Float64Array;
}

export function refTensor(shape: readonly number[], data?: ArrayLike<number>): RefTensor {
  let n = 1;
  for (const d of shape) n *= d;
  const out = new Float64Array(n);
  if (data) {
    if (data.length !== n) throw new Error(`reference: ${data.length} values for shape [${shape.join(', ')}]`);
    for (let i = 0; i < n; i++) out[i] = data[i];
  }
  return { shape: [...shape], data: out };
}

/** Row-major flat index of a multi-index. */
export function flatIndex(shape: readonly number[], idx: readonly number[]): number {
  let f = 0;
  for (let d = 0; d < shape.length; d++) f = f * shape[d] + idx[d];
  return f;
}

/** Multi-index of a flat index. */
export function multiIndex(shape: readonly number[], flat: number): number[] {
  const idx = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    idx[d] = flat % shape[d];
    flat = Math.floor(flat / shape[d]);
  }
  return idx;
}
