import t from 'tap';
import { philox4x32, Rng } from '../src/rng.js';

t.test('Philox-4x32-10 matches the Random123 known-answer vectors', async (t) => {
  const hex = (a: Uint32Array) => [...a].map((v) => v.toString(16).padStart(8, '0')).join(' ');
  t.equal(hex(philox4x32([0, 0, 0, 0], [0, 0])), '6627e8d5 e169c58d bc57ac4c 9b00dbd8');
  t.equal(
    hex(philox4x32([0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff], [0xffffffff, 0xffffffff])),
    '408f276d 41c83b0e a20bc7c6 6d5451fd',
  );
  t.equal(
    hex(philox4x32([0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0])),
    'd16cfe09 94fdcceb 5001e420 24126ea1',
  );
});

t.test('streams: reproducible, distinct, well spread', async (t) => {
  const a = new Rng(123),
    b = new Rng(123);
  const xs = Array.from({ length: 100 }, () => a.uint32());
  t.same(
    xs,
    Array.from({ length: 100 }, () => b.uint32()),
  );
  t.not(new Rng(123, 1).uint32(), new Rng(123).uint32(), 'stream id matters');
  t.not(new Rng(2 ** 40).uint32(), new Rng(0).uint32(), 'high seed bits matter');
  t.equal(Rng.derive(5, 1, 2), Rng.derive(5, 1, 2));
  t.not(Rng.derive(5, 1, 2), Rng.derive(5, 2, 1));
  t.ok(Number.isSafeInteger(Rng.derive(2 ** 50, 7)));
  const r = new Rng(9);
  const n = 20000;
  let s = 0,
    s2 = 0,
    u = 0;
  const hist = new Array(7).fill(0);
  for (let i = 0; i < n; i++) {
    const z = r.normal();
    s += z;
    s2 += z * z;
    const v = r.uniform();
    if (v < 0 || v >= 1) t.fail('uniform out of range');
    u += v;
    hist[r.int(7)]++;
  }
  t.ok(Math.abs(s / n) < 0.03 && Math.abs(s2 / n - 1) < 0.05, 'normal moments');
  t.ok(Math.abs(u / n - 0.5) < 0.01, 'uniform mean');
  t.ok(
    hist.every((c) => Math.abs(c - n / 7) < 0.06 * (n / 7)),
    `int(7) histogram ${hist}`,
  );
  const p = r.shuffle(Array.from({ length: 50 }, (_, i) => i));
  t.same(
    [...p].sort((x, y) => x - y),
    Array.from({ length: 50 }, (_, i) => i),
    'shuffle is a permutation',
  );
  t.throws(() => new Rng(-1), /non-negative safe integer/);
  t.throws(() => new Rng(1.5), /non-negative safe integer/);
  t.throws(() => r.int(0), /n must be an integer/);
});
