// softmax / logSoftmax against the float64 oracle: random shapes and axes
// (negative too), both float dtypes, large logits, -Infinity entries, NaN.
import t, { type Test } from 'tap';
import fc from 'fast-check';
import { logSoftmax, memory, OpError, softmax, sum, tensor, tidy, type DType, type Tensor } from '@largo/core';
import { refLogSoftmax, refSoftmax, type RefTensor } from '@largo/core/reference';
import { arbShape, compare, FC_RUNS, oracleCase, reductionTol, toRef } from './helpers/oracle.js';

const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

const arbCase = arbShape(1, 4, 5).chain((shape) => fc.record({
  shape: fc.constant(shape),
  axis: fc.integer({ min: 0, max: shape.length - 1 }).chain((a) => fc.constantFrom(a, a - shape.length)),
  dtype: fc.constantFrom<DType>('float32', 'float64'),
  scale: fc.constantFrom(1, 10, 100),
  values: fc.array(fc.double({ min: -1, max: 1, noNaN: true }), { minLength: size(shape), maxLength: size(shape) }),
}));

const OPS: [string, (x: Tensor, axis: number) => Tensor, (x: RefTensor, axis: number) => RefTensor][] = [
  ['softmax', softmax, refSoftmax],
  ['logSoftmax', logSoftmax, refLogSoftmax],
];

for (const [op, fn, ref] of OPS) {
  // Literal markers, so the op-coverage scan sees both ops.
  t.test(op === 'softmax' ? oracleCase('softmax') : oracleCase('logSoftmax'), async (t) => {
    const before = memory();
    fc.assert(fc.property(arbCase, (c) => tidy(() => {
      const x = tensor(Float64Array.from(c.values, (v) => v * c.scale), c.shape, c.dtype);
      const ax = c.axis < 0 ? c.axis + c.shape.length : c.axis;
      const n = c.shape[ax];
      // log-softmax values grow with the logits' scale: relative to that scale.
      const tol = c.dtype === 'float64' ? { rtol: 1e-12, atol: 1e-12 * c.scale } : { ...reductionTol(n), atol: 1e-6 * c.scale * Math.sqrt(n) };
      const msg = compare(fn(x, c.axis), ref(toRef(x), ax), tol);
      if (msg !== null) throw new Error(`${op} ${c.dtype} [${c.shape}] axis ${c.axis}: ${msg}`);
    })), { numRuns: FC_RUNS });
    t.same(memory(), before, 'no leaks');
  });
}

t.test(oracleCase('softmax') + ' edge cases', async (t) => {
  tidy(() => {
    // Large logits: stable (no overflow), exact one-hot limit.
    const big = tensor([1e4, 0, -1e4, 1e4 - 1], [4]);
    const y = softmax(big).dataSync();
    t.ok(Array.from(y).every(Number.isFinite), 'finite for 1e4 logits');
    t.equal(compare(softmax(big), refSoftmax(toRef(big), 0), { rtol: 1e-6, atol: 1e-7 }), null);
    const ly = logSoftmax(big).dataSync();
    t.ok(Array.from(ly).every(Number.isFinite), 'logSoftmax finite for 1e4 logits');
    t.ok(Math.abs(ly[0] + Math.log1p(Math.exp(-1))) < 1e-4, 'logSoftmax of the max');
    // -Infinity entries get probability 0 (masked logits).
    const m = tensor([0, -Infinity, 0, -Infinity], [2, 2]);
    const col = Array.from(softmax(m, 0).dataSync());
    t.ok(col[0] === 0.5 && col[2] === 0.5 && Number.isNaN(col[1]) && Number.isNaN(col[3]), 'an all -inf lane gives NaN, as PyTorch');
    t.same(Array.from(softmax(m, 1).dataSync()), [1, 0, 1, 0], 'masked entries are 0');
    // NaN poisons its lane only.
    const nan = tensor([1, NaN, 2, 3], [2, 2]);
    const yn = softmax(nan, 1).dataSync();
    t.ok(Number.isNaN(yn[0]) && Number.isNaN(yn[1]) && !Number.isNaN(yn[2]), 'NaN stays in its row');
    // Rows sum to one along a middle axis; a size-1 axis gives ones / zeros.
    const x = tensor(Float64Array.from({ length: 24 }, (_, i) => Math.sin(i) * 5), [2, 3, 4], 'float64');
    const s = sum(softmax(x, 1), 1).dataSync();
    t.ok(Array.from(s).every((v) => Math.abs(v - 1) < 1e-14), 'sums to 1');
    t.same(Array.from(softmax(tensor([3, -2], [2, 1]), 1).dataSync()), [1, 1]);
    t.same(Array.from(logSoftmax(tensor([3, -2], [2, 1]), -1).dataSync()), [0, 0]);
    // Empty tensors pass through.
    t.same(softmax(tensor(new Float32Array(0), [0, 3])).shape, [0, 3]);
  });
});

/** Asserts that `fn` throws an OpError whose message starts with `op:` and contains every fragment. */
function opThrows(t: Test, fn: () => unknown, op: string, ...fragments: string[]): void {
  try {
    fn();
    t.fail(`${op}: expected an error`);
  } catch (e) {
    const m = e instanceof Error ? e.message : String(e);
    t.ok(e instanceof OpError && m.startsWith(op + ':') && fragments.every((f) => m.includes(f)), m);
  }
}

t.test('softmax / logSoftmax errors', async (t) => {
  tidy(() => {
    const x = tensor([1, 2, 3], [3]);
    opThrows(t, () => softmax(x, 1), 'softmax', 'axis 1');
    opThrows(t, () => logSoftmax(tensor(new Int32Array([1, 2]), [2])), 'logSoftmax', 'int32');
    opThrows(t, () => softmax(tensor(1)), 'softmax', '[]');
  });
});
