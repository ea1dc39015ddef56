/**
 * 02 · Autograd and a gradient check.
 *
 * Every op records itself on a tape; backward() walks the tape in reverse
 * and applies one gradient rule per op. A rule is trusted only after it has
 * been compared with finite differences (in float64, where differences are
 * precise enough to say something) — here for a 3-D convolution.
 *
 * Run: npx tsx examples/02-autograd.ts
 */
import { add, conv3d, conv3dGradInput, mul, randn, sum, tensor, tidy, type Tensor } from '@largo/core';
import { backward, gradcheck, requireGrad } from '@largo/autograd';

const fmt = (v: ArrayLike<number>) => `[${Array.from(v, (x) => x.toFixed(3)).join(', ')}]`;

// #region tape
// f(a, b) = Σ a·b + a²   →   ∂f/∂a = b + 2a,   ∂f/∂b = a
const a = requireGrad(tensor([1, 2, 3]));
const b = requireGrad(tensor([4, 5, 6]));
const f = sum(add(mul(a, b), mul(a, a)));
backward(f);
console.log(`f = ${f.item()}`);
console.log(`df/da = ${fmt(a.grad!.dataSync())}  (b + 2a = [6, 9, 12])`);
console.log(`df/db = ${fmt(b.grad!.dataSync())}  (a = [1, 2, 3])`);
// #endregion tape

// #region gradcheck
// gradcheck projects the output on a fixed random direction u and compares
// autograd's ∂⟨f(x), u⟩/∂x with (⟨f(x+ε), u⟩ − ⟨f(x−ε), u⟩) / 2ε, element by element.
const C = 2, O = 2, D = 4;
const x = randn([1, C, D, D, D], { seed: 1, dtype: 'float64' });
const w = randn([O, C, 3, 3, 3], { seed: 2, dtype: 'float64' });
const opts = { stride: [1, 2, 1] as const, padding: [1, 1, 0] as const };
const r = gradcheck((xx: Tensor, ww: Tensor) => conv3d(xx, ww, null, opts), [x, w]);
console.log(`conv3d gradcheck: ${r.ok ? 'pass' : 'FAIL'} over ${r.checked} elements, max abs err ${r.maxAbsErr.toExponential(0)}`);
// #endregion gradcheck

// #region adjoint
// The input gradient of a convolution is the adjoint (transpose) of the
// convolution as a linear map, so  ⟨conv(x, w), u⟩ = ⟨x, convᵀ(u, w)⟩  for any u.
const lhsRhs = tidy(() => {
  const y = conv3d(x, w, null, opts);
  const u = randn(y.shape, { seed: 3, dtype: 'float64' });
  const lhs = sum(mul(y, u)).item();
  const rhs = sum(mul(x, conv3dGradInput(u, w, x.shape, opts))).item();
  return [lhs, rhs];
});
console.log(`<conv(x,w), u> = ${lhsRhs[0]!.toFixed(9)}`);
console.log(`<x, conv^T(u,w)> = ${lhsRhs[1]!.toFixed(9)}`);
// #endregion adjoint
