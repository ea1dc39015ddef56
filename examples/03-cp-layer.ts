/**
 * 03 · One CP layer next to K dedicated layers.
 *
 * With M = 4 modalities there are K = 2^M − 1 = 15 subsets. A dedicated family
 * stores 15 kernels W_k [O, I, S]. LARGO stores them as one CP decomposition
 * (paper Eq. 2) whose first factor A_model [K, R] is indexed by the subset:
 *   W_k[o, i, s] = Σ_r A_model[k, r] · Â_out[o, r] · Â_in[i, r] · Â_kernel[s, r]
 * (Â: columns scaled to unit norm), with the rank R of Eq. 3.
 *
 * Run: npx tsx examples/03-cp-layer.ts
 */
import { abs, engine, randn, sub, tensor, tidy, type Tensor } from '@largo/core';
import { noGrad } from '@largo/autograd';
import { CPConv3d, Conv3d, DedicatedConv3d, cpRank, numSubsets, paramCount, type CPWeights } from 'largo';

const M = 4, K = numSubsets(M), O = 16, I = 16, kernelSize = 3, S = kernelSize ** 3;
const maxAbsDiff = (a: Tensor, b: Tensor) => tidy(() => Math.max(...abs(sub(a, b)).dataSync()));

// #region counts
const opts = { inChannels: I, outChannels: O, kernelSize, padding: 1, seed: 0 };
const plain = new Conv3d(opts);
const dedicated = new DedicatedConv3d({ ...opts, numSubsets: K });
const cp = new CPConv3d({ ...opts, numSubsets: K });
console.log(`K = ${K} subsets, O = ${O}, I = ${I}, S = ${S}`);
console.log(`Eq. 3 rank: R = floor(O·I·S / (K+O+I+S)) = floor(${O * I * S} / ${K + O + I + S}) = ${cpRank(K, O, I, S)} (layer: ${cp.rank})`);
console.log(`one plain conv      ${paramCount(plain)} parameters`);
console.log(`K dedicated convs   ${paramCount(dedicated)} parameters`);
console.log(`one CP conv (LARGO) ${paramCount(cp)} parameters: R(K+O+I+S) = ${cp.rank * (K + O + I + S)} factor entries + K·O = ${K * O} biases`);
// #endregion counts

// #region reconstruct
// Subset k's kernel, straight from the factors by Eq. 4 in float64, against the layer's weight(k).
const w = cp.weights as CPWeights;
const unit = (a: Tensor) => {            // a [D, R] with every column scaled to norm 1
  const [D, R] = a.shape as [number, number], v = a.dataSync(), out = new Float64Array(D * R);
  for (let r = 0; r < R; r++) {
    let n = 0;
    for (let d = 0; d < D; d++) n += v[d * R + r]! ** 2;
    for (let d = 0; d < D; d++) out[d * R + r] = v[d * R + r]! / Math.sqrt(n);
  }
  return out;
};
function eq4(k: number): Tensor {
  const R = cp.rank, aM = w.aModel.dataSync(), aO = unit(w.aOut), aI = unit(w.aIn), aK = unit(w.aKernel!);
  const W = new Float32Array(O * I * S);
  for (let o = 0; o < O; o++) for (let i = 0; i < I; i++) for (let s = 0; s < S; s++) {
    let acc = 0;
    for (let r = 0; r < R; r++) acc += aM[k * R + r]! * aO[o * R + r]! * aI[i * R + r]! * aK[s * R + r]!;
    W[(o * I + i) * S + s] = acc;
  }
  return tensor(W, [O, I, kernelSize, kernelSize, kernelSize]);
}
console.log(`subset 3: max |weight(3) − Eq. 4| = ${maxAbsDiff(cp.weight(3), eq4(3)).toExponential(0)}`);
console.log(`at init A_model = 1, so every subset has the same kernel: max |W_0 − W_14| = ${maxAbsDiff(cp.weight(0), cp.weight(14))}`);
// Training moves row k of A_model (and the shared factors); here we scale row 0 by hand.
const aM = w.aModel.dataSync().slice();
for (let r = 0; r < cp.rank; r++) aM[r] = 0.5 + (r % 3) * 0.25;
const moved = tensor(aM, w.aModel.shape);
engine().assign(w.aModel, moved);
moved.dispose();
console.log(`after changing row 0 of A_model: max |W_0 − W_14| = ${maxAbsDiff(cp.weight(0), cp.weight(14)).toFixed(3)}, max |W_1 − W_14| = ${maxAbsDiff(cp.weight(1), cp.weight(14))}`);
// #endregion reconstruct

// #region cache
// In eval mode under noGrad, the layer reconstructs subset k's kernel once and
// reuses it: inference costs one plain conv. Asking for another subset replaces it.
const x = randn([1, I, 6, 6, 6], { seed: 5 });
const uncached = noGrad(() => cp.forward(x, 0));          // training mode: rebuilds the kernel
cp.train(false);
const cached = noGrad(() => cp.forward(x, 0));
console.log(`cached subset 0: ${cp.isCached(0)}, output equal to uncached: ${maxAbsDiff(cached, uncached) === 0}`);
noGrad(() => cp.forward(x, 5)).dispose();
console.log(`after a forward on subset 5: cached 0 = ${cp.isCached(0)}, cached 5 = ${cp.isCached(5)}`);
console.log(`the cache holds one kernel (${O * I * S} values) + one bias (${O}), the size of one plain conv's parameters (${paramCount(plain)})`);
// #endregion cache
