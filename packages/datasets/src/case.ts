/**
 * One case as arrays or tensors, and the dataset interface shared by BraTS,
 * ISLES and the phantom. No Node imports (the phantom runs in browsers).
 */
import { toTensor, type Tensor } from './tensor.js';

/** One case as plain arrays (row-major). */
export interface CaseArrays {
  id: string;
  /** [M, D, H, W] float32; a missing modality is all zeros */
  image: Float32Array;
  imageShape: number[];
  /** region channels [R, D, H, W] (0/1) or a label map [1, D, H, W]; null when the case has no label file */
  label: Uint8Array | null;
  labelShape: number[] | null;
  /** mm per voxel along D, H, W */
  spacing: number[];
  /** NIfTI voxel (i=W, j=H, k=D) → world matrix of the (cropped/resampled) grid */
  affine: number[][];
  /** per modality: true when it was absent and filled with zeros */
  missing: boolean[];
}

/** One case as tensors: image [M,D,H,W] float32, label [R,D,H,W] uint8 (or [1,D,H,W] label map). */
export interface CaseSample {
  id: string;
  image: Tensor;
  label: Tensor | null;
  spacing: number[];
  affine: number[][];
  missing: boolean[];
}

export type LabelMode = 'regions' | 'labels';

export interface Dataset {
  readonly name: string;
  readonly cases: string[];
  readonly modalities: string[];
  /** names of the label channels: region names, or ['labels'] in 'labels' mode */
  readonly labelChannels: string[];
  loadArrays(caseId: string): Promise<CaseArrays>;
  load(caseId: string): Promise<CaseSample>;
}

/** Convert plain case arrays to tensors (the caller owns and disposes them). */
export function caseToTensors(c: CaseArrays): CaseSample {
  return {
    id: c.id,
    image: toTensor(c.image, c.imageShape),
    label: c.label && c.labelShape ? toTensor(c.label, c.labelShape) : null,
    spacing: c.spacing,
    affine: c.affine,
    missing: c.missing,
  };
}
