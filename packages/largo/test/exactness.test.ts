/**
 * Acceptance test (issue 4): LARGO holds the family of K dedicated
 * networks. (1) With a rank at or above the exact CP-rank bound, a CP layer
 * represents K arbitrary kernels — by an explicit construction and by
 * gradient-descent fitting to K trained dedicated kernels (reconstruction
 * error ~0). (2) At the default rank, LARGO's inner layers cost what one
 * dedicated network's inner layers cost, within 1% (stem, head and biases
 * aside), on a BraTS-sized U-Net.
 */
import t from 'tap';
import { Philox, add, div, engine, mul, randn, sub, sum, tensor, tidy, type Tensor } from '@largo/core';
import { backward, noGrad, zeroGrad } from '@largo/autograd';
import {
  CPConv3d, DedicatedConv3d, buildSegmentationFamily, cpRank, paramReport, unetParamCounts, unetPlan, numSubsets, type CPWeights,
} from '../src/index.js';
import { relErr } from './helpers/oracle.js';

/** A minimal Adam (the project's optimizer lives in @largo/autograd; this keeps the test self-contained). */
class TinyAdam {
  private m: Float64Array[];
  private v: Float64Array[];
  private t = 0;
  constructor(private params: Tensor[], public lr: number, private b1 = 0.9, private b2 = 0.999, private eps = 1e-10) {
    this.m = params.map((p) => new Float64Array(p.size));
    this.v = params.map((p) => new Float64Array(p.size));
  }
  step(): void {
    this.t++;
    const c1 = 1 - this.b1 ** this.t, c2 = 1 - this.b2 ** this.t;
    this.params.forEach((p, j) => {
      if (!p.grad) return;
      const g = p.grad.dataSync(), w = p.dataSync(), m = this.m[j], v = this.v[j];
      const out = new Float32Array(p.size);
      for (let i = 0; i < p.size; i++) {
        m[i] = this.b1 * m[i] + (1 - this.b1) * g[i];
        v[i] = this.b2 * v[i] + (1 - this.b2) * g[i] * g[i];
        out[i] = w[i] - (this.lr * (m[i] / c1)) / (Math.sqrt(v[i] / c2) + this.eps);
      }
      const nt = tensor(out, p.shape);
      engine().assign(p, nt);
      nt.dispose();
    });
    zeroGrad(this.params);
  }
}

const K = 3, O = 3, I = 2, KS = [1, 1, 2] as const, S = 2;
const convOpts = { numSubsets: K, inChannels: I, outChannels: O, kernelSize: KS };

/** Trains K dedicated convs (one per subset) to reproduce K random teacher convs on random inputs; returns the last relative loss. */
function trainDedicated(): { ded: DedicatedConv3d; teacher: Float32Array; finalLoss: number } {
  const ded = new DedicatedConv3d({ ...convOpts, generator: new Philox(1) });
  const teacher = randn([K, O, I, ...KS], { seed: 2 }).dataSync() as Float32Array;
  const teachers = Array.from({ length: K }, (_, k) => new DedicatedConv3d({ ...convOpts, generator: new Philox(100 + k) }));
  // Teacher k holds kernel k in slot k.
  teachers.forEach((tc) => { const w = tc.weights.parameters()[0]; const v = tensor(teacher, w.shape); engine().assign(w, v); v.dispose(); });
  const x = randn([16, I, 1, 1, 5], { seed: 3 });
  const targets = teachers.map((tc, k) => noGrad(() => tc.forward(x, k)));
  const energy = targets.map((y) => Array.from(y.dataSync()).reduce((a, v) => a + v * v, 0));
  const opt = new TinyAdam(ded.parameters(), 0.05);
  let finalLoss = Infinity;
  for (let step = 0; step < 400; step++) {
    const k = step % K;
    const loss = tidy(() => { const d = sub(ded.forward(x, k), targets[k]); return sum(mul(d, d)); });
    backward(loss);
    finalLoss = loss.item() / energy[k];
    loss.dispose();
    opt.step();
    if (step === 250) opt.lr = 0.005;
  }
  x.dispose(); targets.forEach((y) => y.dispose()); teachers.forEach((tc) => tc.dispose());
  return { ded, teacher, finalLoss };
}

/** Fits a CP layer's factors to the K kernels `target` [K, O, I, S] by Adam on the relative squared error. */
function fitCP(cp: CPConv3d, target: Float32Array, steps: number): number {
  const w = cp.weights as CPWeights;
  const tgt = Array.from({ length: K }, (_, k) => tensor(target.slice(k * O * I * S, (k + 1) * O * I * S), [O, I, ...KS]));
  const norm2 = target.reduce((a, v) => a + v * v, 0);
  const opt = new TinyAdam([w.aModel, w.aOut, w.aIn, w.aKernel!], 0.02);
  for (let step = 0; step < steps; step++) {
    opt.lr = 0.02 * 0.5 * (1 + Math.cos((Math.PI * step) / steps)) + 1e-4;
    const loss = tidy(() => {
      let acc: Tensor | null = null;
      for (let k = 0; k < K; k++) {
        const d = sub(cp.weight(k), tgt[k]);
        const e = sum(mul(d, d));
        acc = acc ? add(acc, e) : e;
      }
      return div(acc!, norm2);
    });
    backward(loss);
    loss.dispose();
    opt.step();
  }
  tgt.forEach((x) => x.dispose());
  return maxRelReconstructionError(cp, target);
}

function maxRelReconstructionError(cp: CPConv3d, target: Float32Array): number {
  const got = new Float32Array(K * O * I * S);
  for (let k = 0; k < K; k++) { const W = cp.weight(k); got.set(W.dataSync(), k * O * I * S); W.dispose(); }
  let maxAbs = 0;
  for (const v of target) maxAbs = Math.max(maxAbs, Math.abs(v));
  let err = 0;
  for (let i = 0; i < got.length; i++) err = Math.max(err, Math.abs(got[i] - target[i]));
  return err / maxAbs;
}

t.test('a CP layer with R = K·O·I holds K arbitrary kernels exactly (explicit construction)', async (t) => {
  const target = randn([K, O, I, S], { seed: 9 }).dataSync() as Float32Array;
  const R = K * O * I;
  const cp = new CPConv3d({ ...convOpts, rank: R, generator: new Philox(0) });
  const w = cp.weights as CPWeights;
  // Atom r = (k', o, i): e_o ⊗ e_i ⊗ T[k', o, i, :]/‖·‖, weighted ‖T[k', o, i, :]‖ in row k' of A_model.
  const aModel = new Float32Array(K * R), aOut = new Float32Array(O * R), aIn = new Float32Array(I * R), aK = new Float32Array(S * R);
  let r = 0;
  for (let k = 0; k < K; k++) for (let o = 0; o < O; o++) for (let i = 0; i < I; i++, r++) {
    const fiber = Array.from({ length: S }, (_, s) => target[((k * O + o) * I + i) * S + s]);
    const n = Math.hypot(...fiber);
    aModel[k * R + r] = n;
    aOut[o * R + r] = 1;
    aIn[i * R + r] = 1;
    fiber.forEach((v, s) => { aK[s * R + r] = v / n; });
  }
  for (const [p, v] of [[w.aModel, aModel], [w.aOut, aOut], [w.aIn, aIn], [w.aKernel!, aK]] as const) {
    const nt = tensor(v, p.shape); engine().assign(p, nt); nt.dispose();
  }
  const err = maxRelReconstructionError(cp, target);
  t.ok(err < 1e-5, `max relative reconstruction error ${err.toExponential(2)}`);
  cp.dispose();
});

t.test('LARGO fitted to K trained dedicated networks reconstructs every kernel (error ~0)', async (t) => {
  const { ded, teacher, finalLoss } = trainDedicated();
  t.ok(finalLoss < 1e-5, `dedicated networks trained (last relative loss ${finalLoss.toExponential(2)})`);
  const dedKernels = ded.weights.parameters()[0].dataSync() as Float32Array;
  t.ok(relErr(dedKernels, teacher) < 1e-2, 'dedicated kernels learned their teachers');

  // Exact CP-rank bound of a [K, O, I, S] tensor: R ≤ K·O·I·S / max(K, O, I, S) = 12; fit with 2× that.
  const bound = (K * O * I * S) / Math.max(K, O, I, S);
  const defaultRank = cpRank(K, O, I, S);
  const mult = Math.ceil((2 * bound) / defaultRank);
  const cp = new CPConv3d({ ...convOpts, rankMultiplier: mult, generator: new Philox(5) });
  t.ok(cp.rank >= bound, `rank ${cp.rank} (multiplier ${mult}) ≥ exact bound ${bound}`);
  const err = fitCP(cp, dedKernels, 2500);
  t.ok(err < 1e-3, `max relative reconstruction error after fitting: ${err.toExponential(2)}`);

  // The fitted LARGO layer computes what the dedicated layer computes, subset by subset.
  const x = randn([2, I, 1, 2, 4], { seed: 11 });
  // Give LARGO the dedicated biases (the factors only hold the kernels).
  { const nt = tensor(ded.bias!.dataSync(), cp.bias!.shape); engine().assign(cp.bias!, nt); nt.dispose(); }
  for (let k = 0; k < K; k++) {
    const a = noGrad(() => cp.forward(x, k)), b = noGrad(() => ded.forward(x, k));
    t.ok(relErr(a.dataSync(), b.dataSync()) < 1e-3, `subset ${k}: same outputs`);
    a.dispose(); b.dispose();
  }

  // Control: the default rank cannot hold three unrelated kernels.
  const low = new CPConv3d({ ...convOpts, generator: new Philox(5) });
  const lowErr = fitCP(low, dedKernels, 600);
  t.ok(lowErr > 1e-2, `default rank ${low.rank}: error stays ${lowErr.toExponential(2)}`);
  x.dispose(); cp.dispose(); low.dispose(); ded.dispose();
});

t.test('default rank: LARGO inner layers within 1% of one dedicated network (BraTS-sized U-Net)', async (t) => {
  const cfg = { modalities: 4, classes: 3, baseFeatures: 32, depth: 5, maxFeatures: 320 };
  const largo = unetParamCounts(cfg, 'largo');
  const one = unetParamCounts(cfg, 'full-only');
  const family = unetParamCounts(cfg, 'dedicated');
  const ratio = largo.innerWeights / one.innerWeights;
  t.comment(`K = ${numSubsets(4)}; inner weights: LARGO ${largo.innerWeights}, one network ${one.innerWeights}, ratio ${ratio.toFixed(5)}`);
  t.comment(`totals: LARGO ${largo.total}, one network ${one.total}, dedicated family ${family.total}`);
  t.ok(ratio <= 1 && ratio >= 0.99, 'LARGO inner weights within 1% of one network');
  t.equal(family.innerWeights, numSubsets(4) * one.innerWeights, 'the dedicated family is K networks');
  // Per layer too: R(K+O+I+S) ≤ O·I·S and within 1%.
  for (const l of unetPlan(cfg).filter((q) => q.role === 'inner')) {
    const Sx = l.kernel ** 3, R = cpRank(15, l.out, l.in, Sx);
    const r = (R * (15 + l.out + l.in + Sx)) / (l.out * l.in * Sx);
    if (!(r <= 1 && r > 0.99)) t.fail(`${l.name}: ratio ${r}`);
  }
  // The built network has exactly the analytic count.
  const net = buildSegmentationFamily({ method: 'largo', ...cfg, seed: 0 });
  const rep = paramReport(net);
  t.equal(rep.total, largo.total, `built LARGO network: ${rep.total} parameters`);
  t.equal(rep.innerWeights, largo.innerWeights);
  net.dispose();
});
