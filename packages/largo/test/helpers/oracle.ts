/**
 * Independent float64 loops for the largo tests: CP / Tucker reconstruction
 * by explicit einsum loops and textbook convolutions. Nothing here calls
 * the engine's kernels.
 */
export type Arr = ArrayLike<number>;

/** Columns of a [D, R] row-major matrix scaled to unit L2 norm. */
export function normCols(a: Arr, D: number, R: number, eps = 1e-12): Float64Array {
  const out = new Float64Array(D * R);
  for (let r = 0; r < R; r++) {
    let s = 0;
    for (let d = 0; d < D; d++) s += a[d * R + r] ** 2;
    const n = Math.sqrt(s + eps);
    for (let d = 0; d < D; d++) out[d * R + r] = a[d * R + r] / n;
  }
  return out;
}

/** W[a, b, s] = Σ_r m[k, r]·A[a, r]·B[b, r]·C[s, r] (explicit loops). */
export function cpEinsum(
  m: Arr,
  k: number,
  A: Arr,
  B: Arr,
  C: Arr,
  nA: number,
  nB: number,
  nS: number,
  R: number,
): Float64Array {
  const W = new Float64Array(nA * nB * nS);
  for (let a = 0; a < nA; a++)
    for (let b = 0; b < nB; b++)
      for (let s = 0; s < nS; s++) {
        let acc = 0;
        for (let r = 0; r < R; r++) acc += m[k * R + r] * A[a * R + r] * B[b * R + r] * C[s * R + r];
        W[(a * nB + b) * nS + s] = acc;
      }
  return W;
}

/** Tucker: W[o, i, s] = Σ_{p,q} Aout[o, p]·Ain[i, q]·G[k, p, q, s]. Returns [O, I, S]. */
export function tuckerEinsum(
  G: Arr,
  k: number,
  Aout: Arr,
  Ain: Arr,
  O: number,
  I: number,
  S: number,
  Ro: number,
  Ri: number,
): Float64Array {
  const W = new Float64Array(O * I * S);
  for (let o = 0; o < O; o++)
    for (let i = 0; i < I; i++)
      for (let s = 0; s < S; s++) {
        let acc = 0;
        for (let p = 0; p < Ro; p++)
          for (let q = 0; q < Ri; q++) acc += Aout[o * Ro + p] * Ain[i * Ri + q] * G[((k * Ro + p) * Ri + q) * S + s];
        W[(o * I + i) * S + s] = acc;
      }
  return W;
}

/** [A, B, S] → [B, A, S]. */
export function swap01(W: Arr, A: number, B: number, S: number): Float64Array {
  const out = new Float64Array(A * B * S);
  for (let a = 0; a < A; a++)
    for (let b = 0; b < B; b++) for (let s = 0; s < S; s++) out[(b * A + a) * S + s] = W[(a * B + b) * S + s];
  return out;
}

export interface Conv3Opts {
  stride: number[];
  padding: number[];
  dilation?: number[];
  outputPadding?: number[];
}

/** Textbook 3-D cross-correlation: x [N,C,D,H,W], w [O,C,kd,kh,kw], b [O] | null. */
export function conv3dLoop(
  x: Arr,
  xs: number[],
  w: Arr,
  ws: number[],
  b: Arr | null,
  o: Conv3Opts,
): { data: Float64Array; shape: number[] } {
  const [N, C, D, H, W] = xs,
    [O, , kd, kh, kw] = ws;
  const [sd, sh, sw] = o.stride,
    [pd, ph, pw] = o.padding,
    [dd, dh, dw] = o.dilation ?? [1, 1, 1];
  const oD = Math.floor((D + 2 * pd - dd * (kd - 1) - 1) / sd) + 1;
  const oH = Math.floor((H + 2 * ph - dh * (kh - 1) - 1) / sh) + 1;
  const oW = Math.floor((W + 2 * pw - dw * (kw - 1) - 1) / sw) + 1;
  const y = new Float64Array(N * O * oD * oH * oW);
  for (let n = 0; n < N; n++)
    for (let oc = 0; oc < O; oc++)
      for (let z = 0; z < oD; z++)
        for (let yy = 0; yy < oH; yy++)
          for (let xx = 0; xx < oW; xx++) {
            let acc = b ? b[oc] : 0;
            for (let c = 0; c < C; c++)
              for (let a = 0; a < kd; a++)
                for (let p = 0; p < kh; p++)
                  for (let q = 0; q < kw; q++) {
                    const iz = z * sd - pd + a * dd,
                      iy = yy * sh - ph + p * dh,
                      ix = xx * sw - pw + q * dw;
                    if (iz < 0 || iz >= D || iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                    acc +=
                      x[(((n * C + c) * D + iz) * H + iy) * W + ix] * w[(((oc * C + c) * kd + a) * kh + p) * kw + q];
                  }
            y[(((n * O + oc) * oD + z) * oH + yy) * oW + xx] = acc;
          }
  return { data: y, shape: [N, O, oD, oH, oW] };
}

/** Textbook transposed conv (scatter form): x [N,I,D,H,W], w [I,O,kd,kh,kw]. */
export function convTranspose3dLoop(
  x: Arr,
  xs: number[],
  w: Arr,
  ws: number[],
  b: Arr | null,
  o: Conv3Opts,
): { data: Float64Array; shape: number[] } {
  const [N, I, D, H, W] = xs,
    [, O, kd, kh, kw] = ws;
  const [sd, sh, sw] = o.stride,
    [pd, ph, pw] = o.padding,
    [od, oh, ow] = o.outputPadding ?? [0, 0, 0];
  const oD = (D - 1) * sd - 2 * pd + kd + od,
    oH = (H - 1) * sh - 2 * ph + kh + oh,
    oW = (W - 1) * sw - 2 * pw + kw + ow;
  const y = new Float64Array(N * O * oD * oH * oW);
  for (let n = 0; n < N; n++)
    for (let oc = 0; oc < O; oc++)
      for (let i = 0; i < oD * oH * oW; i++) y[(n * O + oc) * oD * oH * oW + i] = b ? b[oc] : 0;
  for (let n = 0; n < N; n++)
    for (let ic = 0; ic < I; ic++)
      for (let z = 0; z < D; z++)
        for (let yy = 0; yy < H; yy++)
          for (let xx = 0; xx < W; xx++) {
            const v = x[(((n * I + ic) * D + z) * H + yy) * W + xx];
            for (let oc = 0; oc < O; oc++)
              for (let a = 0; a < kd; a++)
                for (let p = 0; p < kh; p++)
                  for (let q = 0; q < kw; q++) {
                    const tz = z * sd - pd + a,
                      ty = yy * sh - ph + p,
                      tx = xx * sw - pw + q;
                    if (tz < 0 || tz >= oD || ty < 0 || ty >= oH || tx < 0 || tx >= oW) continue;
                    y[(((n * O + oc) * oD + tz) * oH + ty) * oW + tx] +=
                      v * w[(((ic * O + oc) * kd + a) * kh + p) * kw + q];
                  }
          }
  return { data: y, shape: [N, O, oD, oH, oW] };
}

/** max |a − b| / max(1, max |b|). */
export function relErr(a: Arr, b: Arr): number {
  if (a.length !== b.length) return Infinity;
  let m = 0,
    s = 0;
  for (let i = 0; i < a.length; i++) {
    m = Math.max(m, Math.abs(a[i] - b[i]));
    s = Math.max(s, Math.abs(b[i]));
  }
  return m / Math.max(1, s);
}
