import type { TypedArray } from '../dtype.js';
import { broadcastShapes } from '../shape.js';
import { CpuBackend, vals, type CpuKernel, type CpuKernelTable } from './backend.js';
import { forEachBroadcast } from './elementwise.js';
import { gemm, packBlock, ScratchPool } from './gemm.js';
import type { MatmulAttrs } from '../ops/schema.js';

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

const scratch = new ScratchPool();

// Block sizes: an A block (MC×KC) and a B block (KC×NC) of doubles sit in L2
// (128 KiB + 512 KiB worst case); one 4-row A strip (8 KiB) stays in L1.
const MC = 64,
  KC = 256,
  NC = 256;

/**
 * One matrix product out[M×N] = op(A)[M×K] · op(B)[K×N], where op(A)[i, k] is
 * a[aOff + i·aI + k·aK] (so a transpose is only a choice of strides).
 */
function matmulOne(
  M: number,
  N: number,
  K: number,
  a: TypedArray,
  aOff: number,
  aI: number,
  aK: number,
  b: TypedArray,
  bOff: number,
  bK: number,
  bJ: number,
  out: TypedArray,
  oOff: number,
): void {
  if (M <= 2 || N <= 2) {
    // Vector-matrix and matrix-vector shapes: packing would cost as much as
    // the product itself, so read the operands in place (one pass over each),
    // always walking the contiguous axis of the big operand.
    if (M <= 2 && bJ === 1 && N > 2) {
      const acc = scratch.get(0, N);
      for (let i = 0; i < M; i++) {
        acc.fill(0, 0, N);
        for (let k = 0; k < K; k++) {
          const av = a[aOff + i * aI + k * aK],
            bo = bOff + k * bK;
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
          const bv = b[bOff + k * bK + j * bJ],
            ao = aOff + k * aK;
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
        const As = scratch.get(1, MC * KC),
          Bs = scratch.get(2, KC * NC);
        packBlock(a, aOff + ic * aI + pc * aK, aI, aK, ml, kl, As);
        packBlock(b, bOff + pc * bK + jc * bJ, bK, bJ, kl, nl, Bs);
        gemm(ml, nl, kl, As, 0, kl, 1, Bs, 0, nl, 1, Cs, 0, nl);
      }
      for (let i = 0; i < ml; i++) {
        const o = oOff + (ic + i) * N + jc,
          s = i * nl;
        for (let j = 0; j < nl; j++) out[o + j] = Cs[s + j];
      }
    }
  }
}

/**
 * Batched matmul of operands of rank >= 2 ([..., M, K] × [..., K, N]) with
 * NumPy broadcasting over the batch axes; the op validates shapes and lifts
 * 1-d operands.
 */
const matmulKernel: CpuKernel<'matmul'> = (inputs, attrs, be) => {
  const [a, b] = inputs;
  const tA = !!attrs?.transposeA,
    tB = !!attrs?.transposeB;
  const ra = a.shape.length,
    rb = b.shape.length;
  const aR = a.shape[ra - 2],
    aC = a.shape[ra - 1],
    bR = b.shape[rb - 2],
    bC = b.shape[rb - 1];
  const M = tA ? aC : aR,
    K = tA ? aR : aC,
    N = tB ? bR : bC;
  const batchA = a.shape.slice(0, ra - 2),
    batchB = b.shape.slice(0, rb - 2);
  const batch = broadcastShapes('matmul', batchA, batchB);
  const o = be.out([...batch, M, N], a.dtype);
  const av = vals(a),
    bv = vals(b),
    ov = o.values;
  // op(A)[i, k] strides and op(B)[k, j] strides in the stored row-major layout.
  const aI = tA ? 1 : aC,
    aK = tA ? aC : 1;
  const bK = tB ? 1 : bC,
    bJ = tB ? bC : 1;
  const sa = aR * aC,
    sb = bR * bC,
    so = M * N;
  if (so === 0) return o.info;
  forEachBroadcast(batch, [batchA, batchB], (i, offs) => {
    matmulOne(M, N, K, av, offs[0] * sa, aI, aK, bv, offs[1] * sb, bK, bJ, ov, i * so);
  });
  return o.info;
};

export const matmulKernels = {
  matmul: matmulKernel,
} satisfies Partial<CpuKernelTable>;
