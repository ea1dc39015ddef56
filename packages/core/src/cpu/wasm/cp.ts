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

function khatriRao(R: number, I: number, S: number, w: TypedArray, B: TypedArray, K: TypedArray): Float32Array {
  krBuf = grow(krBuf, I * S * R);
  const kr = krBuf;
  let d = 0;
  for (let i = 0; i < I; i++) {
    for (let s = 0; s < S; s++) {
      for (let r = 0; r < R; r++) kr[d++] = w[r] * B[i * R + r] * K[s * R + r];
    }
  }
  return kr;
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
  const kr = khatriRao(R, I, S, w, B, K);
  wasmMatmul(rt, O, I * S, R, A, 0, R, 1, kr, 0, 1, R, W, 0);
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
  const kr = khatriRao(R, I, S, w, B, K);
  wasmMatmul(rt, O, R, IS, G, 0, IS, 1, kr, 0, R, 1, dA, 0);
  hBuf = grow(hBuf, IS * R);
  const H = hBuf;
  wasmMatmul(rt, IS, R, O, G, 0, 1, IS, A, 0, R, 1, H, 0);
  // The rest in the cpGrad kernel, over rows padded to an even rank.
  const Rp = R + (R & 1);
  const ar = rt.arena;
  ar.reset();
  const slack = 16;
  const Hp = ar.alloc(IS * Rp * 4 + slack),
    Kp = ar.alloc(S * Rp * 4 + slack),
    Bp = ar.alloc(I * Rp * 4 + slack),
    Wp = ar.alloc(Rp * 4 + slack),
    DB = ar.alloc(I * Rp * 8),
    SW = ar.alloc(Rp * 8),
    SK = ar.alloc(S * Rp * 8);
  const mem = ar.f32();
  const rows = (src: TypedArray, n: number, at: number) => {
    if (Rp === R) mem.set(src.length === n * R ? src : src.subarray(0, n * R), at >> 2);
    else
      for (let j = 0; j < n; j++) {
        mem.set(src.subarray(j * R, j * R + R), (at >> 2) + j * Rp);
        mem[(at >> 2) + j * Rp + R] = 0;
      }
  };
  rows(H, IS, Hp);
  rows(K, S, Kp);
  rows(B, I, Bp);
  rows(w, 1, Wp);
  const f64 = new Float64Array(rt.memory.buffer);
  f64.fill(0, SW >> 3, (SW >> 3) + Rp);
  f64.fill(0, SK >> 3, (SK >> 3) + S * Rp);
  rt.k.cpGrad(Hp, Kp, Bp, Wp, DB, SW, SK, I, S, Rp);
  for (let i = 0; i < I; i++) for (let r = 0; r < R; r++) dB[i * R + r] = f64[(DB >> 3) + i * Rp + r]!;
  for (let r = 0; r < R; r++) dw[r] = f64[(SW >> 3) + r]!;
  for (let s = 0; s < S; s++) for (let r = 0; r < R; r++) dK[s * R + r] = f64[(SK >> 3) + s * Rp + r]!;
}
