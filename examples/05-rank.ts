/**
 * 05 · What the rank buys: fitting K dedicated kernels with one CP layer.
 *
 * Take K = 3 kernels W_k [O, I, S] (the family of M = 2 modalities) and fit the
 * factors of a CP layer of rank R to them by Adam on the relative squared
 * error, for R from 1 upwards. Eq. 3 picks R so the whole family costs what one
 * kernel costs; above it the error falls until the family is held exactly.
 * A 4-way tensor [K, O, I, S] has CP rank at most K·O·I·S / max(K, O, I, S):
 * here 18, where an explicit construction (one atom per (k, o, i), the S-fiber
 * as the kernel factor) represents any K kernels.
 *
 * Run: npx tsx examples/05-rank.ts   (writes docs/figures/error-vs-rank.svg, --figures DIR elsewhere; --small: 3 ranks, 100 steps, figure in runs/small/figures)
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { abs, div, engine, matmul, mul, randn, reshape, stack, sub, sum, tensor, tidy, type Tensor } from '@largo/core';
import { Adam, backward } from '@largo/autograd';
import { CPConv3d, cpRank, lineChartSvg, normalizeColumns, type CPWeights } from 'largo';

const small = process.argv.includes('--small');
const outIdx = process.argv.indexOf('--figures');
const outDir = outIdx > 0 ? process.argv[outIdx + 1]! : small ? 'runs/small/figures' : 'docs/figures';
const K = 3, O = 3, I = 2, kernelSize = [1, 2, 2] as const, S = 4;
const bound = (K * O * I * S) / Math.max(K, O, I, S);
const target = Array.from({ length: K }, (_, k) => randn([O, I, ...kernelSize], { seed: 10 + k }));
const targetFamily = reshape(stack(target), [K, O * I * S]);
const energy = tidy(() => sum(mul(targetFamily, targetFamily)).item());
const seeds = small ? [1] : [1, 2];
const layer = (rank: number, seed: number) => new CPConv3d({ numSubsets: K, inChannels: I, outChannels: O, kernelSize, rank, seed });

// #region error
/** The whole family [K, O·I·S] at once (Eq. 2): A_model · (Â_out ⊙ Â_in ⊙ Â_kernel)ᵀ, one atom per column. */
function family(w: CPWeights): Tensor {
  const R = w.rank;
  const atoms = mul(mul(reshape(normalizeColumns(w.aOut), [O, 1, 1, R]), reshape(normalizeColumns(w.aIn), [1, I, 1, R])),
    reshape(normalizeColumns(w.aKernel!), [1, 1, S, R]));
  return matmul(w.aModel, reshape(atoms, [O * I * S, R]), { transposeB: true });
}
/** ‖W_cp − W‖² / ‖W‖² over all K kernels. */
function relError(cp: CPConv3d): Tensor {
  const d = sub(family(cp.weights as CPWeights), targetFamily);
  return div(sum(mul(d, d)), energy);
}
// #endregion error

// #region fit
function fit(rank: number, steps: number): number {
  let best = Infinity;
  for (const seed of seeds) {                         // CP fitting is non-convex: best of several starts
    const cp = layer(rank, seed);
    const w = cp.weights as CPWeights;
    const opt = new Adam([w.aModel, w.aOut, w.aIn, w.aKernel!], { lr: 0.03 });
    for (let step = 0; step < steps; step++) {
      opt.setLr(0.03 * 0.5 * (1 + Math.cos((Math.PI * step) / steps)) + 1e-5);   // cosine decay
      const loss = tidy(() => relError(cp));
      backward(loss);
      loss.dispose();
      opt.step(); opt.zeroGrad();
    }
    best = Math.min(best, Math.sqrt(tidy(() => relError(cp).item())));
    opt.dispose(); cp.dispose();
  }
  return best;
}
// #endregion fit

// #region construction
/** Rank K·O·I: atom (k, o, i) = ‖fiber‖ in A_model[k] ⊗ e_o ⊗ e_i ⊗ fiber/‖fiber‖, fiber = W_k[o, i, :]. */
function construct(): number {
  const R = K * O * I, cp = layer(R, 0), w = cp.weights as CPWeights;
  const aModel = new Float32Array(K * R), aOut = new Float32Array(O * R), aIn = new Float32Array(I * R), aKernel = new Float32Array(S * R);
  let r = 0;
  for (let k = 0; k < K; k++) {
    const W = target[k]!.dataSync();
    for (let o = 0; o < O; o++) for (let i = 0; i < I; i++, r++) {
      const fiber = Array.from({ length: S }, (_, s) => W[(o * I + i) * S + s]!);
      const n = Math.hypot(...fiber);
      aModel[k * R + r] = n; aOut[o * R + r] = 1; aIn[i * R + r] = 1;
      fiber.forEach((v, s) => { aKernel[s * R + r] = v / n; });
    }
  }
  for (const [p, v] of [[w.aModel, aModel], [w.aOut, aOut], [w.aIn, aIn], [w.aKernel!, aKernel]] as const) {
    const t = tensor(v, p.shape); engine().assign(p, t); t.dispose();
  }
  const err = Math.sqrt(tidy(() => relError(cp).item()));
  // family() is the layer's own weight(k), all subsets at once: check that.
  const gap = tidy(() => Math.max(...abs(sub(reshape(stack([0, 1, 2].map((k) => cp.weight(k))), [K, O * I * S]), family(w))).dataSync()));
  console.log(`family() against the layer's weight(k): max abs difference ${gap.toExponential(0)}`);
  cp.dispose();
  return err;
}
// #endregion construction

console.log(`K = ${K}, O = ${O}, I = ${I}, S = ${S}: Eq. 3 rank ${cpRank(K, O, I, S)}, exact-rank bound ${bound}`);
const ranks = small ? [1, 2, bound] : [1, 2, 3, 4, 6, 8, 10, 12, 14, 16, 18];
const steps = small ? 100 : 1000;
const fitted: [number, number][] = [];
for (const R of ranks) {
  const e = fit(R, steps);
  fitted.push([R, e]);
  console.log(`R = ${String(R).padStart(2)}  parameters ${String(R * (K + O + I + S)).padStart(3)} (one kernel: ${O * I * S})  fitted relative error ${e.toExponential(1)}`);
}
const exact = construct();
console.log(`R = ${bound} by construction: relative error ${exact.toExponential(1)}`);

mkdirSync(outDir, { recursive: true });
writeFileSync(join(outDir, 'error-vs-rank.svg'), lineChartSvg([
  { name: 'Adam fit', points: fitted },
  { name: 'construction', points: [[bound, exact]] },
], { title: `CP fit of K = ${K} kernels [${O}, ${I}, ${S}], ${steps} Adam steps (Eq. 3 rank ${cpRank(K, O, I, S)})`, xLabel: 'rank R', yLabel: 'relative error (log scale)', logY: true }));
console.log(`wrote ${join(outDir, 'error-vs-rank.svg')}`);
