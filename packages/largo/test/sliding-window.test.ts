import t from 'tap';
import fc from 'fast-check';
import { slidingWindow, tileStarts, gaussianImportance, flipBlock } from '../src/infer/sliding-window.js';

const identity = (x: Float32Array) => x.slice();

t.test('tile starts follow nnU-Net', async (t) => {
  t.same(tileStarts(64, 32, 0.5), [0, 16, 32]);
  t.same(tileStarts(70, 32, 0.5), [0, 13, 25, 38]);
  t.same(tileStarts(32, 32, 0.5), [0]);
  t.same(tileStarts(10, 4, 1), [0, 3, 6]);
  t.throws(() => tileStarts(10, 12), /larger/);
});

t.test('Gaussian importance map: max 1 at the centre, no zeros, symmetric', async (t) => {
  const g = gaussianImportance([8, 8, 8]);
  t.equal(Math.max(...g), 1);
  t.equal(g[(4 * 8 + 4) * 8 + 4], 1);
  t.ok(g.every((v) => v > 0));
  t.equal(g[(3 * 8 + 4) * 8 + 4], g[(5 * 8 + 4) * 8 + 4]);
});

t.test('identity network: exact reconstruction for tilings, overlaps, padding and mirroring', async (t) => {
  await fc.assert(
    fc.asyncProperty(
      fc.record({
        C: fc.integer({ min: 1, max: 3 }),
        D: fc.integer({ min: 1, max: 9 }),
        H: fc.integer({ min: 1, max: 9 }),
        W: fc.integer({ min: 1, max: 9 }),
        pd: fc.integer({ min: 1, max: 6 }),
        ph: fc.integer({ min: 1, max: 6 }),
        pw: fc.integer({ min: 1, max: 6 }),
        step: fc.constantFrom(0.25, 0.5, 1),
        mirror: fc.boolean(),
        gaussian: fc.boolean(),
        bs: fc.integer({ min: 1, max: 3 }),
        seed: fc.integer(),
      }),
      async ({ C, D, H, W, pd, ph, pw, step, mirror, gaussian, bs, seed }) => {
        const img = new Float32Array(C * D * H * W);
        let s = seed | 0;
        for (let i = 0; i < img.length; i++) {
          s = (Math.imul(s, 1103515245) + 12345) | 0;
          img[i] = (s >> 8) / 65536;
        }
        const out = await slidingWindow(img, [C, D, H, W], C, identity, {
          patchSize: [pd, ph, pw],
          step,
          mirror,
          gaussian,
          batchSize: bs,
        });
        return out.length === img.length && out.every((v, i) => Object.is(v, img[i]));
      },
    ),
    { numRuns: 150 },
  );
  t.pass('bitwise equal');
});

t.test('patches that tile the volume exactly (step 1): every voxel predicted once', async (t) => {
  const C = 2,
    D = 8,
    H = 8,
    W = 8;
  const img = Float32Array.from({ length: C * D * H * W }, (_, i) => Math.sin(i) * 100);
  let calls = 0;
  const out = await slidingWindow(
    img,
    [C, D, H, W],
    C,
    (x) => {
      calls++;
      return x.slice();
    },
    { patchSize: [4, 4, 4], step: 1 },
  );
  t.equal(calls, 8);
  t.same([...out], [...img]);
});

t.test('a channel-changing network: mean over channels, shape [K, D, H, W]', async (t) => {
  const img = Float32Array.from({ length: 2 * 5 * 5 * 5 }, (_, i) => i);
  const pn = 3 * 3 * 3;
  const net = (x: Float32Array, n: number) => {
    const out = new Float32Array(n * pn);
    for (let b = 0; b < n; b++)
      for (let i = 0; i < pn; i++) out[b * pn + i] = x[b * 2 * pn + i]! + x[b * 2 * pn + pn + i]!;
    return out;
  };
  const out = await slidingWindow(img, [2, 5, 5, 5], 1, net, { patchSize: [3, 3, 3], mirror: true, batchSize: 2 });
  t.equal(out.length, 125);
  for (let i = 0; i < 125; i++)
    if (Math.abs(out[i]! - (img[i]! + img[125 + i]!)) > 1e-3) {
      t.fail(`voxel ${i}`);
      break;
    }
  await t.rejects(slidingWindow(img, [2, 5, 5, 5], 2, net, { patchSize: [3, 3, 3] }), /expected 1×2×\[3, 3, 3\]/);
});

t.test('flipBlock is an involution', async (t) => {
  const x = Float32Array.from({ length: 2 * 2 * 3 * 4 }, (_, i) => i);
  for (const axes of [[0], [1], [2], [0, 2], [0, 1, 2]])
    t.same([...flipBlock(flipBlock(x, 2, [2, 3, 4], axes), 2, [2, 3, 4], axes)], [...x]);
  t.equal(flipBlock(x, 2, [2, 3, 4], [2])[0], 3);
});
