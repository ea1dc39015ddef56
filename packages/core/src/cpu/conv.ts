import { registerKernel, type TensorInfo } from '../backend.js';
import type { TypedArray } from '../dtype.js';
import { CpuBackend, vals } from './backend.js';
import { gemm, ScratchPool } from './matmul.js';

/**
 * 3-D convolution on the CPU as an implicit GEMM (PyTorch semantics, NCDHW,
 * weight [O, C, kd, kh, kw], no groups). Three kernels:
 *
 *   conv3d            y[n]  = W[O × Kc] · col(x[n])[Kc × P]           (+ bias)
 *   conv3dGradInput   dx[n] = col2im(Wᵀ[Kc × O] · dy[n][O × P])      (+ bias: the transposed-conv forward)
 *   conv3dGradWeight  dW    = Σ_n dy[n][O × P] · col(x[n])ᵀ[P × Kc]
 *
 * with Kc = C·kd·kh·kw and P = output voxels. col(x) is never materialized
 * for the whole volume: output voxels are processed in blocks of PB and the
 * reduction axis in blocks of KB, and only that [KB × PB] tile is gathered
 * into a reused float64 scratch buffer, then multiplied with the 4×4
 * register-tiled `gemm`. Each sample's input is first copied into a float64
 * buffer with the zero padding written out, so the gather and the col2im
 * scatter are plain strided copies with no bounds tests.
 */

export interface ConvAttrs {
  stride: number[];
  padding: number[];
  dilation: number[];
}
export interface ConvGradInputAttrs extends ConvAttrs { inputShape: number[] }
export interface ConvGradWeightAttrs extends ConvAttrs { weightShape: number[] }

/** Output voxels per block and reduction rows per block: a [KB × PB] float64 tile is 256 KiB (L2). */
const PB = 256, KB = 128;
/**
 * Row stride of the [· × PB] tiles: PB + 4, not PB. A power-of-two stride
 * (2 KiB) maps the rows of a 4-column strip onto the same couple of L1 sets
 * and the micro-kernel thrashes; the pad spreads them out.
 */
const LD = PB + 4;

const scratch = new ScratchPool();
const S_W = 0, S_X = 1, S_TILE = 2, S_ACC = 3, S_DY = 4, S_DW = 5;

let segOff = new Int32Array(PB), segCol = new Int32Array(PB), segLen = new Int32Array(PB);
let kOffBuf = new Int32Array(1024);

interface Geom {
  N: number; C: number; O: number;
  D: number; H: number; W: number;
  kd: number; kh: number; kw: number;
  oD: number; oH: number; oW: number;
  sd: number; sh: number; sw: number;
  pd: number; ph: number; pw: number;
  dd: number; dh: number; dw: number;
  /** Extents of the zero-padded input; every tap of every output voxel lands inside. */
  Dp: number; Hp: number; Wp: number;
  Kc: number; P: number;
}

function geom(x: readonly number[], w: readonly number[], ySpatial: readonly number[], a: ConvAttrs): Geom {
  const [N, C, D, H, W] = x;
  const [O, , kd, kh, kw] = w;
  const [oD, oH, oW] = ySpatial;
  const [sd, sh, sw] = a.stride, [pd, ph, pw] = a.padding, [dd, dh, dw] = a.dilation;
  const ext = (n: number, p: number, o: number, s: number, k: number, d: number) => Math.max(n + 2 * p, o > 0 ? (o - 1) * s + (k - 1) * d + 1 : 0);
  return {
    N, C, O, D, H, W, kd, kh, kw, oD, oH, oW, sd, sh, sw, pd, ph, pw, dd, dh, dw,
    Dp: ext(D, pd, oD, sd, kd, dd), Hp: ext(H, ph, oH, sh, kh, dh), Wp: ext(W, pw, oW, sw, kw, dw),
    Kc: C * kd * kh * kw, P: oD * oH * oW,
  };
}

/** Standard output extent of a convolution along one axis. */
export function convOutSize(n: number, k: number, s: number, p: number, d: number): number {
  return Math.floor((n + 2 * p - d * (k - 1) - 1) / s) + 1;
}

/** Offset of reduction row k = (c, a, b, e) inside the padded input, relative to an output voxel's origin. */
function kOffsets(g: Geom): Int32Array {
  if (kOffBuf.length < g.Kc) kOffBuf = new Int32Array(Math.max(g.Kc, kOffBuf.length * 2));
  const HWp = g.Hp * g.Wp, Sp = g.Dp * HWp;
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
  if (segOff.length < pl) { segOff = new Int32Array(pl); segCol = new Int32Array(pl); segLen = new Int32Array(pl); }
  const HWp = g.Hp * g.Wp;
  let ow = p0 % g.oW;
  let t = (p0 - ow) / g.oW;
  let oh = t % g.oH;
  let od = (t - oh) / g.oH;
  let p = p0, col = 0, ns = 0;
  const end = p0 + pl;
  while (p < end) {
    const len = Math.min(g.oW - ow, end - p);
    segOff[ns] = od * g.sd * HWp + oh * g.sh * g.Wp + ow * g.sw;
    segCol[ns] = col;
    segLen[ns] = len;
    ns++;
    p += len; col += len; ow = 0;
    if (++oh === g.oH) { oh = 0; od++; }
  }
  return ns;
}

/** tile[r·ldt + j] = Xp[kOff[k0 + r] + voxel j's offset]: the im2col tile for rows [k0, k0 + kl). */
function gather(Xp: Float64Array, kOff: Int32Array, k0: number, kl: number, ns: number, sw: number, tile: Float64Array, ldt: number): void {
  for (let r = 0; r < kl; r++) {
    const base = kOff[k0 + r], row = r * ldt;
    for (let s = 0; s < ns; s++) {
      const src = base + segOff[s], dst = row + segCol[s], len = segLen[s];
      if (sw === 1) {
        for (let j = 0; j < len; j++) tile[dst + j] = Xp[src + j];
      } else {
        for (let j = 0, q = src; j < len; j++, q += sw) tile[dst + j] = Xp[q];
      }
    }
  }
}

/** The adjoint of `gather`: Xp[...] += tile[...] (col2im for one tile). */
function scatterAdd(Xp: Float64Array, kOff: Int32Array, k0: number, kl: number, ns: number, sw: number, tile: Float64Array, ldt: number): void {
  for (let r = 0; r < kl; r++) {
    const base = kOff[k0 + r], row = r * ldt;
    for (let s = 0; s < ns; s++) {
      const src = base + segOff[s], dst = row + segCol[s], len = segLen[s];
      if (sw === 1) {
        for (let j = 0; j < len; j++) Xp[src + j] += tile[dst + j];
      } else {
        for (let j = 0, q = src; j < len; j++, q += sw) Xp[q] += tile[dst + j];
      }
    }
  }
}

/** Copies sample n of x into the zero-padded float64 buffer Xp [C, Dp, Hp, Wp]. */
function padSample(x: TypedArray, n: number, g: Geom, Xp: Float64Array): void {
  const HWp = g.Hp * g.Wp, Sp = g.Dp * HWp, S = g.D * g.H * g.W;
  Xp.fill(0, 0, g.C * Sp);
  let src = n * g.C * S;
  for (let c = 0; c < g.C; c++) {
    for (let z = 0; z < g.D; z++) {
      for (let y = 0; y < g.H; y++) {
        const dst = c * Sp + (z + g.pd) * HWp + (y + g.ph) * g.Wp + g.pw;
        for (let i = 0; i < g.W; i++) Xp[dst + i] = x[src + i];
        src += g.W;
      }
    }
  }
}

/** Writes the interior of the padded buffer back as sample n of dx (plus a per-channel bias). */
function unpadSample(Xp: Float64Array, g: Geom, dx: TypedArray, n: number, bias: TypedArray | null): void {
  const HWp = g.Hp * g.Wp, Sp = g.Dp * HWp, S = g.D * g.H * g.W;
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
  const Xp = scratch.get(S_X, g.C * g.Dp * g.Hp * g.Wp);
  const tile = scratch.get(S_TILE, KB * LD), acc = scratch.get(S_ACC, O * LD);
  const kOff = kOffsets(g);
  for (let n = 0; n < g.N; n++) {
    padSample(xv, n, g, Xp);
    const yn = n * O * P;
    for (let p0 = 0; p0 < P; p0 += PB) {
      const pl = Math.min(PB, P - p0);
      const ns = segments(g, p0, pl);
      acc.fill(0, 0, O * LD);
      for (let k0 = 0; k0 < Kc; k0 += KB) {
        const kl = Math.min(KB, Kc - k0);
        gather(Xp, kOff, k0, kl, ns, g.sw, tile, LD);
        gemm(O, pl, kl, Wm, k0, Kc, 1, tile, 0, LD, 1, acc, 0, LD);
      }
      for (let o = 0; o < O; o++) {
        const bo = bv ? bv[o] : 0, dst = yn + o * P + p0, src = o * LD;
        for (let j = 0; j < pl; j++) yv[dst + j] = acc[src + j] + bo;
      }
    }
  }
}

function conv3dGradInput(dyv: TypedArray, wv: TypedArray, bv: TypedArray | null, dxv: TypedArray, g: Geom): void {
  const { O, Kc, P } = g;
  const Wm = toF64(wv, O * Kc, scratch.get(S_W, O * Kc));
  const Xp = scratch.get(S_X, g.C * g.Dp * g.Hp * g.Wp);
  const tile = scratch.get(S_TILE, KB * LD), dyT = scratch.get(S_DY, O * LD);
  const kOff = kOffsets(g);
  for (let n = 0; n < g.N; n++) {
    Xp.fill(0, 0, g.C * g.Dp * g.Hp * g.Wp);
    const yn = n * O * P;
    for (let p0 = 0; p0 < P; p0 += PB) {
      const pl = Math.min(PB, P - p0);
      const ns = segments(g, p0, pl);
      for (let o = 0; o < O; o++) {
        const src = yn + o * P + p0, dst = o * LD;
        for (let j = 0; j < pl; j++) dyT[dst + j] = dyv[src + j];
      }
      for (let k0 = 0; k0 < Kc; k0 += KB) {
        const kl = Math.min(KB, Kc - k0);
        tile.fill(0, 0, kl * LD);
        // tile[k, p] = Σ_o W[o, k0 + k] · dy[o, p]
        gemm(kl, pl, O, Wm, k0, 1, Kc, dyT, 0, LD, 1, tile, 0, LD);
        scatterAdd(Xp, kOff, k0, kl, ns, g.sw, tile, LD);
      }
    }
    unpadSample(Xp, g, dxv, n, bv);
  }
}

function conv3dGradWeight(xv: TypedArray, dyv: TypedArray, dwv: TypedArray, g: Geom): void {
  const { O, Kc, P } = g;
  const dW = scratch.get(S_DW, O * Kc);
  dW.fill(0, 0, O * Kc);
  const Xp = scratch.get(S_X, g.C * g.Dp * g.Hp * g.Wp);
  const tile = scratch.get(S_TILE, KB * LD), dyT = scratch.get(S_DY, O * LD);
  const kOff = kOffsets(g);
  for (let n = 0; n < g.N; n++) {
    padSample(xv, n, g, Xp);
    const yn = n * O * P;
    for (let p0 = 0; p0 < P; p0 += PB) {
      const pl = Math.min(PB, P - p0);
      const ns = segments(g, p0, pl);
      for (let o = 0; o < O; o++) {
        const src = yn + o * P + p0, dst = o * LD;
        for (let j = 0; j < pl; j++) dyT[dst + j] = dyv[src + j];
      }
      for (let k0 = 0; k0 < Kc; k0 += KB) {
        const kl = Math.min(KB, Kc - k0);
        gather(Xp, kOff, k0, kl, ns, g.sw, tile, LD);
        // dW[o, k0 + k] += Σ_p dy[o, p] · tile[k, p]
        gemm(O, kl, pl, dyT, 0, LD, 1, tile, 0, 1, LD, dW, k0, Kc);
      }
    }
  }
  for (let i = 0; i < O * Kc; i++) dwv[i] = dW[i];
}

registerKernel<ConvAttrs>('conv3d', 'cpu', (inputs, attrs, backend) => {
  const be = backend as CpuBackend;
  const [x, w, b] = inputs as [TensorInfo, TensorInfo, TensorInfo?];
  const sp = [2, 3, 4].map((i) => convOutSize(x.shape[i], w.shape[i], attrs.stride[i - 2], attrs.padding[i - 2], attrs.dilation[i - 2]));
  const g = geom(x.shape, w.shape, sp, attrs);
  const o = be.out([g.N, g.O, ...sp], x.dtype);
  conv3dForward(vals(x), vals(w), b ? vals(b) : null, o.values, g);
  return o.info;
});

registerKernel<ConvGradInputAttrs>('conv3dGradInput', 'cpu', (inputs, attrs, backend) => {
  const be = backend as CpuBackend;
  const [dy, w, b] = inputs as [TensorInfo, TensorInfo, TensorInfo?];
  const g = geom(attrs.inputShape, w.shape, dy.shape.slice(2), attrs);
  const o = be.out(attrs.inputShape, dy.dtype);
  conv3dGradInput(vals(dy), vals(w), b ? vals(b) : null, o.values, g);
  return o.info;
});

registerKernel<ConvGradWeightAttrs>('conv3dGradWeight', 'cpu', (inputs, attrs, backend) => {
  const be = backend as CpuBackend;
  const [x, dy] = inputs;
  const g = geom(x.shape, attrs.weightShape, dy.shape.slice(2), attrs);
  const o = be.out(attrs.weightShape, x.dtype);
  conv3dGradWeight(vals(x), vals(dy), o.values, g);
  return o.info;
});
