/**
 * Which parameters belong to one subset only (config `train.subsetLrScale`):
 * the uncompressed stem / head / projection copies, the per-subset norm
 * affines and biases ([K, C]), the CP model factor A_model [K, R] and the
 * Tucker cores [K, ...], and dedicated copies [K, ...]. Everything else (the
 * CP / Tucker factors of the inner layers) is shared by all subsets.
 */
import { Layer } from '../layers/base.js';
import { FamilyLayer } from '../layers/family.js';

export function perSubsetParamNames(net: Layer): Set<string> {
  const out = new Set<string>();
  for (const p of net.parameterInfo()) {
    const l = p.layer;
    if (l.role === 'stem' || l.role === 'head' || l.role === 'norm') {
      out.add(p.name);
      continue;
    }
    if (p.kind === 'cp.model' || p.kind === 'tucker.core') {
      out.add(p.name);
      continue;
    }
    if (
      l instanceof FamilyLayer &&
      !l.shared &&
      (p.kind === 'bias' || (p.kind === 'weight' && p.tensor.shape[0] === l.numSubsets))
    )
      out.add(p.name);
  }
  return out;
}
