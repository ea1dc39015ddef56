import { indexAdd, indexSelect, pad, permute, reshape, slice } from '@largo/core';
import { registerGrad } from '../tape.js';
import { unbroadcast } from './util.js';

registerGrad('reshape', ([dy], { inputs: [x] }) => [reshape(dy, x.shape)]);
registerGrad('permute', ([dy], { attrs }) => {
  const inv = new Array<number>(attrs.perm.length);
  attrs.perm.forEach((p, i) => {
    inv[p] = i;
  });
  return [permute(dy, inv)];
});
registerGrad('slice', ([dy], { inputs: [x], attrs }) => [
  pad(
    dy,
    x.shape.map((d, i) => [attrs.begin[i], d - attrs.begin[i] - attrs.size[i]] as [number, number]),
  ),
]);
registerGrad('pad', ([dy], { inputs: [x], attrs }) => [
  slice(
    dy,
    attrs.pads.map((p) => p[0]),
    x.shape,
  ),
]);
registerGrad('concat', ([dy], { inputs, attrs, needs }) => {
  let at = 0;
  return inputs.map((t, i) => {
    const begin = t.shape.map((_, d) => (d === attrs.axis ? at : 0));
    at += t.shape[attrs.axis];
    return needs[i] ? slice(dy, begin, t.shape) : null;
  });
});
registerGrad('indexSelect', ([dy], { inputs: [x, idx], attrs }) => [indexAdd(dy, attrs.axis, idx, x.shape), null]);
registerGrad('indexAdd', ([dy], { inputs: [, idx], attrs }) => [indexSelect(dy, attrs.axis, idx), null]);
registerGrad('broadcastTo', ([dy], { inputs: [x] }) => [unbroadcast(dy, x.shape)]);
