/**
 * Segmentation and classification losses (nnU-Net conventions):
 * - label maps: soft Dice over the foreground classes of softmax(logits)
 *   (smooth 1e-5) + cross-entropy;
 * - BraTS-style regions (overlapping WT/TC/ET channels): soft Dice of
 *   sigmoid(logits) + binary cross-entropy on logits;
 * - deep supervision: the loss of output i (full resolution first) is
 *   weighted by 1/2^i, weights normalized to sum 1, against the target
 *   downsampled (nearest) to the output's resolution.
 */
import {
  add,
  bceWithLogits,
  crossEntropy,
  mul,
  sigmoid,
  slice,
  softDiceLoss,
  softmax,
  tensor,
  tidy,
  type Tensor,
} from '@largo/core';

export type SegLossKind = 'region-dice-bce' | 'dice-ce';

export interface SegLossOptions {
  kind: SegLossKind;
  smooth?: number;
  batchDice?: boolean;
}

/** 1/2^i normalized to sum 1 (nnU-Net's deep-supervision weights). */
export function dsWeights(n: number): number[] {
  const w = Array.from({ length: n }, (_, i) => 1 / 2 ** i);
  const s = w.reduce((a, b) => a + b, 0);
  return w.map((v) => v / s);
}

/**
 * Nearest downsampling of a [N, C, D, H, W] array to `out` spatial size
 * (voxel (d,h,w) of the output takes input voxel floor((d+0.5)·D/d') …,
 * i.e. every f-th voxel starting at f/2 − 0.5 → exact centres for integer factors f).
 */
export function downsampleNearest<T extends Uint8Array | Float32Array>(
  x: T,
  shape: readonly number[],
  out: readonly number[],
): T {
  const [N, C, D, H, W] = shape as [number, number, number, number, number];
  const [d2, h2, w2] = out as [number, number, number];
  if (d2 === D && h2 === H && w2 === W) return x;
  const res = new (x.constructor as { new (n: number): T })(N * C * d2 * h2 * w2);
  const idx = (n: number, m: number) =>
    Array.from({ length: m }, (_, i) => Math.min(n - 1, Math.floor(((i + 0.5) * n) / m)));
  const id = idx(D, d2),
    ih = idx(H, h2),
    iw = idx(W, w2);
  let o = 0;
  for (let nc = 0; nc < N * C; nc++) {
    for (let d = 0; d < d2; d++)
      for (let h = 0; h < h2; h++) {
        const row = ((nc * D + id[d]!) * H + ih[h]!) * W;
        for (let w = 0; w < w2; w++) res[o++] = x[row + iw[w]!]!;
      }
  }
  return res;
}

/** A segmentation target at every deep-supervision resolution, as tensors of the right dtype. */
export interface SegTargets {
  /** regions: float32 [N, R, ...]; labels: float32 one-hot [N, C, ...] */
  dense: Tensor[];
  /** labels only: int32 class indices [N, ...] */
  index: (Tensor | null)[];
}

/**
 * Builds targets for outputs of the given spatial shapes from a host label
 * array: region channels [N, R, D, H, W] (0/1) or class indices [N, 1, D, H, W].
 */
export function makeTargets(
  label: Uint8Array,
  labelShape: readonly number[],
  outShapes: readonly (readonly number[])[],
  kind: SegLossKind,
  classes: number,
): SegTargets {
  const dense: Tensor[] = [],
    index: (Tensor | null)[] = [];
  const [N, C] = labelShape as [number, number];
  for (const os of outShapes) {
    const sp = os.slice(2);
    const ds = downsampleNearest(label, labelShape, sp);
    const n = sp[0]! * sp[1]! * sp[2]!;
    if (kind === 'region-dice-bce') {
      dense.push(tensor(Float32Array.from(ds), [N, C, ...sp]));
      index.push(null);
    } else {
      if (C !== 1) throw new Error(`dice-ce loss needs a label map [N, 1, D, H, W], got [${labelShape.join(', ')}]`);
      const oh = new Float32Array(N * classes * n);
      const ix = new Int32Array(N * n);
      for (let b = 0; b < N; b++)
        for (let i = 0; i < n; i++) {
          const c = ds[b * n + i]!;
          if (c >= classes) throw new Error(`label value ${c} is not a class index below ${classes}`);
          ix[b * n + i] = c;
          oh[(b * classes + c) * n + i] = 1;
        }
      dense.push(tensor(oh, [N, classes, ...sp]));
      index.push(tensor(ix, [N, ...sp], 'int32'));
    }
  }
  return { dense, index };
}

/** Loss of one output against its target. */
export function segLoss1(logits: Tensor, dense: Tensor, index: Tensor | null, o: SegLossOptions): Tensor {
  return tidy(() => {
    const opts = { smooth: o.smooth ?? 1e-5, batchDice: o.batchDice ?? false };
    if (o.kind === 'region-dice-bce') {
      return add(softDiceLoss(sigmoid(logits), dense, opts), bceWithLogits(logits, dense));
    }
    // label maps: Dice over the foreground classes (nnU-Net do_bg = False), plus CE over all
    const p = softmax(logits, 1);
    const C = logits.shape[1]!;
    const begin = [0, 1, 0, 0, 0];
    const size = [-1, C - 1, -1, -1, -1];
    const dice =
      C > 1 ? softDiceLoss(slice(p, begin, size), slice(dense, begin, size), opts) : softDiceLoss(p, dense, opts);
    return add(dice, crossEntropy(logits, index!));
  });
}

/** Deep-supervised loss: Σ_i w_i · L(output_i, target_i). */
export function segLoss(outputs: readonly Tensor[], t: SegTargets, o: SegLossOptions): Tensor {
  const w = dsWeights(outputs.length);
  return tidy(() => {
    let total: Tensor | null = null;
    outputs.forEach((out, i) => {
      const l = mul(segLoss1(out, t.dense[i]!, t.index[i] ?? null, o), w[i]!);
      total = total ? add(total, l) : l;
    });
    return total!;
  });
}
