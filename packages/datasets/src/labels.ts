/**
 * Label maps: validation against a label set, the policies for values
 * outside it, and conversion to region channels.
 */

import { DataError } from './errors.js';

/** BraTS 2018-2021 labels: 0 background, 1 necrotic / non-enhancing core, 2 edema, 4 enhancing tumour. */
export const BRATS_LABELS: readonly number[] = [0, 1, 2, 4];
export const ISLES_LABELS: readonly number[] = [0, 1];

export interface Region {
  name: string;
  /** label values that belong to the region */
  labels: number[];
}

/** Nested BraTS evaluation regions: whole tumour, tumour core, enhancing tumour. */
export const BRATS_REGIONS: readonly Region[] = [
  { name: 'WT', labels: [1, 2, 4] },
  { name: 'TC', labels: [1, 4] },
  { name: 'ET', labels: [4] },
];
export const ISLES_REGIONS: readonly Region[] = [{ name: 'lesion', labels: [1] }];

/**
 * What to do with label values outside the label set:
 * - `'error'` (default): throw a LabelError listing every offending value and its voxel count.
 * - `'nearest-valid'`: replace each offending voxel by the valid label nearest to its
 *   stored (unrounded) value; an exact tie goes to the smaller label
 *   (BraTS: −1 → 0, 3 → 2, 3.4 → 4, 5 → 4).
 * - `'background'`: set offending voxels to 0 (the first label of the set).
 */
export type LabelPolicy = 'error' | 'nearest-valid' | 'background';

/**
 * Floating-point label maps (e.g. after interpolation) hold non-integer values:
 * - `'round'` (default): every voxel is rounded to the nearest integer
 *   (half away from zero) before checking the label set; the number of voxels
 *   farther than 1e-3 from an integer is reported in errors and by `inspect`.
 * - `'error'`: any voxel farther than 1e-3 from an integer is an error.
 */
export type NonIntegerPolicy = 'round' | 'error';

export class LabelError extends Error {
  readonly path: string;
  /** offending (rounded) values and their voxel counts */
  readonly offending: Map<number, number>;
  constructor(path: string, message: string, offending: Map<number, number>) {
    super(`${path}: ${message}`);
    this.name = 'LabelError';
    this.path = path;
    this.offending = offending;
  }
}

export interface LabelCheckOptions {
  labels?: readonly number[];
  policy?: LabelPolicy;
  nonInteger?: NonIntegerPolicy;
}

export interface LabelCheckResult {
  /** valid labels only, one byte per voxel */
  labels: Uint8Array;
  /** rounded value → voxel count for values outside the label set (before the policy was applied) */
  offending: Map<number, number>;
  /** voxels farther than 1e-3 from an integer */
  nonInteger: number;
}

function roundHalfAway(v: number): number {
  return v < 0 ? -Math.round(-v) : Math.round(v);
}

function fmtCounts(m: Map<number, number>): string {
  return [...m.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([v, c]) => `${v} (${c} voxel${c === 1 ? '' : 's'})`)
    .join(', ');
}

/** Validate a label map (any numeric array) against the label set and apply the policy. `path` names the source in errors. */
export function checkLabels(
  values: ArrayLike<number>,
  path: string,
  options: LabelCheckOptions = {},
): LabelCheckResult {
  const set = [...(options.labels ?? BRATS_LABELS)].sort((a, b) => a - b);
  if (set.some((v) => !Number.isInteger(v) || v < 0 || v > 255))
    throw new DataError(`label set must hold integers in [0, 255], got [${set.join(', ')}]`);
  const policy = options.policy ?? 'error';
  const nonIntegerPolicy = options.nonInteger ?? 'round';
  if (!['error', 'nearest-valid', 'background'].includes(policy))
    throw new DataError(`unknown label policy '${String(policy)}' (use 'error', 'nearest-valid' or 'background')`);
  const valid = new Uint8Array(256);
  for (const v of set) valid[v] = 1;
  const out = new Uint8Array(values.length);
  const offending = new Map<number, number>();
  let nonInteger = 0;
  let nonFinite = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (!Number.isFinite(v)) {
      nonFinite++;
      continue;
    }
    const r = roundHalfAway(v);
    if (Math.abs(v - r) > 1e-3) nonInteger++;
    if (r >= 0 && r <= 255 && valid[r]) {
      out[i] = r;
      continue;
    }
    offending.set(r, (offending.get(r) ?? 0) + 1);
    if (policy === 'background') out[i] = set[0]!;
    else if (policy === 'nearest-valid') {
      let best = set[0]!;
      for (const l of set) if (Math.abs(v - l) < Math.abs(v - best)) best = l;
      out[i] = best;
    }
  }
  if (nonFinite > 0) throw new LabelError(path, `label map holds ${nonFinite} NaN or infinite voxel(s)`, offending);
  if (nonIntegerPolicy === 'error' && nonInteger > 0) {
    throw new LabelError(
      path,
      `label map holds ${nonInteger} non-integer voxel(s) (more than 1e-3 from an integer); pass nonInteger: 'round' to round them`,
      offending,
    );
  }
  if (policy === 'error' && offending.size > 0) {
    const note =
      nonInteger > 0
        ? ` (values rounded to the nearest integer; ${nonInteger} voxel(s) were not integers, which suggests the map was interpolated)`
        : '';
    throw new LabelError(
      path,
      `label values outside the label set {${set.join(', ')}}: ${fmtCounts(offending)}${note}. Pass labelPolicy 'nearest-valid' or 'background' to map them explicitly.`,
      offending,
    );
  }
  return { labels: out, offending, nonInteger };
}

/** One binary channel per region: out[r * N + i] = 1 when labels[i] ∈ regions[r]. */
export function labelsToRegions(labels: Uint8Array, regions: readonly Region[]): Uint8Array {
  const n = labels.length;
  const out = new Uint8Array(regions.length * n);
  regions.forEach((reg, r) => {
    const inRegion = new Uint8Array(256);
    for (const l of reg.labels) inRegion[l] = 1;
    const base = r * n;
    for (let i = 0; i < n; i++) out[base + i] = inRegion[labels[i]!]!;
  });
  return out;
}

/** Counts of each distinct value (as stored), sorted by value. */
export function valueCounts(
  values: ArrayLike<number>,
  limit = Infinity,
): { counts: Map<number, number>; truncated: boolean } {
  const counts = new Map<number, number>();
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    const c = counts.get(v);
    if (c === undefined) {
      if (counts.size >= limit) return { counts, truncated: true };
      counts.set(v, 1);
    } else counts.set(v, c + 1);
  }
  return { counts: new Map([...counts.entries()].sort((a, b) => a[0] - b[0])), truncated: false };
}
