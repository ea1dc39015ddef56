/**
 * 06 · The subset loss of Eq. 5 on a toy problem.
 *
 * M = 3 noisy sensors of one hidden value: x_m = z + σ_m·ε_m, σ = (0.5, 1, 2),
 * and we predict y = z. The best predictor differs per subset S of available
 * sensors: E[z | x_S] = Σ_{m∈S} x_m/σ_m² / (1 + Σ_{m∈S} 1/σ_m²), with mean squared
 * error 1 / (1 + Σ_{m∈S} 1/σ_m²). A missing sensor is zero-filled.
 *
 * Each step samples a subset k uniformly from the K = 7 and minimizes (Eq. 5)
 *   L(f_k(x_k), y) + L(f_full(x_full), y).
 * LARGO (a CP linear layer, Eq. 3 rank) has per-subset weights; the
 * modality-dropout baseline trains one shared linear layer with the same loss;
 * "full only" trains on complete inputs and meets missing sensors only at test.
 *
 * Run: npx tsx examples/06-subset-loss.ts   (--small: fewer steps and samples)
 */
import { Philox, add, mean, mul, randn, sub, tensor, tidy, type Tensor } from '@largo/core';
import { Adam, backward, noGrad } from '@largo/autograd';
import { CPLinear, Linear, enumerateSubsets, fullSubset, numSubsets, subsetMask, type FamilyLayer } from 'largo';

const small = process.argv.includes('--small');
const M = 3, K = numSubsets(M), sigma = [0.5, 1, 2], steps = small ? 150 : 600, batch = 256;

/** N samples: inputs [N, M] and targets [N, 1]. */
function sample(n: number, seed: number): { x: Tensor; y: Tensor } {
  const z = randn([n, 1], { seed }), eps = randn([n, M], { seed: seed + 1 });
  return { x: tidy(() => add(z, mul(eps, tensor([sigma])))), y: z };
}
const zeroFill = (x: Tensor, k: number) => mul(x, tensor([subsetMask(k, M).map(Number)]));
const mse = (p: Tensor, y: Tensor) => mean(mul(sub(p, y), sub(p, y)));

// #region eq5
function train(net: FamilyLayer, guidance: 'eq5' | 'full-only'): void {
  const opt = new Adam(net.parameters(), { lr: 0.05 });
  const rng = new Philox(3), full = fullSubset(M);
  for (let step = 0; step < steps; step++) {
    const { x, y } = sample(batch, 1000 + 2 * step);
    const k = guidance === 'eq5' ? Math.floor(rng.uniform(1)[0]! * K) : full;   // subset k ~ U{0..K−1}
    const loss = tidy(() => {
      const missing = mse(net.forward(zeroFill(x, k), k), y);            // L(f_k(x_k), y)
      const guide = mse(net.forward(x, full), y);                         // L(f_full(x_full), y)
      return guidance === 'eq5' ? add(missing, guide) : guide;
    });
    backward(loss);
    opt.step();
    opt.zeroGrad();
    [loss, x, y].forEach((t) => t.dispose());
  }
  opt.dispose();
}
// #endregion eq5

// #region compare
const nets: [string, FamilyLayer, 'eq5' | 'full-only'][] = [
  ['LARGO', new CPLinear({ numSubsets: K, inFeatures: M, outFeatures: 1, seed: 1 }), 'eq5'],
  ['dropout', new Linear({ inFeatures: M, outFeatures: 1, seed: 1 }), 'eq5'],
  ['full only', new Linear({ inFeatures: M, outFeatures: 1, seed: 1 }), 'full-only'],
];
for (const [, net, g] of nets) train(net, g);
const test = sample(small ? 2000 : 20000, 7);
const names = ['x1', 'x2', 'x3'];
console.log(`subset      best MSE  ${nets.map(([n]) => n.padStart(9)).join(' ')}`);
const sums = new Array(nets.length + 1).fill(0);
enumerateSubsets(M).forEach((s, k) => {
  const best = 1 / (1 + s.reduce((a, m) => a + 1 / sigma[m]! ** 2, 0));
  const got = nets.map(([, net]) => noGrad(() => tidy(() => mse(net.forward(zeroFill(test.x, k), k), test.y).item())));
  [best, ...got].forEach((v, j) => { sums[j] += v / K; });
  console.log(`${s.map((m) => names[m]).join('+').padEnd(10)} ${[best, ...got].map((v) => v.toFixed(3).padStart(9)).join(' ')}`);
});
console.log(`${'mean'.padEnd(10)} ${sums.map((v) => v.toFixed(3).padStart(9)).join(' ')}`);
// #endregion compare
