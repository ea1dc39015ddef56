import t from 'tap';
import { createHash } from 'node:crypto';
import { generatePhantomCase, PhantomDataset, PHANTOM_UNIQUE, TISSUE } from '../src/phantom.js';
import { BRATS_REGIONS } from '../src/labels.js';

/** sha256 of generatePhantomCase(0) image then labels (Node 20, x86-64; V8's fdlibm-based Math makes it platform-independent). */
const PINNED_DEFAULT_CASE0 = '1786d021d2253a69bda95d8d79e4fed70c4c030d5923305db2454d8e4f89eaa1';

const sha = (...arrays: ArrayBufferView[]) => {
  const h = createHash('sha256');
  for (const a of arrays) h.update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
  return h.digest('hex');
};

t.test('bitwise reproducible from the seed', async (t) => {
  const a = generatePhantomCase(3, { seed: 42 });
  const b = generatePhantomCase(3, { seed: 42 });
  t.equal(sha(a.image, a.labels), sha(b.image, b.labels), 'same seed, same bytes');
  t.not(sha(generatePhantomCase(3, { seed: 43 }).image), sha(a.image), 'other seed differs');
  t.not(sha(generatePhantomCase(4, { seed: 42 }).image), sha(a.image), 'other case differs');
  // Pinned digest of the default case 0: any change to the generator must be deliberate.
  const c0 = generatePhantomCase(0);
  t.equal(sha(c0.image, c0.labels), PINNED_DEFAULT_CASE0, 'default case 0 digest');
  const ds = new PhantomDataset({ cases: 2, seed: 5 });
  const x = await ds.loadArrays('phantom-0001');
  const y = await ds.loadArrays('phantom-0001');
  t.equal(sha(x.image, x.label!), sha(y.image, y.label!), 'dataset loads are identical');
});

t.test('default: 4 modalities, 32³, nested BraTS-like labels', async (t) => {
  const ds = new PhantomDataset();
  t.same(ds.modalities, ['flair', 't1', 't1ce', 't2']);
  t.equal(ds.cases.length, 16);
  t.same(ds.labelChannels, ['WT', 'TC', 'ET']);
  for (const id of ds.cases.slice(0, 6)) {
    const c = await ds.loadArrays(id);
    t.same(c.imageShape, [4, 32, 32, 32]);
    t.same(c.labelShape, [3, 32, 32, 32]);
    t.same(c.missing, [false, false, false, false]);
    const n = 32 ** 3;
    const [wt, tc, et] = [0, 1, 2].map((r) => c.label!.subarray(r * n, (r + 1) * n));
    let nested = true,
      cnt = [0, 0, 0];
    for (let i = 0; i < n; i++) {
      if ((et[i]! && !tc[i]) || (tc[i]! && !wt[i])) nested = false;
      cnt[0]! += wt[i]!;
      cnt[1]! += tc[i]!;
      cnt[2]! += et[i]!;
    }
    t.ok(nested, `${id}: ET ⊂ TC ⊂ WT`);
    t.ok(cnt[2]! > 20 && cnt[1]! > cnt[2]! && cnt[0]! > cnt[1]!, `${id}: region sizes ${cnt}`);
    // z-scored inside the brain; exactly zero outside
    for (let m = 0; m < 4; m++) {
      const x = c.image.subarray(m * n, (m + 1) * n);
      let s = 0,
        k = 0;
      for (const v of x)
        if (v !== 0) {
          s += v;
          k++;
        }
      t.ok(
        Math.abs(s / k) < 1e-3 && k > 0.25 * n && k < 0.45 * n,
        `${id} modality ${m}: brain ${k} voxels, mean ${s / k}`,
      );
    }
  }
  const raw = generatePhantomCase(0);
  t.same([...new Set(raw.labels)].sort(), [0, 1, 2, 4]);
  const sample = await ds.load(ds.cases[0]!);
  t.same(sample.image.shape, [4, 32, 32, 32]);
  t.equal(sample.image.dtype, 'float32');
  t.equal(sample.label!.dtype, 'uint8');
  sample.image.dispose();
  sample.label!.dispose();
});

/** Best balanced accuracy of a single threshold separating sample a from sample b. */
function thresholdAccuracy(a: number[], b: number[]): number {
  const all = [...a.map((v) => [v, 0] as const), ...b.map((v) => [v, 1] as const)].sort((x, y) => x[0] - y[0]);
  let ca = 0,
    cb = 0,
    best = 0.5;
  for (let i = 0; i < all.length; i++) {
    if (all[i]![1] === 0) ca++;
    else cb++;
    if (i + 1 < all.length && all[i + 1]![0] === all[i]![0]) continue;
    const acc = 0.5 * (ca / a.length + (b.length - cb) / b.length);
    best = Math.max(best, acc, 1 - acc);
  }
  return best;
}

for (const M of [2, 3, 4, 5]) {
  t.test(`${M} modalities: each one separates a tissue pair that no other modality separates`, async (t) => {
    // Pool 6 cases; intensities divided by the brain mean of each case and modality (gain-free).
    const pools = new Map<string, [number[], number[]]>();
    for (let k = 0; k < 6; k++) {
      const c = generatePhantomCase(k, { modalities: M, seed: 11 });
      const n = c.tissue.length;
      for (const u of PHANTOM_UNIQUE[M]!) {
        for (let m = 0; m < M; m++) {
          const x = c.image.subarray(m * n, (m + 1) * n);
          let s = 0,
            cnt = 0;
          for (const v of x)
            if (v !== 0) {
              s += v;
              cnt++;
            }
          const key = `${u.modality}/${m}`;
          if (!pools.has(key)) pools.set(key, [[], []]);
          const [pa, pb] = pools.get(key)!;
          for (let i = 0; i < n; i++) {
            if (c.tissue[i] === u.classes[0]) pa.push(x[i]! / (s / cnt));
            else if (c.tissue[i] === u.classes[1]) pb.push(x[i]! / (s / cnt));
          }
        }
      }
    }
    for (const u of PHANTOM_UNIQUE[M]!) {
      const accs = Array.from({ length: M }, (_, m) => {
        const [a, b] = pools.get(`${u.modality}/${m}`)!;
        t.ok(a.length > 20 && b.length > 20, `enough voxels of classes ${u.classes}`);
        return thresholdAccuracy(a, b);
      });
      t.ok(
        accs[u.modality]! > 0.97,
        `modality ${u.modality} separates classes ${u.classes}: ${accs[u.modality]!.toFixed(3)}`,
      );
      for (let m = 0; m < M; m++) {
        if (m !== u.modality)
          t.ok(accs[m]! < 0.7, `modality ${m} does not separate classes ${u.classes}: ${accs[m]!.toFixed(3)}`);
      }
    }
  });
}

t.test('labels do not depend on the modality count; different names allowed', async (t) => {
  const ref = generatePhantomCase(2, { modalities: 2, seed: 9 });
  for (const M of [3, 4, 5])
    t.equal(sha(generatePhantomCase(2, { modalities: M, seed: 9 }).labels), sha(ref.labels), `M = ${M}`);
  t.same(new PhantomDataset({ modalities: 5 }).modalities, ['flair', 't1', 't1ce', 't2', 'dwi']);
  t.same(new PhantomDataset({ modalities: 2, modalityNames: ['a', 'b'] }).modalities, ['a', 'b']);
  const c5 = generatePhantomCase(0, { modalities: 5 });
  t.ok(
    c5.tissue.includes(TISSUE.V) && c5.tissue.includes(TISSUE.M1) && c5.tissue.includes(TISSUE.M2),
    'mimics present with 5 modalities',
  );
  t.notOk(generatePhantomCase(0, { modalities: 3 }).tissue.includes(TISSUE.M1), 'no mimics without t2');
});

t.test('2D variant and options', async (t) => {
  const ds = new PhantomDataset({ dims: 2, size: 48, cases: 3, modalities: 3 });
  const c = await ds.loadArrays('phantom-0002');
  t.same(c.imageShape, [3, 48, 48]);
  t.same(c.labelShape, [3, 48, 48]);
  t.same(c.spacing, [1, 1]);
  t.ok(
    c.label!.subarray(2 * 48 * 48).some((v) => v === 1),
    'ET present in 2D',
  );
  const lm = await new PhantomDataset({ dims: 2, size: [40, 56], labelMode: 'labels', normalize: 'none' }).loadArrays(
    'phantom-0000',
  );
  t.same(lm.imageShape, [4, 40, 56]);
  t.same(lm.labelShape, [1, 40, 56]);
  t.ok(
    lm.image.every((v) => v >= 0),
    'raw intensities are non-negative',
  );
  t.throws(() => new PhantomDataset({ modalities: 6 }), /modalities must be 2 to 5/);
  t.throws(() => new PhantomDataset({ size: 4 }), /size must be 3 integers ≥ 8/);
  t.throws(() => new PhantomDataset({ modalities: 2, modalityNames: ['x'] }), /1 modality names for 2 modalities/);
  await t.rejects(ds.loadArrays('phantom-0009'), /unknown phantom case 'phantom-0009'/);
  t.equal(BRATS_REGIONS.length, 3);
});
