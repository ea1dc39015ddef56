import t from 'tap';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { inspectPath } from '../src/inspect.js';
import { createNifti, encodeNifti } from '../src/nifti.js';
import { SKIP_SHARED, shared, tempDir } from './helpers.js';

t.test('inspect the BraTS sample files and folder', { skip: SKIP_SHARED }, async (t) => {
  for (const m of ['flair', 't1', 't1post', 't2']) {
    const out = await inspectPath(shared('brats-sample', `BraTS19_2013_10_1_${m}.nii.gz`));
    t.match(out, 'shape (x, y, z): 30 × 30 × 30');
    t.match(out, 'dtype: float32 (datatype 16)');
    t.match(out, 'spacing (x, y, z): 8, 8, 5.16667 mm');
    t.match(out, /intensity: min -?\d/);
    t.notMatch(out, 'label counts', `${m} is not a label map`);
  }
  const seg = await inspectPath(shared('brats-sample', 'BraTS19_2013_10_1_seg.nii.gz'));
  t.match(seg, 'label counts: -1: 2, 0: 26647, 1: 97, 2: 159, 3: 18, 4: 74, 5: 3');
  t.match(seg, '540 voxels were not integer-valued');
  t.match(seg, 'WARNING: values outside the BraTS label set {0, 1, 2, 4}: -1 (2 voxels), 3 (18 voxels), 5 (3 voxels)');
  const folder = await inspectPath(shared('brats-sample'));
  t.match(folder, 'layout: brats; modalities (in order): flair, t1, t1ce, t2');
  t.match(folder, 'BraTS19_2013_10_1: has flair, t1, t1ce, t2; lacks none; label present');
});

t.test('inspect the ISLES sample files and folder', { skip: SKIP_SHARED }, async (t) => {
  for (const m of ['adc', 'dwi']) {
    const out = await inspectPath(shared('isles-sample', `sub-strokecase0001_ses-0001_${m}.nii.gz`));
    t.match(out, 'shape (x, y, z): 112 × 112 × 73');
    t.match(out, 'dtype: float64 (datatype 64)');
    t.match(out, 'spacing (x, y, z): 2, 2, 2 mm');
    t.match(out, 'affine from sform (code 1)');
  }
  const folder = await inspectPath(shared('isles-sample'));
  t.match(folder, 'layout: isles; modalities (in order): dwi, adc, flair');
  t.match(folder, 'sub-strokecase0001_ses-0001: has dwi, adc; lacks flair; no label');
});

t.test('inspect MNIST and FSDD', { skip: SKIP_SHARED }, async (t) => {
  t.match(await inspectPath(shared('mnist')), 'IDX magic 0x00000803, shape [10000, 28, 28]');
  t.match(await inspectPath(shared('mnist', 't10k-labels-idx1-ubyte.gz')), 'label counts: 0: 980, 1: 1135');
  const f = await inspectPath(shared('fsdd', 'recordings'));
  t.match(f, 'FSDD recordings: 3000');
  t.match(f, '2100 train, 900 test');
  t.match(await inspectPath(shared('fsdd', 'recordings', '0_george_0.wav')), 'PCM 16-bit, 1 channel(s), 8000 Hz');
});

t.test('inspect synthetic label maps and errors', async (t) => {
  const dir = tempDir(t);
  const p = join(dir, 'case_msk.nii');
  writeFileSync(
    p,
    encodeNifti(createNifti(Uint8Array.from([0, 0, 1, 1, 1, 0]), [3, 2, 1], { sclSlope: 1, sclInter: 0 })),
  );
  const out = await inspectPath(p);
  t.match(out, 'dtype: uint8 (datatype 2)');
  t.match(out, 'label counts: 0: 3, 1: 3');
  t.match(out, 'all values are in the ISLES label set {0, 1}');
  const be = join(dir, 'big.nii.gz');
  writeFileSync(be, encodeNifti(createNifti(Int16Array.from([5, -5]), [2]), { gzip: true, littleEndian: false }));
  t.match(await inspectPath(be), 'big-endian');
  await t.rejects(inspectPath(join(dir, 'nope.nii')), /nope\.nii: does not exist/);
  writeFileSync(join(dir, 'x.txt'), 'hi');
  await t.rejects(inspectPath(join(dir, 'x.txt')), /unknown file type/);
  t.match(await inspectPath(tempDir(t)), 'no NIfTI cases, FSDD recordings or IDX files found');
});
