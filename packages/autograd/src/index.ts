export * from './tape.js';
export * from './grads/util.js';
import './grads/elementwise.js';
import './grads/reduce.js';
import './grads/layout.js';
export * from './gradcheck.js';
import './grads/matmul.js';
import './grads/nn.js';
import './grads/conv.js';
