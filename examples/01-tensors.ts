/**
 * 01 · Tensors and broadcasting.
 *
 * A tensor is a shape plus a flat, row-major array. Shapes are NCDHW like
 * PyTorch. Binary ops broadcast: dimensions are aligned from the right, and
 * a dimension of size 1 is stretched to match the other operand.
 *
 * Run: npx tsx examples/01-tensors.ts
 */
import { OpError, add, arange, matmul, mean, memory, mul, permute, reshape, sum, tensor, tidy } from '@largo/core';

const show = (name: string, t: { shape: readonly number[]; toArray(): unknown }) =>
  console.log(`${name} [${t.shape.join(', ')}] = ${JSON.stringify(t.toArray())}`);

// #region create
const x = reshape(arange(6), [2, 3]);   // 0..5 laid out as 2 rows of 3
const row = tensor([10, 20, 30]);        // shape [3]
const col = tensor([[100], [200]]);      // shape [2, 1]
show('x', x);
show('x + row', add(x, row));            // [2,3] + [3]    -> row added to every row
show('x + col', add(x, col));            // [2,3] + [2,1]  -> col added to every column
show('col * row', mul(col, row));        // [2,1] * [3]    -> outer product [2,3]
// #endregion create

// #region reduce
show('sum over rows (axis 0)', sum(x, 0));
show('mean over columns (axis 1, kept)', mean(x, 1, true));
show('x^T', permute(x, [1, 0]));
show('x @ x^T', matmul(x, x, { transposeB: true }));
// #endregion reduce

// #region errors
try {
  add(x, tensor([1, 2]));                // [2,3] + [2]: trailing dims 3 and 2 differ
} catch (e) {
  console.log(`${(e as Error).constructor.name}: ${(e as OpError).message}`);
}
// #endregion errors

// #region memory
// Tensors hold memory until disposed; tidy() frees everything created inside
// except what it returns. The counters let tests assert that nothing leaks.
const before = memory().tensors;
const total = tidy(() => sum(mul(add(x, 1), 2)));   // three temporaries, one result
console.log(`sum(2·(x+1)) = ${total.item()}; live tensors: ${before} before, ${memory().tensors} after (+1: the result)`);
total.dispose();
// #endregion memory
