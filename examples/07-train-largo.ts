/**
 * 07 · Training LARGO on a tiny phantom and evaluating every subset.
 *
 * The synthetic phantom has M = 4 modalities (K = 15 subsets) and three nested
 * regions (WT ⊃ TC ⊃ ET, as in BraTS); each modality shows some regions and not
 * others, so which subsets are available matters. We train LARGO and the
 * modality-dropout baseline (one shared network on zero-filled inputs) with the
 * Eq. 5 loss, then segment every test case with every one of the 15 subsets.
 * This is `largo train` (docs/cli.md) at a toy size, called from code.
 *
 * Run: npx tsx examples/07-train-largo.ts
 *   writes the run to runs/example-07/ (--run DIR elsewhere; checkpoints for example 09)
 *   and the per-subset Dice figure to docs/figures/dice-per-subset.svg (--out DIR elsewhere)
 *   --small: an 8³ phantom and 6 steps, a smoke test of the whole path
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cellKey, lineChartSvg, resolveConfig, runExperiment, subsetName, summarize } from 'largo';

const arg = (name: string, dflt: string) => { const i = process.argv.indexOf(name); return i > 0 ? process.argv[i + 1]! : dflt; };
const small = process.argv.includes('--small');
const runDir = arg('--run', 'runs/example-07'), outDir = arg('--out', 'docs/figures');

// #region config
const cfg = resolveConfig({
  dataset: 'phantom', seed: 0, methods: ['largo', 'dropout'],
  data: { split: [0.5, 0.17, 0.33], phantom: { cases: 6, size: small ? 8 : 12, modalities: 4 } },
  model: { baseFeatures: small ? 2 : 4, depth: small ? 2 : 3, convsPerStage: 1, deepSupervision: true },
  train: {
    steps: small ? 6 : 200, batchSize: 2, patchSize: small ? [8, 8, 8] : [12, 12, 12], optimizer: 'sgd', lr: 0.05, momentum: 0.99,
    nesterov: true, schedule: 'poly', clipGradNorm: 12, valEvery: small ? 3 : 100, valCases: 1,
    fullGuidance: true, subsetPerSample: true, syncSubsetInit: true, unusedGrads: 'zero',
  },
  eval: { hd95: false, figureCases: 0 },
}, {});
// #endregion config

// #region run
rmSync(runDir, { recursive: true, force: true });        // a fresh run each time (no resume)
const result = await runExperiment(cfg, { runDir, stream: { write: () => true }, log: () => {} });
const table = result.table!;
console.log(`${cfg.train.steps} steps per method; ${table.records.length / cfg.methods.length} (case, subset) evaluations per method`);
console.log(result.markdown);
for (const [m, v] of Object.entries(result.averages)) console.log(`average Dice over regions and subsets, ${m}: ${(100 * v).toFixed(2)}`);
// #endregion run

// #region figure
const cells = summarize(table);
const series = table.methods.map((m) => ({
  name: m, points: table.subsets.map((s): [number, number] => [s.index, cells.get(cellKey(m, s.index, 0))!.value.mean]),
}));
mkdirSync(outDir, { recursive: true });
writeFileSync(join(outDir, 'dice-per-subset.svg'), lineChartSvg(series, {
  title: `WT Dice per subset (k: ${table.subsets.map((s) => subsetName(s.index, table.modalities)).slice(0, 4).join(', ')}, …, all)`,
  xLabel: 'subset k (0–3 one modality, 4–9 two, 10–13 three, 14 all)', yLabel: 'Dice (whole tumour)', yMin: 0, yMax: 1, width: 760,
}));
console.log(`wrote ${join(outDir, 'dice-per-subset.svg')}; run folder ${runDir}`);
// #endregion figure
