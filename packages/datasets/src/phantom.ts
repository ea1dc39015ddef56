/**
 * Synthetic multimodal "brain tumour" phantom: the default data set of the
 * main job, small enough to train on a CPU, and built so that every modality
 * carries information the others lack.
 *
 * Geometry (per case): a brain ellipsoid (outside it every modality is exactly
 * 0, so nonzero cropping and masked z-scoring behave as on MRI), a tumour of
 * three nested blobs — edema (label 2) ⊃ non-enhancing core (label 1) ⊃
 * enhancing tumour (label 4), so WT ⊃ TC ⊃ ET — and small label-0 "mimic"
 * blobs that look like tumour in all but one modality.
 *
 * Tissue classes and base intensities (before bias field, noise and a random
 * gain per modality):
 *
 * | class              | label | flair | t1  | t1ce | t2  | dwi |
 * |--------------------|-------|-------|-----|------|-----|-----|
 * | N  normal          | 0     | .35   | .6  | .6   | .4  | .5  |
 * | E  edema           | 2     | .85   | .6  | .6   | .9  | .5  |
 * | C  core            | 1     | .85   | .3  | .6   | .9  | .5  |
 * | T  enhancing       | 4     | .85   | .3  | 1.0  | .9  | .5  |
 * | M1 flair mimic     | 0     | .85   | .6  | .6   | .4  | .5  |
 * | M2 t2 mimic        | 0     | .35   | .6  | .6   | .9  | .5  |
 * | V  enhancing mimic | 0     | .85   | .3  | 1.0  | .9  | .9  |
 *
 * So, with all five: only flair separates edema from M2, only t2 separates
 * edema from M1, only t1 separates edema from core, only t1ce separates core
 * from enhancing, only dwi separates enhancing from V. With fewer modalities
 * the classes that need a dropped modality are not generated:
 * 4 (flair, t1, t1ce, t2): no V; 3 (flair, t1, t1ce): no mimics, and flair
 * alone separates normal from edema; 2 (flair, t1ce): flair has three levels
 * (normal .35, edema .7, core/enhancing 1.0) and t1ce separates core from
 * enhancing. `PHANTOM_UNIQUE` lists these pairs; the tests check them.
 *
 * Bitwise reproducible: integer Philox streams, float64 arithmetic in a fixed
 * order, no Math.random. Geometry and each modality's noise use separate
 * streams (seed, case, purpose), so changing the modality count keeps the
 * shapes.
 */
import { Rng } from './rng.js';
import { labelsToRegions, BRATS_REGIONS } from './labels.js';
import { zscoreNonzero, numel } from './volume.js';
import { caseToTensors, type CaseArrays, type CaseSample, type Dataset } from './case.js';

export const TISSUE = { OUT: 0, N: 1, E: 2, C: 3, T: 4, M1: 5, M2: 6, V: 7 } as const;
const TISSUE_LABEL = [0, 0, 2, 1, 4, 0, 0, 0];
const TISSUE_NAMES = ['outside', 'normal', 'edema', 'core', 'enhancing', 'flair-mimic', 't2-mimic', 'enhancing-mimic'];

type Role = 'flair' | 't1' | 't1ce' | 't2' | 'dwi';
// Levels per tissue class [OUT, N, E, C, T, M1, M2, V] (OUT unused: outside stays 0).
const LEVELS: Record<Role, number[]> = {
  flair: [0, 0.35, 0.85, 0.85, 0.85, 0.85, 0.35, 0.85],
  t1: [0, 0.6, 0.6, 0.3, 0.3, 0.6, 0.6, 0.3],
  t1ce: [0, 0.6, 0.6, 0.6, 1.0, 0.6, 0.6, 1.0],
  t2: [0, 0.4, 0.9, 0.9, 0.9, 0.4, 0.9, 0.9],
  dwi: [0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.9],
};
const FLAIR_2: number[] = [0, 0.35, 0.7, 1.0, 1.0, 0, 0, 0];

const ROLES: Record<number, Role[]> = {
  2: ['flair', 't1ce'],
  3: ['flair', 't1', 't1ce'],
  4: ['flair', 't1', 't1ce', 't2'],
  5: ['flair', 't1', 't1ce', 't2', 'dwi'],
};

/** For each modality count: modality index → the pair of tissue classes only that modality separates. */
export const PHANTOM_UNIQUE: Readonly<Record<number, { modality: number; classes: [number, number] }[]>> = {
  2: [
    { modality: 0, classes: [TISSUE.N, TISSUE.E] },
    { modality: 1, classes: [TISSUE.C, TISSUE.T] },
  ],
  3: [
    { modality: 0, classes: [TISSUE.N, TISSUE.E] },
    { modality: 1, classes: [TISSUE.E, TISSUE.C] },
    { modality: 2, classes: [TISSUE.C, TISSUE.T] },
  ],
  4: [
    { modality: 0, classes: [TISSUE.M2, TISSUE.E] },
    { modality: 1, classes: [TISSUE.E, TISSUE.C] },
    { modality: 2, classes: [TISSUE.C, TISSUE.T] },
    { modality: 3, classes: [TISSUE.M1, TISSUE.E] },
  ],
  5: [
    { modality: 0, classes: [TISSUE.M2, TISSUE.E] },
    { modality: 1, classes: [TISSUE.E, TISSUE.C] },
    { modality: 2, classes: [TISSUE.C, TISSUE.T] },
    { modality: 3, classes: [TISSUE.M1, TISSUE.E] },
    { modality: 4, classes: [TISSUE.V, TISSUE.T] },
  ],
};

export interface PhantomOptions {
  /** 3 (default) or 2 */
  dims?: 2 | 3;
  /** edge length in voxels (default 32), or the full spatial shape ([D,H,W] or [H,W]) */
  size?: number | number[];
  /** 2 to 5 (default 4) */
  modalities?: number;
  /** names for the modalities (default flair, t1, t1ce, t2, dwi in the order of the table) */
  modalityNames?: string[];
  /** number of cases (default 16) */
  cases?: number;
  seed?: number;
  /** Gaussian noise sd relative to the intensity scale (default 0.04) */
  noise?: number;
  /** bias-field strength: log-amplitude of the smooth multiplicative field (default 0.05) */
  bias?: number;
}

export interface PhantomCase {
  id: string;
  /** [M, D, H, W] (3D) or [M, H, W] (2D), raw intensities (not normalised) */
  image: Float32Array;
  imageShape: number[];
  /** BraTS labels 0/1/2/4, spatial shape */
  labels: Uint8Array;
  /** tissue class per voxel (TISSUE), spatial shape */
  tissue: Uint8Array;
  spatialShape: number[];
  modalities: string[];
}

function resolve(o: PhantomOptions) {
  const dims = o.dims ?? 3;
  if (dims !== 2 && dims !== 3) throw new Error(`phantom: dims must be 2 or 3, got ${String(dims)}`);
  const size = o.size ?? 32;
  const shape = typeof size === 'number' ? Array.from({ length: dims }, () => size) : [...size];
  if (shape.length !== dims || shape.some((v) => !Number.isInteger(v) || v < 8)) {
    throw new Error(`phantom: size must be ${dims} integers ≥ 8, got [${shape.join(', ')}]`);
  }
  const m = o.modalities ?? 4;
  if (!Number.isInteger(m) || m < 2 || m > 5) throw new Error(`phantom: modalities must be 2 to 5, got ${m}`);
  const names = o.modalityNames ?? ROLES[m]!;
  if (names.length !== m) throw new Error(`phantom: ${names.length} modality names for ${m} modalities`);
  const cases = o.cases ?? 16;
  if (!Number.isInteger(cases) || cases < 1) throw new Error(`phantom: cases must be a positive integer, got ${cases}`);
  return {
    dims,
    shape,
    m,
    names: [...names],
    roles: ROLES[m]!,
    cases,
    seed: o.seed ?? 0,
    noise: o.noise ?? 0.04,
    bias: o.bias ?? 0.05,
  };
}

/** A star-shaped blob: inside when |p − c| < r·(1 + amp·Σ_j w_j sin(k_j·u + φ_j)), u the unit direction. */
interface Blob {
  c: number[];
  r: number;
  k: number[][];
  phi: number[];
  w: number[];
  amp: number;
}

function makeBlob(rng: Rng, c: number[], r: number, dims: number, amp = 0.2): Blob {
  const k: number[][] = [],
    phi: number[] = [],
    w: number[] = [];
  for (let j = 0; j < 3; j++) {
    k.push(Array.from({ length: dims }, () => rng.range(-3, 3)));
    phi.push(rng.range(0, 2 * Math.PI));
    w.push(rng.range(0.5, 1) / 3);
  }
  return { c, r, k, phi, w, amp };
}

function inBlob(b: Blob, p: number[]): boolean {
  let d2 = 0;
  for (let i = 0; i < p.length; i++) d2 += (p[i]! - b.c[i]!) ** 2;
  const d = Math.sqrt(d2);
  if (d === 0) return true;
  let s = 0;
  for (let j = 0; j < b.k.length; j++) {
    let dot = 0;
    for (let i = 0; i < p.length; i++) dot += b.k[j]![i]! * ((p[i]! - b.c[i]!) / d);
    s += b.w[j]! * Math.sin(dot + b.phi[j]!);
  }
  return d < b.r * (1 + b.amp * s);
}

function randomPoint(rng: Rng, dims: number, radius: number): number[] {
  // uniform in a ball (rejection from the cube)
  for (;;) {
    const p = Array.from({ length: dims }, () => rng.range(-radius, radius));
    if (p.reduce((s, v) => s + v * v, 0) <= radius * radius) return p;
  }
}

function dist(a: number[], b: number[]): number {
  return Math.sqrt(a.reduce((s, v, i) => s + (v - b[i]!) ** 2, 0));
}

/** Generate case `index` (0-based) of the phantom defined by `options`. */
export function generatePhantomCase(index: number, options: PhantomOptions = {}): PhantomCase {
  const o = resolve(options);
  if (!Number.isInteger(index) || index < 0)
    throw new Error(`phantom: case index must be a non-negative integer, got ${index}`);
  const { dims, shape } = o;
  const geo = new Rng(Rng.derive(o.seed, index, 0));
  // Coordinates normalised to [-1, 1] along every axis (voxel centres).
  const brainR = Array.from({ length: dims }, () => geo.range(0.8, 0.92));
  const tumourC = randomPoint(geo, dims, 0.25);
  const rWT = geo.range(0.36, 0.5);
  const wt = makeBlob(geo, tumourC, rWT, dims);
  const tcC = tumourC.map((v) => v + geo.range(-0.08, 0.08) * rWT);
  const rTC = rWT * geo.range(0.6, 0.75);
  const tc = makeBlob(geo, tcC, rTC, dims);
  const etC = tcC.map((v) => v + geo.range(-0.08, 0.08) * rTC);
  const et = makeBlob(geo, etC, rTC * geo.range(0.55, 0.7), dims);
  // Mimics only for classes whose distinguishing modality is present.
  const mimicClasses: number[] = o.m >= 4 ? [TISSUE.M1, TISSUE.M2] : [];
  if (o.m >= 5) mimicClasses.push(TISSUE.V);
  const mimics: { blob: Blob; cls: number }[] = [];
  for (const cls of mimicClasses) {
    const count = 1 + geo.int(2);
    for (let n = 0; n < count; n++) {
      const r = geo.range(0.1, 0.15);
      // rejection: away from the tumour and the other mimics, inside the brain
      for (let tries = 0; tries < 200; tries++) {
        const c = randomPoint(geo, dims, 0.68);
        if (dist(c, tumourC) < rWT * 1.2 + r * 1.15 + 0.02) continue;
        if (mimics.some((mm) => dist(c, mm.blob.c) < mm.blob.r * 1.2 + r * 1.2 + 0.02)) continue;
        mimics.push({ blob: makeBlob(geo, c, r, dims, 0.15), cls });
        break;
      }
    }
  }
  const n = numel(shape);
  const tissue = new Uint8Array(n);
  const p = new Array<number>(dims).fill(0);
  const idx = new Array<number>(dims).fill(0);
  for (let i = 0; i < n; i++) {
    let rem = i;
    for (let a = dims - 1; a >= 0; a--) {
      idx[a] = rem % shape[a]!;
      rem = Math.floor(rem / shape[a]!);
    }
    let e = 0;
    for (let a = 0; a < dims; a++) {
      p[a] = (2 * (idx[a]! + 0.5)) / shape[a]! - 1;
      e += (p[a]! / brainR[a]!) ** 2;
    }
    if (e >= 1) continue;
    let t: number = TISSUE.N;
    if (inBlob(wt, p)) {
      t = TISSUE.E;
      if (inBlob(tc, p)) {
        t = TISSUE.C;
        if (inBlob(et, p)) t = TISSUE.T;
      }
    } else {
      for (const mm of mimics)
        if (inBlob(mm.blob, p)) {
          t = mm.cls;
          break;
        }
    }
    tissue[i] = t;
  }
  const labels = new Uint8Array(n);
  for (let i = 0; i < n; i++) labels[i] = TISSUE_LABEL[tissue[i]!]!;

  const image = new Float32Array(o.m * n);
  for (let m = 0; m < o.m; m++) {
    const rng = new Rng(Rng.derive(o.seed, index, 1 + m));
    const role = o.roles[m]!;
    const levels = o.m === 2 && role === 'flair' ? FLAIR_2 : LEVELS[role];
    const gain = rng.range(200, 1000);
    // Smooth bias field: exp(bias · quadratic polynomial in the coordinates).
    const lin = Array.from({ length: dims }, () => rng.range(-1, 1));
    const quad = Array.from({ length: dims * dims }, () => rng.range(-0.5, 0.5));
    const out = image.subarray(m * n, (m + 1) * n);
    for (let i = 0; i < n; i++) {
      // Draw the noise for every voxel, inside or not, so streams do not depend on the geometry.
      const g = rng.normal();
      const t = tissue[i]!;
      if (t === TISSUE.OUT) continue;
      let rem = i;
      for (let a = dims - 1; a >= 0; a--) {
        p[a] = (2 * ((rem % shape[a]!) + 0.5)) / shape[a]! - 1;
        rem = Math.floor(rem / shape[a]!);
      }
      let poly = 0;
      for (let a = 0; a < dims; a++) {
        poly += lin[a]! * p[a]!;
        for (let b = 0; b < dims; b++) poly += quad[a * dims + b]! * p[a]! * p[b]!;
      }
      const v = levels[t]! * Math.exp(o.bias * poly) + o.noise * g;
      // Keep brain voxels nonzero so the nonzero mask equals the brain.
      out[i] = gain * Math.max(v, 0.01);
    }
  }
  return {
    id: phantomCaseId(index),
    image,
    imageShape: [o.m, ...shape],
    labels,
    tissue,
    spatialShape: [...shape],
    modalities: o.names,
  };
}

export function phantomCaseId(index: number): string {
  return `phantom-${String(index).padStart(4, '0')}`;
}

export { TISSUE_NAMES };

export interface PhantomDatasetOptions extends PhantomOptions {
  /** 'zscore' (default, like the MRI loaders) or 'none' */
  normalize?: 'zscore' | 'none';
  /** 'regions' (default: WT, TC, ET channels) or 'labels' (one 0/1/2/4 map) */
  labelMode?: 'regions' | 'labels';
}

/**
 * The phantom behind the common Dataset interface. 3D cases give image
 * [M, D, H, W] and label [3, D, H, W]; 2D cases give [M, H, W] and [3, H, W].
 * Cases are generated on demand (cheap) and not cached.
 */
export class PhantomDataset implements Dataset {
  readonly name = 'phantom';
  readonly cases: string[];
  readonly modalities: string[];
  readonly labelChannels: string[];
  private readonly options: PhantomDatasetOptions;

  constructor(options: PhantomDatasetOptions = {}) {
    const r = resolve(options);
    this.options = options;
    this.cases = Array.from({ length: r.cases }, (_, i) => phantomCaseId(i));
    this.modalities = r.names;
    this.labelChannels = (options.labelMode ?? 'regions') === 'regions' ? BRATS_REGIONS.map((x) => x.name) : ['labels'];
  }

  private index(caseId: string): number {
    const i = this.cases.indexOf(caseId);
    if (i < 0)
      throw new Error(
        `unknown phantom case '${caseId}' (have ${this.cases[0]} … ${this.cases[this.cases.length - 1]})`,
      );
    return i;
  }

  loadArraysSync(caseId: string): CaseArrays {
    const c = generatePhantomCase(this.index(caseId), this.options);
    const n = numel(c.spatialShape);
    if ((this.options.normalize ?? 'zscore') === 'zscore') {
      for (let m = 0; m < c.modalities.length; m++) zscoreNonzero(c.image.subarray(m * n, (m + 1) * n));
    }
    const regions = (this.options.labelMode ?? 'regions') === 'regions';
    const label = regions ? labelsToRegions(c.labels, BRATS_REGIONS) : c.labels;
    return {
      id: c.id,
      image: c.image,
      imageShape: c.imageShape,
      label,
      labelShape: [regions ? BRATS_REGIONS.length : 1, ...c.spatialShape],
      spacing: c.spatialShape.map(() => 1),
      affine: [
        [1, 0, 0, 0],
        [0, 1, 0, 0],
        [0, 0, 1, 0],
        [0, 0, 0, 1],
      ],
      missing: c.modalities.map(() => false),
    };
  }

  async loadArrays(caseId: string): Promise<CaseArrays> {
    return this.loadArraysSync(caseId);
  }

  async load(caseId: string): Promise<CaseSample> {
    return caseToTensors(this.loadArraysSync(caseId));
  }
}
