// Dropout against the float64 oracle on every backend (Philox mask), bitwise
// reproducibility and identity cases. Errors name the op and the shapes.
import t, { type Test } from 'tap';
import fc from 'fast-check';
import { dropout, OpError, Philox, randn, tensor, tidy, type DType } from '@largo/core';
import { refDropout } from '@largo/core/reference';
import { compareAsync, forEachBackend, onCpu, oracleCase, toRef } from '@largo/test-support';

function check(msg: string | null, what: string): void {
  if (msg !== null) throw new Error(`${what}: ${msg}`);
}

function opThrows(t: Test, fn: () => unknown, op: string, ...fragments: string[]): void {
  try {
    fn();
    t.fail(`${op}: expected an error`);
  } catch (e) {
    const m = e instanceof Error ? e.message : String(e);
    t.ok(e instanceof OpError && m.startsWith(op + ':') && fragments.every((f) => m.includes(f)), m);
  }
}

// ---------------------------------------------------------------------------
// dropout

// Written once, run on every backend: the mask is made on the host and multiplied on the backend.
forEachBackend(t, oracleCase('dropout'), async (t, b) => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 0, maxLength: 4 }),
      fc.constantFrom(0, 0.1, 0.5, 0.9, 1),
      fc.constantFrom<DType>(...b.floatDtypes),
      fc.integer({ min: 0, max: 1 << 30 }),
      async (shape, p, dtype, seed) => {
        const { y, want } = tidy(() =>
          onCpu(() => {
            const x = randn(shape, { seed, dtype });
            return {
              y: dropout(b.put(x), p, { generator: new Philox(seed) }),
              want: refDropout(toRef(x), p, new Philox(seed)),
            };
          }),
        );
        check(await compareAsync(y, want, { rtol: 1e-6, atol: 0 }, true), `dropout p=${p} ${dtype} [${shape}]`);
      },
    ),
    { numRuns: b.runs },
  );
});

/** Bitwise equality of two arrays (NaN-free), cheaper than a deep compare of thousands of elements. */
function sameBits(a: ArrayLike<number>, b: ArrayLike<number>): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return false;
  return true;
}

t.test(oracleCase('dropout') + ': reproducibility and identities', async (t) => {
  tidy(() => {
    const x = randn([64, 64], { seed: 1 });
    const g1 = new Philox(42),
      g2 = new Philox(42);
    const a = dropout(x, 0.3, { generator: g1 }),
      b = dropout(x, 0.3, { generator: g2 });
    t.ok(sameBits(a.dataSync(), b.dataSync()), 'bitwise identical for the same generator state');
    t.same(g1.state, g2.state, 'generators advanced alike');
    const c = dropout(x, 0.3, { generator: g1 });
    t.notOk(sameBits(a.dataSync(), c.dataSync()), 'the next call draws a new mask');
    // Resuming from a saved state reproduces the mask.
    const g3 = new Philox(7);
    const st = g3.state;
    const d1 = dropout(x, 0.5, { generator: g3 }).dataSync();
    const g4 = new Philox(0);
    g4.state = st;
    t.ok(sameBits(dropout(x, 0.5, { generator: g4 }).dataSync(), d1), 'restored state → same mask');
    // Kept fraction ≈ 1 − p, kept values scaled by 1/(1 − p).
    const xv = x.dataSync(),
      av = a.dataSync();
    let kept = 0,
      ok = true;
    for (let i = 0; i < av.length; i++) {
      if (av[i] !== 0) {
        kept++;
        ok &&= Math.abs(av[i] - xv[i] / 0.7) <= 1e-6 * Math.abs(xv[i] / 0.7);
      }
    }
    t.ok(Math.abs(kept / av.length - 0.7) < 0.03, `kept fraction ${kept / av.length}`);
    t.ok(ok, 'kept values scaled by 1/(1 − p)');
    // Identity cases do not consume the generator.
    const g5 = new Philox(5),
      s5 = g5.state;
    t.ok(sameBits(dropout(x, 0, { generator: g5 }).dataSync(), xv), 'p = 0 is the identity');
    t.ok(sameBits(dropout(x, 0.5, { generator: g5, training: false }).dataSync(), xv), 'eval is the identity');
    t.same(g5.state, s5, 'identity cases draw nothing');
    t.ok(
      Array.from(dropout(x, 1).dataSync()).every((v) => v === 0),
      'p = 1 zeros everything',
    );
  });
});

t.test('dropout errors', async (t) => {
  tidy(() => {
    opThrows(t, () => dropout(randn([2, 3]), 1.5), 'dropout', 'p', '1.5', '[2, 3]');
    opThrows(t, () => dropout(randn([2]), -0.1), 'dropout', 'p');
    opThrows(t, () => dropout(tensor(new Int32Array(2), [2]), 0.5), 'dropout', 'int32');
  });
});
