import { conv3d, conv3dGradInput, conv3dGradWeight, slice, sum, type Tensor } from '@largo/core';
import { registerGrad } from '../tape.js';

/**
 * The three convolution kernels are bilinear and adjoint to one another, so
 * each one's gradient is the other two (docs/design.md: transposed convolution
 * reuses them with roles swapped). conv2d and convTranspose3d reach these
 * rules through their kernels (conv3d with depth 1, and conv3dGradInput).
 */

/** conv3d over an input bigger than needed can yield extra trailing voxels; keep the leading `shape`. */
function cropTo(y: Tensor, shape: readonly number[]): Tensor {
  if (y.shape.every((d, i) => d === shape[i])) return y;
  return slice(
    y,
    shape.map(() => 0),
    shape,
  );
}

const BIAS_AXES = [0, 2, 3, 4];

// y = conv3d(x, w) + b
registerGrad('conv3d', ([dy], { inputs: [x, w, b], attrs, needs }) => [
  needs[0] ? conv3dGradInput(dy, w, x.shape, attrs) : null,
  needs[1] ? conv3dGradWeight(x, dy, w.shape, attrs) : null,
  b && needs[2] ? sum(dy, BIAS_AXES) : null,
]);

// z = conv3dGradInput(g, w) + b  (the transposed-convolution forward):
// ⟨GI(g, w), dz⟩ = ⟨g, conv3d(dz, w)⟩ = ⟨w, GW(dz, g)⟩.
registerGrad('conv3dGradInput', ([dz], { inputs: [g, w, b], attrs, needs }) => [
  needs[0] ? cropTo(conv3d(dz, w, null, attrs), g.shape) : null,
  needs[1] ? conv3dGradWeight(dz, g, w.shape, attrs) : null,
  b && needs[2] ? sum(dz, BIAS_AXES) : null,
]);

// v = conv3dGradWeight(x, g): ⟨GW(x, g), dv⟩ = ⟨x, GI(g, dv)⟩ = ⟨g, conv3d(x, dv)⟩.
registerGrad('conv3dGradWeight', ([dv], { inputs: [x, g], attrs, needs }) => [
  needs[0] ? conv3dGradInput(g, dv, x.shape, attrs) : null,
  needs[1] ? cropTo(conv3d(x, dv, null, attrs), g.shape) : null,
]);
