// Inverted dropout, composed of `mul` with a constant Philox mask (no kernel of its own).
import { engine } from '../engine.js';
import { OpError, fmtShape } from '../errors.js';
import { defaultGenerator, type Philox } from '../rng.js';
import type { Tensor } from '../tensor.js';
import { mul } from './elementwise.js';
import { reshape } from './layout.js';
import { assertFloat, assertTensor } from './util.js';

export interface DropoutOpts {
  /** Source of the mask (the default generator when omitted); consumes one uniform per element. */
  generator?: Philox;
  /** When false the input passes through unchanged (default true). */
  training?: boolean;
}

/**
 * Inverted dropout: each element is kept with probability 1 − p (Philox
 * uniform u < 1 − p) and scaled by 1/(1 − p). p = 0 or training = false is
 * the identity (a view of x); p = 1 gives x·0. Composed of `mul` with a
 * constant mask, so the gradient is dy·mask/(1 − p). Bitwise reproducible
 * for a given generator state.
 */
export function dropout(x: Tensor, p: number, opts: DropoutOpts = {}): Tensor {
  const op = 'dropout';
  assertTensor(op, x);
  assertFloat(op, x);
  if (!(p >= 0 && p <= 1)) throw new OpError(op, `p must be in [0, 1], got ${p} (input ${fmtShape(x.shape)})`);
  if (p === 0 || opts.training === false) return reshape(x, x.shape);
  if (p === 1) return mul(x, 0);
  const u = (opts.generator ?? defaultGenerator()).uniform(x.size);
  const keep = 1 - p,
    scale = 1 / keep;
  const m = x.dtype === 'float64' ? new Float64Array(x.size) : new Float32Array(x.size);
  for (let i = 0; i < m.length; i++) m[i] = u[i] < keep ? scale : 0;
  const mask = engine().fromValues(m, x.shape, x.dtype, x.backend);
  const y = mul(x, mask);
  mask.dispose();
  return y;
}
