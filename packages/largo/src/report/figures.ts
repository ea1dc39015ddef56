/**
 * Qualitative figures in the style of the paper's Fig. 4: one axial slice per
 * modality, then the ground truth and each method's segmentation overlaid on
 * a background modality, true positives green, false positives red, false
 * negatives blue.
 */
import { Canvas, type RGB } from './png.js';

export const TP: RGB = [0, 200, 0];
export const FP: RGB = [230, 0, 0];
export const FN: RGB = [0, 80, 255];
export const GT_COLOR: RGB = [255, 200, 0];

/** The axial slice (index along D of [D, H, W]) with the most foreground; the middle one when empty. */
export function bestSlice(mask: ArrayLike<number>, shape: readonly number[]): number {
  const [D, H, W] = shape as [number, number, number];
  let best = Math.floor(D / 2),
    bestN = 0;
  for (let d = 0; d < D; d++) {
    let n = 0;
    for (let i = d * H * W; i < (d + 1) * H * W; i++) if (mask[i]) n++;
    if (n > bestN) {
      bestN = n;
      best = d;
    }
  }
  return best;
}

/** A grey RGB tile of one [H, W] slice, windowed to the 0.5–99.5 percentiles of the nonzero voxels. */
export function greyTile(volume: Float32Array | ArrayLike<number>, shape: readonly number[], d: number): Uint8Array {
  const [, H, W] = shape as [number, number, number];
  const off = d * H * W;
  const vals: number[] = [];
  for (let i = 0; i < H * W; i++) {
    const v = volume[off + i]!;
    if (v !== 0 && Number.isFinite(v)) vals.push(v);
  }
  vals.sort((a, b) => a - b);
  const lo = vals.length ? vals[Math.floor(0.005 * (vals.length - 1))]! : 0;
  const hi = vals.length ? vals[Math.ceil(0.995 * (vals.length - 1))]! : 1;
  const out = new Uint8Array(H * W * 3);
  // flip H so that the image is shown with anterior up (NIfTI j grows upward in RAS)
  for (let h = 0; h < H; h++) {
    for (let w = 0; w < W; w++) {
      const v = volume[off + h * W + w]!;
      const g = hi > lo ? Math.round(255 * Math.min(1, Math.max(0, (v - lo) / (hi - lo)))) : 0;
      const o = 3 * ((H - 1 - h) * W + w);
      out[o] = out[o + 1] = out[o + 2] = g;
    }
  }
  return out;
}

/**
 * Colours the comparison of a predicted and a true mask on top of a grey tile:
 * TP green, FP red, FN blue (alpha-blended so the anatomy stays visible).
 */
export function overlayTile(
  grey: Uint8Array,
  pred: ArrayLike<number> | null,
  gt: ArrayLike<number>,
  shape: readonly number[],
  d: number,
  alpha = 0.6,
): Uint8Array {
  const [, H, W] = shape as [number, number, number];
  const off = d * H * W;
  const out = grey.slice();
  for (let h = 0; h < H; h++) {
    for (let w = 0; w < W; w++) {
      const i = off + h * W + w;
      const g = gt[i] ? 1 : 0;
      const p = pred ? (pred[i] ? 1 : 0) : g;
      let c: RGB | null = null;
      if (pred === null) c = g ? GT_COLOR : null;
      else if (p && g) c = TP;
      else if (p && !g) c = FP;
      else if (!p && g) c = FN;
      if (!c) continue;
      const o = 3 * ((H - 1 - h) * W + w);
      for (let k = 0; k < 3; k++) out[o + k] = Math.round((1 - alpha) * out[o + k]! + alpha * c[k]!);
    }
  }
  return out;
}

export interface FigureRow {
  /** row label, e.g. the available modalities */
  label: string;
  /** per modality: whether it is shown (missing ones are drawn dark with a cross) */
  available: boolean[];
  /** each method's binary mask [D, H, W] for this row */
  predictions: { method: string; mask: ArrayLike<number> }[];
}

export interface CaseFigure {
  caseId: string;
  modalities: string[];
  /** [M, D, H, W] */
  image: Float32Array;
  /** [D, H, W] */
  shape: number[];
  /** binary ground-truth mask [D, H, W] */
  gt: ArrayLike<number>;
  rows: FigureRow[];
  /** the modality used as background for overlays (default 0) */
  background?: number;
  /** axial slice; default: most ground-truth voxels */
  slice?: number;
  /** integer upscaling of each tile (default: so that tiles are ≥ 96 px) */
  scale?: number;
}

/** Lays out rows of [modality tiles | GT | methods...] with labels, and returns the canvas. */
export function caseFigure(f: CaseFigure): Canvas {
  const [D, H, W] = f.shape as [number, number, number];
  const n = D * H * W;
  const M = f.modalities.length;
  if (f.image.length !== M * n)
    throw new Error(`caseFigure: image has ${f.image.length} values, expected ${M}×${D}×${H}×${W}`);
  const d = f.slice ?? bestSlice(f.gt, f.shape);
  const scale = f.scale ?? Math.max(1, Math.ceil(96 / Math.max(H, W)));
  const tw = W * scale,
    th = H * scale,
    gap = 4,
    labelH = 14,
    labelW = 8 * 4 * 2 + 8;
  const methods = f.rows[0]?.predictions.map((p) => p.method) ?? [];
  const cols = M + 1 + methods.length;
  const width = labelW + cols * (tw + gap) + gap;
  const height = labelH + f.rows.length * (th + gap) + gap + labelH;
  const cv = new Canvas(width, height, [255, 255, 255]);
  const greys = f.modalities.map((_, m) => greyTile(f.image.subarray(m * n, (m + 1) * n), f.shape, d));
  const bg = greys[f.background ?? 0]!;
  const colX = (c: number) => labelW + gap + c * (tw + gap);
  const heads = [...f.modalities, 'GT', ...methods];
  heads.forEach((h, c) => cv.text(h.slice(0, Math.floor(tw / 8)), colX(c), 4, [0, 0, 0], 2));
  f.rows.forEach((row, r) => {
    const y = labelH + gap + r * (th + gap);
    cv.text(row.label.slice(0, 8), 2, y + Math.floor(th / 2) - 5, [0, 0, 0], 2);
    for (let m = 0; m < M; m++) {
      if (row.available[m]) cv.blit(greys[m]!, W, H, colX(m), y, scale);
      else {
        cv.rect(colX(m), y, tw, th, [40, 40, 40]);
        for (let k = 0; k < Math.min(tw, th); k++) {
          cv.set(colX(m) + k, y + k, [120, 120, 120]);
          cv.set(colX(m) + tw - 1 - k, y + k, [120, 120, 120]);
        }
      }
    }
    cv.blit(overlayTile(bg, null, f.gt, f.shape, d), W, H, colX(M), y, scale);
    row.predictions.forEach((p, j) =>
      cv.blit(overlayTile(bg, p.mask, f.gt, f.shape, d), W, H, colX(M + 1 + j), y, scale),
    );
  });
  // legend
  const ly = height - labelH + 2;
  let lx = labelW;
  for (const [name, c] of [
    ['TP', TP],
    ['FP', FP],
    ['FN', FN],
  ] as const) {
    cv.rect(lx, ly, 10, 10, c);
    cv.text(name, lx + 14, ly, [0, 0, 0], 2);
    lx += 48;
  }
  cv.text(`SLICE ${d}`, lx + 8, ly, [0, 0, 0], 2);
  return cv;
}
