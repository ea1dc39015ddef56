// Gradient rules of the layout ops, by central differences in float64.
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
const arbVals = (n: number) => fc.array(fc.double({ min: -3, max: 3, noNaN: true }), { minLength: n, maxLength: n });
const arbX = (minRank = 0, maxRank = 3) =>
  arbShape(minRank, maxRank, 3).chain((s) => fc.tuple(fc.constant(s), arbVals(size(s))));

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
const prop = <T>(arb: fc.Arbitrary<T>, body: (v: T) => void) =>
  fc.assert(
    fc.property(arb, (v) => {
      tidy(() => body(v));
    }),
    { numRuns: RUNS },
  );

verifiedTest(t, gradCase('reshape'), async (t) => {
  leakFree(t, 'reshape', () => {
    prop(arbX(), ([s, v]) => {
      expectGrad((x) => C.reshape(x, [-1]), [f64(v, s)], 'reshape to 1-d');
      expectGrad((x) => C.mul(C.unsqueeze(C.flatten(x), 0), 2), [f64(v, s)], 'flatten/unsqueeze');
      if (s.length) expectGrad((x) => C.reshape(x, [...s].reverse()), [f64(v, s)], 'reshape reversed dims');
    });
  });
});

verifiedTest(t, gradCase('permute'), async (t) => {
  leakFree(t, 'permute', () => {
    prop(
      arbX().chain(([s, v]) =>
        fc.tuple(
          fc.constant(s),
          fc.constant(v),
          fc.shuffledSubarray(
            s.map((_, i) => i),
            { minLength: s.length, maxLength: s.length },
          ),
        ),
      ),
      ([s, v, perm]) => {
        expectGrad((x) => C.permute(x, perm), [f64(v, s)], `permute ${JSON.stringify(s)} by ${perm}`);
        if (s.length >= 2) expectGrad((x) => C.transpose(x), [f64(v, s)], 'transpose');
      },
    );
  });
});

verifiedTest(t, gradCase('slice'), async (t) => {
  leakFree(t, 'slice', () => {
    prop(
      arbX().chain(([s, v]) =>
        fc.tuple(
          fc.constant(s),
          fc.constant(v),
          fc.tuple(
            ...s.map((d) =>
              fc.integer({ min: 0, max: d }).chain((b) => fc.tuple(fc.constant(b), fc.integer({ min: 0, max: d - b }))),
            ),
          ),
        ),
      ),
      ([s, v, box]) => {
        expectGrad(
          (x) =>
            C.slice(
              x,
              box.map((q) => q[0]),
              box.map((q) => q[1]),
            ),
          [f64(v, s)],
          `slice ${JSON.stringify(s)} box ${JSON.stringify(box)}`,
        );
        expectGrad((x) => C.clone(x), [f64(v, s)], 'clone');
      },
    );
  });
});

verifiedTest(t, gradCase('pad'), async (t) => {
  leakFree(t, 'pad', () => {
    prop(
      arbX().chain(([s, v]) =>
        fc.tuple(
          fc.constant(s),
          fc.constant(v),
          fc.tuple(...s.map(() => fc.tuple(fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 2 })))),
        ),
      ),
      ([s, v, pads]) => {
        expectGrad(
          (x) => C.pad(x, pads as [number, number][], 0.5),
          [f64(v, s)],
          `pad ${JSON.stringify(s)} by ${JSON.stringify(pads)}`,
        );
      },
    );
  });
});

verifiedTest(t, gradCase('concat'), async (t) => {
  leakFree(t, 'concat', () => {
    prop(
      arbShape(1, 3, 3).chain((s) =>
        fc.tuple(fc.constant(s), fc.integer({ min: -s.length, max: s.length - 1 })).chain(([s0, axis]) => {
          const a = axis < 0 ? axis + s0.length : axis;
          return fc.tuple(
            fc.constant(axis),
            fc.array(
              fc.integer({ min: 0, max: 2 }).chain((n) => {
                const sh = s0.map((d, i) => (i === a ? n : d));
                return fc.tuple(fc.constant(sh), arbVals(size(sh)));
              }),
              { minLength: 1, maxLength: 3 },
            ),
          );
        }),
      ),
      ([axis, parts]) => {
        expectGrad(
          (...xs) => C.concat(xs, axis),
          parts.map(([s, v]) => f64(v, s)),
          `concat on ${axis} of ${parts.map((p) => JSON.stringify(p[0]))}`,
        );
        // The same tensor twice: its gradient is the sum of both slices.
        expectGrad((x) => C.concat([x, C.mul(x, 3)], axis), [f64(parts[0][1], parts[0][0])], 'concat of x with itself');
      },
    );
  });
});

verifiedTest(t, gradCase('stack'), async (t) => {
  leakFree(t, 'stack', () => {
    prop(
      arbX(0, 2).chain(([s, v]) =>
        fc.tuple(fc.constant(s), fc.constant(v), arbVals(size(s)), fc.integer({ min: -(s.length + 1), max: s.length })),
      ),
      ([s, v, w, axis]) => {
        expectGrad((a, b) => C.stack([a, b, a], axis), [f64(v, s), f64(w, s)], `stack on ${axis}`);
      },
    );
  });
});

verifiedTest(t, gradCase('indexSelect'), async (t) => {
  leakFree(t, 'indexSelect', () => {
    // Repeated indices: the gradient rows add up (indexAdd is the adjoint).
    prop(
      arbX(1, 3).chain(([s, v]) =>
        fc
          .tuple(fc.constant(s), fc.constant(v), fc.integer({ min: -s.length, max: s.length - 1 }))
          .chain(([s0, v0, axis]) => {
            const n = s0[axis < 0 ? axis + s0.length : axis];
            return fc.tuple(
              fc.constant(s0),
              fc.constant(v0),
              fc.constant(axis),
              fc.array(fc.integer({ min: 0, max: n - 1 }), { maxLength: 6 }),
            );
          }),
      ),
      ([s, v, axis, idx]) => {
        const it = tensor(Int32Array.from(idx), [idx.length]);
        expectGrad(
          (x, i) => C.indexSelect(x, axis, i),
          [f64(v, s), it],
          `indexSelect ${JSON.stringify(s)} axis ${axis} idx ${idx}`,
        );
        expectGrad((x) => C.indexSelect(x, axis, idx), [f64(v, s)], 'indexSelect with a number[]');
      },
    );
  });
  const x = requireGrad(
    tensor(
      [
        [1, 2],
        [3, 4],
        [5, 6],
      ],
      undefined,
      'float64',
    ),
  );
  backward(C.sum(C.indexSelect(x, 0, [2, 0, 2, 2])));
  t.same(
    x.grad!.toArray(),
    [
      [1, 1],
      [0, 0],
      [3, 3],
    ],
    'counts of each repeated row',
  );
  x.dispose();
});

verifiedTest(t, gradCase('indexAdd'), async (t) => {
  leakFree(t, 'indexAdd', () => {
    prop(
      arbShape(1, 3, 3).chain((s) =>
        fc
          .tuple(fc.constant(s), fc.integer({ min: 0, max: s.length - 1 }))
          .chain(([s0, axis]) =>
            fc.tuple(
              fc.constant(s0),
              fc.constant(axis),
              fc.array(fc.integer({ min: 0, max: s0[axis] - 1 }), { maxLength: 5 }),
            ),
          )
          .chain(([s0, axis, idx]) => {
            const src = s0.map((d, i) => (i === axis ? idx.length : d));
            return fc.tuple(fc.constant(s0), fc.constant(axis), fc.constant(idx), fc.constant(src), arbVals(size(src)));
          }),
      ),
      ([outShape, axis, idx, srcShape, v]) => {
        const it = tensor(Int32Array.from(idx), [idx.length]);
        expectGrad(
          (src) => C.indexAdd(src, axis, it, outShape),
          [f64(v, srcShape)],
          `indexAdd into ${JSON.stringify(outShape)} axis ${axis} idx ${idx}`,
        );
      },
    );
  });
});

verifiedTest(t, gradCase('broadcastTo'), async (t) => {
  leakFree(t, 'broadcastTo', () => {
    prop(
      arbShape(0, 3, 3)
        .chain((out) =>
          fc.tuple(
            fc.constant(out),
            fc
              .tuple(
                fc.integer({ min: 0, max: out.length }),
                fc.array(fc.boolean(), { minLength: out.length, maxLength: out.length }),
              )
              .map(([drop, ones]) => out.slice(drop).map((d, i) => (ones[i + drop] ? 1 : d))),
          ),
        )
        .chain(([out, s]) => fc.tuple(fc.constant(out), fc.constant(s), arbVals(size(s)))),
      ([out, s, v]) => {
        expectGrad(
          (x) => C.broadcastTo(x, out),
          [f64(v, s)],
          `broadcastTo ${JSON.stringify(s)} -> ${JSON.stringify(out)}`,
        );
      },
    );
  });
});
