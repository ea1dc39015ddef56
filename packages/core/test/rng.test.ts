// Philox-4x32-10: known-answer vectors from the Random123 distribution
// (kat_vectors, Salmon et al. SC'11), plus the stream's properties.
import t from 'tap';
import fc from 'fast-check';
import { Philox, philox4x32 } from '@largo/core';
import { FC_RUNS } from '@largo/test-support';

const hex = (a: Uint32Array) => Array.from(a, (v) => v.toString(16).padStart(8, '0')).join(' ');

t.test('Philox-4x32-10 known-answer vectors', async (t) => {
  const o = new Uint32Array(4);
  philox4x32(0, 0, 0, 0, 0, 0, o);
  t.equal(hex(o), '6627e8d5 e169c58d bc57ac4c 9b00dbd8', 'counter 0, key 0');
  const F = 0xffffffff;
  philox4x32(F, F, F, F, F, F, o);
  t.equal(hex(o), '408f276d 41c83b0e a20bc7c6 6d5451fd', 'all ones');
  philox4x32(0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0, o);
  t.equal(hex(o), 'd16cfe09 94fdcceb 5001e420 24126ea1', 'digits of pi');
});

/** 32x32 -> 64 multiply with BigInt: an independent check of the round function's mulhilo. */
function refPhilox(c: bigint[], k: bigint[]): bigint[] {
  const M = 0xffffffffn;
  let [c0, c1, c2, c3] = c,
    [k0, k1] = k;
  for (let r = 0; r < 10; r++) {
    const p0 = 0xd2511f53n * c0,
      p1 = 0xcd9e8d57n * c2;
    [c0, c1, c2, c3] = [((p1 >> 32n) ^ c1 ^ k0) & M, p1 & M, ((p0 >> 32n) ^ c3 ^ k1) & M, p0 & M];
    k0 = (k0 + 0x9e3779b9n) & M;
    k1 = (k1 + 0xbb67ae85n) & M;
  }
  return [c0, c1, c2, c3];
}

t.test('philox4x32 matches a BigInt implementation on random inputs', async (t) => {
  const u32 = fc.integer({ min: 0, max: 0xffffffff });
  fc.assert(
    fc.property(fc.array(u32, { minLength: 6, maxLength: 6 }), (v) => {
      const o = new Uint32Array(4);
      philox4x32(v[0], v[1], v[2], v[3], v[4], v[5], o);
      const want = refPhilox(v.slice(0, 4).map(BigInt), v.slice(4).map(BigInt));
      if (want.some((w, i) => Number(w) !== o[i]))
        throw new Error(`mismatch for ${v}: ${hex(o)} vs ${want.map((w) => w.toString(16)).join(' ')}`);
    }),
    { numRuns: FC_RUNS * 5 },
  );
  t.pass();
});

t.test('Philox stream', async (t) => {
  const g = new Philox(0);
  const a = g.uint32(new Uint32Array(8));
  const o = new Uint32Array(4);
  philox4x32(0, 0, 0, 0, 0, 0, o);
  t.same(Array.from(a.subarray(0, 4)), Array.from(o), 'block 0 of seed 0 is the KAT vector');
  philox4x32(1, 0, 0, 0, 0, 0, o);
  t.same(Array.from(a.subarray(4, 8)), Array.from(o), 'then counter 1');

  // The state property resumes a stream exactly.
  const g1 = new Philox(42);
  g1.uniform(5);
  const saved = g1.state;
  const next = Array.from(g1.uniform(6));
  const g2 = new Philox(1);
  g2.state = saved;
  t.same(Array.from(g2.uniform(6)), next, 'state round-trips');

  const u = new Philox(9).uniform(10000);
  t.ok(
    u.every((v) => v >= 0 && v < 1 && Math.fround(v) === v),
    'uniforms in [0, 1), exactly representable in float32',
  );
  const z = new Philox(9).normal(7);
  t.equal(z.length, 7, 'odd counts of normals');
  t.ok(z.every(Number.isFinite));
  t.notSame(Array.from(new Philox(1).uniform(4)), Array.from(new Philox(2).uniform(4)), 'seeds differ');
  t.notSame(
    Array.from(new Philox(2 ** 32).uniform(4)),
    Array.from(new Philox(0).uniform(4)),
    'seeds above 2^32 use the high key word',
  );
  t.throws(() => new Philox(NaN), /seed must be a finite number/);

  const p = new Philox(3).permutation(50);
  t.same(
    [...p].sort((x, y) => x - y),
    Array.from({ length: 50 }, (_, i) => i),
    'permutation is a permutation',
  );
  t.same(new Philox(3).permutation(50), p, 'and seeded');
  const ints = Array.from(
    { length: 1000 },
    (
      (gen) => () =>
        gen.int(6)
    )(new Philox(4)),
  );
  t.ok(
    ints.every((v) => Number.isInteger(v) && v >= 0 && v < 6),
    'int(n) in [0, n)',
  );
  t.equal(new Set(ints).size, 6, 'int(6) hits every value');
});
