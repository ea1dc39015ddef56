/**
 * Random patches for 3D (or 2D, with D = 1) training with nnU-Net-style
 * foreground oversampling and intensity / mirror augmentation.
 *
 * Every draw is a pure function of (seed, draw index): patch k of the
 * sampler's sequence uses the stream Rng.derive(seed, k), so results do not
 * depend on how the draws are grouped into batches or interleaved.
 */
import { Rng } from './rng.js';
import { numel } from './volume.js';
import type { CaseArrays } from './dataset.js';
import { toTensor, type Tensor } from './tensor.js';

export interface MirrorOptions {
  /** spatial axes (3D: 0 = D, 1 = H, 2 = W; 2D: 0 = H, 1 = W) that may be flipped; default all */
  axes?: number[];
  /** probability per axis (default 0.5) */
  p?: number;
}
export interface BrightnessOptions {
  /** probability per channel (default 0.15) */
  p?: number;
  /** multiplier range (default [0.75, 1.25]) */
  range?: [number, number];
}
export interface ContrastOptions {
  /** probability per channel (default 0.15) */
  p?: number;
  /** factor range around the mean (default [0.75, 1.25]) */
  range?: [number, number];
  /** clip to the channel's original min / max (default true) */
  preserveRange?: boolean;
}
export interface GammaOptions {
  /** probability per channel (default 0.3) */
  p?: number;
  /** gamma range (default [0.7, 1.5]) */
  range?: [number, number];
  /** probability of applying gamma to the inverted image instead (default 0.1) */
  invertP?: number;
  /** restore mean and std afterwards (default true) */
  retainStats?: boolean;
}
export interface NoiseOptions {
  /** probability per channel (default 0.1) */
  p?: number;
  /** noise variance is drawn from this range (default [0, 0.1]) */
  variance?: [number, number];
}

/** Each augmentation is off when false or absent; `{}` turns it on with nnU-Net-like defaults. */
export interface AugmentOptions {
  mirror?: MirrorOptions | false;
  brightness?: BrightnessOptions | false;
  contrast?: ContrastOptions | false;
  gamma?: GammaOptions | false;
  noise?: NoiseOptions | false;
}

/** All augmentations on with their default settings. */
export const DEFAULT_AUGMENT: Readonly<AugmentOptions> = {
  mirror: {},
  brightness: {},
  contrast: {},
  gamma: {},
  noise: {},
};

export interface PatchSamplerOptions {
  /** [pd, ph, pw] for 3D cases, [ph, pw] for 2D cases ([M, H, W] images) */
  patchSize: number[];
  seed: number;
  /** share of samples centred on a foreground voxel (default 1/3, as nnU-Net) */
  foregroundFraction?: number;
  augment?: AugmentOptions | false;
}

export interface Patch {
  caseId: string;
  /** [M, pd, ph, pw] */
  image: Float32Array;
  imageShape: number[];
  /** [R, pd, ph, pw], or null when the case has no label */
  label: Uint8Array | null;
  labelShape: number[] | null;
  /** patch corner in case voxels (may be negative: the outside is zero padding) */
  origin: number[];
  forcedForeground: boolean;
  /** spatial axes that were flipped */
  mirrored: boolean[];
  missing: boolean[];
}

export interface PatchBatch {
  /** [N, M, pd, ph, pw] */
  image: Float32Array;
  imageShape: number[];
  /** [N, R, pd, ph, pw] (cases without label give zeros) */
  label: Uint8Array | null;
  labelShape: number[] | null;
  patches: Omit<Patch, 'image' | 'label'>[];
}

interface CaseIndex {
  c: CaseArrays;
  spatial: number[];
  /** voxel indices (into one spatial volume) per foreground class present */
  fg: Int32Array[];
}

function indexForeground(c: CaseArrays, spatial: number[]): Int32Array[] {
  if (!c.label || !c.labelShape) return [];
  const n = numel(spatial);
  const R = c.labelShape[0]!;
  const out: Int32Array[] = [];
  if (R === 1) {
    // A label map: one class per distinct nonzero value.
    const byValue = new Map<number, number[]>();
    for (let i = 0; i < n; i++) {
      const v = c.label[i]!;
      if (v !== 0) {
        let l = byValue.get(v);
        if (!l) byValue.set(v, (l = []));
        l.push(i);
      }
    }
    for (const k of [...byValue.keys()].sort((a, b) => a - b)) out.push(Int32Array.from(byValue.get(k)!));
  } else {
    for (let r = 0; r < R; r++) {
      const l: number[] = [];
      for (let i = 0; i < n; i++) if (c.label[r * n + i]) l.push(i);
      if (l.length) out.push(Int32Array.from(l));
    }
  }
  return out;
}

export class PatchSampler {
  private readonly cases: CaseIndex[];
  private readonly opts: PatchSamplerOptions;
  private readonly is2d: boolean;
  private readonly patchSize: number[];
  private draws = 0;

  constructor(cases: CaseArrays[], options: PatchSamplerOptions) {
    if (cases.length === 0) throw new Error('PatchSampler: no cases');
    // 2D cases ([M, H, W]) are handled as 3D with D = 1 and given back as 2D.
    this.is2d = cases[0]!.imageShape.length === 3;
    const rank = this.is2d ? 2 : 3;
    const ps = options.patchSize;
    if (ps.length !== rank || ps.some((v) => !Number.isInteger(v) || v < 1)) {
      throw new Error(
        `PatchSampler: patchSize must be ${rank} positive integers (${this.is2d ? '[ph, pw]' : '[pd, ph, pw]'}), got [${ps.join(', ')}]`,
      );
    }
    const ff = options.foregroundFraction ?? 1 / 3;
    if (!(ff >= 0 && ff <= 1)) throw new Error(`PatchSampler: foregroundFraction must be in [0, 1], got ${ff}`);
    const M = cases[0]!.imageShape[0]!;
    this.cases = cases.map((c) => {
      if (c.imageShape.length !== rank + 1)
        throw new Error(
          `PatchSampler: case ${c.id} image must be ${this.is2d ? '[M, H, W]' : '[M, D, H, W]'} like the first case, got [${c.imageShape.join(', ')}]`,
        );
      if (c.imageShape[0] !== M)
        throw new Error(`PatchSampler: case ${c.id} has ${c.imageShape[0]} modalities, expected ${M}`);
      const spatial = this.is2d ? [1, ...c.imageShape.slice(1)] : c.imageShape.slice(1);
      return { c, spatial, fg: indexForeground(c, spatial) };
    });
    this.opts = options;
    this.patchSize = this.is2d ? [1, ...ps] : [...ps];
  }

  /** Number of patches drawn so far (the index of the next draw). */
  get position(): number {
    return this.draws;
  }

  /**
   * Draw the next patch. `forceForeground` undefined: forced with probability
   * foregroundFraction. A case without foreground falls back to a random patch.
   */
  sample(forceForeground?: boolean): Patch {
    return this.draw(this.draws++, forceForeground);
  }

  /**
   * A batch as nnU-Net draws it: the last round(N·foregroundFraction) samples
   * are forced to contain foreground.
   */
  sampleBatch(n: number): PatchBatch {
    const ff = this.opts.foregroundFraction ?? 1 / 3;
    const nRandom = Math.round(n * (1 - ff));
    const patches: Patch[] = [];
    for (let b = 0; b < n; b++) patches.push(this.sample(b >= nRandom));
    const p0 = patches[0]!;
    const imgN = p0.image.length;
    const image = new Float32Array(n * imgN);
    patches.forEach((p, b) => image.set(p.image, b * imgN));
    const withLabel = patches.find((p) => p.label);
    let label: Uint8Array | null = null;
    let labelShape: number[] | null = null;
    if (withLabel) {
      const ln = withLabel.label!.length;
      label = new Uint8Array(n * ln);
      patches.forEach((p, b) => {
        if (p.label) {
          if (p.label.length !== ln)
            throw new Error(
              `PatchSampler: case ${p.caseId} has ${p.labelShape![0]} label channels, others ${withLabel.labelShape![0]}`,
            );
          label!.set(p.label, b * ln);
        }
      });
      labelShape = [n, ...withLabel.labelShape!];
    }
    return {
      image,
      imageShape: [n, ...p0.imageShape],
      label,
      labelShape,
      patches: patches.map(({ image: _i, label: _l, ...rest }) => rest),
    };
  }

  /** A batch as tensors: image [N, M, pd, ph, pw] float32, label [N, R, pd, ph, pw] uint8. */
  sampleBatchTensors(n: number): { image: Tensor; label: Tensor | null; batch: PatchBatch } {
    const batch = this.sampleBatch(n);
    return {
      image: toTensor(batch.image, batch.imageShape),
      label: batch.label && batch.labelShape ? toTensor(batch.label, batch.labelShape) : null,
      batch,
    };
  }

  /** Draw number `k` of this sampler's sequence (pure: does not move the position). */
  draw(k: number, forceForeground?: boolean): Patch {
    const rng = new Rng(Rng.derive(this.opts.seed, k));
    const ci = this.cases[rng.int(this.cases.length)]!;
    const { c, spatial } = ci;
    const ps = this.patchSize;
    const ff = this.opts.foregroundFraction ?? 1 / 3;
    const wantFg = forceForeground ?? rng.bernoulli(ff);
    const forced = wantFg && ci.fg.length > 0;
    const origin: number[] = [];
    if (forced) {
      const cls = ci.fg[rng.int(ci.fg.length)]!;
      let v = cls[rng.int(cls.length)]!;
      const centre = [0, 0, 0];
      for (let ax = 2; ax >= 0; ax--) {
        centre[ax] = v % spatial[ax]!;
        v = Math.floor(v / spatial[ax]!);
      }
      for (let ax = 0; ax < 3; ax++) {
        const n = spatial[ax]!,
          p = ps[ax]!;
        const lo = Math.min(0, n - p),
          hi = Math.max(0, n - p);
        origin.push(Math.min(hi, Math.max(lo, centre[ax]! - Math.floor(p / 2))));
      }
    } else {
      for (let ax = 0; ax < 3; ax++) {
        const n = spatial[ax]!,
          p = ps[ax]!;
        const lo = Math.min(0, n - p),
          hi = Math.max(0, n - p);
        origin.push(lo + rng.int(hi - lo + 1));
      }
    }
    const M = c.imageShape[0]!;
    const image = extract(c.image, M, spatial, origin, ps, new Float32Array(M * numel(ps)));
    let label: Uint8Array | null = null;
    let labelShape: number[] | null = null;
    if (c.label && c.labelShape) {
      const R = c.labelShape[0]!;
      label = extract(c.label, R, spatial, origin, ps, new Uint8Array(R * numel(ps)));
      labelShape = [R, ...ps];
    }
    const mirrored = [false, false, false];
    const aug = this.opts.augment;
    if (aug) {
      augmentIntensity(image, M, numel(ps), c.missing, aug, rng);
      if (aug.mirror) {
        const axes = (aug.mirror.axes ?? (this.is2d ? [0, 1] : [0, 1, 2])).map((a) => (this.is2d ? a + 1 : a));
        const p = aug.mirror.p ?? 0.5;
        for (const ax of axes) {
          if (!Number.isInteger(ax) || ax < (this.is2d ? 1 : 0) || ax > 2)
            throw new Error(
              `mirror axis ${this.is2d ? ax - 1 : ax} is not a spatial axis of this ${this.is2d ? '2D' : '3D'} data`,
            );
          if (rng.bernoulli(p)) {
            mirrored[ax] = true;
            flip(image, M, ps, ax);
            if (label) flip(label, labelShape![0]!, ps, ax);
          }
        }
      }
    }
    const outPs = this.is2d ? ps.slice(1) : ps;
    return {
      caseId: c.id,
      image,
      imageShape: [M, ...outPs],
      label,
      labelShape: labelShape && [labelShape[0]!, ...outPs],
      origin: this.is2d ? origin.slice(1) : origin,
      forcedForeground: forced,
      mirrored: this.is2d ? mirrored.slice(1) : mirrored,
      missing: [...c.missing],
    };
  }
}

/** Copy a patch (zero outside the volume) from [C, D, H, W]. */
function extract<T extends Float32Array | Uint8Array>(
  src: T,
  C: number,
  spatial: number[],
  origin: number[],
  ps: number[],
  out: T,
): T {
  const [D, H, W] = spatial as [number, number, number];
  const [pd, ph, pw] = ps as [number, number, number];
  const [od, oh, ow] = origin as [number, number, number];
  const w0 = Math.max(0, ow),
    w1 = Math.min(W, ow + pw);
  for (let ch = 0; ch < C; ch++) {
    for (let d = 0; d < pd; d++) {
      const sd = od + d;
      if (sd < 0 || sd >= D) continue;
      for (let h = 0; h < ph; h++) {
        const sh = oh + h;
        if (sh < 0 || sh >= H || w1 <= w0) continue;
        const srcRow = ((ch * D + sd) * H + sh) * W;
        const dstRow = ((ch * pd + d) * ph + h) * pw;
        out.set(src.subarray(srcRow + w0, srcRow + w1) as never, dstRow + (w0 - ow));
      }
    }
  }
  return out;
}

function flip(a: Float32Array | Uint8Array, C: number, ps: number[], axis: number): void {
  const [pd, ph, pw] = ps as [number, number, number];
  const idx = (c: number, d: number, h: number, w: number) => ((c * pd + d) * ph + h) * pw + w;
  for (let c = 0; c < C; c++) {
    for (let d = 0; d < (axis === 0 ? pd >> 1 : pd); d++) {
      for (let h = 0; h < (axis === 1 ? ph >> 1 : ph); h++) {
        for (let w = 0; w < (axis === 2 ? pw >> 1 : pw); w++) {
          const i = idx(c, d, h, w);
          const j =
            axis === 0 ? idx(c, pd - 1 - d, h, w) : axis === 1 ? idx(c, d, ph - 1 - h, w) : idx(c, d, h, pw - 1 - w);
          const t = a[i]!;
          a[i] = a[j]!;
          a[j] = t;
        }
      }
    }
  }
}

/** Factor from a range straddling 1: half the time below 1, half above (nnU-Net's scheme). */
function factorAround1(rng: Rng, [lo, hi]: [number, number]): number {
  if (rng.uniform() < 0.5 && lo < 1) return rng.range(lo, 1);
  return rng.range(Math.max(lo, 1), hi);
}

function stats(x: Float32Array): { mean: number; std: number; min: number; max: number } {
  let s = 0,
    min = Infinity,
    max = -Infinity;
  for (let i = 0; i < x.length; i++) {
    const v = x[i]!;
    s += v;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const mean = s / x.length;
  let ss = 0;
  for (let i = 0; i < x.length; i++) ss += (x[i]! - mean) ** 2;
  return { mean, std: Math.sqrt(ss / x.length), min, max };
}

/**
 * Intensity augmentation per channel in the order noise → brightness →
 * contrast → gamma. Missing (all-zero) modalities are left untouched so the
 * network never sees a fake signal there. Random draws happen for every
 * channel in a fixed order whatever is enabled for it, keeping streams stable.
 */
export function augmentIntensity(
  image: Float32Array,
  channels: number,
  n: number,
  missing: boolean[],
  aug: AugmentOptions,
  rng: Rng,
): void {
  for (let ch = 0; ch < channels; ch++) {
    const x = image.subarray(ch * n, (ch + 1) * n);
    const skip = missing[ch] === true;
    if (aug.noise) {
      const o = aug.noise;
      if (rng.bernoulli(o.p ?? 0.1)) {
        const [vlo, vhi] = o.variance ?? [0, 0.1];
        const sd = Math.sqrt(rng.range(vlo, vhi));
        for (let i = 0; i < n; i++) {
          const g = rng.normal();
          if (!skip) x[i] = x[i]! + sd * g;
        }
      }
    }
    if (aug.brightness) {
      const o = aug.brightness;
      if (rng.bernoulli(o.p ?? 0.15)) {
        const [lo, hi] = o.range ?? [0.75, 1.25];
        const f = rng.range(lo, hi);
        if (!skip) for (let i = 0; i < n; i++) x[i] = x[i]! * f;
      }
    }
    if (aug.contrast) {
      const o = aug.contrast;
      if (rng.bernoulli(o.p ?? 0.15)) {
        const f = factorAround1(rng, o.range ?? [0.75, 1.25]);
        if (!skip) {
          const st = stats(x);
          const keep = o.preserveRange ?? true;
          for (let i = 0; i < n; i++) {
            let v = (x[i]! - st.mean) * f + st.mean;
            if (keep) v = Math.min(st.max, Math.max(st.min, v));
            x[i] = v;
          }
        }
      }
    }
    if (aug.gamma) {
      const o = aug.gamma;
      if (rng.bernoulli(o.p ?? 0.3)) {
        const invert = rng.bernoulli(o.invertP ?? 0.1);
        const g = factorAround1(rng, o.range ?? [0.7, 1.5]);
        if (!skip) {
          if (invert) for (let i = 0; i < n; i++) x[i] = -x[i]!;
          const st = stats(x);
          const range = st.max - st.min;
          if (range > 0) {
            for (let i = 0; i < n; i++) x[i] = Math.pow((x[i]! - st.min) / range, g) * range + st.min;
            if (o.retainStats ?? true) {
              const st2 = stats(x);
              const scale = st2.std > 0 ? st.std / st2.std : 1;
              for (let i = 0; i < n; i++) x[i] = (x[i]! - st2.mean) * scale + st.mean;
            }
          }
          if (invert) for (let i = 0; i < n; i++) x[i] = -x[i]!;
        }
      }
    }
  }
}
