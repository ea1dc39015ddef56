/**
 * The dataset interface shared by BraTS, ISLES and the phantom, the NIfTI
 * folder implementation, and deterministic train/val/test splits.
 */
import { DataError } from './errors.js';
import { readFileSync, writeFileSync } from 'node:fs';
import { readNifti, NiftiError } from './nifti.js';
import { discoverCases, type Discovery, type DiscoverOptions, type CaseEntry, type Layout } from './discovery.js';
import {
  checkLabels,
  labelsToRegions,
  BRATS_LABELS,
  BRATS_REGIONS,
  ISLES_LABELS,
  ISLES_REGIONS,
  type LabelPolicy,
  type NonIntegerPolicy,
  type Region,
} from './labels.js';
import {
  niftiToVolume,
  nonzeroBoundingBox,
  cropArray,
  cropAffine,
  zscoreNonzero,
  resampledShape,
  resampleArray,
  resampledGeometry,
  resampleToGrid,
  numel,
  type Volume,
} from './volume.js';
import { Rng } from './rng.js';
import { caseToTensors, type CaseArrays, type CaseSample, type Dataset, type LabelMode } from './case.js';

export * from './case.js';

export interface NiftiDatasetOptions extends DiscoverOptions {
  /** include cases that lack some modalities (zeros + missing flag); default false: they are only listed in `incomplete` */
  allowMissing?: boolean;
  /** only cases with a label file (default false) */
  requireLabel?: boolean;
  /** valid label values (default: BraTS {0,1,2,4}, ISLES {0,1}) */
  labels?: readonly number[];
  /** values outside the label set; see LabelPolicy (default 'error') */
  labelPolicy?: LabelPolicy;
  /** non-integer label voxels; see NonIntegerPolicy (default 'round') */
  nonInteger?: NonIntegerPolicy;
  /** region definitions for 'regions' mode (default BraTS WT/TC/ET, ISLES lesion) */
  regions?: readonly Region[];
  labelMode?: LabelMode;
  /** crop every case to the bounding box of voxels nonzero in any modality (default true) */
  crop?: boolean;
  /** per-modality z-score inside its nonzero mask (default 'zscore') */
  normalize?: 'zscore' | 'none';
  /** resample to this spacing [D, H, W] mm (trilinear images, nearest labels); default none */
  targetSpacing?: number[] | null;
  /**
   * Modalities (or label) on a different voxel grid than the case's first modality:
   * 'error' (default) or 'resample' into the first modality's grid through the affines.
   */
  gridMismatch?: 'error' | 'resample';
}

function sameAffine(a: number[][], b: number[][]): boolean {
  for (let r = 0; r < 3; r++)
    for (let c = 0; c < 4; c++)
      if (Math.abs(a[r]![c]! - b[r]![c]!) > 1e-3 * Math.max(1, Math.abs(a[r]![c]!))) return false;
  return true;
}

/** A BraTS or ISLES folder (any layout `discoverCases` understands). */
export class NiftiFolderDataset implements Dataset {
  readonly name: string;
  readonly cases: string[];
  readonly modalities: string[];
  readonly labelChannels: string[];
  readonly discovery: Discovery;
  /** cases left out because they lack a modality (allowMissing false) or a label (requireLabel true) */
  readonly incomplete: CaseEntry[];
  private readonly byId: Map<string, CaseEntry>;
  private readonly opts: NiftiDatasetOptions;
  private readonly regions: readonly Region[];
  private readonly labelSet: readonly number[];

  constructor(root: string, options: NiftiDatasetOptions = {}) {
    this.opts = options;
    this.discovery = discoverCases(root, options);
    const layout: Layout = this.discovery.layout;
    this.name = layout;
    this.modalities = this.discovery.modalities;
    this.regions = options.regions ?? (layout === 'isles' ? ISLES_REGIONS : BRATS_REGIONS);
    this.labelSet = options.labels ?? (layout === 'isles' ? ISLES_LABELS : BRATS_LABELS);
    this.labelChannels = (options.labelMode ?? 'regions') === 'regions' ? this.regions.map((r) => r.name) : ['labels'];
    const kept: CaseEntry[] = [];
    const incomplete: CaseEntry[] = [];
    for (const c of this.discovery.cases) {
      const ok = (options.allowMissing || c.missing.length === 0) && (!options.requireLabel || c.label !== null);
      (ok ? kept : incomplete).push(c);
    }
    this.cases = kept.map((c) => c.id);
    this.incomplete = incomplete;
    this.byId = new Map(kept.map((c) => [c.id, c]));
  }

  entry(caseId: string): CaseEntry {
    const e = this.byId.get(caseId);
    if (!e) {
      const inc = this.incomplete.find((c) => c.id === caseId);
      if (inc)
        throw new DataError(
          `case ${caseId} lacks ${inc.missing.length ? inc.missing.join(', ') : 'a label'}; pass allowMissing: true to load it with zeros`,
        );
      throw new DataError(`unknown case '${caseId}' in ${this.discovery.root}`);
    }
    return e;
  }

  async loadArrays(caseId: string): Promise<CaseArrays> {
    const e = this.entry(caseId);
    const o = this.opts;
    const present = this.modalities.filter((m) => e.files[m]);
    const vols = new Map<string, Volume>();
    await Promise.all(
      present.map(async (m) => {
        const path = e.files[m]!;
        const v = niftiToVolume(await readNifti(path), path);
        // NaN / Inf would silently poison z-scoring and training.
        let bad = 0;
        for (let i = 0; i < v.data.length; i++) if (!Number.isFinite(v.data[i]!)) bad++;
        if (bad) throw new NiftiError(path, `${bad} voxel(s) are NaN or infinite`);
        vols.set(m, v);
      }),
    );
    const refName = present[0]!;
    const ref = vols.get(refName)!;
    const refPath = e.files[refName]!;
    const align = <T extends Float32Array>(
      v: { data: T; shape: number[]; affine: number[][] },
      path: string,
      mode: 'linear' | 'nearest',
    ): T => {
      const same = v.shape.every((n, i) => n === ref.shape[i]);
      if (same && sameAffine(v.affine, ref.affine)) return v.data;
      if ((o.gridMismatch ?? 'error') === 'error') {
        throw new NiftiError(
          path,
          `voxel grid [${v.shape.join(', ')}] ${same ? '(affine differs) ' : ''}does not match ${refPath} [${ref.shape.join(', ')}]; resample the modalities onto one grid, or set gridMismatch to 'resample' (largo: --set data.gridMismatch=resample) to resample into the first modality's grid`,
        );
      }
      return resampleToGrid(v, ref, mode);
    };
    for (const m of present.slice(1)) vols.get(m)!.data = align(vols.get(m)!, e.files[m]!, 'linear');

    let labelValues: Uint8Array | null = null;
    if (e.label) {
      const lv = niftiToVolume(await readNifti(e.label), e.label);
      const aligned = align(lv, e.label, 'nearest');
      labelValues = checkLabels(aligned, e.label, {
        labels: this.labelSet,
        policy: o.labelPolicy,
        nonInteger: o.nonInteger,
      }).labels;
    }

    let shape = [...ref.shape];
    let affine = ref.affine;
    let spacing = [...ref.spacing];
    let arrays = present.map((m) => vols.get(m)!.data);
    if (o.crop ?? true) {
      const box = nonzeroBoundingBox(arrays, shape);
      if (box) {
        arrays = arrays.map((a) => cropArray(a, shape, box));
        if (labelValues) labelValues = cropArray(labelValues, shape, box);
        affine = cropAffine(affine, box.start);
        shape = box.end.map((v, i) => v - box.start[i]!);
      }
    }
    if ((o.normalize ?? 'zscore') === 'zscore') for (const a of arrays) zscoreNonzero(a);
    if (o.targetSpacing) {
      if (o.targetSpacing.length !== 3 || o.targetSpacing.some((v) => !(v > 0)))
        throw new DataError(`targetSpacing must be 3 positive numbers [D, H, W], got [${o.targetSpacing.join(', ')}]`);
      const outShape = resampledShape(shape, spacing, o.targetSpacing);
      arrays = arrays.map((a) => resampleArray(a, shape, outShape, 'linear'));
      if (labelValues) labelValues = resampleArray(labelValues, shape, outShape, 'nearest');
      const g = resampledGeometry(affine, spacing, shape, outShape);
      affine = g.affine;
      spacing = g.spacing;
      shape = outShape;
    }
    const n = numel(shape);
    const image = new Float32Array(this.modalities.length * n);
    const missing = this.modalities.map((m) => !e.files[m]);
    let k = 0;
    this.modalities.forEach((m, i) => {
      if (e.files[m]) image.set(arrays[k++]!, i * n);
    });
    let label: Uint8Array | null = null;
    let labelShape: number[] | null = null;
    if (labelValues) {
      if ((o.labelMode ?? 'regions') === 'regions') {
        label = labelsToRegions(labelValues, this.regions);
        labelShape = [this.regions.length, ...shape];
      } else {
        label = labelValues;
        labelShape = [1, ...shape];
      }
    }
    return {
      id: caseId,
      image,
      imageShape: [this.modalities.length, ...shape],
      label,
      labelShape,
      spacing,
      affine,
      missing,
    };
  }

  async load(caseId: string): Promise<CaseSample> {
    return caseToTensors(await this.loadArrays(caseId));
  }
}

/** BraTS 2018-2021 folder (per-case subfolders or flat). Default modalities flair, t1, t1ce, t2. */
export function openBrats(root: string, options: Omit<NiftiDatasetOptions, 'layout'> = {}): NiftiFolderDataset {
  return new NiftiFolderDataset(root, { ...options, layout: 'brats' });
}

/** ISLES 2022 BIDS folder (or flat files). Default modalities dwi, adc, flair; binary lesion label. */
export function openIsles(root: string, options: Omit<NiftiDatasetOptions, 'layout'> = {}): NiftiFolderDataset {
  return new NiftiFolderDataset(root, { ...options, layout: 'isles' });
}

// ---------------------------------------------------------------- splits

export interface Split {
  train: string[];
  val: string[];
  test: string[];
}

/**
 * Deterministic split: the case ids are sorted, shuffled by `seed`, and cut
 * into train / val / test by `fractions` (rounded; every part with a nonzero
 * fraction gets at least one case when there are enough cases).
 */
export function splitCases(
  cases: readonly string[],
  options: { seed: number; fractions?: [number, number, number] },
): Split {
  const f = options.fractions ?? [0.7, 0.1, 0.2];
  if (f.length !== 3 || f.some((v) => !(v >= 0)) || Math.abs(f[0] + f[1] + f[2] - 1) > 1e-9) {
    throw new DataError(`split fractions must be 3 non-negative numbers summing to 1, got [${f.join(', ')}]`);
  }
  if (new Set(cases).size !== cases.length) throw new DataError('splitCases: duplicate case ids');
  const ids = [...cases].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  new Rng(options.seed, 0x5917).shuffle(ids);
  const n = ids.length;
  const count = (fr: number) => (fr > 0 && n >= 3 ? Math.max(1, Math.round(n * fr)) : Math.round(n * fr));
  const nTest = Math.min(n, count(f[2]));
  const nVal = Math.min(n - nTest, count(f[1]));
  return { test: ids.slice(0, nTest), val: ids.slice(nTest, nTest + nVal), train: ids.slice(nTest + nVal) };
}

/**
 * Read a split JSON: `{"train": [...], "val": [...], "test": [...]}` (val and
 * test optional), or nnU-Net's splits_final.json (a list of {train, val}
 * folds; pick one with `fold`). When `cases` is given, every id must be one
 * of them. Ids may not appear in two parts.
 */
export function readSplitFile(path: string, options: { cases?: readonly string[]; fold?: number } = {}): Split {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new DataError(`${path}: cannot read split file (${(e as Error).message})`);
  }
  let obj = json as Record<string, unknown>;
  if (Array.isArray(json)) {
    const fold = options.fold ?? 0;
    if (!Number.isInteger(fold) || fold < 0 || fold >= json.length)
      throw new DataError(`${path}: fold ${fold} not in [0, ${json.length - 1}]`);
    obj = json[fold] as Record<string, unknown>;
  }
  if (typeof obj !== 'object' || obj === null)
    throw new DataError(`${path}: a split must be an object with train/val/test lists`);
  const list = (k: string): string[] => {
    const v = obj[k];
    if (v === undefined) return [];
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'string'))
      throw new DataError(`${path}: '${k}' must be a list of case ids`);
    return v as string[];
  };
  const split: Split = { train: list('train'), val: list('val'), test: list('test') };
  const seen = new Map<string, string>();
  for (const part of ['train', 'val', 'test'] as const) {
    for (const id of split[part]) {
      const prev = seen.get(id);
      if (prev) throw new DataError(`${path}: case '${id}' is in both ${prev} and ${part}`);
      seen.set(id, part);
    }
  }
  if (options.cases) {
    const known = new Set(options.cases);
    const unknown = [...seen.keys()].filter((id) => !known.has(id));
    if (unknown.length)
      throw new DataError(
        `${path}: unknown case id(s): ${unknown.slice(0, 10).join(', ')}${unknown.length > 10 ? ` and ${unknown.length - 10} more` : ''}`,
      );
  }
  return split;
}

export function writeSplitFile(path: string, split: Split): void {
  writeFileSync(path, JSON.stringify(split, null, 2) + '\n');
}
