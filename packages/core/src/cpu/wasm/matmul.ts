import type { TypedArray } from '../../dtype.js';
import { KC, MR, NC_P, NR } from './kernels.js';
import type { WasmRuntime } from './runtime.js';
import { parallelFor } from './pool.js';

// Cache blocking (KC, MC_P, NC_P in kernels.ts): an A block (MC_P·MR × KC
// floats, 128 KiB) stays in L2 while one B panel (KC × NR, 8 KiB) sits in L1
// and every A panel of the block streams past it.

/**
 * out[M×N] = op(A)[M×K] · op(B)[K×N] in float32 on the wasm GEMM, with
 * op(A)[i, k] = a[aOff + i·aI + k·aK] and op(B)[k, j] = b[bOff + k·bK + j·bJ].
 * Both operands are packed into zero-padded panels inside the arena (so the
 * micro-kernel has no edge cases), C is computed with padded rows and
 * columns, and its M×N corner is copied out.
 */
export function wasmMatmul(
  rt: WasmRuntime,
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
  const mP = Math.ceil(M / MR),
    nP = Math.ceil(N / NR);
  const Mpad = mP * MR,
    Npad = nP * NR;
  const ar = rt.arena;
  ar.reset();
  const Ap = ar.alloc(Mpad * K * 4),
    Bp = ar.alloc(Npad * K * 4),
    Cp = ar.alloc(Mpad * Npad * 4);
  // Row-major B (the common case) is staged with one memcpy and packed by
  // the SIMD row kernel: the JavaScript packing loop was ~5% of matmul 1024³.
  const rowMajorB = bJ === 1 && bK === N && b instanceof Float32Array && K * N > 0;
  // B given as rows of Bᵀ (bK = 1: CP reconstruction's Khatri-Rao rows) is staged and gathered in wasm.
  const transposedB = !rowMajorB && bK === 1 && bJ >= K && b instanceof Float32Array && K * N > 0 && N >= NR;
  const stage = rowMajorB ? ar.alloc(K * N * 4) : transposedB ? ar.alloc(((N - 1) * bJ + K) * 4) : 0;
  const mem = ar.f32();
  packA(a, aOff, aI, aK, M, K, mP, mem, Ap >> 2);
  if (rowMajorB) packRowMajorB(rt, b as Float32Array, bOff, N, K, nP, stage, Bp);
  else if (transposedB) packTransposedB(rt, b as Float32Array, bOff, bJ, N, K, nP, stage, Bp, M * N * K);
  else packPanelsB(b, bOff, bK, bJ, N, K, nP, 0, mem, Bp >> 2);
  if (K === 0) mem.fill(0, Cp >> 2, (Cp >> 2) + Mpad * Npad);
  // Threads claim runs of column panels (gemmBlocks walks a run in groups of
  // NC_P); every C element is summed over the K blocks in order, whatever
  // the thread count. Claimed one panel at a time, matmul 256³ gains from a
  // second thread (1.35 → 1.08 ms; with whole groups of NC_P panels it had
  // one unit and stayed on one thread).
  parallelFor(rt, 'gemmBlocks', [Ap, Bp, Cp, mP, nP, K, 0, 0], 6, 7, nP, M * N * K);
  const c = Cp >> 2;
  for (let i = 0; i < M; i++) {
    const s = c + i * Npad;
    const o = oOff + i * N;
    if (out instanceof Float32Array) out.set(mem.subarray(s, s + N), o);
    else for (let j = 0; j < N; j++) out[o + j] = mem[s + j];
  }
}

/**
 * B from rows of Bᵀ (element (k, j) at b[off + j·ldb + k]): staged with one
 * memcpy, the full panels gathered by the wasm packBT kernel (split over the
 * threads when the GEMM is), the last partial panel by packPanelsB.
 */
function packTransposedB(
  rt: WasmRuntime,
  b: Float32Array,
  off: number,
  ldb: number,
  N: number,
  K: number,
  nP: number,
  stage: number,
  Bp: number,
  work: number,
): void {
  const mem = rt.arena.f32();
  mem.set(b.subarray(off, off + (N - 1) * ldb + K), stage >> 2);
  const full = Math.floor(N / NR);
  parallelFor(rt, 'packBT', [stage, Bp, 4 * ldb, K, nP * NR, 0, 0], 5, 6, full, work);
  if (full < nP) packPanelsB(mem, stage >> 2, 1, ldb, N, K, nP, full, mem, Bp >> 2);
}

/** A as [K/KC blocks][mP panels][kc][MR], rows past M zero. */
function packA(
  a: TypedArray,
  off: number,
  aI: number,
  aK: number,
  M: number,
  K: number,
  mP: number,
  dst: Float32Array,
  d0: number,
): void {
  const Mpad = mP * MR;
  for (let k0 = 0; k0 < K; k0 += KC) {
    const kc = Math.min(KC, K - k0);
    for (let p = 0; p < mP; p++) {
      let d = d0 + k0 * Mpad + p * MR * kc;
      const i0 = p * MR;
      if (i0 + MR <= M) {
        for (let k = k0; k < k0 + kc; k++) {
          const s = off + i0 * aI + k * aK;
          dst[d] = a[s];
          dst[d + 1] = a[s + aI];
          dst[d + 2] = a[s + 2 * aI];
          dst[d + 3] = a[s + 3 * aI];
          d += MR;
        }
      } else {
        for (let k = k0; k < k0 + kc; k++) {
          for (let i = 0; i < MR; i++) dst[d + i] = i0 + i < M ? a[off + (i0 + i) * aI + k * aK] : 0;
          d += MR;
        }
      }
    }
  }
}

/** packPanelsB for a row-major [K][N] float32 B (bK = N, bJ = 1), in wasm: per K block, every full panel's kc rows of NR floats in one call. */
function packRowMajorB(
  rt: WasmRuntime,
  b: Float32Array,
  off: number,
  N: number,
  K: number,
  nP: number,
  stage: number,
  Bp: number,
): void {
  const mem = rt.arena.f32();
  mem.set(b.subarray(off, off + K * N), stage >> 2);
  const Npad = nP * NR,
    full = Math.floor(N / NR),
    rest = N - full * NR;
  for (let k0 = 0; k0 < K; k0 += KC) {
    const kc = Math.min(KC, K - k0);
    const src = stage + 4 * k0 * N,
      dst = Bp + 4 * k0 * Npad;
    // panels p < full: n1 = panels (src +NR floats, dst +kc·NR), n2 = rows (src +N, dst +NR)
    rt.k.copyRows(src, dst, NR, full, kc, 1, 4 * NR, 4 * N, 0, 4 * kc * NR, 4 * NR, 0, 0, 0);
    if (rest > 0) {
      const d = dst + 4 * full * kc * NR;
      mem.fill(0, d >> 2, (d >> 2) + kc * NR);
      rt.k.copyRows(src + 4 * full * NR, d, rest, kc, 1, 1, 4 * N, 0, 0, 4 * NR, 0, 0, 0, 0);
    }
  }
}

/** B as [K/KC blocks][nP panels][kc][NR], columns past N zero. */
/** B as [K/KC blocks][nP panels][kc][NR], columns past N zero: panels [p0, nP). */
function packPanelsB(
  b: TypedArray,
  off: number,
  bK: number,
  bJ: number,
  N: number,
  K: number,
  nP: number,
  p0: number,
  dst: Float32Array,
  d0: number,
): void {
  const Npad = nP * NR;
  for (let k0 = 0; k0 < K; k0 += KC) {
    const kc = Math.min(KC, K - k0);
    for (let p = p0; p < nP; p++) {
      let d = d0 + k0 * Npad + p * NR * kc;
      const j0 = p * NR;
      const w = Math.min(NR, N - j0);
      for (let k = k0; k < k0 + kc; k++) {
        const s = off + k * bK + j0 * bJ;
        if (bJ === 1 && w === NR) {
          for (let j = 0; j < NR; j++) dst[d + j] = b[s + j];
        } else {
          for (let j = 0; j < w; j++) dst[d + j] = b[s + j * bJ];
          for (let j = w; j < NR; j++) dst[d + j] = 0;
        }
        d += NR;
      }
    }
  }
}
