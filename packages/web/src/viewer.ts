/**
 * Three orthogonal slices of a [D, H, W] volume (D = z, H = y, W = x in
 * NIfTI voxel order) with the label map overlaid in the BraTS colours:
 * edema (WT only) green, necrotic / non-enhancing core (TC) red, enhancing
 * tumour (ET) yellow.
 */
export const LABEL_COLOURS: Readonly<Record<number, [number, number, number]>> = {
  1: [230, 40, 40], // TC: necrotic / non-enhancing core
  2: [40, 200, 60], // WT: edema
  4: [250, 220, 30], // ET: enhancing
};

export type Plane = 'axial' | 'coronal' | 'sagittal';

export interface ViewState {
  volume: Float32Array | null;
  labels: Uint8Array | null;
  spatial: number[];
  /** slice index per plane: axial = z, coronal = y, sagittal = x */
  index: Record<Plane, number>;
  opacity: number;
  /** display window [lo, hi] of the volume */
  window: [number, number];
}

/** A robust display window: 0.5th to 99.5th percentile of the nonzero voxels (sampled). */
export function displayWindow(v: Float32Array): [number, number] {
  const stride = Math.max(1, Math.floor(v.length / 200000));
  const s: number[] = [];
  for (let i = 0; i < v.length; i += stride) if (v[i] !== 0 && Number.isFinite(v[i]!)) s.push(v[i]!);
  if (s.length === 0) return [0, 1];
  s.sort((a, b) => a - b);
  const lo = s[Math.floor(s.length * 0.005)]!,
    hi = s[Math.min(s.length - 1, Math.floor(s.length * 0.995))]!;
  return hi > lo ? [lo, hi] : [lo, lo + 1];
}

/** Draws one plane into `canvas` (sized to the slice; CSS scales it). */
export function drawPlane(canvas: HTMLCanvasElement, plane: Plane, st: ViewState): void {
  const [D, H, W] = st.spatial as [number, number, number];
  const [cols, rows] = plane === 'axial' ? [W, H] : plane === 'coronal' ? [W, D] : [H, D];
  canvas.width = cols;
  canvas.height = rows;
  const ctx = canvas.getContext('2d')!;
  const img = ctx.createImageData(cols, rows);
  const idx = st.index[plane];
  const [lo, hi] = st.window;
  const a = st.opacity;
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < cols; c++) {
      // rows go up the screen: flip so that +y / +z point up
      const rr = rows - 1 - r;
      const vi =
        plane === 'axial'
          ? (idx * H + rr) * W + c
          : plane === 'coronal'
            ? (rr * H + idx) * W + c
            : (rr * H + c) * W + idx;
      let g = 0;
      if (st.volume) g = Math.max(0, Math.min(255, ((st.volume[vi]! - lo) / (hi - lo)) * 255));
      let R = g,
        G = g,
        B = g;
      const lab = st.labels?.[vi] ?? 0;
      const col = LABEL_COLOURS[lab];
      if (col && a > 0) {
        R = (1 - a) * g + a * col[0];
        G = (1 - a) * g + a * col[1];
        B = (1 - a) * g + a * col[2];
      }
      const o = (r * cols + c) * 4;
      img.data[o] = R;
      img.data[o + 1] = G;
      img.data[o + 2] = B;
      img.data[o + 3] = 255;
    }
  ctx.putImageData(img, 0, 0);
}
