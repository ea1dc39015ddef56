import t from 'tap';
import {
  Philox,
  conv3d,
  cpReconstruct,
  engine,
  instanceNorm,
  memory,
  randn,
  sum,
  tensor,
  tidy,
  type Tensor,
} from '@largo/core';
import { backward, gradcheck, noGrad, zeroGrad } from '@largo/autograd';
import {
  CPConv3d,
  CPConvTranspose3d,
  CPLinear,
  Conv3d,
  DedicatedConv3d,
  DedicatedLinear,
  LayerNorm,
  Linear,
  SubsetHead,
  SubsetInstanceNorm,
  SubsetLayerNorm,
  SubsetStem,
  TuckerConv3d,
  TuckerConvTranspose3d,
  TuckerLinear,
  channelsOf,
  normalizeColumns,
  row,
  kaimingGain,
  fanIn,
  type CPWeights,
  type TuckerWeights,
} from '../src/index.js';
import { conv3dLoop, convTranspose3dLoop, cpEinsum, normCols, relErr, swap01, tuckerEinsum } from './helpers/oracle.js';

const TOL = 2e-5;

/** Replaces a parameter's values (e.g. A_model rows, so subsets differ). */
function setRandom(p: Tensor, seed: number, std = 1): void {
  const r = randn(p.shape, { seed, std });
  engine().assign(p, r);
  r.dispose();
}

t.test('normalizeColumns gives unit-norm columns', async (t) => {
  const a = randn([7, 5], { seed: 1, std: 3 });
  const n = normalizeColumns(a).dataSync();
  for (let r = 0; r < 5; r++) {
    let s = 0;
    for (let d = 0; d < 7; d++) s += n[d * 5 + r] ** 2;
    t.ok(Math.abs(s - 1) < 1e-5, `column ${r}`);
  }
  t.ok(relErr(n, normCols(a.dataSync(), 7, 5)) < 1e-6);
});

t.test('CPConv3d: kernel = explicit einsum of the normalized factors; forward = textbook conv with it', async (t) => {
  const K = 3,
    O = 4,
    I = 3,
    ks = [3, 2, 2] as const,
    S = 12;
  const layer = new CPConv3d({
    numSubsets: K,
    inChannels: I,
    outChannels: O,
    kernelSize: ks,
    stride: [1, 2, 1],
    padding: [1, 0, 1],
    generator: new Philox(7),
    rank: 5,
  });
  const w = layer.weights as CPWeights;
  t.equal(w.rank, 5);
  t.same(w.aModel.dataSync(), new Float32Array(K * 5).fill(1), 'A_model starts at ones');
  t.same(layer.bias!.dataSync(), new Float32Array(K * O), 'bias starts at zeros');
  setRandom(w.aModel, 11);
  setRandom(layer.bias!, 12, 0.1);
  const x = randn([2, I, 4, 5, 3], { seed: 13 });
  for (let k = 0; k < K; k++) {
    const Wref = cpEinsum(
      w.aModel.dataSync(),
      k,
      normCols(w.aOut.dataSync(), O, 5),
      normCols(w.aIn.dataSync(), I, 5),
      normCols(w.aKernel!.dataSync(), S, 5),
      O,
      I,
      S,
      5,
    );
    const Wk = layer.weight(k);
    t.same(Wk.shape, [O, I, ...ks]);
    t.ok(relErr(Wk.dataSync(), Wref) < TOL, `subset ${k}: kernel`);
    const b = layer.bias!.dataSync().slice(k * O, (k + 1) * O);
    const yRef = conv3dLoop(x.dataSync(), [...x.shape], Wref, [O, I, ...ks], b, {
      stride: [1, 2, 1],
      padding: [1, 0, 1],
    });
    const y = layer.forward(x, k);
    t.same(y.shape, yRef.shape);
    t.ok(relErr(y.dataSync(), yRef.data) < TOL, `subset ${k}: forward`);
    // The same through the engine's conv3d with the explicitly reconstructed kernel.
    const Wt = tensor(Float32Array.from(Wref), [O, I, ...ks]);
    const y2 = conv3d(x, Wt, tensor(b, [O]), { stride: [1, 2, 1], padding: [1, 0, 1] });
    t.ok(relErr(y.dataSync(), y2.dataSync()) < TOL, `subset ${k}: conv3d(x, W_k)`);
    for (const z of [Wk, y, Wt, y2]) z.dispose();
  }
  x.dispose();
  layer.dispose();
});

t.test('CPConvTranspose3d: weight layout [I, O, k…] and textbook transposed conv', async (t) => {
  const K = 3,
    I = 4,
    O = 3;
  const layer = new CPConvTranspose3d({
    numSubsets: K,
    inChannels: I,
    outChannels: O,
    kernelSize: 2,
    stride: 2,
    generator: new Philox(8),
  });
  const w = layer.weights as CPWeights;
  const R = w.rank;
  setRandom(w.aModel, 21);
  setRandom(layer.bias!, 22, 0.1);
  const x = randn([1, I, 2, 3, 2], { seed: 23 });
  for (let k = 0; k < K; k++) {
    const Woi = cpEinsum(
      w.aModel.dataSync(),
      k,
      normCols(w.aOut.dataSync(), O, R),
      normCols(w.aIn.dataSync(), I, R),
      normCols(w.aKernel!.dataSync(), 8, R),
      O,
      I,
      8,
      R,
    );
    const Wref = swap01(Woi, O, I, 8); // [I, O, S]
    const Wk = layer.weight(k);
    t.same(Wk.shape, [I, O, 2, 2, 2]);
    t.ok(relErr(Wk.dataSync(), Wref) < TOL, `subset ${k}: kernel`);
    const b = layer.bias!.dataSync().slice(k * O, (k + 1) * O);
    const yRef = convTranspose3dLoop(x.dataSync(), [...x.shape], Wref, [I, O, 2, 2, 2], b, {
      stride: [2, 2, 2],
      padding: [0, 0, 0],
    });
    const y = layer.forward(x, k);
    t.same(y.shape, [1, O, 4, 6, 4]);
    t.ok(relErr(y.dataSync(), yRef.data) < TOL, `subset ${k}: forward`);
    Wk.dispose();
    y.dispose();
  }
  x.dispose();
  layer.dispose();
});

t.test('Tucker conv / transposed conv / linear kernels = explicit einsum', async (t) => {
  const K = 3,
    O = 5,
    I = 4;
  const conv = new TuckerConv3d({
    numSubsets: K,
    inChannels: I,
    outChannels: O,
    kernelSize: 3,
    padding: 1,
    generator: new Philox(9),
    ranks: { out: 3, in: 2 },
  });
  const up = new TuckerConvTranspose3d({
    numSubsets: K,
    inChannels: I,
    outChannels: O,
    kernelSize: 2,
    stride: 2,
    generator: new Philox(10),
    ranks: { out: 2, in: 3 },
  });
  const lin = new TuckerLinear({
    numSubsets: K,
    inFeatures: I,
    outFeatures: O,
    generator: new Philox(11),
    ranks: { out: 3, in: 3 },
  });
  for (const [layer, S, transposed] of [
    [conv, 27, false],
    [up, 8, true],
    [lin, 1, false],
  ] as const) {
    const w = layer.weights as TuckerWeights;
    const { out: Ro, in: Ri } = w.ranks;
    for (let k = 0; k < K; k++) {
      const Woi = tuckerEinsum(
        w.core.dataSync(),
        k,
        normCols(w.aOut.dataSync(), O, Ro),
        normCols(w.aIn.dataSync(), I, Ri),
        O,
        I,
        S,
        Ro,
        Ri,
      );
      const Wk = layer.weight(k);
      t.ok(relErr(Wk.dataSync(), transposed ? swap01(Woi, O, I, S) : Woi) < TOL, `${layer.kind} subset ${k}`);
      Wk.dispose();
    }
  }
  const x = randn([2, I, 2, 2, 2], { seed: 5 });
  const y = conv.forward(x, 1);
  t.same(y.shape, [2, O, 2, 2, 2]);
  t.same(up.forward(x, 2).shape, [2, O, 4, 4, 4]);
  t.same(lin.forward(randn([3, I], { seed: 1 }), 0).shape, [3, O]);
  conv.dispose();
  up.dispose();
  lin.dispose();
});

t.test('CPLinear: W_k = Â_out diag(A_model[k]) Â_inᵀ, y = x W_kᵀ + b_k', async (t) => {
  const K = 3,
    O = 5,
    I = 6;
  const layer = new CPLinear({ numSubsets: K, inFeatures: I, outFeatures: O, generator: new Philox(3) });
  const w = layer.weights as CPWeights;
  t.equal(w.aKernel, null, 'no kernel mode');
  const R = w.rank;
  t.equal(R, Math.floor((O * I) / (K + O + I)));
  setRandom(w.aModel, 1);
  setRandom(layer.bias!, 2);
  const x = randn([4, I], { seed: 3 });
  const xv = x.dataSync();
  for (let k = 0; k < K; k++) {
    const Wref = cpEinsum(
      w.aModel.dataSync(),
      k,
      normCols(w.aOut.dataSync(), O, R),
      normCols(w.aIn.dataSync(), I, R),
      [...new Array(R).fill(1)],
      O,
      I,
      1,
      R,
    );
    const b = layer.bias!.dataSync();
    const yRef = new Float64Array(4 * O);
    for (let n = 0; n < 4; n++)
      for (let o = 0; o < O; o++) {
        let acc = b[k * O + o];
        for (let i = 0; i < I; i++) acc += xv[n * I + i] * Wref[o * I + i];
        yRef[n * O + o] = acc;
      }
    t.ok(relErr(layer.forward(x, k).dataSync(), yRef) < TOL, `subset ${k}`);
  }
  t.same(layer.forward(randn([2, 3, I], { seed: 4 }), 1).shape, [2, 3, O], 'leading axes are kept');
  layer.dispose();
});

t.test('dedicated and plain layers', async (t) => {
  const K = 4;
  const ded = new DedicatedConv3d({
    numSubsets: K,
    inChannels: 2,
    outChannels: 3,
    kernelSize: 1,
    generator: new Philox(1),
  });
  const all = ded.weights.parameters()[0].dataSync();
  for (let k = 0; k < K; k++) t.same(ded.weight(k).dataSync(), all.slice(k * 6, (k + 1) * 6), `copy ${k}`);
  const plain = new Conv3d({ inChannels: 2, outChannels: 3, kernelSize: 3, padding: 1, generator: new Philox(1) });
  const x = randn([1, 2, 3, 3, 3], { seed: 2 });
  t.same(plain.forward(x, 0).dataSync(), plain.forward(x, 5).dataSync(), 'plain layers ignore k');
  t.equal(plain.bias!.rank, 1);
  t.throws(() => ded.forward(x, K), /subset index/);
  const dl = new DedicatedLinear({ numSubsets: 2, inFeatures: 3, outFeatures: 2, generator: new Philox(1) });
  t.same(dl.bias!.shape, [2, 2]);
  const l = new Linear({ inFeatures: 3, outFeatures: 2, generator: new Philox(1) });
  t.same(l.forward(randn([5, 3], { seed: 1 }), 0).shape, [5, 2]);
  for (const m of [ded, plain, dl, l]) m.dispose();
});

t.test("gradients reach every factor; only subset k's A_model row and bias row", async (t) => {
  const K = 3;
  const layer = new CPConv3d({
    numSubsets: K,
    inChannels: 2,
    outChannels: 3,
    kernelSize: 3,
    padding: 1,
    generator: new Philox(4),
  });
  const w = layer.weights as CPWeights;
  const x = randn([1, 2, 3, 3, 3], { seed: 1 });
  const loss = tidy(() => sum(layer.forward(x, 1)));
  backward(loss);
  for (const p of [w.aOut, w.aIn, w.aKernel!])
    t.ok(p.grad && p.grad.dataSync().some((v) => v !== 0), `${p.shape} has a gradient`);
  const gm = w.aModel.grad!.dataSync(),
    R = w.rank;
  t.ok(
    gm.slice(R, 2 * R).some((v) => v !== 0),
    'row 1 of A_model',
  );
  t.ok(gm.slice(0, R).every((v) => v === 0) && gm.slice(2 * R).every((v) => v === 0), 'other rows untouched');
  const gb = layer.bias!.grad!.dataSync();
  t.ok(gb.slice(3, 6).every((v) => Math.abs(v - 27) < 1e-4) && gb.slice(0, 3).every((v) => v === 0), 'bias row 1 only');
  zeroGrad(layer.parameters());
  loss.dispose();
  x.dispose();
  layer.dispose();
});

t.test('gradcheck of the CP reconstruction path (float64)', async (t) => {
  const K = 2,
    O = 3,
    I = 2,
    S = 4,
    R = 3;
  const inputs = [
    randn([K, R], { seed: 1, dtype: 'float64' }),
    randn([O, R], { seed: 2, dtype: 'float64' }),
    randn([I, R], { seed: 3, dtype: 'float64' }),
    randn([S, R], { seed: 4, dtype: 'float64' }),
  ];
  const r = gradcheck(
    (m, a, b, c) => cpReconstruct(row(m, 1), normalizeColumns(a), normalizeColumns(b), normalizeColumns(c)),
    inputs,
    { atol: 1e-6, rtol: 1e-4 },
  );
  t.ok(r.ok, `max abs err ${r.maxAbsErr}`);
});

t.test("inference cache: eval + noGrad reuses subset k's kernel; train(true) clears it", async (t) => {
  const layer = new CPConv3d({
    numSubsets: 3,
    inChannels: 2,
    outChannels: 2,
    kernelSize: 3,
    padding: 1,
    generator: new Philox(2),
  });
  setRandom((layer.weights as CPWeights).aModel, 3);
  const x = randn([1, 2, 3, 3, 3], { seed: 4 });
  const ref = layer.forward(x, 2).dataSync();
  t.notOk(layer.isCached(2), 'training mode does not cache');
  noGrad(() => layer.forward(x, 2).dispose());
  t.notOk(layer.isCached(2), 'noGrad alone (training mode) does not cache');
  layer.train(false);
  const before = memory().tensors;
  const y1 = noGrad(() => layer.forward(x, 2));
  t.ok(layer.isCached(2));
  const y2 = noGrad(() => layer.forward(x, 2));
  t.same(y1.dataSync(), ref);
  t.same(y2.dataSync(), ref);
  noGrad(() => layer.forward(x, 0).dispose());
  t.ok(layer.isCached(0) && !layer.isCached(2), 'one subset cached at a time');
  y1.dispose();
  y2.dispose();
  layer.train(true);
  t.notOk(layer.isCached(0), 'train(true) clears the cache');
  t.equal(memory().tensors, before, 'no tensor leaked');
  layer.cacheSubset(1);
  t.ok(layer.isCached(1), 'explicit cacheSubset');
  layer.clearCache();
  t.notOk(layer.isCached(1));
  // Gradients still work in eval mode when grad is enabled (no cache involved).
  layer.train(false);
  const l = tidy(() => sum(layer.forward(x, 1)));
  t.ok(l.requiresGrad, 'eval mode with grad enabled stays differentiable');
  l.dispose();
  x.dispose();
  layer.dispose();
});

t.test('norms: per-subset affines', async (t) => {
  const n = new SubsetInstanceNorm(3, 2);
  t.same(n.weight.shape, [3, 2]);
  setRandom(n.weight, 1);
  setRandom(n.bias, 2);
  const x = randn([2, 2, 3, 2, 2], { seed: 3 });
  const w = n.weight.dataSync(),
    b = n.bias.dataSync();
  const ref = instanceNorm(x, tensor(w.slice(2, 4), [2]), tensor(b.slice(2, 4), [2]), 1e-5);
  t.ok(relErr(n.forward(x, 1).dataSync(), ref.dataSync()) < 1e-6);

  const ln = new SubsetLayerNorm(2, 4);
  setRandom(ln.weight, 4);
  setRandom(ln.bias, 5);
  const h = randn([3, 4], { seed: 6 });
  const hv = h.dataSync(),
    lw = ln.weight.dataSync(),
    lb = ln.bias.dataSync();
  const out = ln.forward(h, 1).dataSync();
  let err = 0;
  for (let r = 0; r < 3; r++) {
    const v = Array.from(hv.slice(r * 4, r * 4 + 4));
    const m = v.reduce((a, c) => a + c, 0) / 4;
    const s2 = v.reduce((a, c) => a + (c - m) ** 2, 0) / 4;
    for (let c = 0; c < 4; c++)
      err = Math.max(err, Math.abs(out[r * 4 + c] - (((v[c] - m) / Math.sqrt(s2 + 1e-5)) * lw[4 + c] + lb[4 + c])));
  }
  t.ok(err < 1e-5, `layer norm err ${err}`);
  const shared = new LayerNorm(4);
  t.same(shared.weight.shape, [4]);
  t.same(shared.forward(h).shape, [3, 4]);
});

t.test("stem selects the subset's channels; head is one 1×1×1 conv per subset", async (t) => {
  const M = 3;
  const stem = new SubsetStem({ modalities: M, outChannels: 2, generator: new Philox(1) });
  t.equal(stem.copies.length, 7);
  t.same(
    stem.copies.map((c) => c.inChannels),
    [1, 1, 1, 2, 2, 2, 3],
  );
  const x = randn([1, M, 2, 2, 2], { seed: 2 });
  const k = 4; // {0, 2}
  t.same([...channelsOf(k, M)], [0, 2]);
  const xs = tensor(Float32Array.from([...x.dataSync().slice(0, 8), ...x.dataSync().slice(16, 24)]), [1, 2, 2, 2, 2]);
  t.same(stem.forward(x, k).dataSync(), stem.copies[k].forward(xs, 0).dataSync());
  t.same(stem.forward(xs, k).dataSync(), stem.copies[k].forward(xs, 0).dataSync(), 'already-selected input');
  t.throws(() => stem.forward(randn([1, 2, 2, 2, 2], { seed: 1 }), 0), /channels/);
  const head = new SubsetHead({ numSubsets: 7, inChannels: 2, outChannels: 3, generator: new Philox(1) });
  t.same(head.weights.parameters()[0].shape, [7, 3, 2, 1, 1, 1]);
  t.equal(head.role, 'head');
  t.equal(stem.role, 'stem');
});

t.test('init: one seed fixes everything; Kaiming std', async (t) => {
  const make = (seed: number): Float32Array => {
    const c = new CPConv3d({
      numSubsets: 3,
      inChannels: 4,
      outChannels: 4,
      kernelSize: 3,
      generator: new Philox(seed),
    });
    const v = Float32Array.from(c.parameters().flatMap((p) => [...p.dataSync()]));
    c.dispose();
    return v;
  };
  t.same(make(5), make(5), 'same seed, same bits');
  t.notSame(make(5), make(6));
  const big = new Conv3d({
    inChannels: 32,
    outChannels: 64,
    kernelSize: 3,
    generator: new Philox(1),
    negativeSlope: 0.01,
  });
  const v = big.weights.parameters()[0].dataSync();
  const sd = Math.sqrt(Array.from(v).reduce((a, c) => a + c * c, 0) / v.length);
  const want = kaimingGain(0.01) / Math.sqrt(fanIn([64, 32, 3, 3, 3]));
  t.ok(Math.abs(sd / want - 1) < 0.02, `std ${sd} vs ${want}`);
  big.dispose();
});
