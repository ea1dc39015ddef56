import t from 'tap';
import fc from 'fast-check';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createNifti, encodeNifti, setNiftiAffine } from '../src/nifti.js';
import { discoverCases } from '../src/discovery.js';
import { openBrats, openIsles, splitCases, readSplitFile, writeSplitFile, NiftiFolderDataset } from '../src/dataset.js';
import { checkLabels, labelsToRegions, LabelError, BRATS_REGIONS } from '../src/labels.js';
import {
  nonzeroBoundingBox,
  cropArray,
  cropAffine,
  zscoreNonzero,
  resampleArray,
  resampledGeometry,
  resampleToGrid,
  matmul4,
} from '../src/volume.js';
import { SKIP_SHARED, shared, tempDir } from './helpers.js';

const BRATS_SEG = 'BraTS19_2013_10_1_seg.nii.gz';

t.test('BraTS sample: seg with 3, 5 and -1 is rejected with counts', { skip: SKIP_SHARED }, async (t) => {
  const ds = openBrats(shared('brats-sample'));
  t.same(ds.cases, ['BraTS19_2013_10_1']);
  t.same(ds.modalities, ['flair', 't1', 't1ce', 't2']);
  t.match(ds.discovery.cases[0]!.files.t1ce, /_t1post\.nii\.gz$/, 't1post spelling accepted as t1ce');
  try {
    await ds.loadArrays('BraTS19_2013_10_1');
    t.fail('no error');
  } catch (e) {
    t.type(e, LabelError);
    const msg = (e as Error).message;
    t.ok(msg.startsWith(shared('brats-sample', BRATS_SEG) + ': '), 'names the seg file');
    t.match(msg, '-1 (2 voxels), 3 (18 voxels), 5 (3 voxels)');
    t.match(msg, /labelPolicy/);
    t.same(
      [...(e as LabelError).offending.entries()].sort((a, b) => a[0] - b[0]),
      [
        [-1, 2],
        [3, 18],
        [5, 3],
      ],
    );
  }
});

t.test('BraTS sample loads with an explicit label policy', { skip: SKIP_SHARED }, async (t) => {
  const bg = await openBrats(shared('brats-sample'), { labelPolicy: 'background' }).loadArrays('BraTS19_2013_10_1');
  t.same(bg.imageShape, [4, 30, 30, 30]);
  t.same(bg.labelShape, [3, 30, 30, 30]);
  t.same(bg.spacing, [Math.fround(5.1666665), 8, 8]);
  t.same(bg.missing, [false, false, false, false]);
  const n = 30 ** 3;
  const count = (a: Uint8Array, r: number) => a.subarray(r * n, (r + 1) * n).reduce((s, v) => s + v, 0);
  // rounded counts: 1 → 97, 2 → 159, 4 → 74; out-of-set voxels dropped to background
  t.equal(count(bg.label!, 0), 97 + 159 + 74, 'WT (background policy)');
  t.equal(count(bg.label!, 1), 97 + 74, 'TC');
  t.equal(count(bg.label!, 2), 74, 'ET');
  const nv = await openBrats(shared('brats-sample'), { labelPolicy: 'nearest-valid' }).loadArrays('BraTS19_2013_10_1');
  // -1 → 0; 5 → 4; the 18 "3"s (2.5..3.43) go to 2 or 4 by their stored value
  t.equal(count(nv.label!, 0), 97 + 159 + 74 + 18 + 3, 'WT (nearest-valid)');
  t.ok(count(nv.label!, 2) > 74 + 3, 'ET gained the 5s and the 3s above 3');
  const lm = await openBrats(shared('brats-sample'), { labelPolicy: 'background', labelMode: 'labels' }).loadArrays(
    'BraTS19_2013_10_1',
  );
  t.same(lm.labelShape, [1, 30, 30, 30]);
  t.same([...new Set(lm.label!)].sort(), [0, 1, 2, 4]);
  // per-modality z-score inside the nonzero mask
  for (let m = 0; m < 4; m++) {
    const x = bg.image.subarray(m * n, (m + 1) * n);
    let s = 0,
      ss = 0,
      c = 0;
    for (const v of x)
      if (v !== 0) {
        s += v;
        ss += v * v;
        c++;
      }
    t.ok(Math.abs(s / c) < 1e-4 && Math.abs(ss / c - 1) < 1e-4, `modality ${m} z-scored`);
  }
  const ds = openBrats(shared('brats-sample'), { labelPolicy: 'background' });
  const sample = await ds.load('BraTS19_2013_10_1');
  t.same(sample.image.shape, [4, 30, 30, 30]);
  t.equal(sample.image.dtype, 'float32');
  t.same(sample.label!.shape, [3, 30, 30, 30]);
  t.equal(sample.label!.dtype, 'uint8');
  sample.image.dispose();
  sample.label!.dispose();
  // resampling to 8 mm isotropic: D goes 30 × 5.17 / 8 ≈ 19
  const rs = await openBrats(shared('brats-sample'), {
    labelPolicy: 'background',
    targetSpacing: [8, 8, 8],
  }).loadArrays('BraTS19_2013_10_1');
  t.same(rs.imageShape, [4, 19, 30, 30]);
  t.ok(Math.abs(rs.spacing[0]! - 8.158) < 0.01, `spacing ${rs.spacing}`);
  t.same([...new Set(rs.label!)].sort(), [0, 1], 'labels stay binary region masks');
});

t.test('ISLES sample: FLAIR and mask missing', { skip: SKIP_SHARED }, async (t) => {
  const strict = openIsles(shared('isles-sample'));
  t.same(strict.cases, [], 'incomplete case excluded by default');
  t.same(
    strict.incomplete.map((c) => [c.id, c.missing]),
    [['sub-strokecase0001_ses-0001', ['flair']]],
  );
  await t.rejects(strict.loadArrays('sub-strokecase0001_ses-0001'), /lacks flair; pass allowMissing/);
  const ds = openIsles(shared('isles-sample'), { allowMissing: true });
  t.same(ds.modalities, ['dwi', 'adc', 'flair']);
  const c = await ds.loadArrays('sub-strokecase0001_ses-0001');
  t.same(c.missing, [false, false, true]);
  t.equal(c.label, null);
  t.equal(c.imageShape[0], 3);
  const n = c.imageShape.slice(1).reduce((p, v) => p * v, 1);
  t.ok(
    c.imageShape.slice(1).every((v, i) => v <= [73, 112, 112][i]!),
    `cropped to ${c.imageShape}`,
  );
  t.ok(
    c.image.subarray(2 * n).every((v) => v === 0),
    'missing FLAIR is zeros',
  );
  t.ok(
    c.image.subarray(0, n).some((v) => v !== 0),
    'DWI present',
  );
  t.same(c.spacing, [2, 2, 2]);
  const s = await ds.load('sub-strokecase0001_ses-0001');
  t.same(s.image.shape, c.imageShape);
  t.equal(s.label, null);
  s.image.dispose();
});

function writeVol(
  path: string,
  shape: number[],
  fill: (d: number, h: number, w: number) => number,
  opts: { affine?: number[][]; dtype?: 'float32' | 'uint8' | 'int16' } = {},
) {
  const [D, H, W] = shape as [number, number, number];
  const ctor = opts.dtype === 'uint8' ? Uint8Array : opts.dtype === 'int16' ? Int16Array : Float32Array;
  const data = new ctor(D * H * W);
  for (let d = 0; d < D; d++)
    for (let h = 0; h < H; h++) for (let w = 0; w < W; w++) data[(d * H + h) * W + w] = fill(d, h, w);
  const img = createNifti(data, [W, H, D], { spacing: [1, 1, 2] });
  if (opts.affine) setNiftiAffine(img.header, opts.affine);
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, encodeNifti(img, { gzip: path.endsWith('.gz') }));
}

/** A small brain-like volume: nonzero inside a box, zeros around (for cropping). */
const brain = (k: number) => (d: number, h: number, w: number) =>
  d >= 1 && d < 5 && h >= 2 && h < 7 && w >= 1 && w < 8 ? 10 * k + d + h + w : 0;
const seg = (d: number, h: number, w: number) => (d === 2 && h === 3 ? (w < 3 ? 1 : w < 5 ? 2 : w < 6 ? 4 : 0) : 0);

t.test('BraTS per-case folders, T1ce spellings, missing modality', async (t) => {
  const root = tempDir(t);
  const shape = [6, 8, 9];
  const mk = (id: string, mods: string[], withSeg = true) => {
    for (const [i, m] of mods.entries()) writeVol(join(root, id, `${id}_${m}.nii.gz`), shape, brain(i + 1));
    if (withSeg) writeVol(join(root, id, `${id}_seg.nii.gz`), shape, seg, { dtype: 'uint8' });
  };
  mk('BraTS20_Training_001', ['flair', 't1', 't1ce', 't2']);
  mk('BraTS20_Training_002', ['flair', 't1', 't1gd']);
  mk('BraTS20_Training_003', ['t2', 't1', 't1post', 'flair'], false);
  writeFileSync(join(root, 'README.txt'), 'not data');
  writeVol(join(root, 'BraTS20_Training_001', 'BraTS20_Training_001_brainmask.nii'), shape, () => 1);

  const d = discoverCases(root);
  t.equal(d.layout, 'brats');
  t.same(
    d.cases.map((c) => [c.id, c.missing, c.label !== null]),
    [
      ['BraTS20_Training_001', [], true],
      ['BraTS20_Training_002', ['t2'], true],
      ['BraTS20_Training_003', [], false],
    ],
  );
  t.match(d.ignored[0], /brainmask/);

  const ds = openBrats(root, { allowMissing: true });
  t.same(ds.cases, ['BraTS20_Training_001', 'BraTS20_Training_002', 'BraTS20_Training_003']);
  const c1 = await ds.loadArrays('BraTS20_Training_001');
  t.same(c1.imageShape, [4, 4, 5, 7], 'cropped to the nonzero box');
  t.same(c1.spacing, [2, 1, 1]);
  // crop moved the origin by (w, h, d) = (1, 2, 1) voxels
  t.same(
    c1.affine.map((r) => r[3]),
    [1, 2, 2, 1],
  );
  const n = 4 * 5 * 7;
  const wt = c1.label!.subarray(0, n);
  // seg voxels at d=2,h=3,w∈[0,6): w=0 is outside the crop (w starts at 1)
  t.equal(
    wt.reduce((s, v) => s + v, 0),
    5,
    'WT voxels inside the crop',
  );
  t.equal(
    c1.label!.subarray(2 * n).reduce((s, v) => s + v, 0),
    1,
    'ET',
  );
  const c2 = await ds.loadArrays('BraTS20_Training_002');
  t.same(c2.missing, [false, false, false, true]);
  t.ok(
    c2.image.subarray(3 * n).every((v) => v === 0),
    't2 zeros',
  );
  const c3 = await ds.loadArrays('BraTS20_Training_003');
  t.equal(c3.label, null);
  t.same(openBrats(root).cases, ['BraTS20_Training_001', 'BraTS20_Training_003'], 'default: incomplete cases excluded');
  t.same(openBrats(root, { requireLabel: true }).cases, ['BraTS20_Training_001']);
  const sub = openBrats(root, { modalities: ['t1ce', 'flair'] });
  t.same(sub.cases.length, 3, 'modality subset in chosen order');
  const cs = await sub.loadArrays('BraTS20_Training_002');
  t.same(cs.imageShape[0], 2);
  t.throws(() => openBrats(root, { modalities: ['dwi'] }), /modality 'dwi' is not part of the brats layout/);

  // duplicate modality
  writeVol(join(root, 'BraTS20_Training_001', 'extra', 'BraTS20_Training_001_t1post.nii.gz'), shape, brain(1));
  t.throws(() => discoverCases(root), /case BraTS20_Training_001 has two t1ce files/);
});

t.test('BraTS flat layout and bad label values in a synthetic case', async (t) => {
  const root = tempDir(t);
  const shape = [3, 4, 5];
  for (const m of ['flair', 't1', 't1ce', 't2']) writeVol(join(root, `X_${m}.nii`), shape, () => 1);
  writeVol(join(root, 'X_seg.nii'), shape, (d, h, w) => (d === 0 && h === 0 ? [0, 7, 3, 3, 255][w]! : 0), {
    dtype: 'uint8',
  });
  const ds = openBrats(root);
  await t.rejects(ds.loadArrays('X'), {
    message: new RegExp(
      `^${join(root, 'X_seg.nii').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: label values outside the label set \\{0, 1, 2, 4\\}: 3 \\(2 voxels\\), 7 \\(1 voxel\\), 255 \\(1 voxel\\)`,
    ),
  });
  const c = await openBrats(root, { labelPolicy: 'nearest-valid', labelMode: 'labels' }).loadArrays('X');
  t.same([...c.label!.subarray(0, 5)], [0, 4, 2, 2, 4], '7 → 4, 3 → 2 (tie to the smaller), 255 → 4');
  const b = await openBrats(root, { labelPolicy: 'background', labelMode: 'labels' }).loadArrays('X');
  t.same([...b.label!.subarray(0, 5)], [0, 0, 0, 0, 0]);
  writeVol(join(root, 'X_t2.nii'), shape, (d) => (d === 1 ? NaN : 1));
  await t.rejects(
    openBrats(root, { labelPolicy: 'background' }).loadArrays('X'),
    /X_t2\.nii: 20 voxel\(s\) are NaN or infinite/,
  );
});

t.test('ISLES 2022 BIDS layout with derivatives masks and FLAIR on another grid', async (t) => {
  const root = tempDir(t);
  const id = 'sub-strokecase0007';
  const ses = 'ses-0001';
  const shape = [4, 6, 6];
  writeVol(join(root, id, ses, 'dwi', `${id}_${ses}_dwi.nii.gz`), shape, (d, h, w) => 1 + d + h + w);
  writeVol(join(root, id, ses, 'dwi', `${id}_${ses}_adc.nii.gz`), shape, (d, h, w) => 2 + d * h * w);
  // FLAIR at a different resolution: 2x finer in-plane, same field of view
  const fine = [
    [0.5, 0, 0, -0.25],
    [0, 0.5, 0, -0.25],
    [0, 0, 2, 0],
    [0, 0, 0, 1],
  ];
  writeVol(join(root, id, ses, 'anat', `${id}_${ses}_FLAIR.nii.gz`), [4, 12, 12], (d, h, w) => 100 + d, {
    affine: fine,
  });
  writeVol(
    join(root, 'derivatives', id, ses, `${id}_${ses}_msk.nii.gz`),
    shape,
    (d, h, w) => (h === 2 && w === 3 ? 1 : 0),
    { dtype: 'uint8' },
  );
  // coarse grid affine = diag(1, 1, 2) (createNifti spacing [1,1,2] without qform/sform)
  const d = discoverCases(root);
  t.equal(d.layout, 'isles');
  t.same(
    d.cases.map((c) => [c.id, Object.keys(c.files).sort(), c.missing, c.label !== null]),
    [[`${id}_${ses}`, ['adc', 'dwi', 'flair'], [], true]],
  );
  const strict = openIsles(root);
  await t.rejects(
    strict.loadArrays(`${id}_${ses}`),
    /_FLAIR\.nii\.gz: voxel grid \[4, 12, 12\] does not match .*_dwi\.nii\.gz \[4, 6, 6\]; resample the modalities onto one grid, or set gridMismatch to 'resample' \(largo: --set data\.gridMismatch=resample\)/,
  );
  const ds = openIsles(root, { gridMismatch: 'resample', crop: false, normalize: 'none' });
  const c = await ds.loadArrays(`${id}_${ses}`);
  t.same(c.imageShape, [3, 4, 6, 6]);
  t.same(c.labelShape, [1, 4, 6, 6]);
  const n = 4 * 6 * 6;
  const flair = c.image.subarray(2 * n);
  t.ok(
    [...flair].every((v, i) => Math.abs(v - (100 + Math.floor(i / 36))) < 1e-4),
    'FLAIR resampled into the DWI grid',
  );
  t.equal(
    c.label!.reduce((s, v) => s + v, 0),
    4,
    'lesion voxels',
  );
});

t.test('nonzero crop, affine shift, z-score', async (t) => {
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 3, maxLength: 3 }),
      fc.array(fc.nat(), { minLength: 6, maxLength: 6 }),
      (shape, r) => {
        const [D, H, W] = shape as [number, number, number];
        const s = [r[0]! % D, r[1]! % H, r[2]! % W];
        const e = s.map((v, i) => v + 1 + (r[3 + i]! % (shape[i]! - v)));
        const a = new Float32Array(D * H * W);
        for (let d = s[0]!; d < e[0]!; d++)
          for (let h = s[1]!; h < e[1]!; h++)
            for (let w = s[2]!; w < e[2]!; w++) a[(d * H + h) * W + w] = 1 + d + h + w;
        const box = nonzeroBoundingBox([a], shape)!;
        if (JSON.stringify(box) !== JSON.stringify({ start: s, end: e }))
          throw new Error(`box ${JSON.stringify(box)} vs ${s} ${e}`);
        const c = cropArray(a, shape, box);
        const cs = e.map((v, i) => v - s[i]!);
        if (c.length !== cs[0]! * cs[1]! * cs[2]! || c.some((v) => v === 0)) throw new Error('crop wrong');
        // world position of every kept voxel is unchanged
        const A = [
          [2, 0.1, 0, 5],
          [0, 3, 0.2, 6],
          [0.3, 0, 4, 7],
          [0, 0, 0, 1],
        ];
        const B = cropAffine(A, box.start);
        const p = matmul4(B, [
          [0, 0, 0, 0],
          [0, 0, 0, 0],
          [0, 0, 0, 0],
          [1, 1, 1, 1],
        ]);
        const q = matmul4(A, [
          [s[2]!, 0, 0, 0],
          [s[1]!, 0, 0, 0],
          [s[0]!, 0, 0, 0],
          [1, 1, 1, 1],
        ]);
        if (Math.abs(p[0]![0]! - q[0]![0]!) + Math.abs(p[1]![0]! - q[1]![0]!) + Math.abs(p[2]![0]! - q[2]![0]!) > 1e-9)
          throw new Error('affine');
      },
    ),
  );
  t.equal(nonzeroBoundingBox([new Float32Array(8)], [2, 2, 2]), null);
  const x = Float32Array.from([0, 1, 2, 3, 0, 4]);
  const st = zscoreNonzero(x);
  t.equal(st.count, 4);
  t.equal(st.mean, 2.5);
  t.same([x[0], x[4]], [0, 0], 'outside the mask stays 0');
  const inside = [x[1]!, x[2]!, x[3]!, x[5]!];
  t.ok(Math.abs(inside.reduce((s, v) => s + v, 0)) < 1e-6);
  t.ok(Math.abs(inside.reduce((s, v) => s + v * v, 0) / 4 - 1) < 1e-6);
  const flat = Float32Array.from([0, 5, 5]);
  zscoreNonzero(flat);
  t.same([...flat], [0, 0, 0], 'constant image is centred, no division by 0');
});

t.test('resampling: linear is exact on linear ramps, nearest keeps labels, geometry consistent', async (t) => {
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: 2, max: 7 }), { minLength: 3, maxLength: 3 }),
      fc.array(fc.integer({ min: 2, max: 9 }), { minLength: 3, maxLength: 3 }),
      fc.array(fc.double({ min: -3, max: 3, noNaN: true }), { minLength: 4, maxLength: 4 }),
      (shape, out, c) => {
        const [D, H, W] = shape as [number, number, number];
        const f = (d: number, h: number, w: number) => c[0]! + c[1]! * d + c[2]! * h + c[3]! * w;
        const a = new Float64Array(D * H * W);
        for (let d = 0; d < D; d++)
          for (let h = 0; h < H; h++) for (let w = 0; w < W; w++) a[(d * H + h) * W + w] = f(d, h, w);
        const r = resampleArray(a, shape, out, 'linear');
        const [oD, oH, oW] = out as [number, number, number];
        const src = (o: number, n: number, on: number) => Math.min(n - 1, Math.max(0, ((o + 0.5) * n) / on - 0.5));
        for (let d = 0; d < oD; d++)
          for (let h = 0; h < oH; h++)
            for (let w = 0; w < oW; w++) {
              const want = f(src(d, D, oD), src(h, H, oH), src(w, W, oW));
              if (Math.abs(r[(d * oH + h) * oW + w]! - want) > 1e-9) throw new Error('linear not exact');
            }
        const lab = Uint8Array.from(a, (v) => [0, 1, 2, 4][Math.abs(Math.round(v)) % 4]!);
        const rn = resampleArray(lab, shape, out, 'nearest');
        if (rn.some((v) => ![0, 1, 2, 4].includes(v))) throw new Error('nearest invented a label');
        // geometry: new voxel centres map onto the source positions used above
        const A = [
          [1.5, 0, 0, 3],
          [0, 2, 0, -1],
          [0, 0, 0.5, 2],
          [0, 0, 0, 1],
        ];
        const g = resampledGeometry(A, [0.5, 2, 1.5], shape, out);
        const world = (M: number[][], i: number, j: number, k: number) =>
          [0, 1, 2].map((r2) => M[r2]![0]! * i + M[r2]![1]! * j + M[r2]![2]! * k + M[r2]![3]!);
        const pNew = world(g.affine, 1, 1, 1);
        const pOld = world(A, (1.5 * W) / oW - 0.5, (1.5 * H) / oH - 0.5, (1.5 * D) / oD - 0.5);
        if (pNew.some((v, i) => Math.abs(v - pOld[i]!) > 1e-9)) throw new Error('geometry');
        if (Math.abs(g.spacing[0]! - (0.5 * D) / oD) > 1e-12) throw new Error('spacing');
      },
    ),
    { numRuns: 200 },
  );
  // resampleToGrid: identity grid is a copy; a shifted grid reads shifted voxels
  const a = Float32Array.from({ length: 2 * 3 * 4 }, (_, i) => i + 1);
  const I = [
    [1, 0, 0, 0],
    [0, 1, 0, 0],
    [0, 0, 1, 0],
    [0, 0, 0, 1],
  ];
  t.same(resampleToGrid({ data: a, shape: [2, 3, 4], affine: I }, { shape: [2, 3, 4], affine: I }, 'linear'), a);
  const shifted = resampleToGrid(
    { data: a, shape: [2, 3, 4], affine: I },
    {
      shape: [2, 3, 4],
      affine: [
        [1, 0, 0, 1],
        [0, 1, 0, 0],
        [0, 0, 1, 0],
        [0, 0, 0, 1],
      ],
    },
    'nearest',
  );
  t.same([...shifted.subarray(0, 4)], [2, 3, 4, 0], 'x shifted by one voxel, outside → 0');
});

t.test('label checks and regions', async (t) => {
  fc.assert(
    fc.property(
      fc.array(fc.double({ min: -3, max: 8, noNaN: true })),
      fc.constantFrom('nearest-valid', 'background') as fc.Arbitrary<'nearest-valid' | 'background'>,
      (vals, policy) => {
        const r = checkLabels(vals, 'x', { policy });
        if (r.labels.some((v) => ![0, 1, 2, 4].includes(v))) throw new Error('invalid label out');
        for (let i = 0; i < vals.length; i++) {
          const v = vals[i]!;
          const rounded = v < 0 ? -Math.round(-v) : Math.round(v);
          if ([0, 1, 2, 4].includes(rounded) && r.labels[i] !== (rounded === 0 ? 0 : rounded))
            throw new Error('valid value changed');
        }
      },
    ),
  );
  t.throws(
    () => checkLabels([0, 1, 2.5], 'f.nii', { nonInteger: 'error' }),
    /f\.nii: label map holds 1 non-integer voxel/,
  );
  t.throws(() => checkLabels([0, NaN], 'f.nii'), /NaN or infinite/);
  t.throws(() => checkLabels([0], 'f.nii', { policy: 'drop' as never }), /unknown label policy 'drop'/);
  const regions = labelsToRegions(Uint8Array.from([0, 1, 2, 4]), BRATS_REGIONS);
  t.same([...regions], [0, 1, 1, 1, 0, 1, 0, 1, 0, 0, 0, 1], 'WT, TC, ET');
  t.same([...checkLabels([0, 1, 1], 'isles', { labels: [0, 1] }).labels], [0, 1, 1]);
});

t.test('splits: deterministic, disjoint, complete; split files validated', async (t) => {
  const cases = Array.from({ length: 23 }, (_, i) => `case${String(i).padStart(3, '0')}`);
  const a = splitCases(cases, { seed: 7 });
  const b = splitCases([...cases].reverse(), { seed: 7 });
  t.same(a, b, 'independent of input order');
  t.notSame(a, splitCases(cases, { seed: 8 }), 'seed matters');
  t.same([...a.train, ...a.val, ...a.test].sort(), cases);
  t.same([a.train.length, a.val.length, a.test.length], [16, 2, 5]);
  const tiny = splitCases(['a', 'b', 'c'], { seed: 1, fractions: [0.8, 0.1, 0.1] });
  t.same([tiny.train.length, tiny.val.length, tiny.test.length], [1, 1, 1], 'nonzero fractions get one case');
  t.throws(() => splitCases(cases, { seed: 1, fractions: [0.5, 0.2, 0.2] }), /sum/);
  const dir = tempDir(t);
  const p = join(dir, 'split.json');
  writeSplitFile(p, a);
  t.same(readSplitFile(p, { cases }), a);
  writeFileSync(p, JSON.stringify({ train: ['case000', 'nope'], test: [] }));
  t.throws(
    () => readSplitFile(p, { cases }),
    new RegExp(`${p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: unknown case id\\(s\\): nope`),
  );
  writeFileSync(p, JSON.stringify({ train: ['case000'], val: ['case000'] }));
  t.throws(() => readSplitFile(p), /'case000' is in both train and val/);
  writeFileSync(
    p,
    JSON.stringify([
      { train: ['case001'], val: ['case002'] },
      { train: ['case002'], val: ['case001'] },
    ]),
  );
  t.same(
    readSplitFile(p, { fold: 1 }),
    { train: ['case002'], val: ['case001'], test: [] },
    'nnU-Net splits_final.json',
  );
  writeFileSync(p, '{oops');
  t.throws(() => readSplitFile(p), /cannot read split file/);
});

t.test('unknown case and unreadable folder errors', async (t) => {
  t.throws(() => new NiftiFolderDataset('/definitely/not/here'), /\/definitely\/not\/here: data folder does not exist/);
  const root = tempDir(t);
  const ds = openBrats(root);
  t.same(ds.cases, []);
  await t.rejects(ds.loadArrays('x'), /unknown case 'x'/);
});
