import type { TypedArray } from '../../dtype.js';
import type { WasmRuntime } from './runtime.js';

/**
 * Drivers of the pointwise kernels (kernels-pointwise.ts): inputs are copied
 * into the arena padded to whole vectors of 4 (the kernels read and write
 * whole vectors; the loss masks lanes past n), outputs copied back. One
 * thread: these calls are small and memory-bound next to the convolutions.
 */

const vecs = (n: number) => (n + 3) >> 2;

/** Copies the first n floats of `src` to byte offset `at`, zeros to the next multiple of 4. */
function stage(rt: WasmRuntime, src: TypedArray, n: number, at: number): void {
  const mem = rt.arena.f32();
  mem.set(src.length === n ? src : src.subarray(0, n), at >> 2);
  mem.fill(0, (at >> 2) + n, (at >> 2) + vecs(n) * 4);
}

/** Σ max(x,0) − x·t + log1p(exp(−|x|)) over n elements, summed in float64. */
export function wasmBceSum(rt: WasmRuntime, x: TypedArray, t: TypedArray, n: number): number {
  const ar = rt.arena;
  ar.reset();
  const X = ar.alloc(vecs(n) * 16),
    T = ar.alloc(vecs(n) * 16),
    out = ar.alloc(8);
  stage(rt, x, n, X);
  stage(rt, t, n, T);
  rt.k.bceSum(X, T, n, out);
  return new Float64Array(rt.memory.buffer, out, 1)[0]!;
}

/** dx = g·(σ(x) − t), dt = −g·x. */
export function wasmBceGrad(
  rt: WasmRuntime,
  x: TypedArray,
  t: TypedArray,
  g: number,
  dx: TypedArray,
  dt: TypedArray,
  n: number,
): void {
  const ar = rt.arena;
  ar.reset();
  const X = ar.alloc(vecs(n) * 16),
    T = ar.alloc(vecs(n) * 16),
    DX = ar.alloc(vecs(n) * 16),
    DT = ar.alloc(vecs(n) * 16),
    G = ar.alloc(4);
  stage(rt, x, n, X);
  stage(rt, t, n, T);
  const mem = ar.f32();
  mem[G >> 2] = g;
  rt.k.bceGrad(X, T, DX, DT, vecs(n), G);
  dx.set(mem.subarray(DX >> 2, (DX >> 2) + n));
  dt.set(mem.subarray(DT >> 2, (DT >> 2) + n));
}
