// Gradient rules of the network ops. Each either composes forward ops or
// calls the op's dedicated backward kernel (exposed by core as `*Grad`).
import {
  bceWithLogitsGrad, cpReconstructGrad, crossEntropyGrad, exp, instanceNormGrad, mul, softDiceLossGrad, sub, sum,
  type Tensor,
} from '@largo/core';
import { registerGrad } from '../tape.js';

interface SoftmaxAttrs { axis: number }

// y = softmax(x): dx = y·(dy − Σ dy·y)
registerGrad<SoftmaxAttrs>('softmax', ([dy], { outputs: [y], attrs }) =>
  [mul(y, sub(dy, sum(mul(dy, y), attrs.axis, true)))]);

// y = logSoftmax(x): dx = dy − softmax(x)·Σ dy, with softmax = exp(y)
registerGrad<SoftmaxAttrs>('logSoftmax', ([dy], { outputs: [y], attrs }) =>
  [sub(dy, mul(exp(y), sum(dy, attrs.axis, true)))]);

interface InstanceNormAttrs { eps: number; hasWeight: boolean; hasBias: boolean }

// inputs [x, weight?, bias?], outputs [y, mean, invstd]. The statistics'
// cotangents (zeros unless instanceNormWithStats' outputs were used) fold
// into the backward kernel at no extra pass.
registerGrad<InstanceNormAttrs>('instanceNorm', ([dy, dmean, dinvstd], { inputs, outputs: [, mean, invstd], attrs, needs }) => {
  const x = inputs[0];
  const weight = attrs.hasWeight ? inputs[1] : null;
  const { dx, dweight, dbias } = instanceNormGrad(dy, x, mean, invstd, weight, { dmean, dinvstd });
  const out: (Tensor | null)[] = [needs[0] ? dx : null];
  if (attrs.hasWeight) out.push(needs[out.length] ? dweight : null);
  if (attrs.hasBias) out.push(needs[out.length] ? dbias : null);
  return out;
});

interface CrossEntropyAttrs { ignoreIndex: number; hasWeight: boolean }

// inputs [logits, target, weight?]: no gradient for integer targets or class weights (as PyTorch).
registerGrad<CrossEntropyAttrs>('crossEntropy', ([dy], { inputs, attrs }) => {
  const [logits, target] = inputs;
  const weight = attrs.hasWeight ? inputs[2] : null;
  return [crossEntropyGrad(logits, target, dy, { ignoreIndex: attrs.ignoreIndex, weight }), null, null];
});

registerGrad('bceWithLogits', ([dy], { inputs: [x, t] }) => {
  const { dlogits, dtarget } = bceWithLogitsGrad(x, t, dy);
  return [dlogits, dtarget];
});

interface SoftDiceAttrs { smooth: number; batchDice: boolean; reduction: 'mean' | 'none' }

registerGrad<SoftDiceAttrs>('softDiceLoss', ([dy], { inputs: [p, t], attrs }) => {
  const { dprobs, dtarget } = softDiceLossGrad(p, t, dy, attrs);
  return [dprobs, dtarget];
});

registerGrad('cpReconstruct', ([dW], { inputs: [w, a, b, k] }) => {
  const { dweights, daOut, daIn, daKernel } = cpReconstructGrad(dW, w, a, b, k);
  return [dweights, daOut, daIn, daKernel];
});
