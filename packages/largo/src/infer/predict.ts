/**
 * Whole-volume prediction with a segmentation family: zero-fill the missing
 * modalities, cache subset k's reconstructed kernels (so LARGO costs one
 * plain network), and run the sliding window.
 */
import { tensor, tidy } from '@largo/core';
import { noGrad } from '@largo/autograd';
import type { SegmentationFamily } from '../module.js';
import { subsetMask } from '../subsets.js';
import { slidingWindow, type PatchPredictor, type SlidingWindowOptions } from './sliding-window.js';

/** Anything that can pre-compute one subset's weights for inference (every `Layer`). */
interface Cacheable {
  cacheSubset?(k: number): void;
  train(on: boolean): void;
}

/** A copy of image [M, ...] with the channels missing from subset k set to zero. */
export function zeroFill(image: Float32Array, M: number, k: number): Float32Array {
  const mask = subsetMask(k, M);
  const n = image.length / M;
  const out = image.slice();
  for (let m = 0; m < M; m++) if (!mask[m]) out.fill(0, m * n, (m + 1) * n);
  return out;
}

/** Eval mode + subset k's kernels cached (call once per subset before predicting many cases). */
export function prepareSubset(net: SegmentationFamily & Cacheable, k: number): void {
  net.train(false);
  noGrad(() => net.cacheSubset?.(k));
}

/** The network as a patch predictor for subset k (first output = full-resolution logits). */
export function familyPredictor(net: SegmentationFamily, k: number, patchSize: readonly number[]): PatchPredictor {
  const M = net.numModalities;
  return (patches, n) => {
    const logits = noGrad(() => tidy(() => net.forward(tensor(patches, [n, M, ...patchSize]), k)[0]!));
    // the CPU reads at once (no promise, no reordering); a device reads asynchronously
    if (logits.backend.name === 'cpu') {
      const d = logits.dataSync();
      logits.dispose();
      return d instanceof Float32Array ? d : Float32Array.from(d as ArrayLike<number>);
    }
    return logits
      .data()
      .then((d) => (d instanceof Float32Array ? d : Float32Array.from(d as ArrayLike<number>)))
      .finally(() => logits.dispose());
  };
}

export interface PredictVolumeOptions extends Omit<SlidingWindowOptions, 'patchSize'> {
  patchSize: readonly number[];
  /** skip zero-filling (the image already has the missing channels zeroed) */
  alreadyZeroFilled?: boolean;
}

/**
 * Fused logits [C, D, H, W] of subset k for image [M, D, H, W]. The caller
 * puts the net in eval mode and caches the subset (`prepareSubset`).
 */
export function predictVolume(
  net: SegmentationFamily,
  image: Float32Array,
  spatial: readonly number[],
  k: number,
  o: PredictVolumeOptions,
): Promise<Float32Array> {
  const M = net.numModalities;
  const x = o.alreadyZeroFilled ? image : zeroFill(image, M, k);
  return slidingWindow(x, [M, ...spatial], net.numClasses, familyPredictor(net, k, o.patchSize), o);
}
