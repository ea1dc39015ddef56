/**
 * Segmentation and classification metrics on plain arrays (no tensors), so
 * they run anywhere and are easy to check against hand-computed cases.
 *
 * Conventions (BraTS / medpy, see docs/design.md "LARGO defaults"):
 * - Dice: both masks empty → 1; ground truth empty but prediction not → 0.
 * - HD95 in mm: the surface of a mask is the mask minus its 6-connected
 *   erosion (voxels outside the volume count as background, like
 *   scipy.ndimage.binary_erosion's default border_value=0). Distances from
 *   every surface voxel of one mask to the nearest surface voxel of the other,
 *   in both directions, are pooled and the 95th percentile (linear
 *   interpolation, numpy's default) is reported. Exactly one mask empty → the
 *   volume diagonal in mm; both empty → 0.
 * - Distances come from an exact Euclidean distance transform with anisotropic
 *   spacing (Felzenszwalb & Huttenlocher, "Distance Transforms of Sampled
 *   Functions", 2012): one 1-D lower-envelope pass per axis, O(n) in voxels.
 */

export type Mask = ArrayLike<number>;

function checkShape(what: string, mask: Mask, shape: readonly number[]): void {
  const n = shape.reduce((a, b) => a * b, 1);
  if (mask.length !== n)
    throw new Error(`${what}: mask has ${mask.length} voxels, shape [${shape.join(', ')}] needs ${n}`);
}

function count(mask: Mask): number {
  let c = 0;
  for (let i = 0; i < mask.length; i++) if (mask[i]) c++;
  return c;
}

/** Dice overlap 2|P∩G| / (|P|+|G|) of two binary masks (nonzero = foreground), BraTS conventions for empty masks. */
export function dice(pred: Mask, gt: Mask): number {
  if (pred.length !== gt.length)
    throw new Error(`dice: prediction has ${pred.length} voxels, ground truth ${gt.length}`);
  let inter = 0,
    p = 0,
    g = 0;
  for (let i = 0; i < pred.length; i++) {
    const a = pred[i] ? 1 : 0,
      b = gt[i] ? 1 : 0;
    p += a;
    g += b;
    inter += a & b;
  }
  if (g === 0) return p === 0 ? 1 : 0;
  return (2 * inter) / (p + g);
}

/** Fraction of equal entries. */
export function accuracy(pred: ArrayLike<number>, target: ArrayLike<number>): number {
  if (pred.length !== target.length)
    throw new Error(`accuracy: ${pred.length} predictions for ${target.length} targets`);
  if (pred.length === 0) throw new Error('accuracy: no samples');
  let ok = 0;
  for (let i = 0; i < pred.length; i++) if (pred[i] === target[i]) ok++;
  return ok / pred.length;
}

/** Mean and population standard deviation (ddof = 0, numpy's default); NaN entries are rejected. */
export function meanStd(xs: readonly number[]): { mean: number; std: number; n: number } {
  if (xs.length === 0) return { mean: NaN, std: NaN, n: 0 };
  for (const x of xs) if (!Number.isFinite(x)) throw new Error(`meanStd: non-finite value ${x}`);
  let s = 0;
  for (const x of xs) s += x;
  const mean = s / xs.length;
  let ss = 0;
  for (const x of xs) ss += (x - mean) * (x - mean);
  return { mean, std: Math.sqrt(ss / xs.length), n: xs.length };
}

/** The q-th percentile (0..100) with linear interpolation between order statistics (numpy 'linear'). */
export function percentile(values: ArrayLike<number>, q: number): number {
  if (values.length === 0) throw new Error('percentile: no values');
  if (!(q >= 0 && q <= 100)) throw new Error(`percentile: q must be in [0, 100], got ${q}`);
  const a = Float64Array.from(values as ArrayLike<number>).sort();
  const pos = (q / 100) * (a.length - 1);
  const lo = Math.floor(pos),
    hi = Math.ceil(pos);
  if (lo === hi) return a[lo]!;
  const f = pos - lo;
  // numpy's _lerp: a + (b - a) * t, switching form for t >= 0.5 for monotonicity
  const x = a[lo]!,
    y = a[hi]!;
  const d = y - x;
  return f >= 0.5 ? y - d * (1 - f) : x + d * f;
}

/**
 * Surface voxels: mask voxels with at least one 6-neighbour that is background
 * or outside the volume. Works for 1-, 2- and 3-D shapes.
 */
export function surface(mask: Mask, shape: readonly number[]): Uint8Array {
  checkShape('surface', mask, shape);
  const dims = shape.length;
  const strides = new Array<number>(dims);
  let s = 1;
  for (let d = dims - 1; d >= 0; d--) {
    strides[d] = s;
    s *= shape[d]!;
  }
  const out = new Uint8Array(mask.length);
  const idx = new Array<number>(dims).fill(0);
  for (let i = 0; i < mask.length; i++) {
    if (mask[i]) {
      let border = false;
      for (let d = 0; d < dims && !border; d++) {
        const c = idx[d]!;
        if (c === 0 || c === shape[d]! - 1) border = true;
        else if (!mask[i - strides[d]!] || !mask[i + strides[d]!]) border = true;
      }
      if (border) out[i] = 1;
    }
    for (let d = dims - 1; d >= 0; d--) {
      if (++idx[d]! < shape[d]!) break;
      idx[d] = 0;
    }
  }
  return out;
}

/**
 * 1-D squared-distance transform along a line: d[p] = min_q ((p - q)·sp)^2 + f[q].
 * f entries may be Infinity (no site). v, z: scratch of length ≥ n and n + 1.
 */
function edt1d(f: Float64Array, n: number, sp: number, d: Float64Array, v: Int32Array, z: Float64Array): void {
  let k = -1;
  for (let q = 0; q < n; q++) {
    const fq = f[q]!;
    if (fq === Infinity) continue;
    if (k < 0) {
      k = 0;
      v[0] = q;
      z[0] = -Infinity;
      z[1] = Infinity;
      continue;
    }
    const qs = q * sp;
    let s = 0;
    for (;;) {
      const r = v[k]!,
        rs = r * sp;
      s = (fq + qs * qs - (f[r]! + rs * rs)) / (2 * (qs - rs));
      if (s <= z[k]!) {
        k--;
        if (k < 0) break;
      } else break;
    }
    if (k < 0) {
      k = 0;
      v[0] = q;
      z[0] = -Infinity;
      z[1] = Infinity;
      continue;
    }
    k++;
    v[k] = q;
    z[k] = s;
    z[k + 1] = Infinity;
  }
  if (k < 0) {
    for (let p = 0; p < n; p++) d[p] = Infinity;
    return;
  }
  let j = 0;
  for (let p = 0; p < n; p++) {
    const ps = p * sp;
    while (z[j + 1]! < ps) j++;
    const dq = ps - v[j]! * sp;
    d[p] = dq * dq + f[v[j]!]!;
  }
}

/**
 * Exact squared Euclidean distance (mm²) from every voxel to the nearest
 * nonzero voxel of `sites`, with per-axis spacing. Infinity everywhere when
 * there is no site.
 */
export function squaredEdt(sites: Mask, shape: readonly number[], spacing: readonly number[]): Float64Array {
  checkShape('squaredEdt', sites, shape);
  if (spacing.length !== shape.length)
    throw new Error(`squaredEdt: ${spacing.length} spacings for a ${shape.length}-D shape`);
  for (const s of spacing)
    if (!(s > 0) || !Number.isFinite(s))
      throw new Error(`squaredEdt: spacing must be positive, got [${spacing.join(', ')}]`);
  const n = sites.length;
  const g = new Float64Array(n);
  for (let i = 0; i < n; i++) g[i] = sites[i] ? 0 : Infinity;
  const maxLen = Math.max(1, ...shape);
  const f = new Float64Array(maxLen),
    d = new Float64Array(maxLen);
  const v = new Int32Array(maxLen),
    z = new Float64Array(maxLen + 1);
  const dims = shape.length;
  const strides = new Array<number>(dims);
  let st = 1;
  for (let a = dims - 1; a >= 0; a--) {
    strides[a] = st;
    st *= shape[a]!;
  }
  for (let axis = dims - 1; axis >= 0; axis--) {
    const len = shape[axis]!,
      stride = strides[axis]!;
    // every line along `axis`: starts are indices whose coordinate on `axis` is 0
    const lines = n / len;
    for (let l = 0; l < lines; l++) {
      // decompose l into (outer, inner) around the axis
      const inner = l % stride,
        outer = Math.floor(l / stride);
      const start = outer * stride * len + inner;
      for (let p = 0; p < len; p++) f[p] = g[start + p * stride]!;
      edt1d(f, len, spacing[axis]!, d, v, z);
      for (let p = 0; p < len; p++) g[start + p * stride] = d[p]!;
    }
  }
  return g;
}

/** Volume diagonal in mm (the HD95 penalty when exactly one mask is empty). */
export function volumeDiagonal(shape: readonly number[], spacing: readonly number[]): number {
  let s = 0;
  for (let i = 0; i < shape.length; i++) s += (shape[i]! * spacing[i]!) ** 2;
  return Math.sqrt(s);
}

/** Distances (mm) from each surface voxel of `a` to the surface of `b` (directed surface distances). */
export function directedSurfaceDistances(
  a: Mask,
  b: Mask,
  shape: readonly number[],
  spacing: readonly number[],
): Float64Array {
  const sa = surface(a, shape),
    sb = surface(b, shape);
  const dt = squaredEdt(sb, shape, spacing);
  const out: number[] = [];
  for (let i = 0; i < sa.length; i++) if (sa[i]) out.push(Math.sqrt(dt[i]!));
  return Float64Array.from(out);
}

/**
 * 95th-percentile Hausdorff distance in mm, both directed surface distance
 * sets pooled (medpy's hd95). Both masks empty → 0; exactly one empty → the
 * volume diagonal.
 */
export function hd95(pred: Mask, gt: Mask, shape: readonly number[], spacing: readonly number[]): number {
  checkShape('hd95', pred, shape);
  checkShape('hd95', gt, shape);
  const np = count(pred),
    ng = count(gt);
  if (np === 0 && ng === 0) return 0;
  if (np === 0 || ng === 0) return volumeDiagonal(shape, spacing);
  const sp = surface(pred, shape),
    sg = surface(gt, shape);
  const dg = squaredEdt(sg, shape, spacing),
    dp = squaredEdt(sp, shape, spacing);
  const all: number[] = [];
  for (let i = 0; i < sp.length; i++) {
    if (sp[i]) all.push(Math.sqrt(dg[i]!));
    if (sg[i]) all.push(Math.sqrt(dp[i]!));
  }
  return percentile(all, 95);
}

/** Per-region Dice and HD95 of binary region channels [R, ...spatial] (nonzero = inside). */
export interface RegionScores {
  dice: number[];
  hd95: number[];
}

export function regionScores(
  pred: Mask,
  gt: Mask,
  regions: number,
  spatial: readonly number[],
  spacing: readonly number[],
  withHd95 = true,
): RegionScores {
  const n = spatial.reduce((a, b) => a * b, 1);
  if (pred.length !== regions * n || gt.length !== regions * n) {
    throw new Error(
      `regionScores: expected ${regions}×[${spatial.join(', ')}] = ${regions * n} voxels, got prediction ${pred.length}, ground truth ${gt.length}`,
    );
  }
  const sub = (m: Mask, r: number): Mask =>
    'subarray' in m
      ? (m as Uint8Array).subarray(r * n, (r + 1) * n)
      : Array.prototype.slice.call(m, r * n, (r + 1) * n);
  const out: RegionScores = { dice: [], hd95: [] };
  for (let r = 0; r < regions; r++) {
    const p = sub(pred, r),
      g = sub(gt, r);
    out.dice.push(dice(p, g));
    out.hd95.push(withHd95 ? hd95(p, g, spatial, spacing) : NaN);
  }
  return out;
}
