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
  const sw = new Float64Array(R),
    sk = new Float64Array(S * R);
  for (let i = 0; i < I; i++) {
    const bi = i * R,
      hi = i * S * R;
    for (let r = 0; r < R; r++) {
      let t = 0;
      for (let s = 0; s < S; s++) t += H[hi + s * R + r] * K[s * R + r];
      dB[bi + r] = w[r] * t;
      sw[r] += B[bi + r] * t;
    }
    for (let s = 0; s < S; s++) {
      const ks = s * R;
      for (let r = 0; r < R; r++) sk[ks + r] += w[r] * B[bi + r] * H[hi + ks + r];
    }
  }
  for (let r = 0; r < R; r++) dw[r] = sw[r];
  for (let j = 0; j < S * R; j++) dK[j] = sk[j];
}
