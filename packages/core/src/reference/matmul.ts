import { refBroadcastShape } from './elementwise.js';
import { flatIndex, multiIndex, refTensor, type RefTensor } from './types.js';

/**
 * Textbook matrix product with NumPy semantics: 1-d operands are promoted
 * (a → [1, K], b → [K, 1]) and the added axis dropped from the result; batch
 * axes broadcast; the transpose flags swap the last two axes of a rank >= 2
 * operand. Triple loop per batch element, float64 accumulation.
 */
export function refMatmul(
  a: RefTensor,
  b: RefTensor,
  opts: { transposeA?: boolean; transposeB?: boolean } = {},
): RefTensor {
  const a1 = a.shape.length === 1,
    b1 = b.shape.length === 1;
  const A = a1 ? { shape: [1, a.shape[0]], data: a.data } : opts.transposeA ? swapLast(a) : a;
  const B = b1 ? { shape: [b.shape[0], 1], data: b.data } : opts.transposeB ? swapLast(b) : b;
  const ra = A.shape.length,
    rb = B.shape.length;
  const M = A.shape[ra - 2],
    K = A.shape[ra - 1],
    N = B.shape[rb - 1];
  if (B.shape[rb - 2] !== K) throw new Error('reference matmul: inner dimensions differ');
  const batchA = A.shape.slice(0, ra - 2),
    batchB = B.shape.slice(0, rb - 2);
  const batch = refBroadcastShape(batchA, batchB);
  const out = refTensor([...batch, M, N]);
  for (let f = 0; f < out.data.length; f++) {
    const idx = multiIndex(out.shape, f);
    const bidx = idx.slice(0, batch.length);
    const i = idx[batch.length],
      j = idx[batch.length + 1];
    const ia = batchIndex(batchA, bidx),
      ib = batchIndex(batchB, bidx);
    let s = 0;
    for (let k = 0; k < K; k++) {
      s += A.data[flatIndex(A.shape, [...ia, i, k])] * B.data[flatIndex(B.shape, [...ib, k, j])];
    }
    out.data[f] = s;
  }
  const shape = [...batch];
  if (!a1) shape.push(M);
  if (!b1) shape.push(N);
  return { shape, data: out.data };
}

/** The batch index of an operand inside the broadcast batch index. */
function batchIndex(shape: readonly number[], outIdx: readonly number[]): number[] {
  const off = outIdx.length - shape.length;
  return shape.map((d, k) => (d === 1 ? 0 : outIdx[k + off]));
}

function swapLast(x: RefTensor): RefTensor {
  const r = x.shape.length;
  const shape = [...x.shape];
  [shape[r - 2], shape[r - 1]] = [shape[r - 1], shape[r - 2]];
  const out = refTensor(shape);
  for (let f = 0; f < x.data.length; f++) {
    const idx = multiIndex(x.shape, f);
    [idx[r - 2], idx[r - 1]] = [idx[r - 1], idx[r - 2]];
    out.data[flatIndex(shape, idx)] = x.data[f];
  }
  return out;
}
