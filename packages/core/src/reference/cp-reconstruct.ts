// Float64 oracle of LARGO's CP reconstruction and its factor gradients (direct sums).
import { refTensor, type RefTensor } from './types.js';

/** W[o, i, s] = Σ_r w[r]·A[o, r]·B[i, r]·K[s, r], directly. */
export function refCpReconstruct(w: RefTensor, aOut: RefTensor, aIn: RefTensor, aKernel: RefTensor): RefTensor {
  const R = w.shape[0],
    O = aOut.shape[0],
    I = aIn.shape[0],
    S = aKernel.shape[0];
  const out = refTensor([O, I, S]);
  for (let o = 0; o < O; o++) {
    for (let i = 0; i < I; i++) {
      for (let s = 0; s < S; s++) {
        let acc = 0;
        for (let r = 0; r < R; r++)
          acc += w.data[r] * aOut.data[o * R + r] * aIn.data[i * R + r] * aKernel.data[s * R + r];
        out.data[(o * I + i) * S + s] = acc;
      }
    }
  }
  return out;
}

/** The four factor gradients of `refCpReconstruct`, each a direct quadruple sum. */
export function refCpReconstructGrad(
  dW: RefTensor,
  w: RefTensor,
  aOut: RefTensor,
  aIn: RefTensor,
  aKernel: RefTensor,
): { dweights: RefTensor; daOut: RefTensor; daIn: RefTensor; daKernel: RefTensor } {
  const R = w.shape[0],
    O = aOut.shape[0],
    I = aIn.shape[0],
    S = aKernel.shape[0];
  const dweights = refTensor([R]),
    daOut = refTensor([O, R]),
    daIn = refTensor([I, R]),
    daKernel = refTensor([S, R]);
  for (let o = 0; o < O; o++) {
    for (let i = 0; i < I; i++) {
      for (let s = 0; s < S; s++) {
        const g = dW.data[(o * I + i) * S + s];
        for (let r = 0; r < R; r++) {
          const a = aOut.data[o * R + r],
            b = aIn.data[i * R + r],
            k = aKernel.data[s * R + r],
            wr = w.data[r];
          dweights.data[r] += g * a * b * k;
          daOut.data[o * R + r] += g * wr * b * k;
          daIn.data[i * R + r] += g * wr * a * k;
          daKernel.data[s * R + r] += g * wr * a * b;
        }
      }
    }
  }
  return { dweights, daOut, daIn, daKernel };
}
