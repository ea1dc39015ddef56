import t from 'tap';
import { PatchSampler, augmentIntensity, DEFAULT_AUGMENT } from '../src/patches.js';
import { PhantomDataset } from '../src/phantom.js';
import { Rng } from '../src/rng.js';
import type { CaseArrays } from '../src/dataset.js';

const ds = new PhantomDataset({ cases: 3, size: 24, seed: 3 });
const cases: CaseArrays[] = ds.cases.map((id) => ds.loadArraysSync(id));

const hasFg = (label: Uint8Array | null) => !!label && label.some((v) => v !== 0);

t.test('deterministic: same seed → same patches; draw(k) is pure', async (t) => {
  const a = new PatchSampler(cases, { patchSize: [8, 8, 8], seed: 1, augment: DEFAULT_AUGMENT });
  const b = new PatchSampler(cases, { patchSize: [8, 8, 8], seed: 1, augment: DEFAULT_AUGMENT });
  for (let k = 0; k < 10; k++) {
    const pa = a.sample(),
      pb = b.sample();
    t.same(
      [pa.caseId, pa.origin, pa.mirrored, pa.forcedForeground],
      [pb.caseId, pb.origin, pb.mirrored, pb.forcedForeground],
    );
    t.same(pa.image, pb.image);
  }
  const c = new PatchSampler(cases, { patchSize: [8, 8, 8], seed: 1, augment: DEFAULT_AUGMENT });
  t.same(
    c.draw(7).image,
    new PatchSampler(cases, { patchSize: [8, 8, 8], seed: 1, augment: DEFAULT_AUGMENT }).draw(7).image,
    'draw 7 without drawing 0..6',
  );
  t.equal(a.position, 10);
  const other = new PatchSampler(cases, { patchSize: [8, 8, 8], seed: 2 });
  t.not(
    JSON.stringify(Array.from({ length: 5 }, () => other.sample().origin)),
    JSON.stringify(Array.from({ length: 5 }, (_, k) => a.draw(k).origin)),
  );
});

t.test('plain patches equal the case data at their origin (zero padding outside)', async (t) => {
  const s = new PatchSampler(cases, { patchSize: [30, 10, 7], seed: 4 }); // D larger than the volume → padding
  for (let k = 0; k < 20; k++) {
    const p = s.sample();
    const c = cases.find((x) => x.id === p.caseId)!;
    const [M, D, H, W] = c.imageShape as [number, number, number, number];
    t.same(p.imageShape, [M, 30, 10, 7]);
    t.same(p.labelShape, [3, 30, 10, 7]);
    t.ok(p.origin[0]! <= 0 && p.origin[0]! >= D - 30, 'padded axis origin');
    let ok = true;
    for (let m = 0; m < M && ok; m++)
      for (let d = 0; d < 30; d++)
        for (let h = 0; h < 10; h++)
          for (let w = 0; w < 7; w++) {
            const [sd, sh, sw] = [d + p.origin[0]!, h + p.origin[1]!, w + p.origin[2]!];
            const inside = sd >= 0 && sd < D && sh >= 0 && sh < H && sw >= 0 && sw < W;
            const want = inside ? c.image[((m * D + sd) * H + sh) * W + sw]! : 0;
            if (p.image[((m * 30 + d) * 10 + h) * 7 + w] !== want) ok = false;
          }
    t.ok(ok, `patch ${k} matches`);
  }
});

t.test('foreground oversampling', async (t) => {
  const all = new PatchSampler(cases, { patchSize: [6, 6, 6], seed: 5, foregroundFraction: 1 });
  let fg = 0;
  for (let k = 0; k < 50; k++) {
    const p = all.sample();
    if (p.forcedForeground && hasFg(p.label)) fg++;
  }
  t.equal(fg, 50, 'foregroundFraction 1: every patch forced and holding foreground');
  const none = new PatchSampler(cases, { patchSize: [6, 6, 6], seed: 5, foregroundFraction: 0 });
  t.ok(Array.from({ length: 50 }, () => none.sample()).every((p) => !p.forcedForeground));
  // nnU-Net rule in batches: the last round(N/3) are forced
  const s = new PatchSampler(cases, { patchSize: [6, 6, 6], seed: 6 });
  const batch = s.sampleBatch(6);
  t.same(
    batch.patches.map((p) => p.forcedForeground),
    [false, false, false, false, true, true],
  );
  t.same(batch.imageShape, [6, 4, 6, 6, 6]);
  t.same(batch.labelShape, [6, 3, 6, 6, 6]);
  const per = 3 * 216;
  t.ok(
    [4, 5].every((b) => batch.label!.subarray(b * per, (b + 1) * per).some((v) => v)),
    'forced samples hold foreground',
  );
  // default 1/3 when sampling one at a time: about a third forced
  const single = new PatchSampler(cases, { patchSize: [6, 6, 6], seed: 7 });
  const forced = Array.from({ length: 600 }, () => single.sample().forcedForeground).filter(Boolean).length;
  t.ok(forced > 150 && forced < 250, `${forced} of 600 forced`);
  const tb = s.sampleBatchTensors(2);
  t.same(tb.image.shape, [2, 4, 6, 6, 6]);
  t.equal(tb.label!.dtype, 'uint8');
  tb.image.dispose();
  tb.label!.dispose();
});

t.test('mirroring flips image and label together', async (t) => {
  const plain = new PatchSampler(cases, { patchSize: [8, 8, 8], seed: 8 });
  const flipW = new PatchSampler(cases, { patchSize: [8, 8, 8], seed: 8, augment: { mirror: { axes: [2], p: 1 } } });
  for (let k = 0; k < 5; k++) {
    const a = plain.sample(),
      b = flipW.sample();
    t.same(b.mirrored, [false, false, true]);
    let ok = true;
    for (let i = 0; i < a.image.length; i++) {
      const w = i % 8,
        base = i - w;
      if (b.image[base + 7 - w] !== a.image[i]) ok = false;
    }
    for (let i = 0; i < a.label!.length; i++) {
      const w = i % 8,
        base = i - w;
      if (b.label![base + 7 - w] !== a.label![i]) ok = false;
    }
    t.ok(ok, `patch ${k} mirrored along W`);
  }
  const flipD = new PatchSampler(cases, { patchSize: [8, 8, 8], seed: 8, augment: { mirror: { axes: [0], p: 1 } } });
  const a = plain.draw(0),
    b = flipD.draw(0);
  let ok = true;
  for (let m = 0; m < 4; m++)
    for (let d = 0; d < 8; d++)
      for (let r = 0; r < 64; r++) {
        if (b.image[(m * 8 + 7 - d) * 64 + r] !== a.image[(m * 8 + d) * 64 + r]) ok = false;
      }
  t.ok(ok, 'mirrored along D');
});

t.test('intensity augmentations: each switchable, missing channels untouched', async (t) => {
  const n = 1000;
  const base = () => {
    const x = new Float32Array(2 * n);
    const r = new Rng(1);
    for (let i = 0; i < n; i++) x[i] = r.normal();
    return x; // channel 1 stays zeros (a missing modality)
  };
  const missing = [false, true];
  // brightness only, p = 1: a constant ratio within range
  let x = base();
  augmentIntensity(x, 2, n, missing, { brightness: { p: 1 } }, new Rng(2));
  const x0 = base();
  const ratio = x[0]! / x0[0]!;
  t.ok(ratio >= 0.75 && ratio <= 1.25);
  t.ok(
    x.subarray(0, n).every((v, i) => Math.abs(v - x0[i]! * ratio) < 1e-5),
    'multiplicative',
  );
  t.ok(
    x.subarray(n).every((v) => v === 0),
    'missing channel untouched',
  );
  // noise only
  x = base();
  augmentIntensity(x, 2, n, missing, { noise: { p: 1, variance: [0.09, 0.09] } }, new Rng(3));
  let ss = 0;
  for (let i = 0; i < n; i++) ss += (x[i]! - x0[i]!) ** 2;
  t.ok(Math.abs(Math.sqrt(ss / n) - 0.3) < 0.03, `noise sd ${Math.sqrt(ss / n)}`);
  t.ok(x.subarray(n).every((v) => v === 0));
  // contrast keeps the mean and (preserveRange) the range
  x = base();
  augmentIntensity(x, 2, n, missing, { contrast: { p: 1 } }, new Rng(4));
  const stats = (a: Float32Array) => {
    let s = 0,
      mn = Infinity,
      mx = -Infinity;
    for (const v of a) {
      s += v;
      mn = Math.min(mn, v);
      mx = Math.max(mx, v);
    }
    const mean = s / a.length;
    let q = 0;
    for (const v of a) q += (v - mean) ** 2;
    return { mean, std: Math.sqrt(q / a.length), mn, mx };
  };
  const s0 = stats(x0.subarray(0, n)),
    s1 = stats(x.subarray(0, n));
  t.ok(s1.mn >= s0.mn - 1e-6 && s1.mx <= s0.mx + 1e-6, 'range preserved');
  t.notSame(x.subarray(0, n), x0.subarray(0, n), 'contrast changed something');
  // gamma keeps mean and std (retainStats)
  x = base();
  augmentIntensity(x, 2, n, missing, { gamma: { p: 1, invertP: 0.5 } }, new Rng(5));
  const s2 = stats(x.subarray(0, n));
  t.ok(Math.abs(s2.mean - s0.mean) < 1e-4 && Math.abs(s2.std - s0.std) < 1e-4, 'gamma retains stats');
  // nothing enabled → nothing changes
  x = base();
  augmentIntensity(x, 2, n, missing, {}, new Rng(6));
  t.same(x, base());
  // p = 0 → nothing changes
  x = base();
  augmentIntensity(
    x,
    2,
    n,
    missing,
    { brightness: { p: 0 }, contrast: { p: 0 }, gamma: { p: 0 }, noise: { p: 0 } },
    new Rng(6),
  );
  t.same(x, base());
});

t.test('2D cases: [M, H, W] in, 2D patches out', async (t) => {
  const d2 = new PhantomDataset({ dims: 2, size: 32, cases: 2 });
  const c2 = d2.cases.map((id) => d2.loadArraysSync(id));
  const s = new PatchSampler(c2, { patchSize: [16, 16], seed: 1, augment: DEFAULT_AUGMENT, foregroundFraction: 1 });
  const p = s.sample();
  t.same(p.imageShape, [4, 16, 16]);
  t.same(p.labelShape, [3, 16, 16]);
  t.equal(p.origin.length, 2);
  t.equal(p.mirrored.length, 2);
  t.ok(hasFg(p.label));
  const b = s.sampleBatch(4);
  t.same(b.imageShape, [4, 4, 16, 16]);
  t.throws(() => new PatchSampler(c2, { patchSize: [1, 16, 16], seed: 1 }), /patchSize must be 2 positive integers/);
  t.throws(
    () => new PatchSampler(c2, { patchSize: [8, 8], seed: 1, augment: { mirror: { axes: [2] } } }).sample(),
    /mirror axis 2 is not a spatial axis of this 2D data/,
  );
});

t.test('argument checks', async (t) => {
  t.throws(() => new PatchSampler([], { patchSize: [2, 2, 2], seed: 0 }), /no cases/);
  t.throws(() => new PatchSampler(cases, { patchSize: [2, 2], seed: 0 }), /patchSize must be 3 positive integers/);
  t.throws(
    () => new PatchSampler(cases, { patchSize: [2, 2, 2], seed: 0, foregroundFraction: 2 }),
    /foregroundFraction/,
  );
  const d5 = new PhantomDataset({ modalities: 5, size: 16, cases: 1 });
  t.throws(
    () => new PatchSampler([...cases, d5.loadArraysSync('phantom-0000')], { patchSize: [2, 2, 2], seed: 0 }),
    /has 5 modalities, expected 4/,
  );
});
