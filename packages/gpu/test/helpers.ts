// Shared by the WebGPU tests: backend acquisition (skip with the reason when
// there is no adapter), async reads, oracle comparison, generators.
import fc from 'fast-check';
import { memory, setBackend, type DType, type Tensor } from '@largo/core';
import type { RefTensor } from '@largo/core/reference';
import { initWebGpu, webGpuUnavailableReason, type WebGpuBackend } from '@largo/gpu';
import { requirement } from '../../core/test/helpers/requirements.js';
export { oracleCase } from '../../core/test/helpers/oracle.js';

/** The backend, or null; when null `skipReason` says why (tests then skip with it). */
export const backend: WebGpuBackend | null = await initWebGpu({ quiet: true });
// With LARGO_REQUIRE_WEBGPU=1 (CI) a missing adapter is a failure, not a skip.
export const skipReason: string | false = requirement('WEBGPU', backend ? false : `no WebGPU adapter: ${webGpuUnavailableReason()}`);
if (backend) setBackend('webgpu');

/**
 * Property runs per WebGPU test (LARGO_GPU_FC_RUNS overrides). llvmpipe runs
 * every shader on the CPU, but most of a file's time is shader compilation
 * and fixed cases: on the 2-core CI VM the whole WebGPU suite took 42 s at
 * 12 runs and 58 s at 36.
 */
export const GPU_RUNS = Number(process.env.LARGO_GPU_FC_RUNS ?? 36);

export const wg = (op: string): string => `${op} [webgpu]`;
/** Test options: skip with the reason when there is no adapter (a fresh object each time: tap annotates it). */
export const gpuOpts = (): { skip: string | false } => ({ skip: skipReason });

/** Runs `body` and checks that it left no tensor or GPU buffer behind. */
export async function leakFree(t: { same(a: unknown, b: unknown, m?: string): boolean }, body: () => Promise<void>): Promise<void> {
  const before = memory();
  await body();
  t.same(memory(), before, 'no tensor or buffer leaked');
}

export async function toRefAsync(t: Tensor): Promise<RefTensor> {
  return { shape: [...t.shape], data: Float64Array.from((await t.data()) as ArrayLike<number>) };
}

/** Reads `t`, then disposes it. */
export async function take(t: Tensor): Promise<{ shape: number[]; data: number[] }> {
  const d = Array.from((await t.data()) as ArrayLike<number>);
  const shape = [...t.shape];
  t.dispose();
  return { shape, data: d };
}

export interface Tol { rtol?: number; atol?: number }

/** Null when `got` matches the oracle: NaN must match NaN, infinities exactly, finite values within atol + rtol·|want|. */
export function compareTo(got: { shape: readonly number[]; data: ArrayLike<number> }, want: RefTensor, tol: Tol = {}): string | null {
  const rtol = tol.rtol ?? 1e-5, atol = tol.atol ?? 1e-6;
  if (got.shape.length !== want.shape.length || got.shape.some((d, i) => d !== want.shape[i])) {
    return `shape [${got.shape.join(', ')}] != expected [${want.shape.join(', ')}]`;
  }
  for (let i = 0; i < want.data.length; i++) {
    const x = got.data[i], y = want.data[i];
    if (Number.isNaN(x) || Number.isNaN(y)) {
      if (Number.isNaN(x) !== Number.isNaN(y)) return `element ${i}: got ${x}, expected ${y}`;
      continue;
    }
    if (!Number.isFinite(x) || !Number.isFinite(y)) {
      if (x !== y) return `element ${i}: got ${x}, expected ${y}`;
      continue;
    }
    if (Math.abs(x - y) > atol + rtol * Math.abs(y)) {
      return `element ${i}: got ${x}, expected ${y} (abs err ${Math.abs(x - y).toExponential(3)}, rtol ${rtol}, atol ${atol})`;
    }
  }
  return null;
}

export function check(msg: string | null, what: string): void {
  if (msg !== null) throw new Error(`${what}: ${msg}`);
}

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
    ? fc.oneof({ arbitrary: plain, weight: 12 }, { arbitrary: fc.constantFrom(NaN, Infinity, -Infinity, 0, -0), weight: 1 })
    : plain;
  return fc.array(item, { minLength: n, maxLength: n });
};

export const arbInts = (n: number, min: number, max: number): fc.Arbitrary<number[]> =>
  fc.array(fc.integer({ min, max }), { minLength: n, maxLength: n });

/** A shape with rank in [minRank, maxRank] and dims in [1, maxDim]. */
export const arbShape = (minRank = 0, maxRank = 4, maxDim = 5): fc.Arbitrary<number[]> =>
  fc.array(fc.integer({ min: 1, max: maxDim }), { minLength: minRank, maxLength: maxRank });

/** `out` with some leading axes dropped and some set to 1: broadcasts to `out`. */
export const arbBroadcastable = (out: readonly number[]): fc.Arbitrary<number[]> =>
  fc.tuple(fc.integer({ min: 0, max: out.length }), fc.array(fc.boolean(), { minLength: out.length, maxLength: out.length }))
    .map(([drop, ones]) => out.slice(drop).map((d, i) => (ones[i + drop] ? 1 : d)));

export const arbShapePair = (maxRank = 4, maxDim = 4) =>
  arbShape(0, maxRank, maxDim).chain((out) => fc.tuple(arbBroadcastable(out), arbBroadcastable(out)));

/** Values as stored by a typed array of `dtype` (JavaScript's store conversion). */
export function stored(values: ArrayLike<number>, dtype: DType): number[] {
  switch (dtype) {
    case 'float32': return Array.from(Float32Array.from(values));
    case 'int32': return Array.from(Int32Array.from(values));
    case 'uint8': return Array.from(Uint8Array.from(values));
    default: return Array.from(values);
  }
}
