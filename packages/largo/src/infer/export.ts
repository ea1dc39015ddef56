/**
 * Export one subset's network from a family as a plain network: every
 * factorized (CP / Tucker) or copied (dedicated) layer is replaced by subset
 * k's reconstructed kernel and bias, the per-subset stem / head / norm
 * affines by copy k. The tensor names are those of a plain (shared) U-Net
 * with |S_k| input channels — `buildSegmentationFamily({ method: 'full-only',
 * modalities: |S_k|, ... })` loads them as they are.
 */
import { tidy, type Tensor } from '@largo/core';
import { noGrad } from '@largo/autograd';
import { Layer } from '../layers/base.js';
import { FamilyLayer } from '../layers/family.js';
import { PerSubset, SubsetStem } from '../layers/subset.js';
import { InstanceNorm3d, SubsetInstanceNorm, LayerNorm, SubsetLayerNorm } from '../layers/norm.js';
import { row } from '../layers/weights.js';

function f32(t: Tensor): { shape: number[]; data: Float32Array } {
  const d = t.dataSync();
  return { shape: [...t.shape], data: d instanceof Float32Array ? d : Float32Array.from(d as ArrayLike<number>) };
}

/** name → values of subset k's plain network, in the network's parameter order. */
export function plainSubsetWeights(net: Layer, k: number): Map<string, { shape: number[]; data: Float32Array }> {
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  const join = (p: string, n: string) => (p ? `${p}.${n}` : n);
  const emitFamily = (f: FamilyLayer, path: string, kk: number) => {
    noGrad(() => tidy(() => {
      out.set(join(path, 'weight'), f32(f.weight(f.shared ? 0 : kk)));
      if (f.bias) out.set(join(path, 'bias'), f32(f.bias.rank === 1 ? f.bias : row(f.bias, kk)));
    }));
  };
  const walk = (l: Layer, path: string): void => {
    if (l instanceof SubsetStem) { emitFamily(l.copies[k]!, path, 0); return; }
    if (l instanceof PerSubset) { walk(l.copies[k]!, path); return; }
    if (l instanceof FamilyLayer) { emitFamily(l, path, k); return; }
    if (l instanceof InstanceNorm3d || l instanceof SubsetInstanceNorm || l instanceof LayerNorm || l instanceof SubsetLayerNorm) {
      noGrad(() => tidy(() => {
        out.set(join(path, 'weight'), f32(l.weight.rank === 1 ? l.weight : row(l.weight, k)));
        out.set(join(path, 'bias'), f32(l.bias.rank === 1 ? l.bias : row(l.bias, k)));
      }));
      return;
    }
    for (const [name, c] of l.childLayers()) walk(c, name === '' ? path : join(path, name));
  };
  walk(net, '');
  return out;
}
