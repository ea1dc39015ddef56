/**
 * Evaluation over cases × modality subsets: Dice and HD95 per region for
 * segmentation, accuracy for avMNIST. Subsets are visited in the outer loop
 * so each subset's kernels are reconstructed once (cached) for all cases.
 */
import { tensor, tidy, argmax, type Tensor } from '@largo/core';
import { noGrad } from '@largo/autograd';
import type { CaseArrays, AvMnistSplit } from '@largo/datasets';
import type { SegmentationFamily } from '../module.js';
import { numSubsets, subsetMask } from '../subsets.js';
import { predictVolume, prepareSubset } from '../infer/predict.js';
import { regionScores } from './metrics.js';
import { gtRegions, predRegions, type SegData } from '../train/data.js';
import type { CaseRecord } from '../report/table.js';
import type { AvMnistNet } from '../nets/avmnist.js';

export interface SegEvalOptions {
  patchSize: readonly number[];
  step?: number;
  mirror?: boolean;
  hd95?: boolean;
  batchSize?: number;
  /** subsets to evaluate (default all) */
  subsets?: readonly number[];
  /** keep the predicted region masks of these (case, subset) pairs for figures */
  keep?: (caseId: string, subset: number) => boolean;
  /** called after each subset */
  onSubset?: (k: number, seconds: number) => void;
}

export interface SegEvalResult {
  records: CaseRecord[];
  /** kept predictions: `${caseId}\u0000${subset}` → region masks [R, ...spatial] */
  kept: Map<string, Uint8Array>;
  seconds: number;
}

export async function evaluateSegmentation(
  net: SegmentationFamily & { cacheSubset?(k: number): void; train(on: boolean): void },
  method: string,
  data: SegData,
  cases: readonly CaseArrays[],
  o: SegEvalOptions,
): Promise<SegEvalResult> {
  const t0 = performance.now();
  const M = net.numModalities;
  const subsets = o.subsets ?? Array.from({ length: numSubsets(M) }, (_, k) => k);
  const records: CaseRecord[] = [];
  const kept = new Map<string, Uint8Array>();
  const gts = cases.map((c) => gtRegions(c, data));
  for (const k of subsets) {
    const ts = performance.now();
    prepareSubset(net, k);
    for (let ci = 0; ci < cases.length; ci++) {
      const c = cases[ci]!;
      const spatial = c.imageShape.slice(1);
      const n = spatial.reduce((a, b) => a * b, 1);
      const logits = await predictVolume(net, c.image, spatial, k, {
        patchSize: o.patchSize,
        step: o.step,
        mirror: o.mirror,
        batchSize: o.batchSize,
      });
      const pred = predRegions(logits, data, n);
      const s = regionScores(pred, gts[ci]!, data.regions.length, spatial, c.spacing, o.hd95 ?? true);
      records.push({ method, subset: k, caseId: c.id, values: s.dice, hd95: o.hd95 === false ? undefined : s.hd95 });
      if (o.keep?.(c.id, k)) kept.set(`${c.id}\u0000${k}`, pred);
    }
    o.onSubset?.(k, (performance.now() - ts) / 1000);
  }
  return { records, kept, seconds: (performance.now() - t0) / 1000 };
}

/** Predicted classes of an avMNIST split for subset k (batched, eval mode). */
export async function avPredict(net: AvMnistNet, s: AvMnistSplit, k: number, batch = 256): Promise<Int32Array> {
  // eval mode under noGrad: each factorized layer reconstructs and caches the kernel of the index it is
  // called with (the encoders use their own subset numbering, so no explicit cacheSubset(k) here)
  net.train(false);
  const mask = subsetMask(k, 2);
  const out = new Int32Array(s.count);
  const [, ih, iw] = s.imageShape as [number, number, number];
  const [, ak, at] = s.audioShape as [number, number, number];
  for (let b = 0; b < s.count; b += batch) {
    const n = Math.min(batch, s.count - b);
    const pred = noGrad(() =>
      tidy(() => {
        const image: Tensor | undefined = mask[0]
          ? tensor(s.images.slice(b * ih * iw, (b + n) * ih * iw), [n, 1, ih, iw])
          : undefined;
        const audio: Tensor | undefined = mask[1]
          ? tensor(s.audio.slice(b * ak * at, (b + n) * ak * at), [n, 1, ak, at])
          : undefined;
        return argmax(net.forward({ image, audio }, k), 1);
      }),
    );
    const values = pred.backend.name === 'cpu' ? pred.dataSync() : await pred.data();
    pred.dispose();
    out.set(values as Int32Array, b);
  }
  return out;
}

/** Accuracy per subset on a split, as one record per subset (caseId = the split name). */
export async function evaluateAvMnist(
  net: AvMnistNet,
  method: string,
  s: AvMnistSplit,
  splitName = 'test',
  subsets: readonly number[] = [0, 1, 2],
): Promise<CaseRecord[]> {
  const out: CaseRecord[] = [];
  for (const k of subsets) {
    const p = await avPredict(net, s, k);
    let ok = 0;
    for (let i = 0; i < s.count; i++) if (p[i] === s.labels[i]) ok++;
    out.push({ method, subset: k, caseId: splitName, values: [ok / s.count] });
  }
  return out;
}
