/**
 * Export one subset's network from a family as a plain network: every
 * factorized (CP / Tucker) or copied (dedicated) layer is replaced by subset
 * k's reconstructed kernel and bias, the per-subset stem / head / norm
 * affines by copy k. The tensor names are those of a plain (shared) U-Net
 * with |S_k| input channels — `buildSegmentationFamily({ method: 'full-only',
 * modalities: |S_k|, ... })` loads them as they are.
 */
import { engine, tidy, type Tensor } from '@largo/core';
import { noGrad } from '@largo/autograd';
import { Layer } from '../layers/base.js';
import { FamilyLayer } from '../layers/family.js';
import { PerSubset, SubsetStem } from '../layers/subset.js';
import { InstanceNorm3d, SubsetInstanceNorm, LayerNorm, SubsetLayerNorm } from '../layers/norm.js';
import { row } from '../layers/weights.js';

/** name → values of subset k's plain network, in the network's parameter order (read back from any backend). */
export async function plainSubsetWeights(
  net: Layer,
  k: number,
): Promise<Map<string, { shape: number[]; data: Float32Array }>> {
  // the tensors are built first (kept), then read: on a device all reads are in flight together
  const made = new Map<string, Tensor>();
  // a second handle on the storage: outlives the tidy scope, and disposing it never frees a parameter
  const f32 = (t: Tensor): Tensor => engine().share(t);
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  const join = (p: string, n: string) => (p ? `${p}.${n}` : n);
  const emitFamily = (f: FamilyLayer, path: string, kk: number) => {
    noGrad(() =>
      tidy(() => {
        made.set(join(path, 'weight'), f32(f.weight(f.shared ? 0 : kk)));
        if (f.bias) made.set(join(path, 'bias'), f32(f.bias.rank === 1 ? f.bias : row(f.bias, kk)));
      }),
    );
  };
  const walk = (l: Layer, path: string): void => {
    if (l instanceof SubsetStem) {
      emitFamily(l.copies[k]!, path, 0);
      return;
    }
    if (l instanceof PerSubset) {
      walk(l.copies[k]!, path);
      return;
    }
    if (l instanceof FamilyLayer) {
      emitFamily(l, path, k);
      return;
    }
    if (
      l instanceof InstanceNorm3d ||
      l instanceof SubsetInstanceNorm ||
      l instanceof LayerNorm ||
      l instanceof SubsetLayerNorm
    ) {
      noGrad(() =>
        tidy(() => {
          made.set(join(path, 'weight'), f32(l.weight.rank === 1 ? l.weight : row(l.weight, k)));
          made.set(join(path, 'bias'), f32(l.bias.rank === 1 ? l.bias : row(l.bias, k)));
        }),
      );
      return;
    }
    for (const [name, c] of l.childLayers()) walk(c, name === '' ? path : join(path, name));
  };
  walk(net, '');
  const reads = [...made].map(async ([name, t]) => {
    const d = t.backend.name === 'cpu' ? t.dataSync() : await t.data();
    return [
      name,
      { shape: [...t.shape], data: d instanceof Float32Array ? d : Float32Array.from(d as ArrayLike<number>) },
    ] as [string, { shape: number[]; data: Float32Array }];
  });
  try {
    for (const [name, v] of await Promise.all(reads)) out.set(name, v);
  } finally {
    for (const t of made.values()) t.dispose();
  }
  return out;
}
