import { refTensor, type RefTensor } from './types.js';

/**
 * Textbook convolutions in float64 (PyTorch semantics: cross-correlation,
 * zero padding, no groups). Plain nested loops straight from the
 * definitions; none of them shares code with another or with the fast kernels.
 */
type Ints = number | readonly number[];
export interface RefConvOptions {
  stride?: Ints;
  padding?: Ints;
  dilation?: Ints;
}
export interface RefConvTransposeOptions extends RefConvOptions {
  outputPadding?: Ints;
}

const three = (v: Ints | undefined, d: number): number[] =>
  v === undefined ? [d, d, d] : typeof v === 'number' ? [v, v, v] : [...v];
const two = (v: Ints | undefined, d: number): number[] =>
  v === undefined ? [d, d] : typeof v === 'number' ? [v, v] : [...v];

/**
 * y[n, o, z, y, x] = b[o] + Σ_{c, a, e, f} w[o, c, a, e, f] ·
 *   x[n, c, z·sd − pd + a·dd, y·sh − ph + e·dh, x·sw − pw + f·dw]  (zero outside).
 */
export function refConv3d(x: RefTensor, w: RefTensor, b: RefTensor | null, opts: RefConvOptions = {}): RefTensor {
  const [N, C, D, H, W] = x.shape;
  const [O, Cw, KD, KH, KW] = w.shape;
  if (C !== Cw) throw new Error('reference conv3d: channel mismatch');
  const [sd, sh, sw] = three(opts.stride, 1),
    [pd, ph, pw] = three(opts.padding, 0),
    [dd, dh, dw] = three(opts.dilation, 1);
  const OD = Math.floor((D + 2 * pd - dd * (KD - 1) - 1) / sd) + 1;
  const OH = Math.floor((H + 2 * ph - dh * (KH - 1) - 1) / sh) + 1;
  const OW = Math.floor((W + 2 * pw - dw * (KW - 1) - 1) / sw) + 1;
  const out = refTensor([N, O, OD, OH, OW]);
  let q = 0;
  for (let n = 0; n < N; n++) {
    for (let o = 0; o < O; o++) {
      for (let oz = 0; oz < OD; oz++) {
        for (let oy = 0; oy < OH; oy++) {
          for (let ox = 0; ox < OW; ox++) {
            let s = b ? b.data[o] : 0;
            for (let c = 0; c < C; c++) {
              for (let a = 0; a < KD; a++) {
                const iz = oz * sd - pd + a * dd;
                if (iz < 0 || iz >= D) continue;
                for (let e = 0; e < KH; e++) {
                  const iy = oy * sh - ph + e * dh;
                  if (iy < 0 || iy >= H) continue;
                  for (let f = 0; f < KW; f++) {
                    const ix = ox * sw - pw + f * dw;
                    if (ix < 0 || ix >= W) continue;
                    s +=
                      w.data[(((o * C + c) * KD + a) * KH + e) * KW + f] *
                      x.data[(((n * C + c) * D + iz) * H + iy) * W + ix];
                  }
                }
              }
            }
            out.data[q++] = s;
          }
        }
      }
    }
  }
  return out;
}

/** y[n, o, oy, ox] = b[o] + Σ_{c, e, f} w[o, c, e, f] · x[n, c, oy·sh − ph + e·dh, ox·sw − pw + f·dw]. */
export function refConv2d(x: RefTensor, w: RefTensor, b: RefTensor | null, opts: RefConvOptions = {}): RefTensor {
  const [N, C, H, W] = x.shape;
  const [O, Cw, KH, KW] = w.shape;
  if (C !== Cw) throw new Error('reference conv2d: channel mismatch');
  const [sh, sw] = two(opts.stride, 1),
    [ph, pw] = two(opts.padding, 0),
    [dh, dw] = two(opts.dilation, 1);
  const OH = Math.floor((H + 2 * ph - dh * (KH - 1) - 1) / sh) + 1;
  const OW = Math.floor((W + 2 * pw - dw * (KW - 1) - 1) / sw) + 1;
  const out = refTensor([N, O, OH, OW]);
  for (let n = 0; n < N; n++) {
    for (let o = 0; o < O; o++) {
      for (let oy = 0; oy < OH; oy++) {
        for (let ox = 0; ox < OW; ox++) {
          let s = b ? b.data[o] : 0;
          for (let c = 0; c < C; c++) {
            for (let e = 0; e < KH; e++) {
              for (let f = 0; f < KW; f++) {
                const iy = oy * sh - ph + e * dh,
                  ix = ox * sw - pw + f * dw;
                if (iy >= 0 && iy < H && ix >= 0 && ix < W) {
                  s += w.data[((o * C + c) * KH + e) * KW + f] * x.data[((n * C + c) * H + iy) * W + ix];
                }
              }
            }
          }
          out.data[((n * O + o) * OH + oy) * OW + ox] = s;
        }
      }
    }
  }
  return out;
}

/**
 * Scatter form of a transposed convolution into an output of the given
 * spatial extents: every input voxel x[n, i, z, y, x] adds x · w[i, o, a, e, f]
 * to out[n, o, z·sd − pd + a·dd, y·sh − ph + e·dh, x·sw − pw + f·dw] when that
 * position lies inside the output.
 */
function scatterTranspose(
  x: RefTensor,
  w: RefTensor,
  b: RefTensor | null,
  outSpatial: number[],
  opts: RefConvOptions,
): RefTensor {
  const [N, I, D, H, W] = x.shape;
  const [Iw, O, KD, KH, KW] = w.shape;
  if (I !== Iw) throw new Error('reference conv transpose: channel mismatch');
  const [sd, sh, sw] = three(opts.stride, 1),
    [pd, ph, pw] = three(opts.padding, 0),
    [dd, dh, dw] = three(opts.dilation, 1);
  const [OD, OH, OW] = outSpatial;
  const out = refTensor([N, O, OD, OH, OW]);
  for (let n = 0; n < N; n++) {
    for (let i = 0; i < I; i++) {
      for (let z = 0; z < D; z++) {
        for (let y = 0; y < H; y++) {
          for (let xx = 0; xx < W; xx++) {
            const v = x.data[(((n * I + i) * D + z) * H + y) * W + xx];
            for (let o = 0; o < O; o++) {
              for (let a = 0; a < KD; a++) {
                const oz = z * sd - pd + a * dd;
                if (oz < 0 || oz >= OD) continue;
                for (let e = 0; e < KH; e++) {
                  const oy = y * sh - ph + e * dh;
                  if (oy < 0 || oy >= OH) continue;
                  for (let f = 0; f < KW; f++) {
                    const ox = xx * sw - pw + f * dw;
                    if (ox < 0 || ox >= OW) continue;
                    out.data[(((n * O + o) * OD + oz) * OH + oy) * OW + ox] +=
                      v * w.data[(((i * O + o) * KD + a) * KH + e) * KW + f];
                  }
                }
              }
            }
          }
        }
      }
    }
  }
  if (b) {
    const vox = OD * OH * OW;
    for (let n = 0; n < N; n++)
      for (let o = 0; o < O; o++) for (let v = 0; v < vox; v++) out.data[(n * O + o) * vox + v] += b.data[o];
  }
  return out;
}

/**
 * Transposed 3-D convolution, x [N, I, D, H, W], w [I, O, kd, kh, kw]; the
 * output extent is (n − 1)·s − 2p + d·(k − 1) + outputPadding + 1.
 */
export function refConvTranspose3d(
  x: RefTensor,
  w: RefTensor,
  b: RefTensor | null,
  opts: RefConvTransposeOptions = {},
): RefTensor {
  const s = three(opts.stride, 1),
    p = three(opts.padding, 0),
    d = three(opts.dilation, 1),
    op = three(opts.outputPadding, 0);
  const outSpatial = [0, 1, 2].map(
    (i) => (x.shape[i + 2] - 1) * s[i] - 2 * p[i] + d[i] * (w.shape[i + 2] - 1) + op[i] + 1,
  );
  return scatterTranspose(x, w, b, outSpatial, opts);
}

/**
 * Gradient of conv3d with respect to its input: dy [N, O, ...], w [O, C, ...]
 * → [N, C, ...inputShape spatial]. Each dy voxel is scattered back through
 * the taps that read it.
 */
export function refConv3dGradInput(
  dy: RefTensor,
  w: RefTensor,
  inputShape: readonly number[],
  opts: RefConvOptions = {},
): RefTensor {
  return scatterTranspose(dy, w, null, inputShape.slice(2), opts);
}

/**
 * Gradient of conv3d with respect to its weight:
 * dw[o, c, a, e, f] = Σ_{n, z, y, x} dy[n, o, z, y, x] · x[n, c, z·sd − pd + a·dd, ...].
 */
export function refConv3dGradWeight(
  x: RefTensor,
  dy: RefTensor,
  weightShape: readonly number[],
  opts: RefConvOptions = {},
): RefTensor {
  const [N, C, D, H, W] = x.shape;
  const [, O, OD, OH, OW] = dy.shape;
  const [, , KD, KH, KW] = weightShape;
  const [sd, sh, sw] = three(opts.stride, 1),
    [pd, ph, pw] = three(opts.padding, 0),
    [dd, dh, dw] = three(opts.dilation, 1);
  const out = refTensor([O, C, KD, KH, KW]);
  for (let o = 0; o < O; o++) {
    for (let c = 0; c < C; c++) {
      for (let a = 0; a < KD; a++) {
        for (let e = 0; e < KH; e++) {
          for (let f = 0; f < KW; f++) {
            let s = 0;
            for (let n = 0; n < N; n++) {
              for (let oz = 0; oz < OD; oz++) {
                const iz = oz * sd - pd + a * dd;
                if (iz < 0 || iz >= D) continue;
                for (let oy = 0; oy < OH; oy++) {
                  const iy = oy * sh - ph + e * dh;
                  if (iy < 0 || iy >= H) continue;
                  for (let ox = 0; ox < OW; ox++) {
                    const ix = ox * sw - pw + f * dw;
                    if (ix < 0 || ix >= W) continue;
                    s +=
                      dy.data[(((n * O + o) * OD + oz) * OH + oy) * OW + ox] *
                      x.data[(((n * C + c) * D + iz) * H + iy) * W + ix];
                  }
                }
              }
            }
            out.data[(((o * C + c) * KD + a) * KH + e) * KW + f] = s;
          }
        }
      }
    }
  }
  return out;
}
