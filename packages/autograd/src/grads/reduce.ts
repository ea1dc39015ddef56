import { broadcastTo, div, equal, mul, reshape, sum, reducedShape, type ReduceAttrs, type Tensor } from '@largo/core';
import { registerGrad } from '../tape.js';

/** dy in the input's rank (reduced axes as size 1), ready to broadcast back. */
function expandBack(dy: Tensor, x: Tensor, axes: number[]): Tensor {
  return reshape(dy, reducedShape(x.shape, axes, true));
}

registerGrad('sum', ([dy], { inputs: [x], attrs }) => [broadcastTo(expandBack(dy, x, attrs.axes), x.shape)]);

/** max/min: the gradient is shared evenly among the positions that attain the extreme. */
function extremeRule(
  [dy]: readonly Tensor[],
  { inputs: [x], outputs: [y], attrs }: { inputs: readonly Tensor[]; outputs: readonly Tensor[]; attrs: ReduceAttrs },
) {
  const yk = expandBack(y, x, attrs.axes);
  const mask = equal(x, yk);
  const count = sum(mask, attrs.axes, true);
  return [mul(mask, div(expandBack(dy, x, attrs.axes), count))];
}
registerGrad('max', extremeRule);
registerGrad('min', extremeRule);
