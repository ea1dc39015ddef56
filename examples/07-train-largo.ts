/**
 * 07 · Training LARGO on a tiny phantom and evaluating every subset.
 *
 * The synthetic phantom has M = 4 modalities (K = 15 subsets) and three nested
 * regions (WT ⊃ TC ⊃ ET, as in BraTS); each modality shows some regions and not
 * others, so which subsets are available matters. We train LARGO with the Eq. 5
 * loss, then segment every test case with every one of the 15 subsets. This is
 * `largo train` (docs/cli.md) at a toy size, called from code.
 *
 * Run: npx tsx examples/07-train-largo.ts
 *   writes the run to runs/example-07/ (--run DIR elsewhere; its checkpoint feeds example 09)
 *   and the per-subset Dice figure to docs/figures/dice-per-subset.svg (--figures DIR elsewhere);
 *   --small: an 8³ phantom and 6 steps, a smoke test of the whole path (figure in runs/small/figures);
 *   --results RUN/results.json: no training, tabulate and plot a finished run instead
 *   (`npm start`, the main job: LARGO against modality dropout) as dice-main-job.svg.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cellKey, lineChartSvg, overallAverage, resolveConfig, runExperiment, summarize, toMarkdown, type ResultsTable } from 'largo';

const arg = (name: string, dflt: string) => { const i = process.argv.indexOf(name); return i > 0 ? process.argv[i + 1]! : dflt; };
const small = process.argv.includes('--small'), results = arg('--results', '');
const runDir = arg('--run', 'runs/example-07'), outDir = arg('--figures', small ? 'runs/small/figures' : 'docs/figures');

// #region config
const cfg = resolveConfig({
  dataset: 'phantom', seed: 0, methods: ['largo'],
  data: { split: [0.5, 0.17, 0.33], phantom: { cases: 6, size: small ? 8 : 12, modalities: 4 } },
  model: { baseFeatures: small ? 2 : 4, depth: small ? 2 : 3, convsPerStage: 1, deepSupervision: true },
  train: {
    steps: small ? 6 : 300, batchSize: 2, patchSize: small ? [8, 8, 8] : [12, 12, 12], optimizer: 'sgd', lr: 0.05, momentum: 0.99,
    nesterov: true, schedule: 'poly', clipGradNorm: 12, valEvery: small ? 3 : 100, valCases: 1,
    fullGuidance: true, subsetPerSample: true, syncSubsetInit: true, unusedGrads: 'zero',
  },
  eval: { hd95: false, figureCases: 0 },
}, {});
// #endregion config

// #region run
let table: ResultsTable;
if (results) {
  table = JSON.parse(readFileSync(results, 'utf8')) as ResultsTable;   // results.json holds the table and its records
} else {
  rmSync(runDir, { recursive: true, force: true });        // a fresh run each time (no resume)
  table = (await runExperiment(cfg, { runDir, stream: { write: () => true }, log: () => {} })).table!;
  console.log(`trained ${cfg.train.steps} steps; ${table.records.length} evaluations (test case × subset)`);
}
console.log(toMarkdown(table));
for (const m of table.methods) console.log(`${m}: Dice averaged over regions and subsets ${(100 * overallAverage(table, m)).toFixed(2)}`);
// #endregion run

// #region figure
const cells = summarize(table);
const series = table.methods.flatMap((m) => table.groups.map((g, gi) => ({
  name: table.methods.length > 1 ? `${m} ${g}` : g,
  points: table.subsets.map((s): [number, number] => [s.index, cells.get(cellKey(m, s.index, gi))!.value.mean]),
})));
const name = results ? 'dice-main-job.svg' : 'dice-per-subset.svg';
mkdirSync(outDir, { recursive: true });
writeFileSync(join(outDir, name), lineChartSvg(series, {
  title: `Dice on every subset (${table.title.replace(/:.*/, '')}, ${table.methods.join(' and ')})`, width: 760,
  xLabel: 'subset k (0–3: one modality, 4–9: two, 10–13: three, 14: all)', yLabel: 'Dice', yMin: 0, yMax: 1,
}));
console.log(`wrote ${join(outDir, name)}`);
// #endregion figure
