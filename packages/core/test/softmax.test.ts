// softmax / logSoftmax against the float64 oracle on every backend: random
// shapes and axes (negative too), each backend's float dtypes, large logits,
// NaN / ±Inf, long rows; edge cases and errors (backend-independent checks).
import t from 'tap';
import fc from 'fast-check';
import { logSoftmax, Philox, softmax, sum, tensor, tidy, type DType, type Tensor } from '@largo/core';
import { refLogSoftmax, refSoftmax, refTensor, type RefTensor } from '@largo/core/reference';
import {
  arbF32,
  arbShape,
  check,
  compare,
  compareAsync,
  forEachBackend,
  oracleCase,
  opThrows,
  reductionTol,
  size,
  toRef,
  toRefAsync,
  type BackendCase,
} from '@largo/test-support';

const arbCase = arbShape(1, 4, 5).chain((shape) =>
  fc.record({
    shape: fc.constant(shape),
    axis: fc.integer({ min: 0, max: shape.length - 1 }).chain((a) => fc.constantFrom(a, a - shape.length)),
    dtype: fc.constantFrom<DType>('float32', 'float64'),
    scale: fc.constantFrom(1, 10, 100),
    values: fc.array(fc.double({ min: -1, max: 1, noNaN: true }), { minLength: size(shape), maxLength: size(shape) }),
  }),
);

type Fn = (x: Tensor, axis: number) => Tensor;
type Ref = (x: RefTensor, axis: number) => RefTensor;

/** Random shapes and axes, the backend's float dtypes, logits scaled up to 100. */
async function randomLanes(b: BackendCase, op: string, fn: Fn, ref: Ref): Promise<void> {
  await fc.assert(
    fc.asyncProperty(
      arbCase.filter((c) => b.floatDtypes.includes(c.dtype)),
      async (c) => {
        const x = tensor(
          Float64Array.from(c.values, (v) => v * c.scale),
          c.shape,
          c.dtype,
        );
        const ax = c.axis < 0 ? c.axis + c.shape.length : c.axis;
        const n = c.shape[ax];
        // log-softmax values grow with the logits' scale: relative to that scale.
        const tol =
          c.dtype === 'float64'
            ? { rtol: 1e-12, atol: 1e-12 * c.scale }
            : { ...reductionTol(n), atol: 1e-6 * c.scale * Math.sqrt(n) };
        const want = await toRefAsync(x);
        const y = tidy(() => fn(x, c.axis));
        x.dispose();
        check(await compareAsync(y, ref(want, ax), tol, true), `${op} ${c.dtype} [${c.shape}] axis ${c.axis}`);
      },
    ),
    { numRuns: b.runs },
  );
}

/** NaN / ±Inf in lanes along any axis, and long innermost rows (WebGPU: a workgroup per row), float32. */
async function specialsAndLongRows(b: BackendCase, op: string, fn: Fn, ref: Ref, atol: number): Promise<void> {
  await fc.assert(
    fc.asyncProperty(
      arbShape(1, 4, 5).chain((s) =>
        fc.tuple(fc.constant(s), fc.integer({ min: -s.length, max: s.length - 1 }), arbF32(size(s), -8, 8)),
      ),
      async ([shape, axis, v]) => {
        const x = Float32Array.from(v);
        const y = tidy(() => fn(tensor(x, shape), axis));
        const ax = axis < 0 ? axis + shape.length : axis;
        check(
          await compareAsync(y, ref(refTensor(shape, x), ax), { rtol: 1e-5, atol }, true),
          `${op} axis ${axis} of [${shape}] ${JSON.stringify(v)}`,
        );
      },
    ),
    { numRuns: b.runs },
  );
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 1, max: 3 }),
      fc.integer({ min: 64, max: 700 }),
      fc.boolean(),
      fc.integer({ min: 0, max: 1 << 30 }),
      async (rows, n, special, s) => {
        const x = Float32Array.from(new Philox(s).normal(rows * n), (v) => 4 * v);
        if (special) x[s % x.length] = [NaN, Infinity, -Infinity][s % 3];
        const y = tidy(() => fn(tensor(x, [rows, n]), -1));
        check(
          await compareAsync(y, ref(refTensor([rows, n], x), 1), { rtol: 1e-5, atol }, true),
          `${op} rows ${rows}×${n}`,
        );
      },
    ),
    { numRuns: Math.ceil(b.runs / 2) },
  );
}

// Written once, run on every backend (forEachBackend).
forEachBackend(t, oracleCase('softmax'), (_t, b) => randomLanes(b, 'softmax', softmax, refSoftmax));
forEachBackend(t, oracleCase('logSoftmax'), (_t, b) => randomLanes(b, 'logSoftmax', logSoftmax, refLogSoftmax));
forEachBackend(t, oracleCase('softmax') + ': special values and long rows', (_t, b) =>
  specialsAndLongRows(b, 'softmax', softmax, refSoftmax, 1e-6),
);
forEachBackend(t, oracleCase('logSoftmax') + ': special values and long rows', (_t, b) =>
  specialsAndLongRows(b, 'logSoftmax', logSoftmax, refLogSoftmax, 4e-6),
);

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
    t.ok(
      col[0] === 0.5 && col[2] === 0.5 && Number.isNaN(col[1]) && Number.isNaN(col[3]),
      'an all -inf lane gives NaN, as PyTorch',
    );
    t.same(Array.from(softmax(m, 1).dataSync()), [1, 0, 1, 0], 'masked entries are 0');
    // NaN poisons its lane only.
    const nan = tensor([1, NaN, 2, 3], [2, 2]);
    const yn = softmax(nan, 1).dataSync();
    t.ok(Number.isNaN(yn[0]) && Number.isNaN(yn[1]) && !Number.isNaN(yn[2]), 'NaN stays in its row');
    // Rows sum to one along a middle axis; a size-1 axis gives ones / zeros.
    const x = tensor(
      Float64Array.from({ length: 24 }, (_, i) => Math.sin(i) * 5),
      [2, 3, 4],
      'float64',
    );
    const s = sum(softmax(x, 1), 1).dataSync();
    t.ok(
      Array.from(s).every((v) => Math.abs(v - 1) < 1e-14),
      'sums to 1',
    );
    t.same(Array.from(softmax(tensor([3, -2], [2, 1]), 1).dataSync()), [1, 1]);
    t.same(Array.from(logSoftmax(tensor([3, -2], [2, 1]), -1).dataSync()), [0, 0]);
    // Empty tensors pass through.
    t.same(softmax(tensor(new Float32Array(0), [0, 3])).shape, [0, 3]);
  });
});

t.test('softmax / logSoftmax errors', async (t) => {
  tidy(() => {
    const x = tensor([1, 2, 3], [3]);
    opThrows(t, () => softmax(x, 1), 'softmax', 'axis 1');
    opThrows(t, () => logSoftmax(tensor(new Int32Array([1, 2]), [2])), 'logSoftmax', 'int32');
    opThrows(t, () => softmax(tensor(1)), 'softmax', '[]');
  });
});
