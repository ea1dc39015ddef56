// Gradient rules of the losses: each calls the loss's backward kernel (`*Grad`).
import { bceWithLogitsGrad, crossEntropyGrad, softDiceLossGrad } from '@largo/core';
import { registerGrad } from '../tape.js';

// inputs [logits, target, weight?]: no gradient for integer targets or class weights (as PyTorch).
registerGrad('crossEntropy', ([dy], { inputs, attrs }) => {
  const [logits, target] = inputs;
  const weight = attrs.hasWeight ? inputs[2] : null;
  return [crossEntropyGrad(logits, target, dy, { ignoreIndex: attrs.ignoreIndex, weight }), null, null];
});

registerGrad('bceWithLogits', ([dy], { inputs: [x, t] }) => {
  const { dlogits, dtarget } = bceWithLogitsGrad(x, t, dy);
  return [dlogits, dtarget];
});

registerGrad('softDiceLoss', ([dy], { inputs: [p, t], attrs }) => {
  const { dprobs, dtarget } = softDiceLossGrad(p, t, dy, attrs);
  return [dprobs, dtarget];
});
