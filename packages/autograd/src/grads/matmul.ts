import { matmul, type MatmulOptions } from '@largo/core';
import { registerGrad } from '../tape.js';
import { unbroadcast } from './util.js';

/**
 * Y = op(A)·op(B) (the kernel op sees operands of rank >= 2; the public op's
 * 1-d lifting is a recorded reshape). With G = dY:
 *   d op(A) = G·op(B)ᵀ and d op(B) = op(A)ᵀ·G,
 * transposed back when the forward used a transpose flag; every product is
 * expressed with the flags, so nothing is transposed in memory. Broadcast
 * batch axes are summed back to each operand's shape.
 */
registerGrad('matmul', ([dy], { inputs: [a, b], attrs, needs }) => {
  const tA = !!attrs.transposeA,
    tB = !!attrs.transposeB;
  const da = !needs[0]
    ? null
    : tA
      ? matmul(b, dy, { transposeA: tB, transposeB: true }) // (G·op(B)ᵀ)ᵀ = op(B)·Gᵀ
      : matmul(dy, b, { transposeB: !tB });
  const db = !needs[1]
    ? null
    : tB
      ? matmul(dy, a, { transposeA: true, transposeB: tA }) // (op(A)ᵀ·G)ᵀ = Gᵀ·op(A)
      : matmul(a, dy, { transposeA: !tA });
  return [da && unbroadcast(da, a.shape), db && unbroadcast(db, b.shape)];
});
