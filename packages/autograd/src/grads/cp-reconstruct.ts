// Gradient rule of LARGO's CP reconstruction: the backward kernel `cpReconstructGrad`.
import { cpReconstructGrad } from '@largo/core';
import { registerGrad } from '../tape.js';

registerGrad('cpReconstruct', ([dW], { inputs: [w, a, b, k] }) => {
  const { dweights, daOut, daIn, daKernel } = cpReconstructGrad(dW, w, a, b, k);
  return [dweights, daOut, daIn, daKernel];
});
