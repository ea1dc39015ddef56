/**
 * Sliding-window inference over volumes larger than the training patch, as
 * nnU-Net does it (nnunetv2/inference/sliding_window_prediction.py):
 * - tile origins per axis: n = ceil((size − patch) / (patch·step)) + 1 tiles,
 *   spread evenly from 0 to size − patch (rounded);
 * - each tile's logits are weighted by a Gaussian importance map (σ = patch/8,
 *   normalized to max 1, zeros replaced by the smallest nonzero value) and the
 *   weighted sum is divided by the summed weights;
 * - optional test-time mirroring averages the predictions of all flips;
 * - volumes smaller than the patch are zero-padded (centred) and cropped back.
 * Accumulation is in float64, so an identity "network" reconstructs its input
 * exactly after rounding back to float32.
 */

export interface SlidingWindowOptions {
  /** [pd, ph, pw] */
  patchSize: readonly number[];
  /** tile step as a fraction of the patch (default 0.5) */
  step?: number;
  /** Gaussian importance weighting (default true); false = uniform weights */
  gaussian?: boolean;
  /** σ as a fraction of the patch size (default 1/8) */
  sigmaScale?: number;
  /** test-time mirroring: true = all spatial axes, or a list of axes (0 = D, 1 = H, 2 = W) */
  mirror?: boolean | readonly number[];
  /** number of tiles handed to `predict` at once (default 1) */
  batchSize?: number;
}

/**
 * The network: given `n` patches [n, C, pd, ph, pw] (row-major), returns
 * logits [n, K, pd, ph, pw] (a promise when they come back from a device).
 */
export type PatchPredictor = (patches: Float32Array, n: number) => Float32Array | Promise<Float32Array>;

/** A sliding-window request the user can fix (step out of range, too many windows): exit code 2. */
export class SlidingWindowError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SlidingWindowError';
  }
}

/**
 * Most windows one volume may take: 20,000, or the environment variable
 * LARGO_MAX_WINDOWS. A tiny step would otherwise run for hours or exhaust memory.
 */
export const DEFAULT_MAX_WINDOWS = 20_000;

export function maxWindows(): number {
  const v = Number(process.env['LARGO_MAX_WINDOWS']);
  return Number.isFinite(v) && v >= 1 ? v : DEFAULT_MAX_WINDOWS;
}

function checkStep(step: number): void {
  if (!(typeof step === 'number' && step > 0 && step <= 1))
    throw new SlidingWindowError(`sliding window: step must be in (0, 1], got ${step}`);
}

/** Tiles along one axis; a step below one voxel gives every position once. */
function tileCount(size: number, patch: number, step: number): number {
  const maxStart = size - patch;
  return Math.min(Math.ceil(maxStart / (patch * step)) + 1, maxStart + 1);
}

/** Tile origins along one axis (nnU-Net's compute_steps_for_sliding_window). */
export function tileStarts(size: number, patch: number, step = 0.5): number[] {
  checkStep(step);
  if (patch > size) throw new Error(`sliding window: patch ${patch} larger than the (padded) size ${size}`);
  const num = tileCount(size, patch, step);
  const maxStart = size - patch;
  const actual = num > 1 ? maxStart / (num - 1) : 99999999999;
  return Array.from({ length: num }, (_, i) => Math.round(actual * i));
}

/** The Gaussian importance map [pd, ph, pw] (max 1, no zeros), like nnU-Net's compute_gaussian. */
export function gaussianImportance(patchSize: readonly number[], sigmaScale = 1 / 8): Float32Array {
  const axes = patchSize.map((p) => {
    const sigma = p * sigmaScale;
    const c = Math.floor(p / 2);
    const radius = Math.floor(4 * sigma + 0.5); // scipy.ndimage truncate = 4
    return Float64Array.from({ length: p }, (_, i) =>
      Math.abs(i - c) > radius || sigma === 0 ? (i === c ? 1 : 0) : Math.exp(-((i - c) ** 2) / (2 * sigma * sigma)),
    );
  });
  const [a, b, c] = axes as [Float64Array, Float64Array, Float64Array];
  const out = new Float32Array(a.length * b.length * c.length);
  let max = 0;
  for (let i = 0, o = 0; i < a.length; i++)
    for (let j = 0; j < b.length; j++)
      for (let k = 0; k < c.length; k++, o++) {
        const v = a[i]! * b[j]! * c[k]!;
        out[o] = v;
        if (v > max) max = v;
      }
  let minPos = Infinity;
  for (let i = 0; i < out.length; i++) {
    out[i] = out[i]! / max;
    if (out[i]! > 0 && out[i]! < minPos) minPos = out[i]!;
  }
  for (let i = 0; i < out.length; i++) if (out[i] === 0) out[i] = minPos;
  return out;
}

/** Flips a [C, D, H, W] block along the given spatial axes (0 = D, 1 = H, 2 = W) into a new array. */
export function flipBlock(
  x: Float32Array,
  C: number,
  spatial: readonly number[],
  axes: readonly number[],
): Float32Array {
  if (axes.length === 0) return x.slice();
  const [D, H, W] = spatial as [number, number, number];
  const fd = axes.includes(0),
    fh = axes.includes(1),
    fw = axes.includes(2);
  const out = new Float32Array(x.length);
  for (let c = 0; c < C; c++)
    for (let d = 0; d < D; d++)
      for (let h = 0; h < H; h++) {
        const src = ((c * D + (fd ? D - 1 - d : d)) * H + (fh ? H - 1 - h : h)) * W;
        const dst = ((c * D + d) * H + h) * W;
        if (fw) for (let w = 0; w < W; w++) out[dst + w] = x[src + W - 1 - w]!;
        else out.set(x.subarray(src, src + W), dst);
      }
  return out;
}

function mirrorSets(mirror: boolean | readonly number[] | undefined): number[][] {
  const axes = mirror === true ? [0, 1, 2] : Array.isArray(mirror) ? [...mirror] : [];
  const sets: number[][] = [];
  for (let mask = 0; mask < 1 << axes.length; mask++) sets.push(axes.filter((_, i) => (mask >> i) & 1));
  return sets;
}

/**
 * Runs `predict` over tiles of `image` [C, D, H, W] and returns the fused
 * logits [K, D, H, W].
 */
export async function slidingWindow(
  image: Float32Array,
  shape: readonly number[],
  outChannels: number,
  predict: PatchPredictor,
  o: SlidingWindowOptions,
): Promise<Float32Array> {
  if (shape.length !== 4)
    throw new Error(`sliding window: image shape must be [C, D, H, W], got [${shape.join(', ')}]`);
  const [C, D, H, W] = shape as [number, number, number, number];
  if (image.length !== C * D * H * W)
    throw new Error(
      `sliding window: image has ${image.length} values, shape [${shape.join(', ')}] needs ${C * D * H * W}`,
    );
  const ps = [...o.patchSize];
  if (ps.length !== 3 || ps.some((p) => !Number.isInteger(p) || p < 1))
    throw new Error(`sliding window: patchSize must be 3 positive integers, got [${ps.join(', ')}]`);
  const K = outChannels;
  // centred zero padding up to the patch size
  const spatial = [D, H, W];
  const padded = spatial.map((s, i) => Math.max(s, ps[i]!));
  const before = spatial.map((s, i) => Math.floor((padded[i]! - s) / 2));
  const [PD, PH, PW] = padded as [number, number, number];
  const pn = PD * PH * PW;
  let img = image;
  if (PD !== D || PH !== H || PW !== W) {
    img = new Float32Array(C * pn);
    for (let c = 0; c < C; c++)
      for (let d = 0; d < D; d++)
        for (let h = 0; h < H; h++) {
          const src = ((c * D + d) * H + h) * W;
          const dst = ((c * PD + d + before[0]!) * PH + h + before[1]!) * PW + before[2]!;
          img.set(image.subarray(src, src + W), dst);
        }
  }
  const weight =
    o.gaussian === false
      ? new Float32Array(ps[0]! * ps[1]! * ps[2]!).fill(1)
      : gaussianImportance(ps, o.sigmaScale ?? 1 / 8);
  const acc = new Float64Array(K * pn);
  const wsum = new Float64Array(pn);
  const step = o.step ?? 0.5;
  checkStep(step);
  // count before building anything: the window list itself can be what exhausts memory
  const counts = padded.map((s, i) => tileCount(s, ps[i]!, step));
  const total = counts.reduce((a, b) => a * b, 1);
  if (total > maxWindows())
    throw new SlidingWindowError(
      `sliding window: step ${step} gives ${total} windows (${counts.join(' × ')}) for a ${padded.join('×')} volume and patch ${ps.join('×')}, more than the limit of ${maxWindows()} (LARGO_MAX_WINDOWS); use a larger --step`,
    );
  const starts = padded.map((s, i) => tileStarts(s, ps[i]!, step));
  const tiles: number[][] = [];
  for (const a of starts[0]!) for (const b of starts[1]!) for (const c of starts[2]!) tiles.push([a, b, c]);
  const [pd, ph, pw] = ps as [number, number, number];
  const tn = pd * ph * pw;
  const flips = mirrorSets(o.mirror);
  const bs = Math.max(1, Math.floor(o.batchSize ?? 1));

  for (let t0 = 0; t0 < tiles.length; t0 += bs) {
    const group = tiles.slice(t0, t0 + bs);
    const n = group.length;
    const batch = new Float32Array(n * C * tn);
    group.forEach(([sd, sh, sw], b) => {
      for (let c = 0; c < C; c++)
        for (let d = 0; d < pd; d++)
          for (let h = 0; h < ph; h++) {
            const src = ((c * PD + sd! + d) * PH + sh! + h) * PW + sw!;
            batch.set(img.subarray(src, src + pw), ((b * C + c) * pd + d) * ph * pw + h * pw);
          }
    });
    // logits averaged over mirrorings
    const pred = new Float64Array(n * K * tn);
    for (const axes of flips) {
      let input = batch;
      if (axes.length) {
        input = new Float32Array(batch.length);
        for (let b = 0; b < n; b++)
          input.set(flipBlock(batch.subarray(b * C * tn, (b + 1) * C * tn), C, ps, axes), b * C * tn);
      }
      const out = await predict(input, n);
      if (out.length !== n * K * tn)
        throw new Error(
          `sliding window: the network returned ${out.length} values for ${n} patch(es), expected ${n}×${K}×[${ps.join(', ')}] = ${n * K * tn}`,
        );
      for (let b = 0; b < n; b++) {
        const blk = out.subarray(b * K * tn, (b + 1) * K * tn);
        const back = axes.length ? flipBlock(blk, K, ps, axes) : blk;
        for (let i = 0; i < K * tn; i++) pred[b * K * tn + i] += back[i]!;
      }
    }
    const inv = 1 / flips.length;
    group.forEach(([sd, sh, sw], b) => {
      for (let d = 0; d < pd; d++)
        for (let h = 0; h < ph; h++)
          for (let w = 0; w < pw; w++) {
            const pi = (d * ph + h) * pw + w;
            const vi = ((sd! + d) * PH + sh! + h) * PW + sw! + w;
            const g = weight[pi]!;
            wsum[vi] += g;
            for (let k = 0; k < K; k++)
              acc[k * pn + vi] +=
                (flips.length === 1 ? pred[(b * K + k) * tn + pi]! : pred[(b * K + k) * tn + pi]! * inv) * g;
          }
    });
  }
  const out = new Float32Array(K * D * H * W);
  for (let k = 0; k < K; k++)
    for (let d = 0; d < D; d++)
      for (let h = 0; h < H; h++)
        for (let w = 0; w < W; w++) {
          const vi = ((d + before[0]!) * PH + h + before[1]!) * PW + w + before[2]!;
          out[((k * D + d) * H + h) * W + w] = acc[k * pn + vi]! / wsum[vi]!;
        }
  return out;
}
