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

export type BinaryKernel = 'ewAdd' | 'ewSub' | 'ewMul' | 'ewDiv';

/** Stages an operand of n floats (or a scalar, as 4 copies); returns its step in bytes per vector. */
function operand(rt: WasmRuntime, v: TypedArray, n: number, at: number): number {
  if (v.length === 1 && n !== 1) {
    rt.arena.f32().fill(v[0]!, at >> 2, (at >> 2) + 4);
    return 0;
  }
  stage(rt, v, n, at);
  return 16;
}

/** out = a ∘ b over n floats; an operand of length 1 is broadcast. */
export function wasmBinary(
  rt: WasmRuntime,
  kernel: BinaryKernel,
  a: TypedArray,
  b: TypedArray,
  out: TypedArray,
  n: number,
): void {
  const ar = rt.arena;
  ar.reset();
  const A = ar.alloc(vecs(n) * 16),
    B = ar.alloc(vecs(n) * 16),
    O = ar.alloc(vecs(n) * 16);
  const aStep = operand(rt, a, n, A),
    bStep = operand(rt, b, n, B);
  rt.k[kernel](A, B, O, vecs(n), aStep, bStep);
  out.set(ar.f32().subarray(O >> 2, (O >> 2) + n));
}

/** y = x > 0 ? x : f32(α·x) over n floats. */
export function wasmLeakyRelu(rt: WasmRuntime, x: TypedArray, y: TypedArray, alpha: number, n: number): void {
  const ar = rt.arena;
  ar.reset();
  const X = ar.alloc(vecs(n) * 16),
    Y = ar.alloc(vecs(n) * 16),
    AL = ar.alloc(8);
  stage(rt, x, n, X);
  new Float64Array(rt.memory.buffer, AL, 1)[0] = alpha;
  rt.k.leakyRelu(X, Y, vecs(n), AL);
  y.set(ar.f32().subarray(Y >> 2, (Y >> 2) + n));
}

/** dx = x > 0 ? dy : α·dy over n floats, α already in float32. */
export function wasmLeakyReluGrad(
  rt: WasmRuntime,
  x: TypedArray,
  dy: TypedArray,
  dx: TypedArray,
  alpha: number,
  n: number,
): void {
  const ar = rt.arena;
  ar.reset();
  const X = ar.alloc(vecs(n) * 16),
    DY = ar.alloc(vecs(n) * 16),
    DX = ar.alloc(vecs(n) * 16),
    AL = ar.alloc(4);
  stage(rt, x, n, X);
  stage(rt, dy, n, DY);
  const mem = ar.f32();
  mem[AL >> 2] = alpha;
  rt.k.leakyReluGrad(X, DY, DX, vecs(n), AL);
  dx.set(mem.subarray(DX >> 2, (DX >> 2) + n));
}
