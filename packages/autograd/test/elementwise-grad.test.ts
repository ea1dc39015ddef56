// Gradient rules of the elementwise ops, checked by central differences in
// float64 (gradcheck) over random small shapes with broadcasting; kinks are
// kept away from the sample points, ties are checked on purpose.
import t from 'tap';
import fc from 'fast-check';
import * as C from '@largo/core';
import { tensor, tidy, memory, type Tensor } from '@largo/core';
import { backward, gradcheck, requireGrad, NON_DIFFERENTIABLE, hasGrad, type GradcheckOptions } from '@largo/autograd';
import { gradCase, arbShape, verifiedTest } from '@largo/test-support';
import { expectOk } from './helpers/grad-props.js';

const RUNS = Math.max(5, Math.ceil(Number(process.env.LARGO_FC_RUNS ?? 60) / 4));
const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/** float64 values in [min, max] with |v - k| >= gap for every kink k. */
const arbAway = (n: number, min: number, max: number, kinks: number[] = [], gap = 0.05) =>
  fc.array(
    fc.double({ min, max, noNaN: true }).filter((v) => kinks.every((k) => Math.abs(v - k) >= gap)),
    { minLength: n, maxLength: n },
  );

const arbBroadcastable = (out: readonly number[]): fc.Arbitrary<number[]> =>
  fc
    .tuple(
      fc.integer({ min: 0, max: out.length }),
      fc.array(fc.boolean(), { minLength: out.length, maxLength: out.length }),
    )
    .map(([drop, ones]) => out.slice(drop).map((d, i) => (ones[i + drop] ? 1 : d)));
const arbShapePair = arbShape(0, 3, 3).chain((out) => fc.tuple(arbBroadcastable(out), arbBroadcastable(out)));

const f64 = (values: number[], shape: number[]) => tensor(Float64Array.from(values), shape, 'float64');

/**
 * Values for maximum/minimum that never tie, whatever broadcasting pairs up:
 * 0.2·j + u (even lattice) or 0.2·j + 0.1 + u (odd lattice) with |u| ≤ 0.04, in
 * [-3, 3]. An even and an odd value are at least 0.02 apart, so the kink at
 * a == b stays far from every difference step and no draw has to be dropped.
 */
const arbApart = (n: number, odd: boolean) =>
  fc.array(
    fc
      .tuple(fc.integer({ min: -14, max: 14 }), fc.double({ min: -0.04, max: 0.04, noNaN: true }))
      .map(([j, u]) => 0.2 * j + (odd ? 0.1 : 0) + u),
    { minLength: n, maxLength: n },
  );
/** Scalar partners for the one-sided calls: 1.6 is on the even lattice (a is odd), -0.5 on the odd one (b is even). */
const APART_A = 1.6,
  APART_B = -0.5;

/** Runs gradcheck and throws with the worst element when it fails. */
function expectGrad(
  fn: (...xs: Tensor[]) => Tensor,
  inputs: Tensor[],
  what: string,
  opts: GradcheckOptions = {},
): void {
  expectOk(gradcheck(fn, inputs, opts), what);
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

interface UnaryGrad {
  name: string;
  op: string;
  fn: (x: Tensor) => Tensor;
  min: number;
  max: number;
  kinks?: number[];
}
const UNARY: UnaryGrad[] = [
  { name: gradCase('neg'), op: 'neg', fn: C.neg, min: -3, max: 3 },
  { name: gradCase('exp'), op: 'exp', fn: C.exp, min: -3, max: 3 },
  { name: gradCase('log'), op: 'log', fn: C.log, min: 0.2, max: 5 },
  { name: gradCase('sqrt'), op: 'sqrt', fn: C.sqrt, min: 0.2, max: 5 },
  { name: gradCase('abs'), op: 'abs', fn: C.abs, min: -3, max: 3, kinks: [0] },
  { name: gradCase('relu'), op: 'relu', fn: C.relu, min: -3, max: 3, kinks: [0] },
  { name: gradCase('sigmoid'), op: 'sigmoid', fn: C.sigmoid, min: -6, max: 6 },
  { name: gradCase('tanh'), op: 'tanh', fn: C.tanh, min: -3, max: 3 },
  { name: gradCase('leakyRelu'), op: 'leakyRelu', fn: (x) => C.leakyRelu(x, 0.1), min: -3, max: 3, kinks: [0] },
  { name: gradCase('clamp'), op: 'clamp', fn: (x) => C.clamp(x, -1, 0.5), min: -3, max: 3, kinks: [-1, 0.5] },
];

for (const c of UNARY) {
  verifiedTest(t, c.name, async (t) => {
    leakFree(t, c.op, () => {
      fc.assert(
        fc.property(
          arbShape(0, 3, 3).chain((s) => fc.tuple(fc.constant(s), arbAway(size(s), c.min, c.max, c.kinks))),
          ([shape, v]) =>
            tidy(() => {
              expectGrad(c.fn, [f64(v, shape)], `${c.op} at ${JSON.stringify(v)}`);
            }),
        ),
        { numRuns: RUNS },
      );
    });
  });
}

// leakyReluGrad is linear in dy (its own op again) and flat in x away from the kink.
verifiedTest(t, gradCase('leakyReluGrad'), async (t) => {
  leakFree(t, 'leakyReluGrad', () => {
    fc.assert(
      fc.property(
        arbShape(0, 3, 3).chain((s) =>
          fc.tuple(
            fc.constant(s),
            arbAway(size(s), -3, 3, [0]),
            arbAway(size(s), -3, 3),
            fc.constantFrom(0.01, 0.1, -0.5, 0),
          ),
        ),
        ([shape, vx, vg, alpha]) =>
          tidy(() => {
            expectGrad(
              (x, dy) => C.leakyReluGrad(x, dy, alpha),
              [f64(vx, shape), f64(vg, shape)],
              `leakyReluGrad alpha ${alpha} at ${JSON.stringify([vx, vg])}`,
            );
          }),
      ),
      { numRuns: RUNS },
    );
  });
  // Second derivative of leakyRelu: d/dx of ⟨leakyReluGrad(x, dy), u⟩ is 0, d/d(dy) is leakyReluGrad(x, u).
  const x = requireGrad(f64([2, -1, 0.5, -3], [4])),
    dy = requireGrad(f64([1, 2, -3, 4], [4])),
    u = f64([0.5, -1, 2, 3], [4]);
  tidy(() => backward(C.sum(C.mul(C.leakyReluGrad(x, dy, 0.1), u))));
  t.notOk(x.grad, 'no gradient for x (zero almost everywhere)');
  t.same(Array.from(dy.grad!.dataSync()), [0.5, -0.1, 2, 0.30000000000000004], 'd/d(dy) = leakyReluGrad(x, u)');
  for (const v of [x, dy, u]) v.dispose();
});

verifiedTest(t, gradCase('cast'), async (t) => {
  leakFree(t, 'cast', () => {
    fc.assert(
      fc.property(
        arbShape(0, 3, 3).chain((s) => fc.tuple(fc.constant(s), arbAway(size(s), -3, 3))),
        ([shape, v]) =>
          tidy(() => {
            // float64 -> float64 through gradcheck; float64 -> float32 -> float64 exactly: the cotangent is cast back.
            expectGrad((x) => C.mul(C.cast(x, 'float64'), x), [f64(v, shape)], 'cast f64->f64');
            const x = requireGrad(f64(v, shape));
            const u = f64(
              v.map((q, i) => Math.fround(q * 0.5 + i)),
              shape,
            );
            backward(C.sum(C.cast(C.mul(C.cast(x, 'float32'), C.cast(u, 'float32')), 'float64')));
            const g = x.grad!;
            if (g.dtype !== 'float64') throw new Error(`grad dtype ${g.dtype}`);
            const want = u.dataSync();
            g.dataSync().forEach((gv, i) => {
              if (gv !== want[i]) throw new Error(`cast grad ${gv} != ${want[i]}`);
            });
            x.dispose();
          }),
      ),
      { numRuns: RUNS },
    );
  });
  // A cast to an integer dtype cuts the graph: no gradient flows through it.
  const x = requireGrad(tensor([1.5, -2.5]));
  const y = C.cast(x, 'int32');
  t.notOk(y.requiresGrad, 'int output does not require grad');
  t.throws(() => backward(C.sum(y)), { name: 'OpError', message: /^backward: tensor does not require grad/ });
  x.dispose();
});

interface BinaryGrad {
  name: string;
  op: string;
  fn: (a: C.TensorLike, b: C.TensorLike) => Tensor;
  a: [number, number];
  b: [number, number];
  kinksB?: number[];
  apart?: boolean;
}
const BINARY: BinaryGrad[] = [
  { name: gradCase('add'), op: 'add', fn: C.add, a: [-3, 3], b: [-3, 3] },
  { name: gradCase('sub'), op: 'sub', fn: C.sub, a: [-3, 3], b: [-3, 3] },
  { name: gradCase('mul'), op: 'mul', fn: C.mul, a: [-3, 3], b: [-3, 3] },
  { name: gradCase('div'), op: 'div', fn: C.div, a: [-3, 3], b: [-3, 3], kinksB: [0] },
  { name: gradCase('pow'), op: 'pow', fn: C.pow, a: [0.2, 3], b: [-2, 2] },
  { name: gradCase('maximum'), op: 'maximum', fn: C.maximum, a: [-3, 3], b: [-3, 3], apart: true },
  { name: gradCase('minimum'), op: 'minimum', fn: C.minimum, a: [-3, 3], b: [-3, 3], apart: true },
];

for (const c of BINARY) {
  verifiedTest(t, c.name, async (t) => {
    let checked = 0;
    leakFree(t, c.op, () => {
      fc.assert(
        fc.property(
          arbShapePair.chain(([sa, sb]) =>
            fc.tuple(
              fc.constant(sa),
              fc.constant(sb),
              c.apart ? arbApart(size(sa), true) : arbAway(size(sa), c.a[0], c.a[1]),
              c.apart ? arbApart(size(sb), false) : arbAway(size(sb), c.b[0], c.b[1], c.kinksB, 0.3),
            ),
          ),
          ([sa, sb, va, vb]) =>
            tidy(() => {
              const a = f64(va, sa),
                b = f64(vb, sb);
              if (c.apart && C.min(C.abs(C.sub(a, b))).item() < 0.0199)
                throw new Error(`generator gave a near-tie: ${va} vs ${vb}`);
              expectGrad(c.fn, [a, b], `${c.op}(${JSON.stringify(sa)} ${va}, ${JSON.stringify(sb)} ${vb})`);
              // With a number on one side.
              const ka = c.apart ? APART_A : 1.5;
              expectGrad((x) => c.fn(x, ka), [a], `${c.op}(a, ${ka})`);
              const k = c.apart ? APART_B : c.op === 'pow' ? 1.5 : -0.5;
              expectGrad((x) => c.fn(k, x), [b], `${c.op}(${k}, b)`);
              checked++;
            }),
        ),
        { numRuns: RUNS },
      );
    });
    // Every draw is checked: none is dropped as a near-tie.
    t.equal(checked, RUNS, `${c.op}: all ${RUNS} draws gradient-checked`);
  });
}

t.test(gradCase('maximum') + ' / ' + gradCase('minimum') + ' with ties', async (t) => {
  // At a tie each side gets half, which is also what central differences see.
  const a = [1, 2, -1, 0.5, 3],
    b = [1, 0, -1, 0.5, 4];
  for (const fn of [C.maximum, C.minimum]) {
    const r = gradcheck(fn, [f64(a, [5]), f64(b, [5])]);
    t.ok(r.ok, `${fn.name} ties: ${JSON.stringify(r.worst)}`);
  }
  const x = requireGrad(f64([2, 2, 5], [3])),
    y = requireGrad(f64([2, 3, 5], [3]));
  backward(C.sum(C.maximum(x, y)));
  t.same(Array.from(x.grad!.dataSync()), [0.5, 0, 0.5]);
  t.same(Array.from(y.grad!.dataSync()), [0.5, 1, 0.5]);
  x.dispose();
  y.dispose();
  // pow at a = 0 with a positive exponent: d/db is defined as 0 (not 0·log 0 = NaN).
  const p = requireGrad(f64([0, 2], [2])),
    q = requireGrad(f64([2, 3], [2]));
  backward(C.sum(C.pow(p, q)));
  t.same(Array.from(p.grad!.dataSync()), [0, 12]);
  t.same(Array.from(q.grad!.dataSync()), [0, 8 * Math.log(2)]);
  p.dispose();
  q.dispose();
});

verifiedTest(t, gradCase('where'), async (t) => {
  leakFree(t, 'where', () => {
    fc.assert(
      fc.property(
        arbShape(0, 3, 3)
          .chain((out) => fc.tuple(arbBroadcastable(out), arbBroadcastable(out), arbBroadcastable(out)))
          .chain(([sc, sa, sb]) =>
            fc.tuple(
              fc.constant(sc),
              fc.constant(sa),
              fc.constant(sb),
              fc.array(fc.constantFrom(0, 1), { minLength: size(sc), maxLength: size(sc) }),
              arbAway(size(sa), -3, 3),
              arbAway(size(sb), -3, 3),
            ),
          ),
        ([sc, sa, sb, vc, va, vb]) =>
          tidy(() => {
            const c = tensor(Uint8Array.from(vc), sc);
            expectGrad(
              (a, b) => C.where(c, a, b),
              [f64(va, sa), f64(vb, sb)],
              `where ${JSON.stringify([sc, sa, sb])} cond ${vc}`,
            );
            expectGrad((a) => C.where(c, a, 0), [f64(va, sa)], 'where(c, a, 0)');
            expectGrad((b) => C.where(c, 2, b), [f64(vb, sb)], 'where(c, 2, b)');
          }),
      ),
      { numRuns: RUNS },
    );
  });
});

t.test('non-differentiable ops carry no gradient', async (t) => {
  for (const op of [
    'equal',
    'notEqual',
    'less',
    'lessEqual',
    'greater',
    'greaterEqual',
    'logicalAnd',
    'logicalOr',
    'sign',
    'floor',
    'argmax',
    'argmin',
  ]) {
    t.ok(NON_DIFFERENTIABLE.has(op), `${op} is listed`);
    t.notOk(hasGrad(op), `${op} has no rule`);
  }
  const x = requireGrad(f64([0.5, -1.5, 2], [3]));
  for (const y of [C.greater(x, 0), C.floor(x), C.sign(x), C.argmax(x), C.logicalAnd(x, x)]) {
    t.notOk(y.requiresGrad, 'output does not require grad');
    y.dispose();
  }
  // Mixed: the floor path contributes nothing, the identity path 1.
  backward(C.sum(C.add(x, C.floor(x))));
  t.same(Array.from(x.grad!.dataSync()), [1, 1, 1]);
  x.dispose();
});
