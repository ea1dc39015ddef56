/**
 * 04 · Parameters as the number of modalities M grows.
 *
 * A dedicated family trains one network per non-empty subset: 2^M − 1 of
 * them. LARGO keeps one set of CP factors per inner layer at the Eq. 3 rank,
 * so its inner layers cost what one network's cost; only the small per-subset
 * stems, heads, norm affines and biases grow with K. Counts come from the
 * layer formulas (nothing is allocated), for an nnU-Net-sized 3-D U-Net
 * (32 base features, 5 stages, 3 output regions); one small network is built
 * to show that the formulas count what the layers hold.
 *
 * Run: npx tsx examples/04-params-vs-m.ts   (writes docs/figures/params-vs-m.svg; --figures DIR elsewhere)
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildSegmentationFamily, lineChartSvg, numSubsets, paramCount, unetParamCounts, type Method } from 'largo';

const outIdx = process.argv.indexOf('--figures');
const outDir = outIdx > 0 ? process.argv[outIdx + 1]! : 'docs/figures';

// #region table
const unet = { classes: 3, baseFeatures: 32, depth: 5 };
const methods: [Method, string][] = [['full-only', 'one network'], ['largo', 'LARGO'], ['dedicated', 'dedicated family']];
const millions = (n: number) => (n / 1e6).toFixed(2).padStart(8);
console.log('  M   K   one network      LARGO   dedicated   LARGO / one   dedicated / one');
const series = methods.map(([, name]) => ({ name, points: [] as [number, number][] }));
for (let M = 2; M <= 6; M++) {
  const counts = methods.map(([m]) => unetParamCounts({ ...unet, modalities: M }, m).total);
  counts.forEach((c, j) => series[j]!.points.push([M, c / 1e6]));
  const [one, largo, ded] = counts as [number, number, number];
  console.log(`  ${M}  ${String(numSubsets(M)).padStart(2)}  ${millions(one)} M ${millions(largo)} M ${millions(ded)} M  ${(largo / one).toFixed(3).padStart(11)}   ${(ded / one).toFixed(1).padStart(15)}`);
}
// #endregion table

// #region check
const tiny = { modalities: 3, classes: 2, baseFeatures: 4, depth: 3 };
for (const [m, name] of methods) {
  const net = buildSegmentationFamily({ ...tiny, method: m });
  console.log(`built ${name} (M = 3, 4 base features): ${paramCount(net)} parameters, formula ${unetParamCounts(tiny, m).total}`);
  net.dispose();
}
// #endregion check

mkdirSync(outDir, { recursive: true });
writeFileSync(join(outDir, 'params-vs-m.svg'), lineChartSvg(series, {
  title: 'parameters of a 3-D U-Net (32 base features, 5 stages)', xLabel: 'number of modalities M', yLabel: 'parameters (millions, log scale)', logY: true, xMin: 2, xMax: 6, yMin: 1, yMax: 3.2,
}));
console.log(`wrote ${join(outDir, 'params-vs-m.svg')}`);
