// Float64 oracle of instance norm and its backward: textbook formulas,
// written independently of the fast kernels.
import { refTensor, type RefTensor } from './types.js';

function prod(xs: readonly number[]): number {
  let p = 1;
  for (const v of xs) p *= v;
  return p;
}
/** Mean and biased variance (two-pass) of every (n, c) over the spatial axes. */
function refInstanceStats(x: RefTensor) {
  const N = x.shape[0],
    C = x.shape[1],
    S = prod(x.shape.slice(2));
  const mean = new Float64Array(N * C),
    vr = new Float64Array(N * C);
  for (let n = 0; n < N; n++) {
    for (let c = 0; c < C; c++) {
      let s = 0;
      for (let j = 0; j < S; j++) s += x.data[(n * C + c) * S + j];
      const m = s / S;
      let q = 0;
      for (let j = 0; j < S; j++) {
        const d = x.data[(n * C + c) * S + j] - m;
        q += d * d;
      }
      mean[n * C + c] = m;
      vr[n * C + c] = q / S;
    }
  }
  return { N, C, S, mean, vr };
}

/** Instance norm of x [N, C, ...]: (x − mean)/sqrt(var + eps)·weight + bias. */
export function refInstanceNorm(
  x: RefTensor,
  weight: RefTensor | null,
  bias: RefTensor | null,
  eps: number,
): RefTensor {
  const { N, C, S, mean, vr } = refInstanceStats(x);
  const out = refTensor(x.shape);
  for (let n = 0; n < N; n++) {
    for (let c = 0; c < C; c++) {
      const k = n * C + c;
      for (let j = 0; j < S; j++) {
        const xh = (x.data[k * S + j] - mean[k]) / Math.sqrt(vr[k] + eps);
        out.data[k * S + j] = xh * (weight ? weight.data[c] : 1) + (bias ? bias.data[c] : 0);
      }
    }
  }
  return out;
}

/**
 * Backward of instance norm by the explicit Jacobian
 * ∂y_j/∂x_k = w·σ⁻¹·(δ_jk − 1/S − x̂_j·x̂_k/S), summed against dy; plus the
 * cotangents of the statistics (mean, invstd) when given.
 */
export function refInstanceNormGrad(
  dy: RefTensor,
  x: RefTensor,
  weight: RefTensor | null,
  eps: number,
  statGrads?: { dmean: RefTensor; dinvstd: RefTensor },
): { dx: RefTensor; dweight: RefTensor; dbias: RefTensor } {
  const { N, C, S, mean, vr } = refInstanceStats(x);
  const dx = refTensor(x.shape),
    dweight = refTensor([C]),
    dbias = refTensor([C]);
  for (let n = 0; n < N; n++) {
    for (let c = 0; c < C; c++) {
      const k = n * C + c,
        sig = Math.sqrt(vr[k] + eps),
        w = weight ? weight.data[c] : 1;
      const xh = (j: number) => (x.data[k * S + j] - mean[k]) / sig;
      for (let j = 0; j < S; j++) {
        dbias.data[c] += dy.data[k * S + j];
        dweight.data[c] += dy.data[k * S + j] * xh(j);
      }
      for (let q = 0; q < S; q++) {
        let g = 0;
        for (let j = 0; j < S; j++)
          g += dy.data[k * S + j] * (w / sig) * ((j === q ? 1 : 0) - 1 / S - (xh(j) * xh(q)) / S);
        if (statGrads) {
          // ∂mean/∂x_q = 1/S; ∂(var + eps)^(−1/2)/∂x_q = −(var + eps)^(−3/2)·(x_q − mean)/S.
          g += statGrads.dmean.data[k] / S;
          g -= (statGrads.dinvstd.data[k] * (x.data[k * S + q] - mean[k])) / (S * sig * sig * sig);
        }
        dx.data[k * S + q] = g;
      }
    }
  }
  return { dx, dweight, dbias };
}
