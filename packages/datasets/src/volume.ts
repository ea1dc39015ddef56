/**
 * Plain typed-array volumes and the preprocessing that works on them
 * (nonzero crop, z-score, resampling). Kept free of Tensor so it runs before
 * (and independently of) the tensor engine.
 *
 * Axis conventions: `shape` is row-major [D, H, W] = NIfTI [z, y, x] (x
 * fastest, no transposition from the file), `spacing` follows `shape` (mm per
 * voxel along D, H, W), and `affine` is the NIfTI voxel→world matrix, which
 * takes voxel indices in NIfTI order (i, j, k) = (W index, H index, D index).
 */
import {
  NiftiError,
  niftiAffine,
  niftiShape,
  niftiValues,
  createNifti,
  setNiftiAffine,
  type NiftiImage,
  type NiftiData,
} from './nifti-format.js';

export interface Volume {
  data: Float32Array;
  /** [D, H, W] */
  shape: number[];
  /** mm per voxel along D, H, W */
  spacing: number[];
  /** 4x4 NIfTI voxel (i=W, j=H, k=D) → world (mm) */
  affine: number[][];
}

export type AnyTypedArray =
  Float32Array | Float64Array | Int32Array | Uint8Array | Int16Array | Uint16Array | Int8Array | Uint32Array;

export function numel(shape: readonly number[]): number {
  return shape.reduce((p, v) => p * v, 1);
}

export function identityAffine(): number[][] {
  return [
    [1, 0, 0, 0],
    [0, 1, 0, 0],
    [0, 0, 1, 0],
    [0, 0, 0, 1],
  ];
}

export function matmul4(a: number[][], b: number[][]): number[][] {
  const out: number[][] = [];
  for (let r = 0; r < 4; r++) {
    const row: number[] = [];
    for (let c = 0; c < 4; c++) {
      let s = 0;
      for (let k = 0; k < 4; k++) s += a[r]![k]! * b[k]![c]!;
      row.push(s);
    }
    out.push(row);
  }
  return out;
}

/** Inverse of a 4x4 affine (last row 0 0 0 1) via the 3x3 block. */
export function invertAffine(a: number[][]): number[][] {
  const [m00, m01, m02] = a[0]!,
    [m10, m11, m12] = a[1]!,
    [m20, m21, m22] = a[2]!;
  const c00 = m11! * m22! - m12! * m21!;
  const c01 = m02! * m21! - m01! * m22!;
  const c02 = m01! * m12! - m02! * m11!;
  const c10 = m12! * m20! - m10! * m22!;
  const c11 = m00! * m22! - m02! * m20!;
  const c12 = m02! * m10! - m00! * m12!;
  const c20 = m10! * m21! - m11! * m20!;
  const c21 = m01! * m20! - m00! * m21!;
  const c22 = m00! * m11! - m01! * m10!;
  const det = m00! * c00 + m01! * c10 + m02! * c20;
  if (det === 0 || !Number.isFinite(det)) throw new Error('affine is singular');
  const inv = [
    [c00 / det, c01 / det, c02 / det],
    [c10 / det, c11 / det, c12 / det],
    [c20 / det, c21 / det, c22 / det],
  ];
  const t = [a[0]![3]!, a[1]![3]!, a[2]![3]!];
  return [
    [...inv[0]!, -(inv[0]![0]! * t[0]! + inv[0]![1]! * t[1]! + inv[0]![2]! * t[2]!)],
    [...inv[1]!, -(inv[1]![0]! * t[0]! + inv[1]![1]! * t[1]! + inv[1]![2]! * t[2]!)],
    [...inv[2]!, -(inv[2]![0]! * t[0]! + inv[2]![1]! * t[1]! + inv[2]![2]! * t[2]!)],
    [0, 0, 0, 1],
  ];
}

/**
 * A 3D float32 volume from a NIfTI image: scl_slope/scl_inter applied, 4D+
 * files accepted only when the extra dims are 1.
 */
export function niftiToVolume(image: NiftiImage, path = '<image>'): Volume {
  const shape = niftiShape(image.header);
  if (shape.length > 3) {
    throw new NiftiError(path, `expected a 3D volume, got dims [${image.header.dims.join(', ')}]`);
  }
  while (shape.length < 3) shape.unshift(1);
  const values = niftiValues(image);
  const data = new Float32Array(values.length);
  data.set(values);
  const pd = image.header.pixdim;
  const sp = (i: number) => {
    const v = Math.abs(pd[i] ?? 1);
    return v > 0 && Number.isFinite(v) ? v : 1;
  };
  return { data, shape, spacing: [sp(3), sp(2), sp(1)], affine: niftiAffine(image.header) };
}

/** The inverse of niftiToVolume: a NIfTI image carrying the volume's spacing and affine (sform + qform). */
export function volumeToNifti(vol: {
  data: NiftiData;
  shape: number[];
  spacing: number[];
  affine?: number[][];
}): NiftiImage {
  const dims = [...vol.shape].reverse();
  const img = createNifti(vol.data, dims, { spacing: [...vol.spacing].reverse() });
  if (vol.affine) setNiftiAffine(img.header, vol.affine);
  return img;
}

export interface BoundingBox {
  /** inclusive start per axis */
  start: number[];
  /** exclusive end per axis */
  end: number[];
}

/** Bounding box of voxels that are nonzero in any of the arrays (all of `shape`); null when all are zero. */
export function nonzeroBoundingBox(arrays: ArrayLike<number>[], shape: number[]): BoundingBox | null {
  const [D, H, W] = shape as [number, number, number];
  const start = [D, H, W];
  const end = [0, 0, 0];
  let any = false;
  for (const a of arrays) {
    if (a.length !== D * H * W)
      throw new Error(`nonzeroBoundingBox: array of length ${a.length} does not match shape [${shape.join(', ')}]`);
    let i = 0;
    for (let d = 0; d < D; d++) {
      for (let h = 0; h < H; h++) {
        for (let w = 0; w < W; w++, i++) {
          if (a[i] !== 0) {
            any = true;
            if (d < start[0]!) start[0] = d;
            if (d >= end[0]!) end[0] = d + 1;
            if (h < start[1]!) start[1] = h;
            if (h >= end[1]!) end[1] = h + 1;
            if (w < start[2]!) start[2] = w;
            if (w >= end[2]!) end[2] = w + 1;
          }
        }
      }
    }
  }
  return any ? { start, end } : null;
}

/** Copy the box out of a [D,H,W] array (any typed array type). */
export function cropArray<T extends AnyTypedArray>(a: T, shape: number[], box: BoundingBox): T {
  const [, H, W] = shape as [number, number, number];
  const [d0, h0, w0] = box.start as [number, number, number];
  const [d1, h1, w1] = box.end as [number, number, number];
  const out = new (a.constructor as new (n: number) => T)((d1 - d0) * (h1 - h0) * (w1 - w0));
  let o = 0;
  for (let d = d0; d < d1; d++) {
    for (let h = h0; h < h1; h++) {
      const row = (d * H + h) * W;
      out.set(a.subarray(row + w0, row + w1) as never, o);
      o += w1 - w0;
    }
  }
  return out;
}

/** Affine after cropping at `start` = [d0, h0, w0]: the new voxel (0,0,0) is the old (w0, h0, d0). */
export function cropAffine(affine: number[][], start: number[]): number[][] {
  const [d0, h0, w0] = start as [number, number, number];
  const shift = [
    [1, 0, 0, w0],
    [0, 1, 0, h0],
    [0, 0, 1, d0],
    [0, 0, 0, 1],
  ];
  return matmul4(affine, shift);
}

/**
 * Z-score in place inside the mask of nonzero voxels (nnU-Net's "nonzero"
 * normalisation for MRI); voxels outside stay 0. Two-pass mean/variance in
 * float64. A constant image (std 0) is only centred. Returns mean and std.
 */
export function zscoreNonzero(data: Float32Array): { mean: number; std: number; count: number } {
  let n = 0;
  let sum = 0;
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    if (v !== 0) {
      sum += v;
      n++;
    }
  }
  if (n === 0) return { mean: 0, std: 0, count: 0 };
  const mean = sum / n;
  let ss = 0;
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    if (v !== 0) ss += (v - mean) * (v - mean);
  }
  const std = Math.sqrt(ss / n);
  const inv = std > 0 ? 1 / std : 1;
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    if (v !== 0) data[i] = (v - mean) * inv;
  }
  return { mean, std, count: n };
}

/** Output shape for resampling `shape` at `spacing` to `target` spacing (rounded, at least 1). */
export function resampledShape(shape: number[], spacing: number[], target: number[]): number[] {
  return shape.map((n, i) => Math.max(1, Math.round((n * spacing[i]!) / target[i]!)));
}

/**
 * Resample a [D,H,W] array to `outShape` with voxel centres aligned
 * (src = (dst + 0.5)·n_src/n_dst − 0.5, clamped at the border): trilinear for
 * images, nearest for label maps.
 */
export function resampleArray<T extends AnyTypedArray>(
  a: T,
  shape: number[],
  outShape: number[],
  mode: 'linear' | 'nearest',
): T {
  const [D, H, W] = shape as [number, number, number];
  const [oD, oH, oW] = outShape as [number, number, number];
  const out = new (a.constructor as new (n: number) => T)(oD * oH * oW);
  const axis = (n: number, on: number) => {
    const i0 = new Int32Array(on),
      i1 = new Int32Array(on),
      f = new Float64Array(on);
    for (let o = 0; o < on; o++) {
      let x = ((o + 0.5) * n) / on - 0.5;
      if (x < 0) x = 0;
      if (x > n - 1) x = n - 1;
      if (mode === 'nearest') {
        i0[o] = i1[o] = Math.min(n - 1, Math.floor(x + 0.5));
        f[o] = 0;
      } else {
        const lo = Math.floor(x);
        i0[o] = lo;
        i1[o] = Math.min(n - 1, lo + 1);
        f[o] = x - lo;
      }
    }
    return { i0, i1, f };
  };
  const ad = axis(D, oD),
    ah = axis(H, oH),
    aw = axis(W, oW);
  let o = 0;
  for (let d = 0; d < oD; d++) {
    const d0 = ad.i0[d]!,
      d1 = ad.i1[d]!,
      fd = ad.f[d]!;
    for (let h = 0; h < oH; h++) {
      const h0 = ah.i0[h]!,
        h1 = ah.i1[h]!,
        fh = ah.f[h]!;
      const r00 = (d0 * H + h0) * W,
        r01 = (d0 * H + h1) * W,
        r10 = (d1 * H + h0) * W,
        r11 = (d1 * H + h1) * W;
      for (let w = 0; w < oW; w++, o++) {
        const w0 = aw.i0[w]!,
          w1 = aw.i1[w]!;
        if (mode === 'nearest') {
          out[o] = a[r00 + w0]!;
          continue;
        }
        const fw = aw.f[w]!;
        const c00 = a[r00 + w0]! * (1 - fw) + a[r00 + w1]! * fw;
        const c01 = a[r01 + w0]! * (1 - fw) + a[r01 + w1]! * fw;
        const c10 = a[r10 + w0]! * (1 - fw) + a[r10 + w1]! * fw;
        const c11 = a[r11 + w0]! * (1 - fw) + a[r11 + w1]! * fw;
        const c0 = c00 * (1 - fh) + c01 * fh;
        const c1 = c10 * (1 - fh) + c11 * fh;
        out[o] = c0 * (1 - fd) + c1 * fd;
      }
    }
  }
  return out;
}

/** Affine and spacing after resampling `shape` → `outShape` with the voxel-centre mapping of resampleArray. */
export function resampledGeometry(
  affine: number[][],
  spacing: number[],
  shape: number[],
  outShape: number[],
): { affine: number[][]; spacing: number[] } {
  const s = shape.map((n, i) => n / outShape[i]!); // per [D,H,W]
  const [sd, sh, sw] = s as [number, number, number];
  const m = [
    [sw, 0, 0, (sw - 1) / 2],
    [0, sh, 0, (sh - 1) / 2],
    [0, 0, sd, (sd - 1) / 2],
    [0, 0, 0, 1],
  ];
  return { affine: matmul4(affine, m), spacing: spacing.map((v, i) => v * s[i]!) };
}

/** Resample a float volume to a target spacing [D,H,W] mm (trilinear). */
export function resampleVolume(vol: Volume, targetSpacing: number[], mode: 'linear' | 'nearest' = 'linear'): Volume {
  const outShape = resampledShape(vol.shape, vol.spacing, targetSpacing);
  const data = resampleArray(vol.data, vol.shape, outShape, mode);
  const g = resampledGeometry(vol.affine, vol.spacing, vol.shape, outShape);
  return { data, shape: outShape, spacing: g.spacing, affine: g.affine };
}

/**
 * Resample `src` into the voxel grid of `ref` through world coordinates
 * (trilinear or nearest); voxels that fall outside `src` get 0. For
 * modalities stored on different grids of the same subject.
 */
export function resampleToGrid<T extends AnyTypedArray>(
  src: { data: T; shape: number[]; affine: number[][] },
  ref: { shape: number[]; affine: number[][] },
  mode: 'linear' | 'nearest',
): T {
  const [D, H, W] = src.shape as [number, number, number];
  const [oD, oH, oW] = ref.shape as [number, number, number];
  const m = matmul4(invertAffine(src.affine), ref.affine); // ref (i,j,k) → src (i,j,k)
  const out = new (src.data.constructor as new (n: number) => T)(oD * oH * oW);
  const a = src.data;
  const at = (k: number, j: number, i: number) => a[(k * H + j) * W + i]!;
  let o = 0;
  for (let k = 0; k < oD; k++) {
    for (let j = 0; j < oH; j++) {
      for (let i = 0; i < oW; i++, o++) {
        const x = m[0]![0]! * i + m[0]![1]! * j + m[0]![2]! * k + m[0]![3]!;
        const y = m[1]![0]! * i + m[1]![1]! * j + m[1]![2]! * k + m[1]![3]!;
        const z = m[2]![0]! * i + m[2]![1]! * j + m[2]![2]! * k + m[2]![3]!;
        if (mode === 'nearest') {
          const xi = Math.round(x),
            yi = Math.round(y),
            zi = Math.round(z);
          if (xi >= 0 && xi < W && yi >= 0 && yi < H && zi >= 0 && zi < D) out[o] = at(zi, yi, xi);
          continue;
        }
        if (x < -0.5 || x > W - 0.5 || y < -0.5 || y > H - 0.5 || z < -0.5 || z > D - 0.5) continue;
        const cx = Math.min(Math.max(x, 0), W - 1),
          cy = Math.min(Math.max(y, 0), H - 1),
          cz = Math.min(Math.max(z, 0), D - 1);
        const x0 = Math.floor(cx),
          y0 = Math.floor(cy),
          z0 = Math.floor(cz);
        const x1 = Math.min(x0 + 1, W - 1),
          y1 = Math.min(y0 + 1, H - 1),
          z1 = Math.min(z0 + 1, D - 1);
        const fx = cx - x0,
          fy = cy - y0,
          fz = cz - z0;
        const c00 = at(z0, y0, x0) * (1 - fx) + at(z0, y0, x1) * fx;
        const c01 = at(z0, y1, x0) * (1 - fx) + at(z0, y1, x1) * fx;
        const c10 = at(z1, y0, x0) * (1 - fx) + at(z1, y0, x1) * fx;
        const c11 = at(z1, y1, x0) * (1 - fx) + at(z1, y1, x1) * fx;
        out[o] = (c00 * (1 - fy) + c01 * fy) * (1 - fz) + (c10 * (1 - fy) + c11 * fy) * fz;
      }
    }
  }
  return out;
}
