/**
 * Small-sample statistics for experiment tables: mean ± sample std, a
 * Student-t 95% interval, and paired tests (Wilcoxon signed-rank, sign test).
 * Exact distributions for the sample sizes experiments have (seeds, cases ×
 * subsets up to a few hundred), so a table's p-values don't depend on an
 * asymptotic approximation at n = 5.
 */

export interface Spread {
  n: number;
  mean: number;
  /** sample standard deviation (n − 1); NaN for n < 2 */
  std: number;
  /** half-width of the two-sided 95% Student-t interval of the mean; NaN for n < 2 */
  ci95: number;
}

export function spread(xs: readonly number[]): Spread {
  const v = xs.filter((x) => Number.isFinite(x));
  const n = v.length;
  if (n === 0) return { n, mean: NaN, std: NaN, ci95: NaN };
  const mean = v.reduce((a, b) => a + b, 0) / n;
  if (n < 2) return { n, mean, std: NaN, ci95: NaN };
  const ss = v.reduce((a, b) => a + (b - mean) * (b - mean), 0);
  const std = Math.sqrt(ss / (n - 1));
  return { n, mean, std, ci95: tQuantile975(n - 1) * (std / Math.sqrt(n)) };
}

/** The 0.975 quantile of Student's t with `df` degrees of freedom (table for small df, then a Cornish–Fisher expansion). */
export function tQuantile975(df: number): number {
  const table = [
    NaN,
    12.7062,
    4.3027,
    3.1824,
    2.7764,
    2.5706,
    2.4469,
    2.3646,
    2.306,
    2.2622,
    2.2281,
    2.201,
    2.1788,
    2.1604,
    2.1448,
    2.1314,
    2.1199,
    2.1098,
    2.1009,
    2.093,
    2.086,
    2.0796,
    2.0739,
    2.0687,
    2.0639,
    2.0595,
    2.0555,
    2.0518,
    2.0484,
    2.0452,
    2.0423,
  ];
  if (df < 1) return NaN;
  if (df < table.length && Number.isInteger(df)) return table[df]!;
  const z = 1.959964;
  const g1 = (z ** 3 + z) / 4;
  const g2 = (5 * z ** 5 + 16 * z ** 3 + 3 * z) / 96;
  const g3 = (3 * z ** 7 + 19 * z ** 5 + 17 * z ** 3 - 15 * z) / 384;
  return z + g1 / df + g2 / df ** 2 + g3 / df ** 3;
}

export interface PairedTest {
  /** pairs used (zero differences dropped, as in Wilcoxon's original test) */
  n: number;
  /** pairs where a > b, and where a < b */
  wins: number;
  losses: number;
  ties: number;
  /** mean of a − b over all pairs */
  meanDiff: number;
  /** two-sided p of the Wilcoxon signed-rank test (exact up to n = 300 with mid-ranks, normal approximation beyond) */
  wilcoxonP: number;
  /** two-sided p of the sign test (exact binomial) */
  signP: number;
}

/** Paired comparison of a and b (same order: a[i] and b[i] are one case, subset and seed). */
export function pairedTest(a: readonly number[], b: readonly number[]): PairedTest {
  if (a.length !== b.length) throw new Error(`pairedTest: ${a.length} vs ${b.length} values (pairs must match)`);
  const all: number[] = [];
  for (let i = 0; i < a.length; i++) {
    const d = a[i]! - b[i]!;
    if (Number.isFinite(d)) all.push(d);
  }
  const meanDiff = all.length ? all.reduce((x, y) => x + y, 0) / all.length : NaN;
  // differences below float noise count as ties
  const d = all.filter((x) => Math.abs(x) > 1e-12);
  const wins = d.filter((x) => x > 0).length;
  const losses = d.length - wins;
  return {
    n: d.length,
    wins,
    losses,
    ties: all.length - d.length,
    meanDiff,
    wilcoxonP: wilcoxonSignedRankP(d),
    signP: signTestP(wins, losses),
  };
}

/** Two-sided exact binomial sign test. */
export function signTestP(wins: number, losses: number): number {
  const n = wins + losses;
  if (n === 0) return 1;
  const k = Math.min(wins, losses);
  // P(X ≤ k) for X ~ Bin(n, 1/2), in log space for large n
  let logC = 0; // log C(n, 0)
  let tail = 0;
  for (let i = 0; i <= k; i++) {
    if (i > 0) logC += Math.log(n - i + 1) - Math.log(i);
    tail += Math.exp(logC - n * Math.LN2);
  }
  return Math.min(1, 2 * tail);
}

/**
 * Two-sided p of the Wilcoxon signed-rank statistic for nonzero differences
 * `d`. Ranks of |d| use mid-ranks for ties; the exact null distribution is
 * computed on doubled ranks (integers) by dynamic programming.
 */
export function wilcoxonSignedRankP(d: readonly number[]): number {
  const n = d.length;
  if (n === 0) return 1;
  const order = d.map((x, i) => ({ a: Math.abs(x), i })).sort((p, q) => p.a - q.a);
  const rank2 = new Array<number>(n); // 2 × mid-rank, an integer
  for (let s = 0; s < n;) {
    let e = s;
    while (e + 1 < n && Math.abs(order[e + 1]!.a - order[s]!.a) <= 1e-12 * Math.max(1, order[s]!.a)) e++;
    const r2 = s + 1 + (e + 1); // (first + last rank) = 2 × mid-rank
    for (let j = s; j <= e; j++) rank2[order[j]!.i] = r2;
    s = e + 1;
  }
  let wPlus2 = 0;
  for (let i = 0; i < n; i++) if (d[i]! > 0) wPlus2 += rank2[i]!;
  const total2 = rank2.reduce((x, y) => x + y, 0);
  if (n <= 300) {
    // count of sign assignments giving each doubled W+, as probabilities (2^-n each)
    let dist = new Float64Array(total2 + 1);
    dist[0] = 1;
    let max = 0;
    for (const r of rank2) {
      const next = new Float64Array(total2 + 1);
      for (let w = 0; w <= max; w++) {
        const p = dist[w]!;
        if (p === 0) continue;
        next[w] += p / 2;
        next[w + r] += p / 2;
      }
      max += r;
      dist = next;
    }
    const mean2 = total2 / 2;
    const dev = Math.abs(wPlus2 - mean2);
    let p = 0;
    for (let w = 0; w <= total2; w++) if (Math.abs(w - mean2) >= dev - 1e-9) p += dist[w]!;
    return Math.min(1, p);
  }
  // normal approximation with tie correction
  const w = wPlus2 / 2;
  const mean = (n * (n + 1)) / 4;
  const varW = rank2.reduce((a, r) => a + (r / 2) ** 2, 0) / 4;
  const z = (Math.abs(w - mean) - 0.5) / Math.sqrt(varW);
  return Math.min(1, 2 * (1 - normalCdf(z)));
}

/** Standard normal CDF (Abramowitz–Stegun 7.1.26 on erf, |error| < 1.5e-7). */
export function normalCdf(z: number): number {
  const x = Math.abs(z) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * x);
  const erf =
    1 -
    ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-x * x);
  return z >= 0 ? 0.5 * (1 + erf) : 0.5 * (1 - erf);
}

/** "88.01 ± 1.23" with values scaled by `scale` (Dice 0..1 → percent). */
export function fmtSpread(s: Spread, scale = 100, digits = 2): string {
  if (!Number.isFinite(s.mean)) return '—';
  const m = (s.mean * scale).toFixed(digits);
  return Number.isFinite(s.std) ? `${m} ± ${(s.std * scale).toFixed(digits)}` : m;
}

/** The two-sided 95% Student-t interval of the mean as "[lo, hi]" ('—' below 2 seeds). */
export function fmtCi(s: Spread, scale = 100, digits = 2): string {
  if (!Number.isFinite(s.ci95)) return '—';
  return `[${((s.mean - s.ci95) * scale).toFixed(digits)}, ${((s.mean + s.ci95) * scale).toFixed(digits)}]`;
}

export function fmtP(p: number): string {
  if (!Number.isFinite(p)) return '—';
  return p < 0.001 ? '<0.001' : p.toFixed(3);
}
