// Issue 12: the documented exit codes hold command by command (items 4-7, 9): user
// mistakes exit 2 with a message that names the file, flag or key; nothing is written
// on failure.
import t from 'tap';
import { mkdtempSync, existsSync, writeFileSync, mkdirSync, readdirSync, copyFileSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createNifti, encodeNifti } from '@largo/datasets';
import { main, reportError } from '../src/cli.js';
import { writeFileAtomic, FileWriteError, makeDirs } from '../src/files.js';
import { exitCodeFor } from '../src/cli/common.js';
import { slidingWindow, DEFAULT_MAX_WINDOWS } from '../src/infer/sliding-window.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const DIST_CLI = join(here, '..', 'dist', 'cli.js');
const CLI_ARGS = existsSync(DIST_CLI) ? [DIST_CLI] : [...process.execArgv, join(here, '..', 'src', 'cli.ts')];
const TINY = join(here, '..', 'configs', 'tiny.json');
const SHARED = join(here, '..', '..', '..', '..', 'shared', 'datasets');
const cli = (...args: string[]) =>
  spawnSync(process.execPath, [...CLI_ARGS, ...args], { encoding: 'utf8', timeout: 120_000 });
const tmp = (p: string) => mkdtempSync(join(tmpdir(), p));

async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [],
    err: string[] = [];
  const log = console.log,
    error = console.error,
    write = process.stderr.write;
  console.log = (...a: unknown[]) => {
    out.push(a.join(' '));
  };
  console.error = (...a: unknown[]) => {
    err.push(a.join(' '));
  };
  process.stderr.write = ((s: string | Uint8Array) => {
    err.push(String(s).replace(/\n$/, ''));
    return true;
  }) as typeof process.stderr.write;
  try {
    return { code: await main(argv), out: out.join('\n'), err: err.join('\n') };
  } finally {
    console.log = log;
    console.error = error;
    process.stderr.write = write;
  }
}

/** A case folder with the four BraTS modalities (8³, one grid) and a label. */
function bratsCase(dir: string, id: string, mods = ['flair', 't1', 't1ce', 't2'], pixdim?: number): void {
  mkdirSync(dir, { recursive: true });
  for (const m of mods) {
    const img = createNifti(
      Float32Array.from({ length: 512 }, (_, i) => (i % 7) + 1),
      [8, 8, 8],
    );
    if (pixdim !== undefined) img.header.pixdim[1] = pixdim;
    writeFileSync(join(dir, `${id}_${m}.nii.gz`), encodeNifti(img, { gzip: true }));
  }
  writeFileSync(
    join(dir, `${id}_seg.nii.gz`),
    encodeNifti(
      createNifti(
        Uint8Array.from({ length: 512 }, (_, i) => (i % 5 === 0 ? 1 : 0)),
        [8, 8, 8],
      ),
      { gzip: true },
    ),
  );
}

const ckDir = tmp('hard-ck-');
let CK = '';
t.before(() => {
  const r = cli(
    'train',
    '--config',
    TINY,
    '--out',
    ckDir,
    '--run-name',
    'r',
    '--quiet',
    '--no-eval',
    '--methods',
    'largo',
  );
  if (r.status !== 0) throw new Error(r.stderr);
  CK = join(ckDir, 'r', 'largo', 'last.safetensors');
});

t.test('item 5: user mistakes exit 2 and name the culprit (inspect, --data, cases, disk, config)', async (t) => {
  const dir = tmp('exit2-');
  let r = await run('inspect', join(dir, 'nope.nii.gz'));
  t.equal(r.code, 2);
  t.match(r.err, /nope\.nii\.gz: does not exist/);
  t.notMatch(r.err, /internal error/);
  r = await run('inspect', '/dev/null');
  t.equal(r.code, 2);
  t.match(r.err, /\/dev\/null: is not a regular file or folder/);
  r = await run('train', '--dataset', 'brats', '--data', join(dir, 'missing'), '--out', join(dir, 'runs'), '--quiet');
  t.equal(r.code, 2);
  t.match(r.err, /missing: data folder does not exist/);
  writeFileSync(join(dir, 'file.txt'), 'x');
  r = await run('train', '--dataset', 'brats', '--data', join(dir, 'file.txt'), '--out', join(dir, 'runs'), '--quiet');
  t.equal(r.code, 2);
  t.match(r.err, /file\.txt: is not a folder/);
  // no complete case: says which case lacks what
  bratsCase(join(dir, 'partial'), 'c1', ['flair', 't1']);
  r = await run('train', '--dataset', 'brats', '--data', join(dir, 'partial'), '--out', join(dir, 'runs'), '--quiet');
  t.equal(r.code, 2);
  t.match(r.err, /partial: no complete labelled cases found \(1 incomplete: c1 \(lacks t1ce, t2\)\)/);
  // duplicate modality files
  bratsCase(join(dir, 'dup', 'a'), 'c1');
  bratsCase(join(dir, 'dup', 'b'), 'c1', ['flair']);
  r = await run('train', '--dataset', 'brats', '--data', join(dir, 'dup'), '--out', join(dir, 'runs'), '--quiet');
  t.equal(r.code, 2);
  t.match(r.err, /case c1 has two (flair|label) files: .*a\/c1_(flair|seg)\.nii\.gz and .*b\/c1_/);
  // a folder given as a NIfTI file
  mkdirSync(join(dir, 'x.nii.gz'));
  r = await run('predict', '--checkpoint', CK, '--out', join(dir, 'o.nii.gz'), '--flair', join(dir, 'x.nii.gz'));
  t.equal(r.code, 2);
  t.match(r.err, /x\.nii\.gz: is a folder, not a NIfTI file/);
  // rankMultiplier outside ¼ … 4
  for (const v of ['1e9', '0.1', '5']) {
    r = await run('params', '--rank-multiplier', v);
    t.equal(r.code, 2, `rankMultiplier ${v}`);
    t.match(r.err, /'model\.rankMultiplier' must be between 0\.25 and 4/);
  }
  t.notOk(existsSync(join(dir, 'runs')), 'no run folder was made by any of these');
});

t.test('item 5: unwritable targets name the path (permission, full disk, /proc) and fail fast', async (t) => {
  const dir = tmp('disk-');
  // a full disk, as the file system reports it during the write
  const enospc = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
  let caught: unknown;
  try {
    writeFileAtomic(join(dir, 'last.safetensors'), 'x', {
      afterWrite: () => {
        throw enospc;
      },
    });
  } catch (e) {
    caught = e;
  }
  t.ok(caught instanceof FileWriteError);
  t.match((caught as Error).message, /last\.safetensors: cannot write \(ENOSPC: no space left on the device\)/);
  t.equal(exitCodeFor(caught), 2);
  t.same(readdirSync(dir), [], 'the temporary file is removed');
  const notMade = join(dir, 'nope', 'deeper');
  // a device or pipe at the target is never renamed over (it once replaced /dev/full with a file)
  const fifo = join(dir, 'pipe');
  if (spawnSync('mkfifo', [fifo]).status === 0) {
    t.throws(
      () => writeFileAtomic(fifo, 'x'),
      /pipe: exists and is not a regular file \(a device or pipe\?\); refusing to replace it/,
    );
    t.same(readdirSync(dir), ['pipe']);
  }
  mkdirSync(join(dir, 'folder'));
  t.throws(() => writeFileAtomic(join(dir, 'folder'), 'x'), /folder: is a folder; give a file name/);
  // recursive mkdir spins forever under /proc; ours fails at once with the folder
  const t0 = performance.now();
  t.throws(() => makeDirs('/proc/largo-test/run'), /\/proc\/largo-test: cannot create folder \(ENOENT/);
  t.ok(performance.now() - t0 < 1000);
  const r = cli('train', '--config', TINY, '--out', '/proc/largo-test', '--quiet', '--no-eval', '--steps', '1');
  t.equal(r.status, 2, r.stderr);
  t.match(r.stderr, /\/proc\/largo-test: cannot create folder/);
  // a file where a folder must go
  writeFileSync(join(dir, 'blocker'), 'x');
  const r2 = cli('train', '--config', TINY, '--out', join(dir, 'blocker'), '--quiet', '--no-eval', '--steps', '1');
  t.equal(r2.status, 2);
  t.match(r2.stderr, /blocker: is not a folder \(needed for /);
  t.notOk(existsSync(notMade));
});

t.test('the error policy: internal errors exit 1 and ask for a report; input errors do not', async (t) => {
  const err: string[] = [];
  const error = console.error;
  console.error = (...a: unknown[]) => {
    err.push(a.join(' '));
  };
  let code;
  try {
    code = reportError('train', new TypeError('x is undefined'));
  } finally {
    console.error = error;
  }
  t.equal(code, 1);
  t.match(err.join('\n'), /^largo train: internal error: x is undefined\nThis is a bug in largo, please report it/);
  const r = await run('params', '--depth', '1');
  t.equal(r.code, 2, 'depth 1 used to reach the U-Net constructor as an internal error');
  t.match(r.err, /'model\.depth' must be between 2 and 8/);
});

t.test('item 4: --step is checked, and the window count is bounded before anything is allocated', async (t) => {
  const dir = tmp('step-');
  const vol = join(dir, 'f.nii.gz');
  writeFileSync(
    vol,
    encodeNifti(
      createNifti(
        Float32Array.from({ length: 512 }, (_, i) => i % 3),
        [8, 8, 8],
      ),
      { gzip: true },
    ),
  );
  for (const s of ['0', '-1', '1.5', 'nan', '']) {
    const r = await run('predict', '--checkpoint', CK, '--out', join(dir, 'o.nii.gz'), '--flair', vol, `--step=${s}`);
    t.equal(r.code, 2, `--step '${s}'`);
    t.match(r.err, /--step must be in \(0, 1\]/);
  }
  let r = await run('eval', '--run', join(ckDir, 'r'), '--step', '0');
  t.equal(r.code, 2);
  t.match(r.err, /--step must be in \(0, 1\]/);
  // 1e-9 used to build ~10^27 windows; now it is every position once (8³ volume, 8³ patch: 1 window)
  r = await run('predict', '--checkpoint', CK, '--out', join(dir, 'o.nii.gz'), '--flair', vol, '--step', '1e-9');
  t.equal(r.code, 0, r.err);
  // a big volume with a small step: refused with the count and the limit, in milliseconds
  const t0 = performance.now();
  await t.rejects(
    slidingWindow(new Float32Array(100 ** 3), [1, 100, 100, 100], 1, () => new Float32Array(0), {
      patchSize: [4, 4, 4],
      step: 0.01,
    }),
    new RegExp(
      `step 0\\.01 gives 912673 windows \\(97 × 97 × 97\\) for a 100×100×100 volume and patch 4×4×4, more than the limit of ${DEFAULT_MAX_WINDOWS} \\(LARGO_MAX_WINDOWS\\); use a larger --step`,
    ),
  );
  t.ok(performance.now() - t0 < 500, 'before any allocation');
});

t.test('item 6: repeated single-valued flags are refused instead of the last silently winning', async (t) => {
  const dir = tmp('repeat-');
  writeFileSync(join(dir, 'a.json'), '{"seed": 1}');
  writeFileSync(join(dir, 'b.json'), '{"seed": 2}');
  let r = await run('params', '--config', join(dir, 'a.json'), '--config', join(dir, 'b.json'));
  t.equal(r.code, 2);
  t.match(r.err, /--config given twice \('.*a\.json' and '.*b\.json'\)/);
  r = await run(
    'predict',
    '--checkpoint',
    CK,
    '--out',
    join(dir, 'o.nii.gz'),
    '--flair',
    'x.nii.gz',
    '--flair',
    'y.nii.gz',
  );
  t.equal(r.code, 2);
  t.match(r.err, /--flair given twice \('x\.nii\.gz' and 'y\.nii\.gz'\)/);
  r = await run(
    'predict',
    '--checkpoint',
    CK,
    '--out',
    join(dir, 'o.nii.gz'),
    '--flair=x.nii.gz',
    '--flair',
    'y.nii.gz',
  );
  t.equal(r.code, 2);
  t.match(r.err, /--flair given twice/);
  // found by the fuzz harness: --config /dev/zero read forever
  r = await run('params', '--config', '/dev/zero');
  t.equal(r.code, 2);
  t.match(r.err, /\/dev\/zero: cannot read config file \(not a regular file\)/);
  r = await run('params', '--config', dir);
  t.equal(r.code, 2);
  t.match(r.err, /cannot read config file \(it is a folder\)/);
  r = await run('params', '--set', 'seed=1', '--set', 'seed=2');
  t.equal(r.code, 0, 'repeatable options stay repeatable');
});

t.test('item 6: a NaN pixdim is refused, not copied into the output header', async (t) => {
  const dir = tmp('pixdim-');
  bratsCase(dir, 'c', ['flair'], NaN);
  const r = await run(
    'predict',
    '--checkpoint',
    CK,
    '--out',
    join(dir, 'o.nii.gz'),
    '--flair',
    join(dir, 'c_flair.nii.gz'),
  );
  t.equal(r.code, 2);
  t.match(r.err, /c_flair\.nii\.gz \(flair\) has a non-finite voxel size \(pixdim NaN, 1, 1\)/);
  t.notOk(existsSync(join(dir, 'o.nii.gz')));
});

t.test(
  'item 6: cases lacking a modality are named, skipped by default, refused with data.incomplete=error',
  async (t) => {
    const dir = tmp('incomplete-');
    for (const id of ['c1', 'c2', 'c3', 'c4']) bratsCase(dir, id);
    bratsCase(dir, 'c5', ['flair', 't2']);
    const base = [
      'train',
      '--dataset',
      'brats',
      '--data',
      dir,
      '--out',
      join(dir, 'runs'),
      '--steps',
      '1',
      '--no-eval',
      '--methods',
      'largo',
      '--base-features',
      '2',
      '--depth',
      '2',
      '--patch-size',
      '8',
      '--set',
      'data.split=[0.5,0.25,0.25]',
    ];
    let r = await run(...base, '--run-name', 'skip');
    t.equal(r.code, 0, r.err);
    t.match(
      r.err,
      /warning: 1 case\(s\) left out because they lack a modality or the label \(data\.incomplete = 'skip'; 'train' trains on those with a label, 'error' refuses them\): c5 \(lacks t1, t1ce\)/,
    );
    r = await run(...base, '--run-name', 'strict', '--set', 'data.incomplete=error');
    t.equal(r.code, 2);
    t.match(r.err, /1 case\(s\) lack a modality or the label: c5 \(lacks t1, t1ce\)/);
    r = await run(...base, '--run-name', 'bad', '--set', 'data.incomplete=sometimes');
    t.equal(r.code, 2);
    t.match(r.err, /'data\.incomplete' must be skip, error or train/);
    // 'train': the case joins training with its missing modalities marked (zero channels, subsets cut to what it has)
    r = await run(
      ...base,
      '--run-name',
      'with-missing',
      '--set',
      'data.incomplete=train',
      '--set',
      'train.steps=3',
      '--batch-size',
      '3',
      '--set',
      'train.subsetPerSample=true',
    );
    t.equal(r.code, 0, r.err);
    t.match(
      r.err,
      /1 training case\(s\) lack a modality and train with it marked missing \(data\.incomplete = 'train'\): c5 \(lacks t1, t1ce\)/,
    );
    t.notMatch(r.err, /left out/);
  },
);

t.test('item 6: audit refuses empty manifests, duplicate and malformed cases', async (t) => {
  const dir = tmp('audit-');
  const fx = join(here, '..', '..', '..', 'fixtures', 'audit-default');
  const write = (m: unknown) => {
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify(m));
    copyFileSync(join(fx, 'tensors.safetensors'), join(dir, 'tensors.safetensors'));
  };
  write({ version: 1, cases: [] });
  let r = await run('audit', '--fixtures', dir);
  t.equal(r.code, 2);
  t.match(r.err, /manifest\.json lists no cases/);
  const c = { name: 'a', op: 'add', inputs: ['x'], outputs: ['y'] };
  write({ version: 1, cases: [c, c] });
  r = await run('audit', '--fixtures', dir);
  t.equal(r.code, 2);
  t.match(r.err, /case 'a' appears twice/);
  for (const [bad, msg] of [
    [{ ...c, inputs: 'x' }, /'inputs' must be a list/],
    [{ ...c, name: 3 }, /case 0: 'name' must be a non-empty string/],
    [7, /case 0 is not an object/],
    [{ ...c, rtol: -1 }, /'rtol' must be a number ≥ 0/],
  ] as const) {
    write({ version: 1, cases: [bad] });
    r = await run('audit', '--fixtures', dir);
    t.equal(r.code, 2);
    t.match(r.err, msg);
  }
});

t.test('item 7: messages say what is wrong with what the user typed', async (t) => {
  const dir = tmp('msg-');
  let r = await run('predict', '--checkpoint', join(dir, 'x.nii.gz'), '--out', join(dir, 'o.nii.gz'));
  t.equal(r.code, 2);
  t.match(r.err, /checkpoint .*x\.nii\.gz: does not exist/);
  t.notMatch(r.err, /x\.nii\.gz\.safetensors/);
  r = await run('export', '--checkpoint', join(dir, 'base'), '--subset', '0', '--out', join(dir, 'o.safetensors'));
  t.equal(r.code, 2);
  t.match(r.err, /base: does not exist \(nor does .*base\.safetensors\)/);
  // an ISLES case given to a BraTS-family checkpoint
  const isles = join(SHARED, 'isles-sample');
  if (existsSync(isles)) {
    r = await run('predict', '--checkpoint', CK, '--out', join(dir, 'o.nii.gz'), '--case', isles);
    t.equal(r.code, 2);
    t.match(
      r.err,
      /the case in .*isles-sample has adc, dwi \(isles layout\), but this checkpoint takes flair, t1, t1ce, t2; use a checkpoint trained on isles data/,
    );
  }
  // the grid hint names a key the config accepts
  const g = join(dir, 'grid');
  for (const id of ['c1', 'c2', 'c3', 'c4']) bratsCase(g, id);
  writeFileSync(
    join(g, 'c1_t2.nii.gz'),
    encodeNifti(createNifti(new Float32Array(4 * 8 * 8).fill(1), [8, 8, 4]), { gzip: true }),
  );
  const base = [
    'train',
    '--dataset',
    'brats',
    '--data',
    g,
    '--out',
    join(dir, 'runs'),
    '--steps',
    '1',
    '--no-eval',
    '--methods',
    'largo',
    '--base-features',
    '2',
    '--depth',
    '2',
    '--patch-size',
    '8',
    '--set',
    'data.split=[0.5,0.25,0.25]',
    '--quiet',
  ];
  r = await run(...base, '--run-name', 'a');
  t.equal(r.code, 2);
  t.match(r.err, /c1_t2\.nii\.gz: voxel grid \[4, 8, 8\] does not match .* --set data\.gridMismatch=resample/);
  r = await run(...base, '--run-name', 'b', '--set', 'data.gridMismatch=resample');
  t.equal(r.code, 0, `the hinted setting is accepted: ${r.err}`);
});

t.test('item 9: audit --backend webgpu starts WebGPU (or says why not), unknown backends exit 2', async (t) => {
  const fx = join(here, '..', '..', '..', 'fixtures', 'audit-default');
  let r = await run('audit', '--fixtures', fx, '--backend', 'nonsense');
  t.equal(r.code, 2);
  t.match(r.err, /unknown backend 'nonsense' \(known: cpu.*webgpu, all\)/);
  r = await run('audit', '--fixtures', fx, '--backend', 'webgpu', '--json');
  t.notMatch(r.err, /unknown backend 'webgpu'/);
  if (r.code === 2) t.match(r.err, /--backend webgpu: WebGPU could not be started/);
  else {
    const j = JSON.parse(r.out) as { rows: { backend: string }[] };
    t.ok(j.rows.length > 0 && j.rows.every((row) => row.backend === 'webgpu'), 'every row ran on webgpu');
  }
});
