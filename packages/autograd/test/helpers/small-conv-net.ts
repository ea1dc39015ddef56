// The small 3-D conv net shared by the memory and determinism tests:
// conv3d → instance norm → leaky ReLU → strided conv3d → transposed conv3d
// → skip concat → 1×1×1 head, with seeded Kaiming-normal weights.
import * as C from '@largo/core';
import { Philox, type Tensor } from '@largo/core';
import { requireGrad } from '@largo/autograd';

export const N = 2,
  CIN = 1,
  F = 4,
  K = 2,
  S = 4; // batch, input channels, features, classes, spatial extent

/** Kaiming-normal weights from a seeded stream (fan-in scaling). */
export function kaiming(shape: number[], g: Philox): Tensor {
  const fanIn = shape.slice(1).reduce((a, b) => a * b, 1);
  return requireGrad(C.randn(shape, { generator: g, std: Math.sqrt(2 / fanIn) }));
}

export function build(seed: number) {
  const g = new Philox(seed);
  const params: [string, Tensor][] = [
    ['conv1.w', kaiming([F, CIN, 3, 3, 3], g)],
    ['conv1.b', requireGrad(C.zeros([F]))],
    ['norm.w', requireGrad(C.ones([F]))],
    ['norm.b', requireGrad(C.zeros([F]))],
    ['down.w', kaiming([F, F, 3, 3, 3], g)],
    ['up.w', kaiming([F, F, 2, 2, 2], g)],
    ['head.w', kaiming([K, 2 * F, 1, 1, 1], g)],
    ['head.b', requireGrad(C.zeros([K]))],
  ];
  const p = Object.fromEntries(params) as Record<string, Tensor>;
  const forward = (x: Tensor): Tensor => {
    const h = C.leakyRelu(
      C.instanceNorm(C.conv3d(x, p['conv1.w'], p['conv1.b'], { padding: 1 }), p['norm.w'], p['norm.b']),
      0.01,
    );
    const d = C.leakyRelu(C.conv3d(h, p['down.w'], null, { stride: 2, padding: 1 }), 0.01);
    const u = C.convTranspose3d(d, p['up.w'], null, { stride: 2 });
    return C.conv3d(C.concat([h, u], 1), p['head.w'], p['head.b']);
  };
  return { params, forward, data: new Philox(seed + 1) };
}
