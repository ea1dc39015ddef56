// Gradient rules of softmax / logSoftmax, composed of forward ops.
import { exp, mul, sub, sum } from '@largo/core';
import { registerGrad } from '../tape.js';

// y = softmax(x): dx = y·(dy − Σ dy·y)
registerGrad('softmax', ([dy], { outputs: [y], attrs }) => [mul(y, sub(dy, sum(mul(dy, y), attrs.axis, true)))]);

// y = logSoftmax(x): dx = dy − softmax(x)·Σ dy, with softmax = exp(y)
registerGrad('logSoftmax', ([dy], { outputs: [y], attrs }) => [sub(dy, mul(exp(y), sum(dy, attrs.axis, true)))]);
