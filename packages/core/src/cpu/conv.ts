import type { TensorInfo } from '../backend.js';
import type { TypedArray } from '../dtype.js';
import { CpuBackend, vals, type CpuKernel, type CpuKernelTable } from './backend.js';
import { gemm, ScratchPool } from './gemm.js';
import {
  conv3dOutputSpatial,
  convGeometry,
  type Conv3dAttrs,
  type Conv3dGradInputAttrs,
  type Conv3dGradWeightAttrs,
  type ConvGeometry,
} from '../conv-geometry.js';

/**
 * 3-D convolution on the CPU as an implicit GEMM (PyTorch semantics, NCDHW,
 * weight [O, C, kd, kh, kw], no groups). Three kernels:
 *
 *   conv3d            y[n]  = W[O × Kc] · col(x[n])[Kc × P]           (+ bias)
 *   conv3dGradInput   dx[n] = col2im(Wᵀ[Kc × O] · dy[n][O × P])      (+ bias: the transposed-conv forward)
 *   conv3dGradWeight  dW    = Σ_n dy[n][O × P] · col(x[n])ᵀ[P × Kc]
 *
 * with Kc = C·kd·kh·kw and P = output voxels. col(x) is never materialized
 * for the whole volume: output voxels go in blocks of PB and the reduction
 * axis in blocks of KB, and only that [KB × PB] tile is gathered into a
 * reused float64 scratch buffer and multiplied with the 4×4 register-tiled
 * `gemm`. Grad-input needs no tile at all: its product is added tile by tile
 * straight into the padded input gradient (`gemmScatter`). Each sample is
 * first copied into a float64 buffer with the zero padding written out, so
 * gathers and scatters are plain strided copies with no bounds tests.
 *
 * Memory: besides the output, one padded float64 copy of a single sample
 * (C·(D+2p)·(H+2p)·(W+2p) doubles) plus a few hundred KiB of tiles, all
 * module-level scratch that grows on demand and is reused.
 */

/** Output voxels per block and reduction rows per block: a [KB × PB] float64 tile is 256 KiB (L2). */
const PB = 256,
  KB = 128;
/**
 * Row stride of the [· × PB] tiles: PB + 4, not PB. A power-of-two stride
 * (2 KiB) maps the rows of a 4-column strip onto the same couple of L1 sets
 * and the micro-kernel thrashes; the pad spreads them out.
 */
const LD = PB + 4;

const scratch = new ScratchPool();
const S_W = 0,
  S_X = 1,
  S_ACC = 2,
  S_DY = 3,
  S_DW = 4,
  S_DX = 5;

let segOff = new Int32Array(PB),
  segCol = new Int32Array(PB),
  segLen = new Int32Array(PB);
let kOffBuf = new Int32Array(1024);

/** The shared geometry plus the scalar attributes and padded extents the loops use. */
interface Geom extends ConvGeometry {
  sd: number;
  sh: number;
  sw: number;
  pd: number;
  ph: number;
  pw: number;
  dd: number;
  dh: number;
  dw: number;
  /** Extents of the zero-padded input; every tap of every output voxel lands inside. */
  Dp: number;
  Hp: number;
  Wp: number;
  Kc: number;
  P: number;
}

function geom(x: readonly number[], w: readonly number[], ySpatial: readonly number[], a: Conv3dAttrs): Geom {
  const g = convGeometry(x, w, ySpatial, a);
  const { C, D, H, W, kd, kh, kw, oD, oH, oW } = g;
  const [sd, sh, sw] = a.stride,
    [pd, ph, pw] = a.padding,
    [dd, dh, dw] = a.dilation;
  const ext = (n: number, p: number, o: number, s: number, k: number, d: number) =>
    Math.max(n + 2 * p, o > 0 ? (o - 1) * s + (k - 1) * d + 1 : 0);
  return {
    ...g,
    sd,
    sh,
    sw,
    pd,
    ph,
    pw,
    dd,
    dh,
    dw,
    Dp: ext(D, pd, oD, sd, kd, dd),
    Hp: ext(H, ph, oH, sh, kh, dh),
    Wp: ext(W, pw, oW, sw, kw, dw),
    Kc: C * kd * kh * kw,
    P: oD * oH * oW,
  };
}

/** Offset of reduction row k = (c, a, b, e) inside the padded input, relative to an output voxel's origin. */
function kOffsets(g: Geom): Int32Array {
  if (kOffBuf.length < g.Kc) kOffBuf = new Int32Array(Math.max(g.Kc, kOffBuf.length * 2));
  const HWp = g.Hp * g.Wp,
    Sp = g.Dp * HWp;
  let k = 0;
  for (let c = 0; c < g.C; c++) {
    for (let a = 0; a < g.kd; a++) {
      for (let b = 0; b < g.kh; b++) {
        const base = c * Sp + a * g.dd * HWp + b * g.dh * g.Wp;
        for (let e = 0; e < g.kw; e++) kOffBuf[k++] = base + e * g.dw;
      }
    }
  }
  return kOffBuf;
}

/**
 * Splits output voxels [p0, p0 + pl) into runs along the W axis; run s starts
 * at padded-input offset segOff[s] (for tap 0), tile column segCol[s], and is
 * segLen[s] voxels long. Returns the number of runs.
 */
function segments(g: Geom, p0: number, pl: number): number {
  if (segOff.length < pl) {
    segOff = new Int32Array(pl);
    segCol = new Int32Array(pl);
    segLen = new Int32Array(pl);
  }
  const HWp = g.Hp * g.Wp;
  let ow = p0 % g.oW;
  let t = (p0 - ow) / g.oW;
  let oh = t % g.oH;
  let od = (t - oh) / g.oH;
  let p = p0,
    col = 0,
    ns = 0;
  const end = p0 + pl;
  while (p < end) {
    const len = Math.min(g.oW - ow, end - p);
    segOff[ns] = od * g.sd * HWp + oh * g.sh * g.Wp + ow * g.sw;
    segCol[ns] = col;
    segLen[ns] = len;
    ns++;
    p += len;
    col += len;
    ow = 0;
    if (++oh === g.oH) {
      oh = 0;
      od++;
    }
  }
  return ns;
}

/**
 * tile[r·ldt + j] = buf[xBase + kOff[k0 + r] + voxel j's offset]: the im2col
 * tile for rows [k0, k0 + kl), at the start of `buf`, gathered from the padded
 * sample stored in the same buffer from xBase on. Sharing one buffer lets long
 * unit-stride runs go through copyWithin (a native memmove), which beats a JS
 * loop from about 24 elements on.
 */
function gather(
  buf: Float64Array,
  xBase: number,
  kOff: Int32Array,
  k0: number,
  kl: number,
  ns: number,
  sw: number,
  ldt: number,
): void {
  for (let r = 0; r < kl; r++) {
    const base = xBase + kOff[k0 + r],
      row = r * ldt;
    for (let s = 0; s < ns; s++) {
      const src = base + segOff[s],
        dst = row + segCol[s],
        len = segLen[s];
      if (sw === 1) {
        if (len >= 24) buf.copyWithin(dst, src, src + len);
        else for (let j = 0; j < len; j++) buf[dst + j] = buf[src + j];
      } else {
        for (let j = 0, q = src; j < len; j++, q += sw) buf[dst + j] = buf[q];
      }
    }
  }
}

/**
 * The col2im half of grad-input fused into the product:
 * Xp[cBase + cRow[r0 + i] + j·cJ] += Σ_r A[aOff + i·aI + r·aR] · B[bOff + r·bR + j]
 * for i < M, j < N, r < K. Row i of the product is tap r0 + i of one run of
 * output voxels, so each 4×4 register tile is added straight into the padded
 * input gradient (no tile buffer, no separate scatter pass).
 */
function gemmScatter(
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
  C: Float64Array,
  cRow: Int32Array,
  r0: number,
  cBase: number,
  cJ: number,
): void {
  const M4 = M - (M & 3),
    N4 = N - (N & 3);
  const aI2 = 2 * aI,
    aI3 = 3 * aI,
    cJ2 = 2 * cJ,
    cJ3 = 3 * cJ;
  for (let i = 0; i < M4; i += 4) {
    const aRow = aOff + i * aI;
    const q0 = cBase + cRow[r0 + i],
      q1 = cBase + cRow[r0 + i + 1],
      q2 = cBase + cRow[r0 + i + 2],
      q3 = cBase + cRow[r0 + i + 3];
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
        bo = bOff + j;
      for (let r = 0; r < K; r++) {
        const a0 = A[ao],
          a1 = A[ao + aI],
          a2 = A[ao + aI2],
          a3 = A[ao + aI3];
        const b0 = B[bo],
          b1 = B[bo + 1],
          b2 = B[bo + 2],
          b3 = B[bo + 3];
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
      const jj = j * cJ;
      let c = q0 + jj;
      C[c] += c00;
      C[c + cJ] += c01;
      C[c + cJ2] += c02;
      C[c + cJ3] += c03;
      c = q1 + jj;
      C[c] += c10;
      C[c + cJ] += c11;
      C[c + cJ2] += c12;
      C[c + cJ3] += c13;
      c = q2 + jj;
      C[c] += c20;
      C[c + cJ] += c21;
      C[c + cJ2] += c22;
      C[c + cJ3] += c23;
      c = q3 + jj;
      C[c] += c30;
      C[c + cJ] += c31;
      C[c + cJ2] += c32;
      C[c + cJ3] += c33;
    }
    for (let j = N4; j < N; j++) {
      let c0 = 0,
        c1 = 0,
        c2 = 0,
        c3 = 0;
      let ao = aRow,
        bo = bOff + j;
      for (let r = 0; r < K; r++) {
        const bv = B[bo];
        c0 += A[ao] * bv;
        c1 += A[ao + aI] * bv;
        c2 += A[ao + aI2] * bv;
        c3 += A[ao + aI3] * bv;
        ao += aR;
        bo += bR;
      }
      const jj = j * cJ;
      C[q0 + jj] += c0;
      C[q1 + jj] += c1;
      C[q2 + jj] += c2;
      C[q3 + jj] += c3;
    }
  }
  for (let i = M4; i < M; i++) {
    const aRow = aOff + i * aI,
      q = cBase + cRow[r0 + i];
    for (let j = 0; j < N; j++) {
      let acc = 0;
      let ao = aRow,
        bo = bOff + j;
      for (let r = 0; r < K; r++) {
        acc += A[ao] * B[bo];
        ao += aR;
        bo += bR;
      }
      C[q + j * cJ] += acc;
    }
  }
}

/** Copies sample n of x into the zero-padded float64 buffer Xp [C, Dp, Hp, Wp] that starts at Xp[xBase]. */
function padSample(x: TypedArray, n: number, g: Geom, Xp: Float64Array, xBase: number): void {
  const HWp = g.Hp * g.Wp,
    Sp = g.Dp * HWp,
    S = g.D * g.H * g.W;
  Xp.fill(0, xBase, xBase + g.C * Sp);
  let src = n * g.C * S;
  for (let c = 0; c < g.C; c++) {
    for (let z = 0; z < g.D; z++) {
      for (let y = 0; y < g.H; y++) {
        const dst = xBase + c * Sp + (z + g.pd) * HWp + (y + g.ph) * g.Wp + g.pw;
        for (let i = 0; i < g.W; i++) Xp[dst + i] = x[src + i];
        src += g.W;
      }
    }
  }
}

/** Writes the interior of the padded buffer back as sample n of dx (plus a per-channel bias). */
function unpadSample(Xp: Float64Array, g: Geom, dx: TypedArray, n: number, bias: TypedArray | null): void {
  const HWp = g.Hp * g.Wp,
    Sp = g.Dp * HWp,
    S = g.D * g.H * g.W;
  let dst = n * g.C * S;
  for (let c = 0; c < g.C; c++) {
    const bc = bias ? bias[c] : 0;
    for (let z = 0; z < g.D; z++) {
      for (let y = 0; y < g.H; y++) {
        const src = c * Sp + (z + g.pd) * HWp + (y + g.ph) * g.Wp + g.pw;
        for (let i = 0; i < g.W; i++) dx[dst + i] = Xp[src + i] + bc;
        dst += g.W;
      }
    }
  }
}

function toF64(src: TypedArray, n: number, dst: Float64Array): Float64Array {
  for (let i = 0; i < n; i++) dst[i] = src[i];
  return dst;
}

function conv3dForward(xv: TypedArray, wv: TypedArray, bv: TypedArray | null, yv: TypedArray, g: Geom): void {
  const { O, Kc, P } = g;
  const Wm = toF64(wv, O * Kc, scratch.get(S_W, O * Kc));
  // One buffer: the im2col tile [KB × LD], then the padded sample.
  const xBase = KB * LD;
  const buf = scratch.get(S_X, xBase + g.C * g.Dp * g.Hp * g.Wp);
  const acc = scratch.get(S_ACC, O * LD);
  const kOff = kOffsets(g);
  for (let n = 0; n < g.N; n++) {
    padSample(xv, n, g, buf, xBase);
    const yn = n * O * P;
    for (let p0 = 0; p0 < P; p0 += PB) {
      const pl = Math.min(PB, P - p0);
      const ns = segments(g, p0, pl);
      acc.fill(0, 0, O * LD);
      for (let k0 = 0; k0 < Kc; k0 += KB) {
        const kl = Math.min(KB, Kc - k0);
        gather(buf, xBase, kOff, k0, kl, ns, g.sw, LD);
        gemm(O, pl, kl, Wm, k0, Kc, 1, buf, 0, LD, 1, acc, 0, LD);
      }
      for (let o = 0; o < O; o++) {
        const bo = bv ? bv[o] : 0,
          dst = yn + o * P + p0,
          src = o * LD;
        for (let j = 0; j < pl; j++) yv[dst + j] = acc[src + j] + bo;
      }
    }
  }
}

function conv3dGradInput(dyv: TypedArray, wv: TypedArray, bv: TypedArray | null, dxv: TypedArray, g: Geom): void {
  const { O, Kc, P } = g;
  const Wm = toF64(wv, O * Kc, scratch.get(S_W, O * Kc));
  const Xp = scratch.get(S_DX, g.C * g.Dp * g.Hp * g.Wp);
  const dyT = scratch.get(S_DY, O * LD);
  const kOff = kOffsets(g);
  for (let n = 0; n < g.N; n++) {
    Xp.fill(0, 0, g.C * g.Dp * g.Hp * g.Wp);
    const yn = n * O * P;
    for (let p0 = 0; p0 < P; p0 += PB) {
      const pl = Math.min(PB, P - p0);
      const ns = segments(g, p0, pl);
      for (let o = 0; o < O; o++) {
        const src = yn + o * P + p0,
          dst = o * LD;
        for (let j = 0; j < pl; j++) dyT[dst + j] = dyv[src + j];
      }
      // dXp[tap k of voxel p] += Σ_o W[o, k] · dy[o, p], one run of voxels at a time.
      for (let s = 0; s < ns; s++) {
        gemmScatter(Kc, segLen[s], O, Wm, 0, 1, Kc, dyT, segCol[s], LD, Xp, kOff, 0, segOff[s], g.sw);
      }
    }
    unpadSample(Xp, g, dxv, n, bv);
  }
}

function conv3dGradWeight(xv: TypedArray, dyv: TypedArray, dwv: TypedArray, g: Geom): void {
  const { O, Kc, P } = g;
  const dW = scratch.get(S_DW, O * Kc);
  dW.fill(0, 0, O * Kc);
  const xBase = KB * LD;
  const buf = scratch.get(S_X, xBase + g.C * g.Dp * g.Hp * g.Wp);
  const dyT = scratch.get(S_DY, O * LD);
  const kOff = kOffsets(g);
  for (let n = 0; n < g.N; n++) {
    padSample(xv, n, g, buf, xBase);
    const yn = n * O * P;
    for (let p0 = 0; p0 < P; p0 += PB) {
      const pl = Math.min(PB, P - p0);
      const ns = segments(g, p0, pl);
      for (let o = 0; o < O; o++) {
        const src = yn + o * P + p0,
          dst = o * LD;
        for (let j = 0; j < pl; j++) dyT[dst + j] = dyv[src + j];
      }
      for (let k0 = 0; k0 < Kc; k0 += KB) {
        const kl = Math.min(KB, Kc - k0);
        gather(buf, xBase, kOff, k0, kl, ns, g.sw, LD);
        // dW[o, k0 + k] += Σ_p dy[o, p] · tile[k, p]
        gemm(O, kl, pl, dyT, 0, LD, 1, buf, 0, 1, LD, dW, k0, Kc);
      }
    }
  }
  for (let i = 0; i < O * Kc; i++) dwv[i] = dW[i];
}

const conv3dKernel: CpuKernel<'conv3d'> = (inputs, attrs, be) => {
  const [x, w, b] = inputs as [TensorInfo, TensorInfo, TensorInfo?];
  const sp = conv3dOutputSpatial(x.shape, w.shape, attrs);
  const g = geom(x.shape, w.shape, sp, attrs);
  const o = be.out([g.N, g.O, ...sp], x.dtype);
  conv3dForward(vals(x), vals(w), b ? vals(b) : null, o.values, g);
  return o.info;
};

const conv3dGradInputKernel: CpuKernel<'conv3dGradInput'> = (inputs, attrs, be) => {
  const [dy, w, b] = inputs as [TensorInfo, TensorInfo, TensorInfo?];
  const g = geom(attrs.inputShape, w.shape, dy.shape.slice(2), attrs);
  const o = be.out(attrs.inputShape, dy.dtype);
  conv3dGradInput(vals(dy), vals(w), b ? vals(b) : null, o.values, g);
  return o.info;
};

const conv3dGradWeightKernel: CpuKernel<'conv3dGradWeight'> = (inputs, attrs, be) => {
  const [x, dy] = inputs;
  const g = geom(x.shape, attrs.weightShape, dy.shape.slice(2), attrs);
  const o = be.out(attrs.weightShape, x.dtype);
  conv3dGradWeight(vals(x), vals(dy), o.values, g);
  return o.info;
};

export const convKernels = {
  conv3d: conv3dKernel,
  conv3dGradInput: conv3dGradInputKernel,
  conv3dGradWeight: conv3dGradWeightKernel,
} satisfies Partial<CpuKernelTable>;
