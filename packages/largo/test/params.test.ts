import t from 'tap';
import fc from 'fast-check';
import { Philox } from '@largo/core';
import {
  CPConv3d,
  CPConvTranspose3d,
  CPLinear,
  Conv3d,
  ConvTranspose3d,
  DedicatedConv3d,
  DedicatedConvTranspose3d,
  DedicatedLinear,
  Linear,
  TuckerConv3d,
  TuckerConvTranspose3d,
  TuckerLinear,
  cpParams,
  cpRank,
  dedicatedParams,
  plainParams,
  tuckerParams,
  tuckerRanks,
  RANK_MULTIPLIERS,
} from '../src/index.js';
import { buildSegmentationFamily, unetParamCounts, METHODS, buildAvMnistNet, paramCount } from '../src/index.js';
import { paramReport, paramTable } from '../src/params.js';

const gen = (): Philox => new Philox(1);

t.test('CP rank rule (paper Eq. 3)', async (t) => {
  // 3×3×3 conv 32 → 32, K = 15: R = floor(32·32·27 / (15+32+32+27)).
  t.equal(cpRank(15, 32, 32, 27), Math.floor(27648 / 106));
  t.equal(cpRank(15, 32, 32, 27, 2), Math.floor((2 * 27648) / 106));
  t.equal(cpRank(3, 64, 64, 0), Math.floor(4096 / 131), 'linear: no S mode');
  t.equal(cpRank(15, 1, 1, 1), 1, 'at least 1');
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 31 }),
      fc.integer({ min: 1, max: 400 }),
      fc.integer({ min: 1, max: 400 }),
      fc.constantFrom(1, 8, 27, 125),
      fc.constantFrom(...RANK_MULTIPLIERS),
      (K, O, I, S, m) => {
        const R = cpRank(K, O, I, S, m);
        const budget = m * O * I * S,
          per = K + O + I + S;
        // R(K+O+I+S) is the largest multiple of the per-rank cost within the budget (or rank 1).
        return R >= 1 && (R === 1 || R * per <= budget) && (R + 1) * per > budget;
      },
    ),
  );
  t.pass('R(K+O+I+S) ≤ m·O·I·S < (R+1)(K+O+I+S)');
});

t.test('Tucker rank rule (paper Eq. 6) matches the budget', async (t) => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 31 }),
      fc.integer({ min: 4, max: 320 }),
      fc.integer({ min: 4, max: 320 }),
      fc.constantFrom(1, 8, 27),
      (K, O, I, S) => {
        const r = tuckerRanks(K, O, I, S);
        const cost = (R: number): number => K * S * R * R + (O + I) * R;
        if (r.out === O || r.in === I) return r.out <= O && r.in <= I; // capped at the dimension
        const R = r.out;
        return r.in === R && (R === 1 || cost(R) <= O * I * S) && cost(R + 1) > O * I * S;
      },
    ),
  );
  t.pass('K·S·R² + (O+I)R ≤ O·I·S < K·S·(R+1)² + (O+I)(R+1)');
});

t.test('layer parameter counts equal the formulas', async (t) => {
  const K = 7,
    O = 6,
    I = 5;
  const conv = { inChannels: I, outChannels: O, kernelSize: 3, generator: gen() };
  const S = 27;
  const R = cpRank(K, O, I, S);
  t.equal(paramCount(new CPConv3d({ ...conv, numSubsets: K })), R * (K + O + I + S) + K * O, 'CP = R(K+O+I+S) + K·O');
  t.equal(cpParams(K, O, I, S, R), R * (K + O + I + S) + K * O);
  t.equal(paramCount(new DedicatedConv3d({ ...conv, numSubsets: K })), K * (O * I * S + O), 'dedicated = K(O·I·S + O)');
  t.equal(dedicatedParams(K, O, I, S), K * (O * I * S + O));
  t.equal(paramCount(new Conv3d(conv)), O * I * S + O, 'plain = O·I·S + O');
  t.equal(plainParams(O, I, S), O * I * S + O);
  const tr = tuckerRanks(K, O, I, S);
  t.equal(
    paramCount(new TuckerConv3d({ ...conv, numSubsets: K })),
    K * tr.out * tr.in * S + O * tr.out + I * tr.in + K * O,
  );
  t.equal(tuckerParams(K, O, I, S, tr), K * tr.out * tr.in * S + O * tr.out + I * tr.in + K * O);

  const up = { inChannels: I, outChannels: O, kernelSize: 2, stride: 2, generator: gen() };
  const R2 = cpRank(K, O, I, 8);
  t.equal(paramCount(new CPConvTranspose3d({ ...up, numSubsets: K })), R2 * (K + O + I + 8) + K * O, 'CP transposed');
  t.equal(paramCount(new DedicatedConvTranspose3d({ ...up, numSubsets: K })), K * (O * I * 8 + O));
  t.equal(paramCount(new ConvTranspose3d(up)), O * I * 8 + O);
  t.equal(
    paramCount(new TuckerConvTranspose3d({ ...up, numSubsets: K })),
    tuckerParams(K, O, I, 8, tuckerRanks(K, O, I, 8)),
  );

  const lin = { inFeatures: 64, outFeatures: 64, generator: gen() };
  const RL = cpRank(3, 64, 64, 0);
  t.equal(RL, Math.floor((64 * 64) / (3 + 64 + 64)));
  t.equal(
    paramCount(new CPLinear({ ...lin, numSubsets: 3 })),
    RL * (3 + 64 + 64) + 3 * 64,
    'CP linear = R(K+O+I) + K·O',
  );
  t.equal(paramCount(new DedicatedLinear({ ...lin, numSubsets: 3 })), 3 * (64 * 64 + 64));
  t.equal(paramCount(new Linear(lin)), 64 * 64 + 64);
  t.equal(
    paramCount(new TuckerLinear({ ...lin, numSubsets: 3 })),
    tuckerParams(3, 64, 64, 1, tuckerRanks(3, 64, 64, 1)),
  );

  const m = new CPConv3d({ ...conv, numSubsets: K, rankMultiplier: 4 });
  t.equal(m.rank, cpRank(K, O, I, S, 4));
  t.same(
    m.namedParameters().map(([n, p]) => [n, [...p.shape]]),
    [
      ['aModel', [K, m.rank]],
      ['aOut', [O, m.rank]],
      ['aIn', [I, m.rank]],
      ['aKernel', [S, m.rank]],
      ['bias', [K, O]],
    ],
  );
});

t.test('U-Net: built networks match the analytic counts, for every method', async (t) => {
  const cfg = { modalities: 3, classes: 2, baseFeatures: 4, maxFeatures: 12, depth: 3 };
  for (const method of METHODS) {
    for (const deepSupervision of [true, false]) {
      const net = buildSegmentationFamily({ method, ...cfg, deepSupervision, rankMultiplier: 0.5, seed: 3 });
      const rep = paramReport(net);
      const an = unetParamCounts({ ...cfg, deepSupervision }, method, 0.5);
      t.equal(rep.total, an.total, `${method} ds=${deepSupervision}: total`);
      t.equal(rep.total, paramCount(net));
      t.same(
        [rep.byRole.stem, rep.byRole.inner, rep.byRole.head, rep.byRole.norm],
        [an.stem, an.inner, an.head, an.norm],
        `${method}: by role`,
      );
      t.equal(rep.innerWeights, an.innerWeights, `${method}: inner weights`);
      net.dispose();
    }
  }
});

t.test('report rows and markdown table', async (t) => {
  const net = buildSegmentationFamily({
    method: 'largo',
    modalities: 2,
    classes: 2,
    baseFeatures: 4,
    depth: 2,
    seed: 0,
  });
  const rep = paramReport(net);
  const names = rep.rows.map((r) => r.name);
  t.ok(names.includes('enc.0.conv1.0.weight'), 'per-subset stem copy 0');
  t.ok(names.includes('enc.0.conv2.aOut'), 'CP factor of an inner conv');
  t.ok(names.includes('dec.0.up.aKernel'), 'CP factor of the transposed conv');
  t.ok(names.includes('dec.0.head.weight'), 'head');
  t.equal(new Set(names).size, names.length, 'names are unique');
  const row = rep.rows.find((r) => r.name === 'enc.0.conv2.aModel')!;
  t.same(
    { kind: row.kind, layerKind: row.layerKind, role: row.role, layer: row.layer },
    { kind: 'cp.model', layerKind: 'CPConv3d', role: 'inner', layer: 'enc.0.conv2' },
  );
  t.equal(
    rep.rows.reduce((a, r) => a + r.count, 0),
    rep.total,
  );
  t.equal(
    rep.layers.reduce((a, r) => a + r.count, 0),
    rep.total,
  );
  const md = paramTable(rep);
  t.match(md, /\| enc\.0\.conv2 \| CPConv3d \| inner \| \d+ \| aModel\[3,\d+\]/);
  t.match(md, /\*\*total\*\* \| \*\*[\d,]+\*\*/);
  t.match(
    paramTable(rep, { perParameter: true }),
    /\| enc\.0\.conv2\.aOut \| cp\.out \| CPConv3d \| inner \| \[4, \d+\] \|/,
  );
  net.dispose();
});

t.test('avMNIST: per-method counts and roles', async (t) => {
  const counts: Record<string, number> = {};
  for (const method of ['largo', 'dedicated', 'dropout', 'largo-tucker'] as const) {
    const net = buildAvMnistNet({ method, seed: 0 });
    const rep = paramReport(net);
    counts[method] = rep.total;
    t.ok(
      rep.byRole.inner > 0 && rep.byRole.stem > 0 && rep.byRole.head > 0 && rep.byRole.norm > 0,
      `${method}: all roles present`,
    );
    net.dispose();
  }
  t.ok(counts.dedicated > counts.largo, 'dedicated > largo');
  t.ok(counts.largo < 1.5 * counts.dropout, 'largo near one network');
});
