import { engine } from '../engine.js';
import { OpError, fmtShape } from '../errors.js';
import type { Tensor } from '../tensor.js';
import { reshape } from './layout.js';
import { assertSameDtype, assertTensor, run1 } from './util.js';

export interface MatmulOptions {
  /** Use the transpose of the last two axes of `a` (ignored for a 1-d `a`). */
  transposeA?: boolean;
  /** Use the transpose of the last two axes of `b` (ignored for a 1-d `b`). */
  transposeB?: boolean;
}

/**
 * Matrix product with NumPy / PyTorch semantics: [..., M, K] × [..., K, N] →
 * [..., M, N] with the batch axes broadcast. A 1-d `a` is a row vector and a
 * 1-d `b` a column vector; the added axis is removed from the result. The
 * transpose flags are applied inside the kernel (no transposed copy).
 */
export function matmul(a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor {
  const op = 'matmul';
  assertTensor(op, a, 'a');
  assertTensor(op, b, 'b');
  for (const [x, n] of [
    [a, 'a'],
    [b, 'b'],
  ] as const) {
    if (x.dtype !== 'float32' && x.dtype !== 'float64')
      throw new OpError(op, `${n} must be float32 or float64, got ${x.dtype} ${fmtShape(x.shape)}`);
  }
  assertSameDtype(op, a, b);
  if (a.rank === 0 || b.rank === 0) {
    throw new OpError(op, `operands must have rank >= 1, got a ${fmtShape(a.shape)} and b ${fmtShape(b.shape)}`);
  }
  const tA = a.rank >= 2 && !!opts.transposeA,
    tB = b.rank >= 2 && !!opts.transposeB;
  const ra = a.rank,
    rb = b.rank;
  const kA = a.rank === 1 ? a.shape[0] : tA ? a.shape[ra - 2] : a.shape[ra - 1];
  const kB = b.rank === 1 ? b.shape[0] : tB ? b.shape[rb - 1] : b.shape[rb - 2];
  const flags = `${tA ? ', transposeA' : ''}${tB ? ', transposeB' : ''}`;
  if (kA !== kB) {
    throw new OpError(
      op,
      `inner dimensions differ: a ${fmtShape(a.shape)} gives K=${kA}, b ${fmtShape(b.shape)} gives K=${kB}${flags}`,
    );
  }
  const batchA = a.rank > 2 ? a.shape.slice(0, ra - 2) : [],
    batchB = b.rank > 2 ? b.shape.slice(0, rb - 2) : [];
  const n = Math.max(batchA.length, batchB.length);
  const batch: number[] = [];
  for (let i = 0; i < n; i++) {
    const x = i < n - batchA.length ? 1 : batchA[i - (n - batchA.length)];
    const y = i < n - batchB.length ? 1 : batchB[i - (n - batchB.length)];
    if (x !== y && x !== 1 && y !== 1) {
      throw new OpError(op, `batch axes of a ${fmtShape(a.shape)} and b ${fmtShape(b.shape)} cannot be broadcast`);
    }
    batch.push(x === 1 ? y : x);
  }
  if (a.rank >= 2 && b.rank >= 2) return run1(op, [a, b], { transposeA: tA, transposeB: tB });
  const e = engine();
  const a2 = a.rank === 1 ? e.tidy(() => reshape(a, [1, kA])) : a;
  const b2 = b.rank === 1 ? e.tidy(() => reshape(b, [kB, 1])) : b;
  const y = run1(op, [a2, b2], { transposeA: tA, transposeB: tB });
  if (a2 !== a) a2.dispose();
  if (b2 !== b) b2.dispose();
  const shape = [...batch];
  if (a.rank >= 2) shape.push(y.shape[y.rank - 2]);
  if (b.rank >= 2) shape.push(y.shape[y.rank - 1]);
  const out = e.tidy(() => reshape(y, shape));
  y.dispose();
  return out;
}
