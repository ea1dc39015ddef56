/**
 * Result tables shaped like the paper's: one row per modality subset with
 * ●/○ availability per modality, one column per (region, method), and an
 * Average row. Markdown for reading, CSV and JSON for machines.
 */

export interface Stat {
  mean: number;
  std: number;
  n: number;
}

/** One evaluation record: a method on one subset of one case. */
export interface CaseRecord {
  method: string;
  /** subset index (the model family's numbering) */
  subset: number;
  caseId: string;
  /** one value per group (region Dice, or accuracy) */
  values: number[];
  /** optional secondary metric per group (HD95 in mm) */
  hd95?: number[];
}

export interface ResultsTable {
  title: string;
  /** modality names (column headers of the availability block) */
  modalities: string[];
  /** per subset row: availability of each modality */
  subsets: { index: number; available: boolean[] }[];
  /** regions (segmentation) or ['Accuracy'] */
  groups: string[];
  methods: string[];
  /** metric name of `values` ('Dice', 'Accuracy') */
  metric: string;
  records: CaseRecord[];
}

export interface SummaryCell {
  value: Stat;
  hd95?: Stat;
}

/** mean ± std (population) per (method, subset, group) over cases. */
export function summarize(t: ResultsTable): Map<string, SummaryCell> {
  const acc = new Map<string, { v: number[]; h: number[] }>();
  for (const r of t.records) {
    r.values.forEach((v, g) => {
      const k = cellKey(r.method, r.subset, g);
      let e = acc.get(k);
      if (!e) acc.set(k, (e = { v: [], h: [] }));
      e.v.push(v);
      if (r.hd95 && Number.isFinite(r.hd95[g]!)) e.h.push(r.hd95[g]!);
    });
  }
  const out = new Map<string, SummaryCell>();
  for (const [k, e] of acc) out.set(k, { value: stat(e.v), hd95: e.h.length ? stat(e.h) : undefined });
  return out;
}

export function cellKey(method: string, subset: number, group: number): string {
  return `${method}\u0000${subset}\u0000${group}`;
}

function stat(xs: number[]): Stat {
  const n = xs.length;
  if (n === 0) return { mean: NaN, std: NaN, n: 0 };
  const mean = xs.reduce((a, b) => a + b, 0) / n;
  const std = Math.sqrt(xs.reduce((a, b) => a + (b - mean) * (b - mean), 0) / n);
  return { mean, std, n };
}

/** Average over subsets of each (method, group) subset mean; std is over subsets' means. */
export function averages(t: ResultsTable, cells = summarize(t)): Map<string, Stat> {
  const out = new Map<string, Stat>();
  for (const m of t.methods) {
    for (let g = 0; g < t.groups.length; g++) {
      const xs = t.subsets
        .map((s) => cells.get(cellKey(m, s.index, g))?.value.mean)
        .filter((v): v is number => v !== undefined && Number.isFinite(v));
      out.set(`${m}\u0000${g}`, stat(xs));
    }
  }
  return out;
}

/** The overall average of one method (mean over subsets and groups), as in the paper's "Avg Dice". */
export function overallAverage(t: ResultsTable, method: string, cells = summarize(t)): number {
  const avg = averages(t, cells);
  const xs = t.groups.map((_, g) => avg.get(`${method}\u0000${g}`)!.mean);
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

export interface MarkdownOptions {
  /** multiply values (100 for percent; default 100) */
  scale?: number;
  digits?: number;
  /** append ± std to each cell (default false: the paper shows means) */
  showStd?: boolean;
  /** bold the best method per (row, group) (default true when there are ≥ 2 methods) */
  bold?: boolean;
  /** short modality labels for the header (default: the names) */
  modalityLabels?: string[];
}

/** The paper-style markdown table. */
export function toMarkdown(t: ResultsTable, o: MarkdownOptions = {}): string {
  const scale = o.scale ?? 100,
    digits = o.digits ?? 2;
  const bold = o.bold ?? t.methods.length > 1;
  const cells = summarize(t);
  const avg = averages(t, cells);
  const labels = o.modalityLabels ?? t.modalities;
  const header = [...labels, ...t.groups.flatMap((g) => t.methods.map((m) => (t.groups.length > 1 ? `${g} ${m}` : m)))];
  const lines: string[] = [];
  const nc = countCases(t);
  if (t.title)
    lines.push(
      `**${t.title}** (${t.metric}${scale === 100 ? ', %' : ''}${nc > 1 ? `; mean over ${nc} cases` : ''})`,
      '',
    );
  lines.push(`| ${header.join(' | ')} |`);
  lines.push(`|${header.map((_, i) => (i < labels.length ? ':-:' : '--:')).join('|')}|`);
  const fmt = (s: Stat | undefined, best: boolean): string => {
    if (!s || !Number.isFinite(s.mean)) return '–';
    let v = (s.mean * scale).toFixed(digits);
    if (o.showStd) v += ` ± ${(s.std * scale).toFixed(digits)}`;
    return best ? `**${v}**` : v;
  };
  const row = (lead: string[], get: (m: string, g: number) => Stat | undefined): string => {
    const cols = [...lead];
    for (let g = 0; g < t.groups.length; g++) {
      const vals = t.methods.map((m) => get(m, g));
      const best = Math.max(
        ...vals.map((v) => (v && Number.isFinite(v.mean) ? round(v.mean * scale, digits) : -Infinity)),
      );
      for (const v of vals)
        cols.push(fmt(v, bold && v !== undefined && Number.isFinite(v.mean) && round(v.mean * scale, digits) === best));
    }
    return `| ${cols.join(' | ')} |`;
  };
  for (const s of t.subsets)
    lines.push(
      row(
        s.available.map((a) => (a ? '●' : '○')),
        (m, g) => cells.get(cellKey(m, s.index, g))?.value,
      ),
    );
  const avgLead = labels.map((_, i) => (i === 0 ? 'Average' : ''));
  lines.push(row(avgLead, (m, g) => avg.get(`${m}\u0000${g}`)));
  return lines.join('\n') + '\n';
}

function round(v: number, digits: number): number {
  return Number(v.toFixed(digits));
}

function countCases(t: ResultsTable): number {
  return new Set(t.records.map((r) => r.caseId)).size;
}

/** Long-format CSV of the summary: method, subset, modalities, group, metric, mean, std, n (+ hd95). */
export function toCsv(t: ResultsTable): string {
  const cells = summarize(t);
  const out = ['method,subset,modalities,group,metric,mean,std,n,hd95_mean,hd95_std'];
  for (const m of t.methods) {
    for (const s of t.subsets) {
      const mods = t.modalities.filter((_, i) => s.available[i]).join('+');
      t.groups.forEach((g, gi) => {
        const c = cells.get(cellKey(m, s.index, gi));
        if (!c) return;
        out.push(
          [
            csv(m),
            s.index,
            csv(mods),
            csv(g),
            csv(t.metric),
            num(c.value.mean),
            num(c.value.std),
            c.value.n,
            num(c.hd95?.mean),
            num(c.hd95?.std),
          ].join(','),
        );
      });
    }
  }
  return out.join('\n') + '\n';
}

/** Per-case CSV: method, subset, case, then one column per group (and HD95 per group when present). */
export function toCaseCsv(t: ResultsTable): string {
  const hasHd = t.records.some((r) => r.hd95);
  const head = [
    'method',
    'subset',
    'modalities',
    'case',
    ...t.groups.map((g) => `${g}_${t.metric}`),
    ...(hasHd ? t.groups.map((g) => `${g}_hd95`) : []),
  ];
  const out = [head.map(csv).join(',')];
  for (const r of t.records) {
    const s = t.subsets.find((q) => q.index === r.subset);
    const mods = s ? t.modalities.filter((_, i) => s.available[i]).join('+') : '';
    out.push(
      [
        csv(r.method),
        r.subset,
        csv(mods),
        csv(r.caseId),
        ...r.values.map(num),
        ...(hasHd ? t.groups.map((_, g) => num(r.hd95?.[g])) : []),
      ].join(','),
    );
  }
  return out.join('\n') + '\n';
}

/** A JSON-ready object: the table spec, per-case records, summary and averages. */
export function toJson(t: ResultsTable): unknown {
  const cells = summarize(t);
  const avg = averages(t, cells);
  return {
    title: t.title,
    metric: t.metric,
    modalities: t.modalities,
    groups: t.groups,
    methods: t.methods,
    subsets: t.subsets,
    summary: t.methods.map((m) => ({
      method: m,
      overall: overallAverage(t, m, cells),
      average: t.groups.map((g, gi) => ({ group: g, ...avg.get(`${m}\u0000${gi}`)! })),
      subsets: t.subsets.map((s) => ({
        subset: s.index,
        modalities: t.modalities.filter((_, i) => s.available[i]),
        groups: t.groups.map((g, gi) => ({ group: g, ...cells.get(cellKey(m, s.index, gi)) })),
      })),
    })),
    records: t.records,
  };
}

function csv(s: string): string {
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}
function num(v: number | undefined): string {
  return v === undefined || Number.isNaN(v) ? '' : String(Number(v.toPrecision(8)));
}
