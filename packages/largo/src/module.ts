import type { Tensor } from '@largo/core';

/**
 * Anything with trainable tensors. Names are stable dotted paths
 * ("enc.0.conv1.aOut") and the order is fixed, so checkpoints and the
 * optimizer state line up across runs.
 */
export interface Module {
  /** Named trainable parameters (leaves with requiresGrad), in a fixed order. */
  namedParameters(): [string, Tensor][];
  /** Switches dropout/augmentation-dependent behaviour. */
  train(on: boolean): void;
  /** Frees every parameter. */
  dispose(): void;
}

/**
 * A family of segmentation networks indexed by modality subset k (see subsets.ts).
 * Input: x [N, M, D, H, W] with ALL M modality channels in the fixed modality
 * order, missing ones zero-filled. Each method decides what to do with the
 * channels it is not given (LARGO selects the subset's channels for the
 * subset's own stem; the dropout baseline keeps the zeros).
 * Output: logits at full resolution first, then deep-supervision outputs at
 * decreasing resolutions (empty list of extras when deep supervision is off).
 */
export interface SegmentationFamily extends Module {
  readonly numModalities: number;
  readonly numClasses: number;
  forward(x: Tensor, subset: number): Tensor[];
}

export function paramCount(m: Module): number {
  let n = 0;
  for (const [, p] of m.namedParameters()) n += p.size;
  return n;
}
