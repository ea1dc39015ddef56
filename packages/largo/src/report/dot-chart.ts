/**
 * An experiment's spread as a standalone SVG dot plot: one row per
 * (setting, variant), every seed's average as a dot, the mean as a bar with
 * ± one standard deviation, so a reader sees at once whether two rows differ
 * by more than the seeds scatter.
 */
import { esc, niceTicks } from './curves.js';

export interface DotRow {
  label: string;
  /** one value per seed (the metric, in the unit shown) */
  values: number[];
}

export interface DotChartOptions {
  title: string;
  xLabel: string;
  width?: number;
}

export function dotChartSvg(rows: DotRow[], o: DotChartOptions): string {
  const W = o.width ?? 640,
    rowH = 24,
    left = 170,
    right = 20,
    top = 40,
    bottom = 44;
  const H = top + bottom + rowH * Math.max(1, rows.length);
  const all = rows.flatMap((r) => r.values).filter(Number.isFinite);
  let lo = all.length ? Math.min(...all) : 0,
    hi = all.length ? Math.max(...all) : 1;
  const pad = Math.max(1e-9, (hi - lo) * 0.05);
  lo -= pad;
  hi += pad;
  const ticks = niceTicks(lo, hi, 6);
  lo = Math.min(lo, ticks[0]!);
  hi = Math.max(hi, ticks[ticks.length - 1]!);
  const x = (v: number) => left + ((v - lo) / (hi - lo)) * (W - left - right);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="20" text-anchor="middle" font-size="14">${esc(o.title)}</text>`,
  ];
  for (const t of ticks) {
    const tx = x(t).toFixed(1);
    out.push(
      `<line x1="${tx}" y1="${top - 6}" x2="${tx}" y2="${H - bottom}" stroke="#e5e5e5"/>`,
      `<text x="${tx}" y="${H - bottom + 16}" text-anchor="middle">${t}</text>`,
    );
  }
  out.push(`<text x="${(left + W - right) / 2}" y="${H - 8}" text-anchor="middle">${esc(o.xLabel)}</text>`);
  rows.forEach((r, i) => {
    const cy = top + rowH * i + rowH / 2;
    out.push(`<text x="${left - 8}" y="${cy + 4}" text-anchor="end">${esc(r.label)}</text>`);
    const v = r.values.filter(Number.isFinite);
    if (v.length === 0) return;
    const m = v.reduce((a, b) => a + b, 0) / v.length;
    const sd = v.length > 1 ? Math.sqrt(v.reduce((a, b) => a + (b - m) ** 2, 0) / (v.length - 1)) : 0;
    out.push(
      `<line x1="${x(m - sd).toFixed(1)}" y1="${cy}" x2="${x(m + sd).toFixed(1)}" y2="${cy}" stroke="#1f77b4" stroke-width="3" opacity="0.5"/>`,
      `<line class="mean" x1="${x(m).toFixed(1)}" y1="${cy - 8}" x2="${x(m).toFixed(1)}" y2="${cy + 8}" stroke="#1f77b4" stroke-width="2"/>`,
    );
    for (const s of v)
      out.push(`<circle class="seed" cx="${x(s).toFixed(1)}" cy="${cy}" r="3.5" fill="#333" opacity="0.7"/>`);
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}
