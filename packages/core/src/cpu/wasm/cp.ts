import type { TypedArray } from '../../dtype.js';
import { wasmMatmul } from './matmul.js';
import type { WasmRuntime } from './runtime.js';

/**
 * LARGO's CP kernel reconstruction on the wasm GEMM. With the Khatri-Rao
 * rows KR[(i, s), r] = w_r·aIn[i, r]·aKernel[s, r]:
 *   forward   W[O × I·S]   = aOut[O × R] · KRᵀ
 *   gradient  daOut[O × R] = G[O × I·S] · KR,   H[I·S × R] = Gᵀ · aOut
 * and the remaining (elementwise) parts of the gradient read H, as the
 * JavaScript kernel does per input channel.
 */

let krBuf: Float32Array = new Float32Array(0),
  hBuf: Float32Array = new Float32Array(0);
function grow(b: Float32Array, n: number): Float32Array {
  return b.length >= n ? b : new Float32Array(Math.max(n, b.length * 2));
}

/** Copies n rows of R floats into rows of Rp at byte offset `at` (the pad column zeroed). */
function padRows(mem: Float32Array, src: TypedArray, n: number, R: number, Rp: number, at: number): void {
  if (Rp === R) mem.set(src.length === n * R ? src : src.subarray(0, n * R), at >> 2);
  else
    for (let j = 0; j < n; j++) {
      mem.set(src.subarray(j * R, j * R + R), (at >> 2) + j * Rp);
      mem[(at >> 2) + j * Rp + R] = 0;
    }
}

/** Ranks padded to even (the f64x2 kernels take two at a time); loads read 16 bytes past a row's pair. */
const evenRank = (R: number) => R + (R & 1);
const SLACK = 16;

/** The Khatri-Rao rows in wasm, copied out as [I·S][Rp] (the GEMM reads them with row stride Rp). */
function khatriRao(
  rt: WasmRuntime,
  R: number,
  I: number,
  S: number,
  w: TypedArray,
  B: TypedArray,
  K: TypedArray,
): Float32Array {
  const Rp = evenRank(R);
  const ar = rt.arena;
  ar.reset();
  const Wp = ar.alloc(Rp * 4 + SLACK),
    Bp = ar.alloc(I * Rp * 4 + SLACK),
    Kp = ar.alloc(S * Rp * 4 + SLACK),
    KR = ar.alloc(I * S * Rp * 4);
  const mem = ar.f32();
  padRows(mem, w, 1, R, Rp, Wp);
  padRows(mem, B, I, R, Rp, Bp);
  padRows(mem, K, S, R, Rp, Kp);
  rt.k.khatriRao(Wp, Bp, Kp, KR, I, S, Rp);
  krBuf = grow(krBuf, I * S * Rp);
  krBuf.set(ar.f32().subarray(KR >> 2, (KR >> 2) + I * S * Rp));
  return krBuf;
}

export function wasmCpReconstruct(
  rt: WasmRuntime,
  R: number,
  O: number,
  I: number,
  S: number,
  w: TypedArray,
  A: TypedArray,
  B: TypedArray,
  K: TypedArray,
  W: TypedArray,
): void {
  const kr = khatriRao(rt, R, I, S, w, B, K);
  wasmMatmul(rt, O, I * S, R, A, 0, R, 1, kr, 0, 1, evenRank(R), W, 0);
}

export function wasmCpReconstructGrad(
  rt: WasmRuntime,
  R: number,
  O: number,
  I: number,
  S: number,
  G: TypedArray,
  w: TypedArray,
  A: TypedArray,
  B: TypedArray,
  K: TypedArray,
  dw: TypedArray,
  dA: TypedArray,
  dB: TypedArray,
  dK: TypedArray,
): void {
  const IS = I * S;
  const kr = khatriRao(rt, R, I, S, w, B, K);
  wasmMatmul(rt, O, R, IS, G, 0, IS, 1, kr, 0, evenRank(R), 1, dA, 0);
  hBuf = grow(hBuf, IS * R);
  const H = hBuf;
  wasmMatmul(rt, IS, R, O, G, 0, 1, IS, A, 0, R, 1, H, 0);
  // The rest in the cpGrad kernel, over rows padded to an even rank.
  const Rp = evenRank(R);
  const ar = rt.arena;
  ar.reset();
  const Hp = ar.alloc(IS * Rp * 4 + SLACK),
    Kp = ar.alloc(S * Rp * 4 + SLACK),
    Bp = ar.alloc(I * Rp * 4 + SLACK),
    Wp = ar.alloc(Rp * 4 + SLACK),
    DB = ar.alloc(I * Rp * 8),
    SW = ar.alloc(Rp * 8),
    SK = ar.alloc(S * Rp * 8);
  const mem = ar.f32();
  padRows(mem, H, IS, R, Rp, Hp);
  padRows(mem, K, S, R, Rp, Kp);
  padRows(mem, B, I, R, Rp, Bp);
  padRows(mem, w, 1, R, Rp, Wp);
  const f64 = new Float64Array(rt.memory.buffer);
  f64.fill(0, SW >> 3, (SW >> 3) + Rp);
  f64.fill(0, SK >> 3, (SK >> 3) + S * Rp);
  rt.k.cpGrad(Hp, Kp, Bp, Wp, DB, SW, SK, I, S, Rp);
  for (let i = 0; i < I; i++) for (let r = 0; r < R; r++) dB[i * R + r] = f64[(DB >> 3) + i * Rp + r]!;
  for (let r = 0; r < R; r++) dw[r] = f64[(SW >> 3) + r]!;
  for (let s = 0; s < S; s++) for (let r = 0; r < R; r++) dK[s * R + r] = f64[(SK >> 3) + s * Rp + r]!;
}
