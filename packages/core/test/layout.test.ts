// Property tests of the layout ops against the float64 oracle: reshape,
// permute/transpose, slice, pad, concat, stack, indexSelect, indexAdd,
// broadcastTo, clone; random shapes with rank 0 and size-1 dims, negative axes.
import t from 'tap';
import fc from 'fast-check';
import * as C from '@largo/core';
import { engine, tensor, memory, tidy, type DType, type Tensor } from '@largo/core';
import {
  flatIndex,
  multiIndex,
  refBroadcastTo,
  refConcat,
  refIndexSelect,
  refPad,
  refPermute,
  refSlice,
  refTensor,
  type RefTensor,
} from '@largo/core/reference';
import {
  arbBroadcastable,
  arbShape,
  compare,
  compareValues as compareTo,
  FC_RUNS,
  forEachBackend,
  oracleCase,
  stored,
  toRef,
} from '@largo/test-support';

const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
const EXACT = { rtol: 0, atol: 0 };
const arbVals = (n: number) =>
  fc.array(
    fc.oneof(
      { arbitrary: fc.double({ min: -100, max: 100, noNaN: true }), weight: 10 },
      { arbitrary: fc.constantFrom(NaN, Infinity, -0), weight: 1 },
    ),
    { minLength: n, maxLength: n },
  );
const arbDtype = fc.constantFrom<DType>('float32', 'float64', 'int32');

/** A tensor spec: shape, dtype and values exactly representable in that dtype. */
const arbTensor = (minRank = 0, maxRank = 4, maxDim = 4) =>
  fc
    .tuple(arbShape(minRank, maxRank, maxDim), arbDtype)
    .chain(([s, dt]) => fc.tuple(fc.constant(s), fc.constant(dt), arbVals(size(s))));
function make([shape, dtype, values]: [number[], DType, number[]]): Tensor {
  const v =
    dtype === 'int32'
      ? values.map((x) => (Number.isFinite(x) ? Math.trunc(x) : 7))
      : dtype === 'float32'
        ? values.map(Math.fround)
        : values;
  return tensor(Float64Array.from(v), shape, dtype);
}

function check(msg: string | null, what: string): void {
  if (msg !== null) throw new Error(`${what}: ${msg}`);
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
const prop = <T>(arb: fc.Arbitrary<T>, body: (v: T) => void, runs = FC_RUNS) =>
  fc.assert(
    fc.property(arb, (v) => {
      tidy(() => body(v));
    }),
    { numRuns: runs },
  );

/** Checks dtype preservation and exact values (layout ops only move data). */
function expectSame(y: Tensor, dtype: DType, want: RefTensor, what: string): void {
  if (y.dtype !== dtype) throw new Error(`${what}: dtype ${y.dtype}, expected ${dtype}`);
  check(compare(y, want, EXACT), what);
}

t.test(oracleCase('reshape'), async (t) => {
  leakFree(t, 'reshape', () => {
    prop(
      arbTensor().chain((x) =>
        fc.tuple(fc.constant(x), fc.shuffledSubarray(factorize(size(x[0]))), fc.boolean(), fc.nat()),
      ),
      ([x, parts, useNeg, k]) => {
        const a = make(x);
        const target = parts.length ? [...parts] : [];
        const rest = size(x[0]) / size(target);
        if (rest !== 1) target.push(rest);
        const spec = useNeg && target.length ? target.map((d, i) => (i === k % target.length ? -1 : d)) : target;
        const y = C.reshape(a, spec);
        expectSame(
          y,
          x[1],
          refTensor(target, toRef(a).data),
          `reshape ${JSON.stringify(x[0])} -> ${JSON.stringify(spec)}`,
        );
        if (y.storage !== a.storage) throw new Error('reshape must share storage');
      },
    );
  });
  const x = tensor([1, 2, 3, 4, 5, 6], [2, 3]);
  t.same(C.flatten(x).shape, [6]);
  t.same(C.flatten(C.reshape(x, [1, 2, 3]), 1).shape, [1, 6]);
  t.same(C.flatten(tensor(5)).shape, [1], 'flatten of a scalar');
  t.same(C.unsqueeze(x, -1).shape, [2, 3, 1]);
  t.same(C.unsqueeze(x, 0).shape, [1, 2, 3]);
  t.same(C.squeeze(C.reshape(x, [1, 2, 1, 3])).shape, [2, 3]);
  t.same(C.squeeze(C.reshape(x, [1, 2, 1, 3]), -2).shape, [1, 2, 3]);
  t.same(C.reshape(tensor([7]), []).shape, [], 'to rank 0');
  t.same(C.reshape(tensor([], [0, 3]), [3, -1]).shape, [3, 0]);
});

/** Prime factors of n (with 1 for n = 1 excluded), used to build reshape targets. */
function factorize(n: number): number[] {
  const out: number[] = [];
  for (let p = 2; p <= n; p++)
    while (n % p === 0) {
      out.push(p);
      n /= p;
    }
  return out;
}

t.test(oracleCase('permute'), async (t) => {
  leakFree(t, 'permute', () => {
    prop(
      arbTensor().chain((x) =>
        fc.tuple(
          fc.constant(x),
          fc.shuffledSubarray(
            x[0].map((_, i) => i),
            { minLength: x[0].length, maxLength: x[0].length },
          ),
          fc.array(fc.boolean(), { minLength: x[0].length, maxLength: x[0].length }),
        ),
      ),
      ([x, perm, negs]) => {
        const a = make(x);
        const spec = perm.map((p, i) => (negs[i] ? p - perm.length : p));
        expectSame(
          C.permute(a, spec),
          x[1],
          refPermute(toRef(a), perm),
          `permute ${JSON.stringify(x[0])} by ${JSON.stringify(spec)}`,
        );
      },
    );
  });
});

t.test(oracleCase('permute') + ' via transpose', async (t) => {
  leakFree(t, 'transpose', () => {
    prop(
      arbTensor(2).chain((x) =>
        fc.tuple(
          fc.constant(x),
          fc.integer({ min: -x[0].length, max: x[0].length - 1 }),
          fc.integer({ min: -x[0].length, max: x[0].length - 1 }),
        ),
      ),
      ([x, i, j]) => {
        const a = make(x);
        const r = x[0].length;
        const perm = x[0].map((_, k) => k);
        const ii = (i + r) % r,
          jj = (j + r) % r;
        [perm[ii], perm[jj]] = [perm[jj], perm[ii]];
        expectSame(
          C.transpose(a, i, j),
          x[1],
          refPermute(toRef(a), perm),
          `transpose(${i}, ${j}) of ${JSON.stringify(x[0])}`,
        );
      },
    );
  });
  const m = tensor([
    [1, 2, 3],
    [4, 5, 6],
  ]);
  t.same(
    C.transpose(m).toArray(),
    [
      [1, 4],
      [2, 5],
      [3, 6],
    ],
    'default: last two axes',
  );
});

/** A box inside `shape`: begin may be negative (from the end), size may be -1 (to the end). */
const arbBox = (shape: number[]) =>
  fc.tuple(
    ...shape.map((d) =>
      fc.integer({ min: 0, max: d }).chain((b) =>
        fc
          .tuple(fc.constant(b), fc.integer({ min: 0, max: d - b }), fc.boolean(), fc.boolean())
          .map(([b0, s0, negB, toEnd]) => ({
            begin: negB && b0 > 0 && b0 < d ? b0 - d : b0,
            size: toEnd ? -1 : s0,
            b: b0,
            s: toEnd ? d - b0 : s0,
          })),
      ),
    ),
  );

t.test(oracleCase('slice'), async (t) => {
  leakFree(t, 'slice', () => {
    prop(
      arbTensor().chain((x) => fc.tuple(fc.constant(x), arbBox(x[0]), fc.boolean())),
      ([x, box, noSize]) => {
        const a = make(x);
        const begin = box.map((q) => q.begin);
        const y = noSize
          ? C.slice(a, begin)
          : C.slice(
              a,
              begin,
              box.map((q) => q.size),
            );
        const b = box.map((q) => q.b),
          s = noSize ? x[0].map((d, i) => d - b[i]) : box.map((q) => q.s);
        expectSame(
          y,
          x[1],
          refSlice(toRef(a), b, s),
          `slice ${JSON.stringify(x[0])} begin ${JSON.stringify(begin)} size ${noSize ? 'omitted' : JSON.stringify(box.map((q) => q.size))}`,
        );
      },
    );
  });
});

t.test(oracleCase('pad'), async (t) => {
  leakFree(t, 'pad', () => {
    prop(
      arbTensor(0, 4, 3).chain((x) =>
        fc.tuple(
          fc.constant(x),
          fc.tuple(...x[0].map(() => fc.tuple(fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 2 })))),
          fc.constantFrom(0, -1.5, 3),
        ),
      ),
      ([x, pads, value]) => {
        const a = make(x);
        const v = x[1] === 'int32' ? Math.trunc(value) : value;
        expectSame(
          C.pad(a, pads as [number, number][], v),
          x[1],
          refPad(toRef(a), pads as [number, number][], v),
          `pad ${JSON.stringify(x[0])} by ${JSON.stringify(pads)} with ${v}`,
        );
      },
    );
  });
});

t.test(oracleCase('concat'), async (t) => {
  leakFree(t, 'concat', () => {
    prop(
      fc.tuple(arbShape(1, 4, 3), arbDtype).chain(([s, dt]) =>
        fc
          .tuple(fc.constant(s), fc.constant(dt), fc.integer({ min: -s.length, max: s.length - 1 }))
          .chain(([s0, dt0, axis]) => {
            const a = axis < 0 ? axis + s0.length : axis;
            const part = fc.integer({ min: 0, max: 3 }).chain((n) => {
              const sh = s0.map((d, i) => (i === a ? n : d));
              return fc.tuple(fc.constant(sh), fc.constant(dt0), arbVals(size(sh)));
            });
            return fc.tuple(fc.constant(axis), fc.array(part, { minLength: 1, maxLength: 4 }));
          }),
      ),
      ([axis, parts]) => {
        const xs = parts.map(make);
        const a = axis < 0 ? axis + parts[0][0].length : axis;
        expectSame(
          C.concat(xs, axis),
          parts[0][1],
          refConcat(xs.map(toRef), a),
          `concat of ${parts.map((p) => JSON.stringify(p[0])).join(' ')} on ${axis}`,
        );
      },
    );
  });
});

t.test(oracleCase('concat') + ' via stack', async (t) => {
  leakFree(t, 'stack', () => {
    prop(
      fc
        .tuple(arbShape(0, 3, 3), arbDtype)
        .chain(([s, dt]) =>
          fc.tuple(
            fc.integer({ min: -(s.length + 1), max: s.length }),
            fc.array(fc.tuple(fc.constant(s), fc.constant(dt), arbVals(size(s))), { minLength: 1, maxLength: 4 }),
          ),
        ),
      ([axis, parts]) => {
        const xs = parts.map(make);
        const r = parts[0][0].length + 1,
          a = axis < 0 ? axis + r : axis;
        const unsq = xs.map((x) => {
          const q = toRef(x);
          const sh = [...q.shape];
          sh.splice(a, 0, 1);
          return refTensor(sh, q.data);
        });
        expectSame(
          C.stack(xs, axis),
          parts[0][1],
          refConcat(unsq, a),
          `stack of ${parts.length} × ${JSON.stringify(parts[0][0])} on ${axis}`,
        );
      },
    );
  });
});

/** Oracle of indexAdd written here: zeros, then add row k of src into row idx[k]. */
function refIndexAdd(src: RefTensor, axis: number, idx: readonly number[], shape: readonly number[]): RefTensor {
  const out = refTensor(shape);
  for (let i = 0; i < src.data.length; i++) {
    const m = multiIndex(src.shape, i);
    m[axis] = idx[m[axis]];
    out.data[flatIndex(shape, m)] += src.data[i];
  }
  return out;
}

const arbIndexed = arbTensor(1, 4, 4).chain((x) =>
  fc.tuple(fc.constant(x), fc.integer({ min: -x[0].length, max: x[0].length - 1 })).chain(([x0, axis]) => {
    const n = x0[0][axis < 0 ? axis + x0[0].length : axis];
    return fc.tuple(
      fc.constant(x0),
      fc.constant(axis),
      n === 0 ? fc.constant([] as number[]) : fc.array(fc.integer({ min: 0, max: n - 1 }), { maxLength: 6 }),
    );
  }),
);

t.test(oracleCase('indexSelect'), async (t) => {
  leakFree(t, 'indexSelect', () => {
    prop(fc.tuple(arbIndexed, fc.boolean()), ([[x, axis, idx], asTensor]) => {
      const a = make(x);
      const ax = axis < 0 ? axis + x[0].length : axis;
      const y = C.indexSelect(a, axis, asTensor ? tensor(Int32Array.from(idx), [idx.length]) : idx);
      expectSame(
        y,
        x[1],
        refIndexSelect(toRef(a), ax, idx),
        `indexSelect ${JSON.stringify(x[0])} axis ${axis} idx ${JSON.stringify(idx)}`,
      );
    });
  });
});

t.test(oracleCase('indexAdd'), async (t) => {
  leakFree(t, 'indexAdd', () => {
    prop(
      arbIndexed.chain(([x, axis, idx]) => {
        const ax = axis < 0 ? axis + x[0].length : axis;
        const srcShape = x[0].map((d, i) => (i === ax ? idx.length : d));
        return fc.tuple(
          fc.constant(x[0]),
          fc.constant(x[1]),
          fc.constant(axis),
          fc.constant(idx),
          fc.constant(srcShape),
          arbVals(size(srcShape)),
        );
      }),
      ([outShape, dtype, axis, idx, srcShape, vals]) => {
        const ax = axis < 0 ? axis + outShape.length : axis;
        const src = make([srcShape, dtype, vals]);
        const y = C.indexAdd(src, axis, tensor(Int32Array.from(idx), [idx.length]), outShape);
        // Repeated indices sum several values: the float32 kernel rounds once per addition.
        const tol = dtype === 'float32' ? { rtol: 1e-6, atol: 1e-5 } : EXACT;
        if (y.dtype !== dtype) throw new Error(`indexAdd: dtype ${y.dtype}, expected ${dtype}`);
        check(
          compare(y, refIndexAdd(toRef(src), ax, idx, outShape), tol),
          `indexAdd into ${JSON.stringify(outShape)} axis ${axis} idx ${JSON.stringify(idx)}`,
        );
      },
    );
  });
});

t.test(oracleCase('broadcastTo'), async (t) => {
  leakFree(t, 'broadcastTo', () => {
    prop(
      arbShape(0, 4, 4)
        .chain((out) =>
          fc.tuple(
            fc.constant(out),
            fc
              .tuple(
                fc.integer({ min: 0, max: out.length }),
                fc.array(fc.boolean(), { minLength: out.length, maxLength: out.length }),
              )
              .map(([drop, ones]) => out.slice(drop).map((d, i) => (ones[i + drop] ? 1 : d))),
            arbDtype,
          ),
        )
        .chain(([out, s, dt]) => fc.tuple(fc.constant(out), fc.constant(s), fc.constant(dt), arbVals(size(s)))),
      ([out, s, dt, v]) => {
        const a = make([s, dt, v]);
        expectSame(
          C.broadcastTo(a, out),
          dt,
          refBroadcastTo(toRef(a), out),
          `broadcastTo ${JSON.stringify(s)} -> ${JSON.stringify(out)}`,
        );
      },
    );
  });
  const x = tensor([1, 2, 3]);
  t.throws(() => C.broadcastTo(x, [2, 2]), { name: 'OpError', message: /^broadcastTo: .*\[3\].*\[2, 2\]/ });
  t.throws(() => C.broadcastTo(x, [3, 1]), {
    name: 'OpError',
    message: /^broadcastTo: cannot broadcast \[3\] to \[3, 1\]/,
  });
  t.throws(() => C.broadcastTo(tensor([[1, 2]]), [2]), {
    name: 'OpError',
    message: /^broadcastTo: cannot broadcast \[1, 2\] to \[2\]/,
  });
});

t.test(oracleCase('slice') + ' via clone', async (t) => {
  leakFree(t, 'clone', () => {
    prop(arbTensor(), (x) => {
      const a = make(x);
      const y = C.clone(a);
      expectSame(y, x[1], toRef(a), `clone ${JSON.stringify(x[0])}`);
      if (y.storage === a.storage) throw new Error('clone must not share storage');
    });
  });
});

// ---------------------------------------------------------------------------
// permute, slice, pad, concat, stack, broadcastTo over random shapes for every dtype (they move words, exactly), and larger tensors; every backend (the WebGPU suite, folded in).
{
  const take = async (x: Tensor) => {
    const shape = [...x.shape],
      data = await x.data();
    x.dispose();
    return { shape, data };
  };
  const DTYPES: DType[] = ['float32', 'int32', 'uint8'];
  /** Values exact in every dtype, NaN for floats. */
  const vals = (n: number, dtype: DType) =>
    fc.array(
      dtype === 'float32'
        ? fc.oneof(
            fc.integer({ min: -1000, max: 1000 }).map((v) => v / 8),
            fc.constant(NaN),
          )
        : fc.integer({ min: 0, max: 255 }),
      { minLength: n, maxLength: n },
    );
  const exact = { rtol: 0, atol: 0 };

  forEachBackend(t, oracleCase('permute'), async (t, b) => {
    {
      await fc.assert(
        fc.asyncProperty(
          arbShape(0, 5, 5).chain((s) =>
            fc
              .tuple(
                fc.constant(s),
                fc.shuffledSubarray(
                  s.map((_, i) => i),
                  { minLength: s.length, maxLength: s.length },
                ),
                fc.constantFrom(...DTYPES),
              )
              .chain(([s, p, d]) => fc.tuple(fc.constant(s), fc.constant(p), fc.constant(d), vals(size(s), d))),
          ),
          async ([shape, perm, dtype, values]) => {
            const y = tidy(() => C.permute(tensor(values, shape, dtype), perm));
            check(
              compareTo(await take(y), refPermute(refTensor(shape, stored(values, dtype)), perm), exact),
              `permute [${shape}] by [${perm}] ${dtype}`,
            );
          },
        ),
        { numRuns: b.runs },
      );
    }
  });

  forEachBackend(t, oracleCase('slice'), async (t, b) => {
    {
      await fc.assert(
        fc.asyncProperty(
          arbShape(0, 5, 6).chain((s) =>
            fc
              .tuple(
                fc.constant(s),
                fc.tuple(
                  ...s.map((d) =>
                    fc
                      .integer({ min: 0, max: d })
                      .chain((b) => fc.tuple(fc.constant(b), fc.integer({ min: 0, max: d - b }))),
                  ),
                ),
                fc.constantFrom(...DTYPES),
              )
              .chain(([s, box, d]) =>
                fc.tuple(fc.constant(s), fc.constant(box as [number, number][]), fc.constant(d), vals(size(s), d)),
              ),
          ),
          async ([shape, box, dtype, values]) => {
            const begin = box.map((b) => b[0]),
              sz = box.map((b) => b[1]);
            const y = tidy(() => C.slice(tensor(values, shape, dtype), begin, sz));
            check(
              compareTo(await take(y), refSlice(refTensor(shape, stored(values, dtype)), begin, sz), exact),
              `slice [${shape}] at [${begin}] size [${sz}]`,
            );
          },
        ),
        { numRuns: b.runs },
      );
    }
  });

  forEachBackend(t, oracleCase('pad'), async (t, b) => {
    {
      await fc.assert(
        fc.asyncProperty(
          arbShape(0, 4, 4).chain((s) =>
            fc
              .tuple(
                fc.constant(s),
                fc.tuple(...s.map(() => fc.tuple(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 3 })))),
                fc.constantFrom(...DTYPES),
                fc.constantFrom(0, -1.5, 7),
              )
              .chain(([s, p, d, v]) =>
                fc.tuple(
                  fc.constant(s),
                  fc.constant(p as [number, number][]),
                  fc.constant(d),
                  fc.constant(v),
                  vals(size(s), d),
                ),
              ),
          ),
          async ([shape, pads, dtype, value, values]) => {
            const y = tidy(() => C.pad(tensor(values, shape, dtype), pads, value));
            const r = refPad(refTensor(shape, stored(values, dtype)), pads, value);
            check(
              compareTo(await take(y), refTensor(r.shape, stored(r.data, dtype)), exact),
              `pad [${shape}] by ${JSON.stringify(pads)} with ${value} (${dtype})`,
            );
          },
        ),
        { numRuns: b.runs },
      );
    }
  });

  forEachBackend(t, oracleCase('concat'), async (t, b) => {
    {
      await fc.assert(
        fc.asyncProperty(
          arbShape(1, 4, 4)
            .chain((s) =>
              fc.tuple(
                fc.constant(s),
                fc.integer({ min: 0, max: s.length - 1 }),
                fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 1, maxLength: 4 }),
                fc.constantFrom(...DTYPES),
              ),
            )
            .chain(([s, axis, lens, d]) => {
              const shapes = lens.map((l) => s.map((v, i) => (i === axis ? l : v)));
              return fc.tuple(
                fc.constant(shapes),
                fc.constant(axis),
                fc.constant(d),
                fc.tuple(...shapes.map((q) => vals(size(q), d))),
              );
            }),
          async ([shapes, axis, dtype, values]) => {
            const y = tidy(() =>
              C.concat(
                shapes.map((s, i) => tensor(values[i], s, dtype)),
                axis,
              ),
            );
            const want = refConcat(
              shapes.map((s, i) => refTensor(s, stored(values[i], dtype))),
              axis,
            );
            check(compareTo(await take(y), want, exact), `concat of ${JSON.stringify(shapes)} along ${axis}`);
          },
        ),
        { numRuns: b.runs },
      );
    }
  });

  // stack: a composite (unsqueeze views, then the concat kernel).
  forEachBackend(t, oracleCase('stack'), async (t, b) => {
    await fc.assert(
      fc.asyncProperty(
        arbShape(0, 3, 4)
          .chain((s) =>
            fc.tuple(
              fc.constant(s),
              fc.integer({ min: -(s.length + 1), max: s.length }),
              fc.integer({ min: 1, max: 4 }),
              fc.constantFrom(...DTYPES),
            ),
          )
          .chain(([s, axis, n, d]) =>
            fc.tuple(
              fc.constant(s),
              fc.constant(axis),
              fc.constant(d),
              fc.tuple(...Array.from({ length: n }, () => vals(size(s), d))),
            ),
          ),
        async ([s, axis, dtype, values]) => {
          const y = tidy(() =>
            C.stack(
              values.map((v) => tensor(v, s, dtype)),
              axis,
            ),
          );
          const a = axis < 0 ? axis + s.length + 1 : axis;
          const unsq = [...s];
          unsq.splice(a, 0, 1);
          const want = refConcat(
            values.map((v) => refTensor(unsq, stored(v, dtype))),
            a,
          );
          check(compareTo(await take(y), want, exact), `stack of ${values.length} [${s}] along ${axis}`);
        },
      ),
      { numRuns: b.runs },
    );
  });

  forEachBackend(t, oracleCase('broadcastTo'), async (t, b) => {
    {
      await fc.assert(
        fc.asyncProperty(
          arbShape(0, 5, 4)
            .chain((out) => fc.tuple(fc.constant(out), arbBroadcastable(out), fc.constantFrom(...DTYPES)))
            .chain(([out, s, d]) => fc.tuple(fc.constant(out), fc.constant(s), fc.constant(d), vals(size(s), d))),
          async ([out, shape, dtype, values]) => {
            const y = tidy(() => C.broadcastTo(tensor(values, shape, dtype), out));
            check(
              compareTo(await take(y), refBroadcastTo(refTensor(shape, stored(values, dtype)), out), exact),
              `broadcast [${shape}] to [${out}]`,
            );
          },
        ),
        { numRuns: b.runs },
      );
    }
  });

  forEachBackend(t, 'layout ops on larger tensors', async (t, b) => {
    // A 2-d grid (more than 65535 workgroups would be needed at 1 element per thread only beyond 16M; here just many groups).
    const n = [3, 70, 500];
    const v = Float32Array.from({ length: size(n) }, (_, i) => i % 977);
    const x = tensor(v, n);
    const y = C.permute(x, [2, 0, 1]);
    check(compareTo(await take(y), refPermute(refTensor(n, v), [2, 0, 1]), exact), 'permute [3, 70, 500]');
    const s = C.slice(x, [1, 10, 0], [2, 50, 500]);
    check(
      compareTo(await take(s), refSlice(refTensor(n, v), [1, 10, 0], [2, 50, 500]), exact),
      'slice of whole rows (a buffer copy per band)',
    );
    x.dispose();
  });
}

// ---------------------------------------------------------------------------
// indexSelect and indexAdd for every dtype, bitwise the CPU sums; every backend (the WebGPU suite, folded in).
{
  const take = async (x: Tensor) => {
    const shape = [...x.shape],
      data = await x.data();
    x.dispose();
    return { shape, data };
  };
  const DTYPES: DType[] = ['float32', 'int32', 'uint8'];

  /** Values of `dtype` for `n` elements. */
  const arbValues = (n: number, dtype: DType) =>
    dtype === 'float32'
      ? fc.array(fc.double({ min: -100, max: 100, noNaN: true }).map(Math.fround), { minLength: n, maxLength: n })
      : fc.array(fc.integer({ min: dtype === 'uint8' ? 0 : -1e6, max: dtype === 'uint8' ? 255 : 1e6 }), {
          minLength: n,
          maxLength: n,
        });

  const arbSelect = fc
    .constantFrom(...DTYPES)
    .chain((dtype) =>
      arbShape(1, 4, 5).chain((shape) =>
        fc
          .tuple(
            fc.constant(dtype),
            fc.constant(shape),
            fc.integer({ min: 0, max: shape.length - 1 }),
            arbValues(size(shape), dtype),
          )
          .chain(([d, s, axis, v]) =>
            fc.tuple(
              fc.constant(d),
              fc.constant(s),
              fc.constant(axis),
              fc.constant(v),
              fc.array(fc.integer({ min: 0, max: s[axis] - 1 }), { minLength: 0, maxLength: 7 }),
              fc.boolean(),
            ),
          ),
      ),
    );

  forEachBackend(t, oracleCase('indexSelect'), async (t, b) => {
    {
      await fc.assert(
        fc.asyncProperty(arbSelect, async ([dtype, shape, axis, values, idx, asList]) => {
          const y = tidy(() =>
            C.indexSelect(tensor(values, shape, dtype), axis, asList ? idx : tensor(idx, [idx.length], 'int32')),
          );
          if (y.dtype !== dtype) throw new Error(`indexSelect of ${dtype} gave ${y.dtype}`);
          const want = refIndexSelect(refTensor(shape, stored(values, dtype)), axis, idx);
          check(
            compareTo(await take(y), want, { rtol: 0, atol: 0 }),
            `indexSelect ${dtype} axis ${axis} of [${shape}] at [${idx}]`,
          );
        }),
        { numRuns: b.runs },
      );
      // A host list is still range-checked by the op; device indices are clamped into range by the WebGPU kernel.
      const x = tensor([
        [1, 2, 3],
        [4, 5, 6],
      ]);
      t.throws(() => C.indexSelect(x, 1, [0, 3]), /out of range/, 'a host index list is checked');
      if (b.name === 'webgpu') {
        const y = tidy(() => C.indexSelect(x, 1, tensor([-2, 1, 7], [3], 'int32')));
        t.same((await take(y)).data, [1, 2, 3, 4, 5, 6], 'device indices are clamped into [0, n − 1]');
      }
      x.dispose();
    }
  });

  /** out = zeros(shape); out[.., idx[k], ..] += src[.., k, ..], in float64. */
  function refIndexAdd(src: RefTensor, axis: number, idx: readonly number[], shape: readonly number[]): RefTensor {
    const out = refTensor(shape);
    const outer = size(shape.slice(0, axis)),
      inner = size(shape.slice(axis + 1)),
      n = shape[axis],
      K = idx.length;
    for (let a = 0; a < outer; a++)
      for (let k = 0; k < K; k++)
        for (let c = 0; c < inner; c++) {
          out.data[(a * n + idx[k]) * inner + c] += src.data[(a * K + k) * inner + c];
        }
    return out;
  }

  const arbAdd = fc.constantFrom(...DTYPES).chain((dtype) =>
    arbShape(1, 4, 5).chain((shape) =>
      fc.tuple(fc.constant(shape), fc.integer({ min: 0, max: shape.length - 1 })).chain(([s, axis]) =>
        fc.array(fc.integer({ min: 0, max: s[axis] - 1 }), { minLength: 0, maxLength: 8 }).chain((idx) => {
          const srcShape = s.map((d, i) => (i === axis ? idx.length : d));
          return fc.tuple(
            fc.constant(dtype),
            fc.constant(s),
            fc.constant(axis),
            fc.constant(idx),
            fc.constant(srcShape),
            arbValues(size(srcShape), dtype),
          );
        }),
      ),
    ),
  );

  forEachBackend(t, oracleCase('indexAdd'), async (t, b) => {
    {
      await fc.assert(
        fc.asyncProperty(arbAdd, async ([dtype, shape, axis, idx, srcShape, values]) => {
          const y = tidy(() =>
            C.indexAdd(tensor(values, srcShape, dtype), axis, tensor(idx, [idx.length], 'int32'), shape),
          );
          if (y.dtype !== dtype) throw new Error(`indexAdd of ${dtype} gave ${y.dtype}`);
          const r = refIndexAdd(refTensor(srcShape, stored(values, dtype)), axis, idx, shape);
          // Integers wrap like their typed arrays; float32 adds in the CPU's order (compared bitwise below).
          const want = dtype === 'float32' ? r : refTensor(r.shape, stored(r.data, dtype));
          const tol = dtype === 'float32' ? { rtol: 1e-6, atol: 1e-4 } : { rtol: 0, atol: 0 };
          check(compareTo(await take(y), want, tol), `indexAdd ${dtype} axis ${axis} into [${shape}] at [${idx}]`);
        }),
        { numRuns: b.runs },
      );
    }
  });

  forEachBackend(
    t,
    oracleCase('indexAdd') + ': bitwise the cpu result (same accumulation order), clamped device indices on webgpu',
    async (t, b) => {
      {
        const src = Float32Array.from({ length: 3 * 9 * 5 }, (_, i) => Math.fround(Math.sin(i) * 1e3 + 1e-3 * i));
        const idx = [4, 0, 4, 2, 4, 0, 1, 4, 3];
        const run = () => tidy(() => C.indexAdd(tensor(src, [3, 9, 5]), 1, tensor(idx, [9], 'int32'), [3, 6, 5]));
        const here = await take(run());
        const prev = engine().backend.name;
        C.setBackend('cpu');
        const cpu = await take(run());
        C.setBackend(prev);
        t.same(here.data, cpu.data, `float32 sums on ${b.name} are bitwise the cpu sums`);
        if (b.name === 'webgpu') {
          const y = tidy(() => C.indexAdd(tensor([1, 2, 3, 4], [4]), 0, tensor([-1, 9, 1, 1], [4], 'int32'), [3]));
          t.same((await take(y)).data, [1, 7, 2], 'out-of-range device indices are clamped (−1 → 0, 9 → 2)');
        }
      }
    },
  );
}
