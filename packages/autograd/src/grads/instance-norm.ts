// Gradient rule of instance norm: the dedicated backward kernel `instanceNormGrad`.
import { instanceNormGrad, type Tensor } from '@largo/core';
import { registerGrad } from '../tape.js';

// inputs [x, weight?, bias?], outputs [y, mean, invstd]. The statistics'
// cotangents (zeros unless instanceNormWithStats' outputs were used) fold
// into the backward kernel at no extra pass.
registerGrad('instanceNorm', ([dy, dmean, dinvstd], { inputs, outputs: [, mean, invstd], attrs, needs }) => {
  const x = inputs[0];
  const weight = attrs.hasWeight ? inputs[1] : null;
  const { dx, dweight, dbias } = instanceNormGrad(dy, x, mean, invstd, weight, { dmean, dinvstd });
  const out: (Tensor | null)[] = [needs[0] ? dx : null];
  if (attrs.hasWeight) out.push(needs[out.length] ? dweight : null);
  if (attrs.hasBias) out.push(needs[out.length] ? dbias : null);
  return out;
});
