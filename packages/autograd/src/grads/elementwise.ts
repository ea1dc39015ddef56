import {
  add,
  cast,
  div,
  greater,
  greaterEqual,
  leakyReluGrad,
  lessEqual,
  logicalAnd,
  equal,
  log,
  mul,
  neg,
  pow,
  sign,
  sub,
  where,
  type Tensor,
} from '@largo/core';
import { registerGrad } from '../tape.js';
import { unbroadcast } from './util.js';

// Unary rules: y = f(x); dx = dy * f'(x), written with forward ops only.
registerGrad('neg', ([dy]) => [neg(dy)]);
registerGrad('exp', ([dy], { outputs: [y] }) => [mul(dy, y)]);
registerGrad('log', ([dy], { inputs: [x] }) => [div(dy, x)]);
registerGrad('sqrt', ([dy], { outputs: [y] }) => [div(dy, mul(y, 2))]);
registerGrad('abs', ([dy], { inputs: [x] }) => [mul(dy, sign(x))]);
// relu is leakyRelu with slope 0: x > 0 ? dy : 0·dy, the bits of mul(dy, greater(x, 0)) (0·Inf is NaN in both).
registerGrad('relu', ([dy], { inputs: [x] }) => [leakyReluGrad(x, dy, 0)]);
// One fused op for where(greater(x, 0), dy, mul(dy, alpha)), with the same bits.
registerGrad('leakyRelu', ([dy], { inputs: [x], attrs }) => [leakyReluGrad(x, dy, attrs.alpha)]);
// Linear in dy (the same op again); piecewise constant in x, so no cotangent for x (zero almost everywhere).
registerGrad('leakyReluGrad', ([g], { inputs: [x], attrs, needs }) => [
  null,
  needs[1] ? leakyReluGrad(x, g, attrs.alpha) : null,
]);
registerGrad('sigmoid', ([dy], { outputs: [y] }) => [mul(dy, mul(y, sub(1, y)))]);
registerGrad('tanh', ([dy], { outputs: [y] }) => [mul(dy, sub(1, mul(y, y)))]);
// Gradient flows where the input was inside [min, max] (PyTorch: inclusive bounds).
registerGrad('clamp', ([dy], { inputs: [x], attrs }) => [
  mul(dy, logicalAnd(greaterEqual(x, attrs.min), lessEqual(x, attrs.max))),
]);

// A cast between float dtypes is differentiable: the cotangent goes back in the input's dtype.
registerGrad('cast', ([dy], { inputs: [x] }) => [cast(dy, x.dtype)]);

registerGrad('add', ([dy], { inputs: [a, b] }) => [unbroadcast(dy, a.shape), unbroadcast(dy, b.shape)]);
registerGrad('sub', ([dy], { inputs: [a, b] }) => [unbroadcast(dy, a.shape), unbroadcast(neg(dy), b.shape)]);
registerGrad('mul', ([dy], { inputs: [a, b], needs }) => [
  needs[0] ? unbroadcast(mul(dy, b), a.shape) : null,
  needs[1] ? unbroadcast(mul(dy, a), b.shape) : null,
]);
registerGrad('div', ([dy], { inputs: [a, b], needs }) => [
  needs[0] ? unbroadcast(div(dy, b), a.shape) : null,
  needs[1] ? unbroadcast(neg(div(mul(dy, a), mul(b, b))), b.shape) : null,
]);
registerGrad('pow', ([dy], { inputs: [a, b], outputs: [y], needs }) => [
  needs[0] ? unbroadcast(mul(dy, mul(b, pow(a, sub(b, 1)))), a.shape) : null,
  // d/db a^b = a^b ln a; defined as 0 where a == 0 and the term would be 0·(−∞).
  needs[1] ? unbroadcast(mul(dy, where(equal(a, 0), 0, mul(y, log(a)))), b.shape) : null,
]);

/** maximum/minimum: the winner takes the gradient; ties split it evenly, as PyTorch does. */
function pickRule(winA: (a: Tensor, b: Tensor) => Tensor) {
  return (
    [dy]: readonly Tensor[],
    { inputs: [a, b], needs }: { inputs: readonly Tensor[]; needs: readonly boolean[] },
  ) => {
    const tie = equal(a, b);
    const wa = add(winA(a, b), mul(tie, 0.5));
    const wb = sub(1, wa);
    return [needs[0] ? unbroadcast(mul(dy, wa), a.shape) : null, needs[1] ? unbroadcast(mul(dy, wb), b.shape) : null];
  };
}
registerGrad(
  'maximum',
  pickRule((a, b) => greater(a, b)),
);
registerGrad(
  'minimum',
  pickRule((a, b) => greater(b, a)),
);

registerGrad('where', ([dy], { inputs: [c, a, b], needs }) => [
  null,
  needs[1] ? unbroadcast(where(c, dy, 0), a.shape) : null,
  needs[2] ? unbroadcast(where(c, 0, dy), b.shape) : null,
]);
