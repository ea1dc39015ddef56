/**
 * Summarizes an experiment grid from its cell folders: mean ± std over seeds
 * per (setting, variant), per-subset tables, and paired comparisons between
 * variants (per seed, and pooled over seed × case × subset). Cells may come
 * from several folders (the shards of one grid run on different machines);
 * the summary of merged shards equals the summary of one run.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CaseRecord } from '../report/table.js';
import { readCellRecord, type CellRecord } from './runner.js';
import { cells, settingRuns, type ExperimentSpec } from './spec.js';
import { dotChartSvg } from '../report/dot-chart.js';
import { fmtCi, fmtP, fmtSpread, pairedTest, spread, type PairedTest, type Spread } from './stats.js';

interface CellResults {
  record: CellRecord;
  groups: string[];
  modalities: string[];
  subsets: { index: number; available: boolean[] }[];
  records: CaseRecord[];
  metric: string;
}

export interface VariantSummary {
  setting: string;
  variant: string;
  method: string;
  seeds: number[];
  /** per group, then 'avg': spread over seeds of the seed's mean over test cases × subsets */
  dice: Record<string, Spread>;
  /** each seed's average (over test cases × subsets × groups), in the order of `seeds` */
  seedAvg: number[];
  hd95: Record<string, Spread> | null;
  /** per subset index: spread over seeds of the mean over cases and groups */
  perSubset: Spread[];
  params: number;
  msPerStep: Spread;
}

export interface PairSummary {
  setting: string;
  a: string;
  b: string;
  /** seed-level: per seed the difference of average Dice */
  seeds: PairedTest;
  /** pooled over (seed, case, subset): the average Dice over groups */
  pooled: PairedTest;
}

export interface ExperimentSummary {
  name: string;
  file: string;
  metric: string;
  groups: string[];
  modalities: string[];
  subsets: { index: number; available: boolean[] }[];
  variants: VariantSummary[];
  pairs: PairSummary[];
  missing: string[];
  cellsFound: number;
  cellsTotal: number;
  checkpoint: string;
  notes: string;
  /** whether a cell's records are per test case (segmentation) or one per subset over all cases (classification accuracy) */
  perCase: boolean;
}

/** Reads every finished cell of `spec` from the given experiment folders (later folders may not contradict earlier ones). */
export function collectCells(spec: ExperimentSpec, dirs: string[]): Map<string, CellResults> {
  const out = new Map<string, CellResults>();
  for (const root of dirs) {
    const cdir = existsSync(join(root, 'cells')) ? join(root, 'cells') : root;
    if (!existsSync(cdir)) throw new Error(`${root}: no such experiment folder`);
    for (const name of readdirSync(cdir)) {
      const rec = readCellRecord(join(cdir, name));
      if (!rec) continue;
      if (rec.experiment !== spec.name)
        throw new Error(`${join(cdir, name)}: belongs to experiment '${rec.experiment}', not '${spec.name}'`);
      const resFile = join(cdir, name, 'results.json');
      if (!existsSync(resFile)) throw new Error(`${resFile}: missing (the cell finished without an evaluation)`);
      const res = JSON.parse(readFileSync(resFile, 'utf8')) as {
        groups: string[];
        modalities: string[];
        subsets: CellResults['subsets'];
        records: CaseRecord[];
        metric: string;
        hd95?: { records: CaseRecord[] };
      };
      const records = res.records.map((r, i) => ({ ...r, hd95: res.hd95?.records[i]?.values }));
      const prev = out.get(rec.cell.id);
      const cur: CellResults = {
        record: rec,
        groups: res.groups,
        modalities: res.modalities,
        subsets: res.subsets,
        records,
        metric: res.metric,
      };
      if (prev && JSON.stringify(prev.records) !== JSON.stringify(cur.records))
        throw new Error(`cell ${rec.cell.id} appears in two folders with different results (${root})`);
      out.set(rec.cell.id, cur);
    }
  }
  return out;
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

export function summarizeExperiment(spec: ExperimentSpec, dirs: string[]): ExperimentSummary {
  const found = collectCells(spec, dirs);
  const all = cells(spec);
  const missing = all.filter((c) => !found.has(c.id)).map((c) => c.id);
  const any = [...found.values()][0];
  const groups = any?.groups ?? [];
  const subsets = any?.subsets ?? [];
  const variants: VariantSummary[] = [];
  // per (setting, variant, seed): the per-(case, subset) average over groups, keyed for pairing
  const pairKeyed = new Map<string, Map<string, number>>();
  for (const s of spec.settings)
    for (const v of spec.variants.filter((x) => settingRuns(s, x.name))) {
      const mine = all.filter((c) => c.setting === s.name && c.variant === v.name && found.has(c.id));
      const per = mine.map((c) => found.get(c.id)!);
      const dice: Record<string, Spread> = {};
      const hdAcc: Record<string, number[]> = {};
      groups.forEach((g, gi) => {
        dice[g] = spread(per.map((p) => mean(p.records.map((r) => r.values[gi]!))));
        const h = per.map((p) => mean(p.records.map((r) => r.hd95?.[gi] ?? NaN).filter(Number.isFinite)));
        hdAcc[g] = h;
      });
      const seedAvg = per.map((p) => mean(p.records.map((r) => mean(r.values))));
      dice['avg'] = spread(seedAvg);
      const hasHd = per.length > 0 && per.every((p) => p.records.some((r) => r.hd95));
      const hd95 = hasHd
        ? Object.fromEntries([
            ...groups.map((g) => [g, spread(hdAcc[g]!)] as const),
            [
              'avg',
              spread(
                per.map((p) =>
                  mean(groups.map((_, gi) => mean(p.records.map((r) => r.hd95?.[gi] ?? NaN).filter(Number.isFinite)))),
                ),
              ),
            ] as const,
          ])
        : null;
      const perSubset = subsets.map((sub) =>
        spread(per.map((p) => mean(p.records.filter((r) => r.subset === sub.index).map((r) => mean(r.values))))),
      );
      mine.forEach((c, i) => {
        const m = new Map<string, number>();
        for (const r of per[i]!.records) m.set(`${r.caseId}\u0000${r.subset}`, mean(r.values));
        pairKeyed.set(`${s.name}\u0000${v.name}\u0000${c.seed}`, m);
      });
      variants.push({
        setting: s.name,
        variant: v.name,
        method: v.method,
        seeds: mine.map((c) => c.seed),
        dice,
        seedAvg,
        hd95,
        perSubset,
        params: per[0]?.record.params ?? 0,
        msPerStep: spread(per.map((p) => (1000 * p.record.trainSeconds) / Math.max(1, p.record.steps))),
      });
    }
  const pairs: PairSummary[] = [];
  for (const s of spec.settings)
    for (const [a, b] of spec.compare.filter(([a, b]) => settingRuns(s, a) && settingRuns(s, b))) {
      const seedA: number[] = [],
        seedB: number[] = [],
        poolA: number[] = [],
        poolB: number[] = [];
      for (const seed of spec.seeds) {
        const ma = pairKeyed.get(`${s.name}\u0000${a}\u0000${seed}`),
          mb = pairKeyed.get(`${s.name}\u0000${b}\u0000${seed}`);
        if (!ma || !mb) continue;
        const keys = [...ma.keys()].filter((k) => mb.has(k)).sort();
        seedA.push(mean(keys.map((k) => ma.get(k)!)));
        seedB.push(mean(keys.map((k) => mb.get(k)!)));
        for (const k of keys) {
          poolA.push(ma.get(k)!);
          poolB.push(mb.get(k)!);
        }
      }
      pairs.push({ setting: s.name, a, b, seeds: pairedTest(seedA, seedB), pooled: pairedTest(poolA, poolB) });
    }
  const firstCfg = any?.record.config as { eval?: { checkpoint?: string } } | undefined;
  return {
    name: spec.name,
    file: spec.file,
    metric: any?.metric ?? 'Dice',
    groups,
    modalities: any?.modalities ?? [],
    subsets,
    variants,
    pairs,
    missing,
    cellsFound: found.size,
    cellsTotal: all.length,
    perCase: [...found.values()].some((c) => new Set(c.records.map((r) => r.caseId)).size > 1),
    checkpoint: firstCfg?.eval?.checkpoint === 'best' ? 'best validation checkpoint' : 'last checkpoint',
    notes: spec.notes,
  };
}

/** The summary as markdown. `timings: false` leaves out wall-clock columns (they differ between machines and runs). */
export function summaryMarkdown(s: ExperimentSummary, o: { timings?: boolean; command?: string } = {}): string {
  const timings = o.timings ?? true;
  const L: string[] = [];
  const pct = s.metric === 'Accuracy' || s.metric === 'Dice';
  L.push(`### ${s.name}`, '');
  if (o.command) L.push(`Command: \`${o.command}\``, '');
  L.push(
    `${s.cellsFound} of ${s.cellsTotal} cells; ${s.metric} on the test split (mean ± sample std over seeds; each seed's value is the mean over test cases × modality subsets); evaluated: ${s.checkpoint}.`,
  );
  if (s.missing.length) L.push('', `Missing cells: ${s.missing.join(', ')}`);
  L.push('');
  const settings = [...new Set(s.variants.map((v) => v.setting))];
  const hdAny = s.variants.some((v) => v.hd95);
  if (settings.length > 1) {
    // One row per (setting, variant) first, so a sweep reads as a trend; the per-setting tables follow.
    const head = ['setting', 'variant', 'seeds', ...s.groups, 'avg', 'avg 95% CI'];
    if (hdAny) head.push('HD95 avg (mm)');
    head.push('params');
    if (timings) head.push('ms/step (incl. validation)');
    L.push(`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`);
    for (const v of s.variants) {
      const row = [
        v.setting,
        v.variant,
        String(v.seeds.length),
        ...s.groups.map((g) => fmtSpread(v.dice[g]!, pct ? 100 : 1)),
        fmtSpread(v.dice['avg']!, pct ? 100 : 1),
        fmtCi(v.dice['avg']!, pct ? 100 : 1),
      ];
      if (hdAny) row.push(v.hd95 ? fmtSpread(v.hd95['avg']!, 1) : '—');
      row.push(v.params.toLocaleString('en-US'));
      if (timings) row.push(fmtSpread(v.msPerStep, 1, 0));
      L.push(`| ${row.join(' | ')} |`);
    }
    L.push('');
  }
  for (const st of settings) {
    const vs = s.variants.filter((v) => v.setting === st);
    if (settings.length > 1) L.push(`**setting ${st}**`, '');
    const head = ['variant', 'method', 'seeds', ...s.groups.map((g) => `${g}`), 'avg', 'avg 95% CI'];
    const hasHd = vs.some((v) => v.hd95);
    if (hasHd) head.push('HD95 avg (mm)');
    head.push('params');
    if (timings) head.push('ms/step (incl. validation)');
    L.push(`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`);
    for (const v of vs) {
      const row = [
        v.variant,
        v.method,
        String(v.seeds.length),
        ...s.groups.map((g) => fmtSpread(v.dice[g]!, pct ? 100 : 1)),
        fmtSpread(v.dice['avg']!, pct ? 100 : 1),
        fmtCi(v.dice['avg']!, pct ? 100 : 1),
      ];
      if (hasHd) row.push(v.hd95 ? fmtSpread(v.hd95['avg']!, 1) : '—');
      row.push(v.params.toLocaleString('en-US'));
      if (timings) row.push(fmtSpread(v.msPerStep, 1, 0));
      L.push(`| ${row.join(' | ')} |`);
    }
    L.push('');
    const ps = s.pairs.filter((p) => p.setting === st);
    if (ps.length) {
      L.push(
        '| comparison | seeds won (a/b) | mean diff | Wilcoxon p (seeds) | pooled pairs | wins/losses | Wilcoxon p (pooled) | sign p (pooled) |',
        '|---|---|---|---|---|---|---|---|',
      );
      for (const p of ps) {
        L.push(
          `| ${p.a} − ${p.b} | ${p.seeds.wins}/${p.seeds.losses} | ${Number.isFinite(p.seeds.meanDiff) ? (p.seeds.meanDiff * (pct ? 100 : 1)).toFixed(2) : '—'} | ${fmtP(p.seeds.wilcoxonP)} | ${p.pooled.n + p.pooled.ties} | ${p.pooled.wins}/${p.pooled.losses} | ${fmtP(p.pooled.wilcoxonP)} | ${fmtP(p.pooled.signP)} |`,
        );
      }
      L.push(
        '',
        `Pooled pairs are ${s.perCase ? '(seed, test case, subset) triples' : '(seed, subset) pairs, each subset scored over all test cases'}, not independent samples: read their p-values as a description, the seed-level test as the inference (with 5 seeds its smallest two-sided p is 0.0625).`,
        '',
      );
    }
    if (s.subsets.length > 1 && vs.length) {
      const head2 = [...s.modalities, ...vs.map((v) => v.variant)];
      L.push(`| ${head2.join(' | ')} |`, `|${head2.map(() => '---').join('|')}|`);
      s.subsets.forEach((sub, i) => {
        L.push(
          `| ${[...sub.available.map((a) => (a ? '●' : '○')), ...vs.map((v) => fmtSpread(v.perSubset[i]!, pct ? 100 : 1))].join(' | ')} |`,
        );
      });
      L.push('');
    }
  }
  if (s.notes) L.push(s.notes, '');
  return L.join('\n');
}

/** Every (setting, variant) row's per-seed averages as an SVG dot plot (summary.svg). */
export function summaryChartSvg(s: ExperimentSummary): string {
  const pct = s.metric === 'Accuracy' || s.metric === 'Dice';
  const several = new Set(s.variants.map((v) => v.setting)).size > 1;
  return dotChartSvg(
    s.variants.map((v) => ({
      label: several ? `${v.setting} · ${v.variant}` : v.variant,
      values: v.seedAvg.map((x) => (pct ? 100 * x : x)),
    })),
    {
      title: `${s.name}: average ${s.metric} on the test split, one dot per seed (bar: mean ± std)`,
      xLabel: `${s.metric}${pct ? ' (%)' : ''}`,
    },
  );
}
