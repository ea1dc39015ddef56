// Shared by every property test: conversions to and from the float64
// oracle, tolerance-aware comparison (each pass counted for the run record,
// record.ts), fast-check generators.
import fc from 'fast-check';
import type { Tensor } from '@largo/core';
import type { RefTensor } from '@largo/core/reference';
import { comparisonPassed } from './record.js';

export function toRef(t: Tensor): RefTensor {
  return { shape: [...t.shape], data: Float64Array.from(t.dataSync() as ArrayLike<number>) };
}

/** The oracle copy of a tensor on any backend (an asynchronous read). */
export async function toRefAsync(t: Tensor): Promise<RefTensor> {
  return { shape: [...t.shape], data: Float64Array.from((await t.data()) as ArrayLike<number>) };
}

export interface Tol {
  rtol?: number;
  atol?: number;
}

/**
 * Max abs/rel error of `actual` against the oracle; NaN must match NaN and
 * infinities must match exactly. Returns a message on failure, null when close.
 * Reads synchronously: CPU tensors only (see `compareAsync`).
 */
export function compare(actual: Tensor, expected: RefTensor, tol: Tol = {}): string | null {
  return compareValues({ shape: actual.shape, data: actual.dataSync() }, expected, tol);
}

/** `compare` for a tensor on any backend: reads it asynchronously, then disposes it when `dispose` is set. */
export async function compareAsync(
  actual: Tensor,
  expected: RefTensor,
  tol: Tol = {},
  dispose = false,
): Promise<string | null> {
  const got = { shape: [...actual.shape], data: await actual.data() };
  if (dispose) actual.dispose();
  return compareValues(got, expected, tol);
}

/** The comparison itself, on values already read; a pass counts toward the enclosing case's record. */
export function compareValues(
  actual: { shape: readonly number[]; data: ArrayLike<number> },
  expected: RefTensor,
  tol: Tol = {},
): string | null {
  const msg = mismatch(actual, expected, tol);
  if (msg === null) comparisonPassed();
  return msg;
}

function mismatch(
  actual: { shape: readonly number[]; data: ArrayLike<number> },
  expected: RefTensor,
  tol: Tol,
): string | null {
  const rtol = tol.rtol ?? 1e-5,
    atol = tol.atol ?? 1e-6;
  if (actual.shape.length !== expected.shape.length || actual.shape.some((d, i) => d !== expected.shape[i])) {
    return `shape [${actual.shape.join(', ')}] != expected [${expected.shape.join(', ')}]`;
  }
  const a = actual.data;
  for (let i = 0; i < a.length; i++) {
    const x = a[i],
      y = expected.data[i];
    if (Number.isNaN(y) || Number.isNaN(x)) {
      if (Number.isNaN(y) !== Number.isNaN(x)) return `element ${i}: got ${x}, expected ${y}`;
      continue;
    }
    if (!Number.isFinite(y) || !Number.isFinite(x)) {
      if (x !== y) return `element ${i}: got ${x}, expected ${y}`;
      continue;
    }
    if (Math.abs(x - y) > atol + rtol * Math.abs(y)) {
      return `element ${i}: got ${x}, expected ${y} (abs err ${Math.abs(x - y).toExponential(3)}, rtol ${rtol}, atol ${atol})`;
    }
  }
  return null;
}

/** A random shape: rank in [minRank, maxRank], each dim in [1, maxDim]. */
export const arbShape = (minRank = 0, maxRank = 4, maxDim = 5): fc.Arbitrary<number[]> =>
  fc.array(fc.integer({ min: 1, max: maxDim }), { minLength: minRank, maxLength: maxRank });

/** Float32-representable values in a range, no NaN. */
export const arbValues = (n: number, min = -3, max = 3): fc.Arbitrary<Float32Array> =>
  fc.float32Array({
    minLength: n,
    maxLength: n,
    min: Math.fround(min),
    max: Math.fround(max),
    noNaN: true,
    noDefaultInfinity: true,
  });

/** A float32 tensor of `shape` with values from fast-check. */
export const arbTensorOf = (shape: readonly number[], min = -3, max = 3): fc.Arbitrary<Float32Array> =>
  arbValues(
    shape.reduce((a, b) => a * b, 1),
    min,
    max,
  );

/** Tolerance that grows with the length of a float32 reduction. */
export const reductionTol = (n: number): Tol => ({
  rtol: 1e-5 * Math.sqrt(Math.max(n, 1)) + 1e-6,
  atol: 1e-6 * Math.sqrt(Math.max(n, 1)) + 1e-6,
});

export const FC_RUNS = Number(process.env.LARGO_FC_RUNS ?? 60);
