// @largo/datasets/browser: NIfTI from bytes with gzip through the platform's
// DecompressionStream / CompressionStream (what the page uses), checked
// against the Node reader on the same files.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseNiftiBytes, encodeNiftiBytes, createNifti } from '../src/browser.js';
import { readNifti, parseNifti } from '../src/nifti.js';

const BRATS = join(
  process.env.LARGO_SHARED_DATASETS ?? join(import.meta.dirname, '..', '..', '..', '..', 'shared', 'datasets'),
  'brats-sample',
);
const FILE = join(BRATS, 'BraTS19_2013_10_1_flair.nii.gz');

t.test('a .nii.gz parses the same as with node:zlib', async (t) => {
  const bytes = readFileSync(FILE);
  const a = await parseNiftiBytes(
    bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength),
    'flair.nii.gz',
  );
  const b = await readNifti(FILE);
  t.same(a.header, b.header);
  t.same(Array.from(a.data as ArrayLike<number>), Array.from(b.data as ArrayLike<number>));
});

t.test('encodeNiftiBytes round trip, gzipped and not', async (t) => {
  const img = createNifti(
    Float32Array.from({ length: 60 }, (_, i) => i * 0.5 - 3),
    [5, 4, 3],
    { spacing: [1, 2, 3] },
  );
  for (const gzip of [false, true]) {
    const bytes = await encodeNiftiBytes(img, { gzip });
    t.equal(bytes[0] === 0x1f && bytes[1] === 0x8b, gzip, `gzip magic ${gzip ? 'present' : 'absent'}`);
    const back = parseNifti(bytes, 'x');
    t.same(Array.from(back.data as Float32Array), Array.from(img.data as Float32Array));
    t.same(back.header.pixdim.slice(1, 4), [1, 2, 3]);
  }
});

t.test('bad bytes: the error names the file', async (t) => {
  await t.rejects(
    parseNiftiBytes(new TextEncoder().encode('not a nifti at all'), 'notes.nii'),
    /notes\.nii: truncated/,
  );
  const gz = readFileSync(FILE);
  await t.rejects(parseNiftiBytes(gz.subarray(0, 200), 'cut.nii.gz'), /cut\.nii\.gz: corrupt or truncated gzip stream/);
});
