/**
 * Training curves as standalone SVG: loss and validation Dice (or accuracy)
 * against steps, one line per method.
 */

export interface Series {
  name: string;
  points: [number, number][];
}

export interface ChartOptions {
  title: string;
  xLabel?: string;
  yLabel?: string;
  width?: number;
  height?: number;
  /** log-scale y (losses) */
  logY?: boolean;
  /** y range; with logY in decades (log10 of the value) */
  yMin?: number;
  yMax?: number;
  /** x range (default: the data's, widened to include 0) */
  xMin?: number;
  xMax?: number;
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f'];

export function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

export function niceTicks(lo: number, hi: number, n = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9 * step; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

/** One line chart as an SVG document. */
export function lineChartSvg(series: Series[], o: ChartOptions): string {
  const W = o.width ?? 640,
    H = o.height ?? 400;
  const m = { l: 64, r: 150, t: 36, b: 48 };
  const pw = W - m.l - m.r,
    ph = H - m.t - m.b;
  const pts = series
    .flatMap((s) => s.points)
    .filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y) && (!o.logY || y > 0));
  let x0 = o.xMin ?? Math.min(...pts.map((p) => p[0]), 0),
    x1 = o.xMax ?? Math.max(...pts.map((p) => p[0]), 1);
  if (x1 === x0) x1 = x0 + 1;
  const ty = (y: number) => (o.logY ? Math.log10(y) : y);
  let y0 = o.yMin ?? Math.min(...pts.map((p) => ty(p[1]))),
    y1 = o.yMax ?? Math.max(...pts.map((p) => ty(p[1])));
  if (!Number.isFinite(y0) || !Number.isFinite(y1)) {
    y0 = 0;
    y1 = 1;
  }
  if (y1 === y0) {
    y0 -= 0.5;
    y1 += 0.5;
  }
  const sx = (x: number) => m.l + ((x - x0) / (x1 - x0)) * pw;
  const sy = (y: number) => m.t + ph - ((ty(y) - y0) / (y1 - y0)) * ph;
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
  );
  parts.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  parts.push(`<text x="${m.l + pw / 2}" y="20" text-anchor="middle" font-size="14">${esc(o.title)}</text>`);
  parts.push(`<rect x="${m.l}" y="${m.t}" width="${pw}" height="${ph}" fill="none" stroke="#333"/>`);
  for (const xv of niceTicks(x0, x1)) {
    const x = sx(xv).toFixed(1);
    parts.push(
      `<line x1="${x}" y1="${m.t}" x2="${x}" y2="${m.t + ph}" stroke="#eee"/><text x="${x}" y="${m.t + ph + 16}" text-anchor="middle">${xv}</text>`,
    );
  }
  // a log axis spanning a decade or more gets ticks at whole decades only (no "1e2.5")
  const decades = niceTicks(Math.ceil(y0), Math.floor(y1), Math.max(1, Math.floor(y1) - Math.ceil(y0))).filter(
    Number.isInteger,
  );
  for (const yv of o.logY && decades.length >= 2 ? decades : niceTicks(y0, y1)) {
    const y = (m.t + ph - ((yv - y0) / (y1 - y0)) * ph).toFixed(1);
    const label = o.logY ? (Number.isInteger(yv) && yv >= 0 && yv <= 6 ? String(10 ** yv) : `1e${yv}`) : String(yv);
    parts.push(
      `<line x1="${m.l}" y1="${y}" x2="${m.l + pw}" y2="${y}" stroke="#eee"/><text x="${m.l - 6}" y="${y}" text-anchor="end" dominant-baseline="middle">${label}</text>`,
    );
  }
  if (o.xLabel) parts.push(`<text x="${m.l + pw / 2}" y="${H - 10}" text-anchor="middle">${esc(o.xLabel)}</text>`);
  if (o.yLabel)
    parts.push(
      `<text x="16" y="${m.t + ph / 2}" text-anchor="middle" transform="rotate(-90 16 ${m.t + ph / 2})">${esc(o.yLabel)}</text>`,
    );
  series.forEach((s, i) => {
    const c = COLORS[i % COLORS.length]!;
    const ok = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y) && (!o.logY || y > 0));
    if (ok.length) {
      const d = ok.map(([x, y], j) => `${j ? 'L' : 'M'}${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join('');
      parts.push(`<path d="${d}" fill="none" stroke="${c}" stroke-width="1.5"/>`);
      if (ok.length <= 50)
        for (const [x, y] of ok)
          parts.push(`<circle cx="${sx(x).toFixed(1)}" cy="${sy(y).toFixed(1)}" r="2.5" fill="${c}"/>`);
    }
    const ly = m.t + 12 + i * 18;
    parts.push(
      `<line x1="${m.l + pw + 12}" y1="${ly}" x2="${m.l + pw + 32}" y2="${ly}" stroke="${c}" stroke-width="2"/><text x="${m.l + pw + 38}" y="${ly}" dominant-baseline="middle">${esc(s.name)}</text>`,
    );
  });
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}

/** Moving average over a window (for noisy per-step losses). */
export function smooth(points: [number, number][], window: number): [number, number][] {
  if (window <= 1) return points;
  const out: [number, number][] = [];
  let s = 0;
  for (let i = 0; i < points.length; i++) {
    s += points[i]![1];
    if (i >= window) s -= points[i - window]![1];
    out.push([points[i]![0], s / Math.min(i + 1, window)]);
  }
  return out;
}
