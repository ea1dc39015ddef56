import { registerKernel } from '../backend.js';
import type { TypedArray } from '../dtype.js';
import { broadcastShapes } from '../shape.js';
import { CpuBackend, vals } from './backend.js';
import { forEachBroadcast } from './elementwise.js';

/**
 * Dense matrix products on the CPU.
 *
 * Every hot loop here runs over Float64Array scratch only: inputs of either
 * float dtype are packed into reused float64 blocks and results are
 * accumulated in float64 registers, then rounded once when written out. That
 * keeps the inner loops monomorphic for V8 (one element kind), makes float32
 * results slightly more accurate than a float32 accumulator would, and lets
 * the packing step absorb transposes (no transposed copy of a whole operand).
 */

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

const scratch = new ScratchPool();

/**
 * C[i, j] += Σ_r A[i, r] · B[r, j] for i < M, j < N, r < K, on float64 arrays
 * with arbitrary strides: A[i, r] = A[aOff + i·aI + r·aR],
 * B[r, j] = B[bOff + r·bR + j·bJ], C[i, j] = C[cOff + i·ldc + j].
 *
 * 4×4 register tiles (16 accumulators in locals; measured as fast as any
 * other tile shape in V8), with 4×1, 1×4 and 1×1 loops for the edges so that
 * nothing is padded and no element is read out of bounds.
 */
export function gemm(M: number, N: number, K: number,
  A: Float64Array, aOff: number, aI: number, aR: number,
  B: Float64Array, bOff: number, bR: number, bJ: number,
  C: Float64Array, cOff: number, ldc: number): void {
  const M4 = M - (M & 3), N4 = N - (N & 3);
  const aI2 = 2 * aI, aI3 = 3 * aI, bJ2 = 2 * bJ, bJ3 = 3 * bJ;
  for (let i = 0; i < M4; i += 4) {
    const aRow = aOff + i * aI;
    for (let j = 0; j < N4; j += 4) {
      let c00 = 0, c01 = 0, c02 = 0, c03 = 0, c10 = 0, c11 = 0, c12 = 0, c13 = 0;
      let c20 = 0, c21 = 0, c22 = 0, c23 = 0, c30 = 0, c31 = 0, c32 = 0, c33 = 0;
      let ao = aRow, bo = bOff + j * bJ;
      for (let r = 0; r < K; r++) {
        const a0 = A[ao], a1 = A[ao + aI], a2 = A[ao + aI2], a3 = A[ao + aI3];
        const b0 = B[bo], b1 = B[bo + bJ], b2 = B[bo + bJ2], b3 = B[bo + bJ3];
        c00 += a0 * b0; c01 += a0 * b1; c02 += a0 * b2; c03 += a0 * b3;
        c10 += a1 * b0; c11 += a1 * b1; c12 += a1 * b2; c13 += a1 * b3;
        c20 += a2 * b0; c21 += a2 * b1; c22 += a2 * b2; c23 += a2 * b3;
        c30 += a3 * b0; c31 += a3 * b1; c32 += a3 * b2; c33 += a3 * b3;
        ao += aR; bo += bR;
      }
      let c = cOff + i * ldc + j;
      C[c] += c00; C[c + 1] += c01; C[c + 2] += c02; C[c + 3] += c03; c += ldc;
      C[c] += c10; C[c + 1] += c11; C[c + 2] += c12; C[c + 3] += c13; c += ldc;
      C[c] += c20; C[c + 1] += c21; C[c + 2] += c22; C[c + 3] += c23; c += ldc;
      C[c] += c30; C[c + 1] += c31; C[c + 2] += c32; C[c + 3] += c33;
    }
    for (let j = N4; j < N; j++) {
      let c0 = 0, c1 = 0, c2 = 0, c3 = 0;
      let ao = aRow, bo = bOff + j * bJ;
      for (let r = 0; r < K; r++) {
        const bv = B[bo];
        c0 += A[ao] * bv; c1 += A[ao + aI] * bv; c2 += A[ao + aI2] * bv; c3 += A[ao + aI3] * bv;
        ao += aR; bo += bR;
      }
      const c = cOff + i * ldc + j;
      C[c] += c0; C[c + ldc] += c1; C[c + 2 * ldc] += c2; C[c + 3 * ldc] += c3;
    }
  }
  for (let i = M4; i < M; i++) {
    const aRow = aOff + i * aI;
    for (let j = 0; j < N4; j += 4) {
      let c0 = 0, c1 = 0, c2 = 0, c3 = 0;
      let ao = aRow, bo = bOff + j * bJ;
      for (let r = 0; r < K; r++) {
        const av = A[ao];
        c0 += av * B[bo]; c1 += av * B[bo + bJ]; c2 += av * B[bo + bJ2]; c3 += av * B[bo + bJ3];
        ao += aR; bo += bR;
      }
      const c = cOff + i * ldc + j;
      C[c] += c0; C[c + 1] += c1; C[c + 2] += c2; C[c + 3] += c3;
    }
    for (let j = N4; j < N; j++) {
      let s = 0;
      let ao = aRow, bo = bOff + j * bJ;
      for (let r = 0; r < K; r++) { s += A[ao] * B[bo]; ao += aR; bo += bR; }
      C[cOff + i * ldc + j] += s;
    }
  }
}

/** dst[r·cols + c] = src[off + r·rs + c·cs]: packs a block of either float dtype into float64. */
export function packBlock(src: TypedArray, off: number, rs: number, cs: number, rows: number, cols: number, dst: Float64Array): void {
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

// Block sizes: an A block (MC×KC) and a B block (KC×NC) of doubles sit in L2
// (128 KiB + 512 KiB worst case); one 4-row A strip (8 KiB) stays in L1.
const MC = 64, KC = 256, NC = 256;

/**
 * One matrix product out[M×N] = op(A)[M×K] · op(B)[K×N], where op(A)[i, k] is
 * a[aOff + i·aI + k·aK] (so a transpose is only a choice of strides).
 */
function matmulOne(M: number, N: number, K: number,
  a: TypedArray, aOff: number, aI: number, aK: number,
  b: TypedArray, bOff: number, bK: number, bJ: number,
  out: TypedArray, oOff: number): void {
  if (M <= 2 || N <= 2) {
    // Vector-matrix and matrix-vector shapes: packing would cost as much as
    // the product itself, so read the operands in place (one pass over each),
    // always walking the contiguous axis of the big operand.
    if (M <= 2 && bJ === 1 && N > 2) {
      const acc = scratch.get(0, N);
      for (let i = 0; i < M; i++) {
        acc.fill(0, 0, N);
        for (let k = 0; k < K; k++) {
          const av = a[aOff + i * aI + k * aK], bo = bOff + k * bK;
          for (let j = 0; j < N; j++) acc[j] += av * b[bo + j];
        }
        for (let j = 0; j < N; j++) out[oOff + i * N + j] = acc[j];
      }
      return;
    }
    if (N <= 2 && aI === 1 && M > 2) {
      const acc = scratch.get(0, M);
      for (let j = 0; j < N; j++) {
        acc.fill(0, 0, M);
        for (let k = 0; k < K; k++) {
          const bv = b[bOff + k * bK + j * bJ], ao = aOff + k * aK;
          for (let i = 0; i < M; i++) acc[i] += a[ao + i] * bv;
        }
        for (let i = 0; i < M; i++) out[oOff + i * N + j] = acc[i];
      }
      return;
    }
    for (let i = 0; i < M; i++) {
      for (let j = 0; j < N; j++) {
        let s = 0;
        for (let k = 0, ao = aOff + i * aI, bo = bOff + j * bJ; k < K; k++, ao += aK, bo += bK) s += a[ao] * b[bo];
        out[oOff + i * N + j] = s;
      }
    }
    return;
  }
  for (let jc = 0; jc < N; jc += NC) {
    const nl = Math.min(NC, N - jc);
    for (let ic = 0; ic < M; ic += MC) {
      const ml = Math.min(MC, M - ic);
      const Cs = scratch.get(0, MC * NC);
      Cs.fill(0, 0, ml * nl);
      for (let pc = 0; pc < K; pc += KC) {
        const kl = Math.min(KC, K - pc);
        const As = scratch.get(1, MC * KC), Bs = scratch.get(2, KC * NC);
        packBlock(a, aOff + ic * aI + pc * aK, aI, aK, ml, kl, As);
        packBlock(b, bOff + pc * bK + jc * bJ, bK, bJ, kl, nl, Bs);
        gemm(ml, nl, kl, As, 0, kl, 1, Bs, 0, nl, 1, Cs, 0, nl);
      }
      for (let i = 0; i < ml; i++) {
        const o = oOff + (ic + i) * N + jc, s = i * nl;
        for (let j = 0; j < nl; j++) out[o + j] = Cs[s + j];
      }
    }
  }
}

export interface MatmulAttrs { transposeA?: boolean; transposeB?: boolean }

/**
 * Batched matmul of operands of rank >= 2 ([..., M, K] × [..., K, N]) with
 * NumPy broadcasting over the batch axes; the op validates shapes and lifts
 * 1-d operands.
 */
registerKernel<MatmulAttrs>('matmul', 'cpu', (inputs, attrs, backend) => {
  const be = backend as CpuBackend;
  const [a, b] = inputs;
  const tA = !!attrs?.transposeA, tB = !!attrs?.transposeB;
  const ra = a.shape.length, rb = b.shape.length;
  const aR = a.shape[ra - 2], aC = a.shape[ra - 1], bR = b.shape[rb - 2], bC = b.shape[rb - 1];
  const M = tA ? aC : aR, K = tA ? aR : aC, N = tB ? bR : bC;
  const batchA = a.shape.slice(0, ra - 2), batchB = b.shape.slice(0, rb - 2);
  const batch = broadcastShapes('matmul', batchA, batchB);
  const o = be.out([...batch, M, N], a.dtype);
  const av = vals(a), bv = vals(b), ov = o.values;
  // op(A)[i, k] strides and op(B)[k, j] strides in the stored row-major layout.
  const aI = tA ? 1 : aC, aK = tA ? aC : 1;
  const bK = tB ? 1 : bC, bJ = tB ? bC : 1;
  const sa = aR * aC, sb = bR * bC, so = M * N;
  if (so === 0) return o.info;
  forEachBroadcast(batch, [batchA, batchB], (i, offs) => {
    matmulOne(M, N, K, av, offs[0] * sa, aI, aK, bv, offs[1] * sb, bK, bJ, ov, i * so);
  });
  return o.info;
});
