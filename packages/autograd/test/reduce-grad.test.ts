// Gradient rules of the reductions (and of mean/variance, which compose
// them), by central differences in float64 over random axes and keepDims.
import t from 'tap';
import fc from 'fast-check';
import * as C from '@largo/core';
import { tensor, tidy, memory, type Tensor } from '@largo/core';
import { backward, gradcheck, requireGrad } from '@largo/autograd';
import { gradCase, arbShape, verifiedTest } from '@largo/test-support';
import { expectOk } from './helpers/grad-props.js';

const RUNS = Math.max(5, Math.ceil(Number(process.env.LARGO_FC_RUNS ?? 60) / 4));
const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
const f64 = (values: number[], shape: number[]) => tensor(Float64Array.from(values), shape, 'float64');

/** Distinct values (at least 0.05 apart), so max/min have no tie inside the difference step. */
const arbDistinct = (n: number) =>
  fc.uniqueArray(fc.integer({ min: -60, max: 60 }), { minLength: n, maxLength: n }).map((v) => v.map((q) => q / 20));
const arbAxes = (shape: number[]) => {
  const r = shape.length;
  if (r === 0) return fc.constantFrom<number | number[] | undefined>(undefined, 0, -1);
  return fc.oneof(
    fc.constant(undefined),
    fc.integer({ min: -r, max: r - 1 }),
    fc
      .uniqueArray(fc.integer({ min: 0, max: r - 1 }), { minLength: 1, maxLength: r })
      .map((a) => a.map((q, i) => (i % 2 ? q - r : q))),
  );
};
const arbCase = arbShape(0, 3, 3).chain((s) =>
  fc.tuple(fc.constant(s), arbAxes(s), fc.boolean(), arbDistinct(size(s))),
);

function expectGrad(fn: (...xs: Tensor[]) => Tensor, inputs: Tensor[], what: string): void {
  expectOk(gradcheck(fn, inputs), what);
}
function leakFree(
  t: { same(found: unknown, wanted: unknown, msg: string): boolean },
  name: string,
  body: () => void,
): void {
  const before = memory();
  body();
  t.same(memory(), before, `${name}: no tensor or buffer leaked`);
}

const CASES: [string, string, (x: Tensor, axes: number | number[] | undefined, keepDims: boolean) => Tensor][] = [
  [gradCase('sum'), 'sum', C.sum],
  [gradCase('max'), 'max', C.max],
  [gradCase('min'), 'min', C.min],
  [gradCase('mean'), 'mean', C.mean],
  [gradCase('variance') + ' (correction 0)', 'variance', (x, a, k) => C.variance(x, a, k, 0)],
  [gradCase('variance') + ' (correction 1)', 'variance', (x, a, k) => C.variance(x, a, k, 1)],
];

for (const [name, op, fn] of CASES) {
  verifiedTest(t, name, async (t) => {
    leakFree(t, op, () => {
      fc.assert(
        fc.property(arbCase, ([shape, axes, keepDims, v]) =>
          tidy(() => {
            // Unbiased variance over a single element is 0/0: skip that degenerate case.
            if (name.includes('correction 1')) {
              const ax = axes === undefined ? shape.map((_, i) => i) : typeof axes === 'number' ? [axes] : axes;
              if (size(ax.map((a) => shape[(a + shape.length) % Math.max(shape.length, 1)] ?? 1)) <= 1) return;
            }
            expectGrad(
              (x) => fn(x, axes, keepDims),
              [f64(v, shape)],
              `${op}(${JSON.stringify(shape)} ${v}, axes ${JSON.stringify(axes)}, keepDims ${keepDims})`,
            );
          }),
        ),
        { numRuns: RUNS },
      );
    });
  });
}

t.test(gradCase('max') + ' / ' + gradCase('min') + ' with ties', async (t) => {
  // Two-way ties: central differences see 1/2 on each tied element, as the rule gives.
  const x = [1, 3, 3, 0, 2, 2, -1, 0];
  for (const [fn, axes] of [
    [C.max, 1],
    [C.max, undefined],
    [C.min, 0],
  ] as const) {
    const r = gradcheck((q) => fn(q, axes), [f64(x, [2, 4])]);
    t.ok(r.ok, `${fn.name} axes ${axes}: ${JSON.stringify(r.worst)}`);
  }
  t.ok(
    gradcheck((q) => C.min(q, 1, true), [f64([5, -1, -1, 4, 0, 0], [2, 3])]).ok,
    'min with two-way ties in every row',
  );
  // Three-way tie: the gradient is shared evenly (PyTorch amax/amin semantics) and sums to 1.
  const y = requireGrad(f64([2, 2, 1, 2], [4]));
  backward(C.max(y));
  t.same(Array.from(y.grad!.dataSync()), [1 / 3, 1 / 3, 0, 1 / 3]);
  y.dispose();
  const z = requireGrad(f64([4, 0, 4, 0, 7, 0], [2, 3]));
  backward(C.sum(C.mul(C.min(z, 1), f64([10, 100], [2]))));
  t.same(Array.from(z.grad!.dataSync()), [0, 10, 0, 50, 0, 50]);
  z.dispose();
});

t.test('reduction gradients through float32', async (t) => {
  // The same rules serve float32; check the values directly.
  const x = requireGrad(
    tensor([
      [1, 2, 3],
      [4, 5, 6],
    ]),
  );
  backward(C.mean(x));
  t.same(
    Array.from(x.grad!.dataSync()),
    [1, 1, 1, 1, 1, 1].map((v) => Math.fround(v / 6)),
  );
  x.dispose();
  const w = requireGrad(tensor([1, 2, 3, 4]));
  backward(C.variance(w));
  // d var / dx_i = 2 (x_i - mean) / n
  t.same(Array.from(w.grad!.dataSync()), [-0.75, -0.25, 0.25, 0.75]);
  w.dispose();
});
