// Float64 oracle of inverted dropout (same Philox mask as the op).
import type { Philox } from '../rng.js';
import { refTensor, type RefTensor } from './types.js';

/**
 * Inverted dropout with the mask drawn from `gen` (pass a generator in the
 * same state as the op's): keep where u < 1 − p, scale by 1/(1 − p).
 */
export function refDropout(x: RefTensor, p: number, gen: Philox): RefTensor {
  const out = refTensor(x.shape);
  if (p === 0) {
    out.data.set(x.data);
    return out;
  }
  if (p === 1) {
    for (let i = 0; i < x.data.length; i++) out.data[i] = x.data[i] * 0;
    return out;
  }
  const u = gen.uniform(x.data.length);
  for (let i = 0; i < x.data.length; i++) out.data[i] = u[i] < 1 - p ? x.data[i] / (1 - p) : 0;
  return out;
}
