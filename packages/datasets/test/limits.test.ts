// Issue 12, item 4: resource bombs in data input. A gzip stream is checked against
// the size its header implies while decompressing; non-regular files are refused by
// name; a dataset scan reads each real folder once whatever the symlinks.
import t from 'tap';
import { mkdtempSync, writeFileSync, mkdirSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { gzipSync, gunzipSync } from 'node:zlib';
import {
  createNifti,
  encodeNifti,
  parseNifti,
  readNifti,
  readNiftiSync,
  discoverCases,
  inspectPath,
  maxNiftiBytes,
  DEFAULT_MAX_NIFTI_BYTES,
  NiftiError,
  DataError,
} from '../src/index.js';

const tmp = (p: string) => mkdtempSync(join(tmpdir(), p));

function smallNifti(): Uint8Array {
  return encodeNifti(createNifti(new Float32Array(4 * 4 * 4).fill(1), [4, 4, 4]));
}

t.test('a gzip stream that inflates past what its header implies is stopped there', async (t) => {
  const raw = smallNifti();
  // header for 256 bytes of voxels, followed by 64 MiB of zeros: a 64 KiB "bomb"
  const gz = gzipSync(Buffer.concat([raw, Buffer.alloc(64 * 1024 * 1024)]), { level: 9 });
  const bigLength = raw.length + 64 * 1024 * 1024;
  t.ok(gz.length < 200_000, `small file (${gz.length} bytes)`);
  const dir = tmp('bomb-');
  writeFileSync(join(dir, 'bomb.nii.gz'), gz);
  t.throws(
    () => parseNifti(gz, 'bomb.nii.gz'),
    new NiftiError('bomb.nii.gz', `decompresses to more than the ${raw.length} bytes its header implies`),
  );
  await t.rejects(
    readNifti(join(dir, 'bomb.nii.gz')),
    /bomb\.nii\.gz: decompresses to more than the 608 bytes its header implies/,
  );
  t.throws(() => readNiftiSync(join(dir, 'bomb.nii.gz')), /decompresses to more than/);
  // peak memory, measured in a fresh process that only reads the 64 KiB file
  const code = `import { readNifti } from ${JSON.stringify(new URL('../src/index.ts', import.meta.url).href)};
const before = process.resourceUsage().maxRSS;
try { await readNifti(${JSON.stringify(join(dir, 'bomb.nii.gz'))}); } catch (e) { console.log(JSON.stringify({ grew: (process.resourceUsage().maxRSS - before) / 1024, msg: e.message })); }`;
  const r = spawnSync(process.execPath, [...process.execArgv, '--input-type=module', '-e', code], { encoding: 'utf8' });
  const res = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as { grew: number; msg: string };
  t.match(res.msg, /decompresses to more than/, r.stderr);
  t.ok(res.grew < 32, `peak memory grew by ${res.grew.toFixed(1)} MiB (< 32; inflating the bomb needs 64)`);
  t.equal(gunzipSync(gz).length, bigLength, 'the bomb is real: a plain gunzip makes 64 MiB');
  // the normal file still reads
  t.same(parseNifti(gzipSync(raw), 'ok.nii.gz').header.dims, [4, 4, 4]);
});

t.test('a header that implies more than the documented limit is refused before decompressing', async (t) => {
  t.equal(maxNiftiBytes(), DEFAULT_MAX_NIFTI_BYTES);
  const img = createNifti(new Uint8Array(8), [2, 2, 2]);
  const raw = encodeNifti(img);
  const dv = new DataView(raw.buffer, raw.byteOffset);
  dv.setInt16(42, 32767, true);
  dv.setInt16(44, 32767, true);
  dv.setInt16(46, 32767, true); // 32767³ voxels
  t.throws(
    () => parseNifti(gzipSync(raw), 'huge.nii.gz'),
    /huge\.nii\.gz: the header implies \d+ bytes of image, more than the 2147483648-byte limit \(LARGO_MAX_NIFTI_BYTES\)/,
  );
  process.env['LARGO_MAX_NIFTI_BYTES'] = '100';
  try {
    t.throws(() => parseNifti(gzipSync(smallNifti()), 'small.nii.gz'), /more than the 100-byte limit/);
  } finally {
    delete process.env['LARGO_MAX_NIFTI_BYTES'];
  }
  // a gzip stream cut inside the header, and garbage after the gzip magic
  const gz = gzipSync(smallNifti());
  t.throws(() => parseNifti(gz.subarray(0, 30), 'cut.nii.gz'), NiftiError);
  t.throws(() => parseNifti(new Uint8Array([0x1f, 0x8b, 8, 0, 1, 2, 3, 4, 5, 6]), 'junk.nii.gz'), /junk\.nii\.gz: /);
});

t.test('folders, devices and missing paths are refused by name', async (t) => {
  const dir = tmp('nonreg-');
  await t.rejects(readNifti(dir), new NiftiError(dir, 'is a folder, not a NIfTI file'));
  t.throws(() => readNiftiSync(dir), /is a folder, not a NIfTI file/);
  await t.rejects(readNifti('/dev/zero'), /\/dev\/zero: is not a regular file/);
  await t.rejects(readNifti(join(dir, 'none.nii.gz')), /none\.nii\.gz: does not exist/);
  await t.rejects(
    inspectPath('/dev/zero'),
    new DataError('/dev/zero: is not a regular file or folder (a device, pipe or socket?)'),
  );
  await t.rejects(inspectPath(join(dir, 'nope')), /nope: does not exist/);
  t.throws(() => discoverCases(join(dir, 'nope')), /nope: data folder does not exist/);
  t.throws(() => discoverCases('/proc/self'), /\/proc\/self: is a system folder \(\/proc\/\d+\), not a data folder/);
  writeFileSync(join(dir, 'f.txt'), 'x');
  t.throws(() => discoverCases(join(dir, 'f.txt')), /f\.txt: is not a folder/);
});

t.test('symlink cycles and fan-outs: each real folder is read once', async (t) => {
  const root = tmp('links-');
  const c = join(root, 'case1');
  mkdirSync(c);
  const raw = smallNifti();
  for (const m of ['flair', 't1', 't1ce', 't2', 'seg']) writeFileSync(join(c, `case1_${m}.nii`), raw);
  // every level links back to the root ten times: naive recursion would visit 10^6 folders
  for (let i = 0; i < 10; i++) {
    symlinkSync(root, join(root, `loop${i}`));
    symlinkSync(root, join(c, `up${i}`));
  }
  const t0 = performance.now();
  const d = discoverCases(root);
  t.ok(performance.now() - t0 < 2000, 'fast');
  t.equal(d.cases.length, 1);
  t.same(Object.keys(d.cases[0]!.files).sort(), ['flair', 't1', 't1ce', 't2']);
});
