// The CPU's GEMM building blocks, shared by matmul, conv and CP reconstruction.
//
// Every hot loop here runs over Float64Array operands only (packed from
// either float dtype by the caller): one element kind keeps the inner loops
// monomorphic for V8, and float64 accumulation rounds float32 results once.
import type { TypedArray } from '../dtype.js';

/** Module-level float64 scratch buffers, grown on demand and never shrunk. */
export class ScratchPool {
  private bufs: Float64Array[] = [];
  /** A buffer of at least `n` elements for `slot`; contents are unspecified. */
  get(slot: number, n: number): Float64Array {
    let b = this.bufs[slot];
    if (!b || b.length < n) {
      let size = b ? b.length : 1024;
      while (size < n) size *= 2;
      b = new Float64Array(size);
      this.bufs[slot] = b;
    }
    return b;
  }
}

/**
 * C[i, j] += Σ_r A[i, r] · B[r, j] for i < M, j < N, r < K, on float64 arrays
 * with arbitrary strides: A[i, r] = A[aOff + i·aI + r·aR],
 * B[r, j] = B[bOff + r·bR + j·bJ], C[i, j] = C[cOff + i·ldc + j].
 *
 * 4×4 register tiles (16 accumulators in locals; measured as fast as any
 * other tile shape in V8), with 4×1, 1×4 and 1×1 loops for the edges so that
 * nothing is padded and no element is read out of bounds.
 */
export function gemm(
  M: number,
  N: number,
  K: number,
  A: Float64Array,
  aOff: number,
  aI: number,
  aR: number,
  B: Float64Array,
  bOff: number,
  bR: number,
  bJ: number,
  C: Float64Array,
  cOff: number,
  ldc: number,
): void {
  const M4 = M - (M & 3),
    N4 = N - (N & 3);
  const aI2 = 2 * aI,
    aI3 = 3 * aI,
    bJ2 = 2 * bJ,
    bJ3 = 3 * bJ;
  for (let i = 0; i < M4; i += 4) {
    const aRow = aOff + i * aI;
    for (let j = 0; j < N4; j += 4) {
      let c00 = 0,
        c01 = 0,
        c02 = 0,
        c03 = 0,
        c10 = 0,
        c11 = 0,
        c12 = 0,
        c13 = 0;
      let c20 = 0,
        c21 = 0,
        c22 = 0,
        c23 = 0,
        c30 = 0,
        c31 = 0,
        c32 = 0,
        c33 = 0;
      let ao = aRow,
        bo = bOff + j * bJ;
      for (let r = 0; r < K; r++) {
        const a0 = A[ao],
          a1 = A[ao + aI],
          a2 = A[ao + aI2],
          a3 = A[ao + aI3];
        const b0 = B[bo],
          b1 = B[bo + bJ],
          b2 = B[bo + bJ2],
          b3 = B[bo + bJ3];
        c00 += a0 * b0;
        c01 += a0 * b1;
        c02 += a0 * b2;
        c03 += a0 * b3;
        c10 += a1 * b0;
        c11 += a1 * b1;
        c12 += a1 * b2;
        c13 += a1 * b3;
        c20 += a2 * b0;
        c21 += a2 * b1;
        c22 += a2 * b2;
        c23 += a2 * b3;
        c30 += a3 * b0;
        c31 += a3 * b1;
        c32 += a3 * b2;
        c33 += a3 * b3;
        ao += aR;
        bo += bR;
      }
      let c = cOff + i * ldc + j;
      C[c] += c00;
      C[c + 1] += c01;
      C[c + 2] += c02;
      C[c + 3] += c03;
      c += ldc;
      C[c] += c10;
      C[c + 1] += c11;
      C[c + 2] += c12;
      C[c + 3] += c13;
      c += ldc;
      C[c] += c20;
      C[c + 1] += c21;
      C[c + 2] += c22;
      C[c + 3] += c23;
      c += ldc;
      C[c] += c30;
      C[c + 1] += c31;
      C[c + 2] += c32;
      C[c + 3] += c33;
    }
    for (let j = N4; j < N; j++) {
      let c0 = 0,
        c1 = 0,
        c2 = 0,
        c3 = 0;
      let ao = aRow,
        bo = bOff + j * bJ;
      for (let r = 0; r < K; r++) {
        const bv = B[bo];
        c0 += A[ao] * bv;
        c1 += A[ao + aI] * bv;
        c2 += A[ao + aI2] * bv;
        c3 += A[ao + aI3] * bv;
        ao += aR;
        bo += bR;
      }
      const c = cOff + i * ldc + j;
      C[c] += c0;
      C[c + ldc] += c1;
      C[c + 2 * ldc] += c2;
      C[c + 3 * ldc] += c3;
    }
  }
  for (let i = M4; i < M; i++) {
    const aRow = aOff + i * aI;
    for (let j = 0; j < N4; j += 4) {
      let c0 = 0,
        c1 = 0,
        c2 = 0,
        c3 = 0;
      let ao = aRow,
        bo = bOff + j * bJ;
      for (let r = 0; r < K; r++) {
        const av = A[ao];
        c0 += av * B[bo];
        c1 += av * B[bo + bJ];
        c2 += av * B[bo + bJ2];
        c3 += av * B[bo + bJ3];
        ao += aR;
        bo += bR;
      }
      const c = cOff + i * ldc + j;
      C[c] += c0;
      C[c + 1] += c1;
      C[c + 2] += c2;
      C[c + 3] += c3;
    }
    for (let j = N4; j < N; j++) {
      let s = 0;
      let ao = aRow,
        bo = bOff + j * bJ;
      for (let r = 0; r < K; r++) {
        s += A[ao] * B[bo];
        ao += aR;
        bo += bR;
      }
      C[cOff + i * ldc + j] += s;
    }
  }
}

/** dst[r·cols + c] = src[off + r·rs + c·cs]: packs a block of either float dtype into float64. */
export function packBlock(
  src: TypedArray,
  off: number,
  rs: number,
  cs: number,
  rows: number,
  cols: number,
  dst: Float64Array,
): void {
  let d = 0;
  if (cs === 1) {
    for (let r = 0; r < rows; r++) {
      const s = off + r * rs;
      for (let c = 0; c < cols; c++) dst[d++] = src[s + c];
    }
  } else {
    for (let r = 0; r < rows; r++) {
      let s = off + r * rs;
      for (let c = 0; c < cols; c++, s += cs) dst[d++] = src[s];
    }
  }
}

// The GEMM helpers take Float64Array operands only, so that their inner loops
// stay monomorphic in V8 whatever mix of float32/float64 tensors a process
// uses; callers pack factors into float64 scratch first (O(size) work).

/** Chunk of the contraction (NT) or of the output row (NN) that stays in L1/L2. */
const NT_KC = 512,
  NCH = 256;

/**
 * C[cOff + m*ldc + n] += Σ_k A[aOff + m*lda + k]·B[bOff + n*ldb + k]
 * (C += A·Bᵀ, dot products over contiguous k), 4×2 register block, the
 * contraction split into chunks of NT_KC so that the operand strips stay in cache.
 */
export function gemmNT(
  M: number,
  N: number,
  K: number,
  A: Float64Array,
  aOff: number,
  lda: number,
  B: Float64Array,
  bOff: number,
  ldb: number,
  C: Float64Array,
  cOff: number,
  ldc: number,
): void {
  for (let k0 = 0; k0 < K; k0 += NT_KC) {
    const k1 = Math.min(K, k0 + NT_KC);
    let m = 0;
    for (; m + 4 <= M; m += 4) {
      const a0 = aOff + m * lda,
        a1 = a0 + lda,
        a2 = a1 + lda,
        a3 = a2 + lda;
      const c0 = cOff + m * ldc,
        c1 = c0 + ldc,
        c2 = c1 + ldc,
        c3 = c2 + ldc;
      let n = 0;
      for (; n + 2 <= N; n += 2) {
        const b0 = bOff + n * ldb,
          b1 = b0 + ldb;
        let s00 = 0,
          s01 = 0,
          s10 = 0,
          s11 = 0,
          s20 = 0,
          s21 = 0,
          s30 = 0,
          s31 = 0;
        for (let k = k0; k < k1; k++) {
          const x0 = B[b0 + k],
            x1 = B[b1 + k];
          let a = A[a0 + k];
          s00 += a * x0;
          s01 += a * x1;
          a = A[a1 + k];
          s10 += a * x0;
          s11 += a * x1;
          a = A[a2 + k];
          s20 += a * x0;
          s21 += a * x1;
          a = A[a3 + k];
          s30 += a * x0;
          s31 += a * x1;
        }
        C[c0 + n] += s00;
        C[c0 + n + 1] += s01;
        C[c1 + n] += s10;
        C[c1 + n + 1] += s11;
        C[c2 + n] += s20;
        C[c2 + n + 1] += s21;
        C[c3 + n] += s30;
        C[c3 + n + 1] += s31;
      }
      for (; n < N; n++) {
        const b0 = bOff + n * ldb;
        let s0 = 0,
          s1 = 0,
          s2 = 0,
          s3 = 0;
        for (let k = k0; k < k1; k++) {
          const x = B[b0 + k];
          s0 += A[a0 + k] * x;
          s1 += A[a1 + k] * x;
          s2 += A[a2 + k] * x;
          s3 += A[a3 + k] * x;
        }
        C[c0 + n] += s0;
        C[c1 + n] += s1;
        C[c2 + n] += s2;
        C[c3 + n] += s3;
      }
    }
    for (; m < M; m++) {
      const a0 = aOff + m * lda,
        c0 = cOff + m * ldc;
      for (let n = 0; n < N; n++) {
        const b0 = bOff + n * ldb;
        let s = 0;
        for (let k = k0; k < k1; k++) s += A[a0 + k] * B[b0 + k];
        C[c0 + n] += s;
      }
    }
  }
}

/**
 * C[m*ldc + n] += Σ_k X[xOff + m*xsM + k*xsK]·Y[k*ldy + n] (C += X·Y, rows of
 * Y and C contiguous in n); X may be strided (a transposed view) and of
 * either float type: it is read outside the inner loop. 2×4 register block,
 * the rows split into chunks of NCH columns.
 */
export function gemmNNAcc(
  M: number,
  N: number,
  K: number,
  X: ArrayLike<number>,
  xOff: number,
  xsM: number,
  xsK: number,
  Y: Float64Array,
  ldy: number,
  C: Float64Array,
  ldc: number,
): void {
  for (let n0 = 0; n0 < N; n0 += NCH) {
    const n1 = Math.min(N, n0 + NCH);
    let m = 0;
    for (; m + 2 <= M; m += 2) {
      const c0 = m * ldc,
        c1 = c0 + ldc;
      const p = xOff + m * xsM,
        q = p + xsM;
      let k = 0;
      for (; k + 4 <= K; k += 4) {
        const x0 = X[p + k * xsK],
          x1 = X[p + (k + 1) * xsK],
          x2 = X[p + (k + 2) * xsK],
          x3 = X[p + (k + 3) * xsK];
        const z0 = X[q + k * xsK],
          z1 = X[q + (k + 1) * xsK],
          z2 = X[q + (k + 2) * xsK],
          z3 = X[q + (k + 3) * xsK];
        const y0 = k * ldy,
          y1 = y0 + ldy,
          y2 = y1 + ldy,
          y3 = y2 + ldy;
        for (let n = n0; n < n1; n++) {
          const a = Y[y0 + n],
            b = Y[y1 + n],
            c = Y[y2 + n],
            d = Y[y3 + n];
          C[c0 + n] += x0 * a + x1 * b + x2 * c + x3 * d;
          C[c1 + n] += z0 * a + z1 * b + z2 * c + z3 * d;
        }
      }
      for (; k < K; k++) {
        const x = X[p + k * xsK],
          z = X[q + k * xsK],
          y = k * ldy;
        for (let n = n0; n < n1; n++) {
          const a = Y[y + n];
          C[c0 + n] += x * a;
          C[c1 + n] += z * a;
        }
      }
    }
    for (; m < M; m++) {
      const c0 = m * ldc,
        p = xOff + m * xsM;
      for (let k = 0; k < K; k++) {
        const x = X[p + k * xsK],
          y = k * ldy;
        for (let n = n0; n < n1; n++) C[c0 + n] += x * Y[y + n];
      }
    }
  }
}
