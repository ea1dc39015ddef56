// fast-check generators and value helpers shared by the backend tests
// (the basic shape/value generators live in oracle.ts).
import fc from 'fast-check';
import type { DType } from '@largo/core';
import { arbShape } from './oracle.js';

export const size = (s: readonly number[]): number => s.reduce((a, b) => a * b, 1);

/**
 * float32 values in [min, max] with occasional NaN / ±Inf / ±0. Subnormals
 * become 0: WGSL lets a GPU flush them, so they are not a property of ours.
 */
export const arbF32 = (n: number, min = -4, max = 4, special = true): fc.Arbitrary<number[]> => {
  const plain = fc.double({ min, max, noNaN: true }).map((v) => {
    const f = Math.fround(v);
    return Math.abs(f) < 1.2e-38 ? 0 : f;
  });
  const item = special
    ? fc.oneof(
        { arbitrary: plain, weight: 12 },
        { arbitrary: fc.constantFrom(NaN, Infinity, -Infinity, 0, -0), weight: 1 },
      )
    : plain;
  return fc.array(item, { minLength: n, maxLength: n });
};

export const arbInts = (n: number, min: number, max: number): fc.Arbitrary<number[]> =>
  fc.array(fc.integer({ min, max }), { minLength: n, maxLength: n });

/** `out` with some leading axes dropped and some set to 1: broadcasts to `out`. */
export const arbBroadcastable = (out: readonly number[]): fc.Arbitrary<number[]> =>
  fc
    .tuple(
      fc.integer({ min: 0, max: out.length }),
      fc.array(fc.boolean(), { minLength: out.length, maxLength: out.length }),
    )
    .map(([drop, ones]) => out.slice(drop).map((d, i) => (ones[i + drop] ? 1 : d)));

export const arbShapePair = (maxRank = 4, maxDim = 4) =>
  arbShape(0, maxRank, maxDim).chain((out) => fc.tuple(arbBroadcastable(out), arbBroadcastable(out)));

/** Values as stored by a typed array of `dtype` (JavaScript's store conversion). */
export function stored(values: ArrayLike<number>, dtype: DType): number[] {
  switch (dtype) {
    case 'float32':
      return Array.from(Float32Array.from(values));
    case 'int32':
      return Array.from(Int32Array.from(values));
    case 'uint8':
      return Array.from(Uint8Array.from(values));
    default:
      return Array.from(values);
  }
}
