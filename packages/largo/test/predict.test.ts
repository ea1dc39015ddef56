import t from 'tap';
import { mkdtempSync, existsSync, readFileSync, writeFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { decodeSafetensors, tensor, tidy, indexSelect } from '@largo/core';
import { noGrad } from '@largo/autograd';
import { readNiftiSync, niftiAffine, createNifti, writeNiftiSync } from '@largo/datasets';
import { buildSegmentationFamily } from '../src/nets/unet.js';
import { channelsOf } from '../src/subsets.js';
import { requirement } from '@largo/test-support';

const here = fileURLToPath(new URL('.', import.meta.url));
const DIST_CLI = join(here, '..', 'dist', 'cli.js');
const CLI_ARGS = existsSync(DIST_CLI) ? [DIST_CLI] : [...process.execArgv, join(here, '..', 'src', 'cli.ts')];
const TINY = join(here, '..', 'configs', 'tiny.json');
const SAMPLE = join(
  process.env.LARGO_SHARED_DATASETS || join(here, '..', '..', '..', '..', 'shared', 'datasets'),
  'brats-sample',
);
const cli = (...args: string[]) => spawnSync(process.execPath, [...CLI_ARGS, ...args], { encoding: 'utf8' });

// one tiny trained checkpoint (phantom, modalities flair, t1, t1ce, t2) shared by the tests below
const out = mkdtempSync(join(tmpdir(), 'predict-'));
const trained = cli(
  'train',
  '--config',
  TINY,
  '--out',
  out,
  '--run-name',
  'r',
  '--steps',
  '2',
  '--methods',
  'largo,dropout',
  '--no-eval',
  '--quiet',
);
const CK = join(out, 'r', 'largo', 'last.safetensors');

t.test('the tiny run trained', async (t) => {
  t.equal(trained.status, 0, trained.stderr);
  t.ok(existsSync(CK));
});

const f = (m: string) => join(SAMPLE, `BraTS19_2013_10_1_${m}.nii.gz`);

t.test(
  'predict on the BraTS sample with a subset of modalities: NIfTI with the input shape and affine',
  { skip: requirement('SHARED', !existsSync(SAMPLE) && `no BraTS sample at ${SAMPLE}`) },
  async (t) => {
    const seg = join(out, 'seg.nii.gz');
    const r = cli('predict', '--checkpoint', CK, '--flair', f('flair'), '--t1post', f('t1post'), '--out', seg);
    t.equal(r.status, 0, r.stderr);
    t.match(r.stderr, /subset flair\+t1ce \(k=5\)/);
    const inp = readNiftiSync(f('flair')),
      pred = readNiftiSync(seg);
    t.same(pred.header.dims.slice(0, 3), inp.header.dims.slice(0, 3), 'same shape');
    t.same(niftiAffine(pred.header), niftiAffine(inp.header), 'same affine');
    t.equal(pred.header.dtype, 'uint8');
    t.ok(
      [...(pred.data as Uint8Array)].every((v) => [0, 1, 2, 4].includes(v)),
      'BraTS label values',
    );
    const side = JSON.parse(readFileSync(seg + '.json', 'utf8'));
    t.equal(side.subset, 5);
    t.equal(side.seed, 7, 'the seed and effective config are saved beside the result');
    t.equal(side.config.dataset, 'phantom');
    // a case folder (all four modalities) and the dropout model
    const seg2 = join(out, 'seg2.nii');
    const r2 = cli(
      'predict',
      '--checkpoint',
      join(out, 'r', 'dropout', 'last.safetensors'),
      '--case',
      SAMPLE,
      '--out',
      seg2,
    );
    t.equal(r2.status, 0, r2.stderr);
    t.match(r2.stderr, /subset flair\+t1\+t1ce\+t2/);
    t.same(readNiftiSync(seg2).header.dims.slice(0, 3), [30, 30, 30]);
  },
);

t.test(
  'predict: bad input gives a clear error naming the thing, exit code 2, nothing lost',
  { skip: requirement('SHARED', !existsSync(SAMPLE) && `no BraTS sample at ${SAMPLE}`) },
  async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'predict-bad-'));
    const target = join(dir, 'seg.nii.gz');
    let r = cli('predict', '--checkpoint', CK, '--flair', join(dir, 'missing_flair.nii.gz'), '--out', target);
    t.equal(r.status, 2);
    t.match(r.stderr, /missing_flair\.nii\.gz does not exist/);
    // wrong shape
    const small = join(dir, 'small_t2.nii');
    writeNiftiSync(small, createNifti(new Float32Array(8 * 8 * 8).fill(1), [8, 8, 8]));
    r = cli('predict', '--checkpoint', CK, '--flair', f('flair'), '--t2', small, '--out', target);
    t.equal(r.status, 2);
    t.match(r.stderr, /small_t2\.nii \(t2\) has shape \[8, 8, 8\] but .*flair\.nii\.gz \(flair\) has \[30, 30, 30\]/);
    // NaN in the input
    const nan = join(dir, 'nan_t1.nii');
    const vals = new Float32Array(30 * 30 * 30).fill(1);
    vals[5] = NaN;
    const img = createNifti(vals, [30, 30, 30]);
    img.header = {
      ...readNiftiSync(f('flair')).header,
      dtype: 'float32',
      datatype: 16,
      bitpix: 32,
      sclSlope: 0,
      sclInter: 0,
    };
    writeNiftiSync(nan, img);
    r = cli('predict', '--checkpoint', CK, '--t1', nan, '--out', target);
    t.equal(r.status, 2);
    t.match(r.stderr, /nan_t1\.nii \(t1\) holds 1 NaN\/Inf voxel/);
    // no modality, unknown modality
    r = cli('predict', '--checkpoint', CK, '--out', target);
    t.equal(r.status, 2);
    t.match(r.stderr, /--flair, --t1, --t1ce, --t2/);
    r = cli('predict', '--checkpoint', CK, '--input', 'pet=x.nii', '--out', target);
    t.equal(r.status, 2);
    t.match(r.stderr, /unknown modality 'pet'/);
    // truncated checkpoint
    const trunc = join(dir, 'trunc.safetensors');
    writeFileSync(trunc, readFileSync(CK).subarray(0, 200));
    r = cli('predict', '--checkpoint', trunc, '--flair', f('flair'), '--out', target);
    t.equal(r.status, 2);
    t.match(r.stderr, /trunc\.safetensors: is truncated or corrupt/);
    t.same(
      readdirSync(dir).filter((x) => x.startsWith('seg')),
      [],
      'no output (or sidecar) written by failed runs',
    );
    // an existing output is never overwritten without --force
    writeFileSync(target, 'precious');
    r = cli('predict', '--checkpoint', CK, '--flair', f('flair'), '--out', target);
    t.equal(r.status, 2);
    t.match(r.stderr, /already exists; pass --force/);
    t.equal(readFileSync(target, 'utf8'), 'precious');
  },
);

t.test(
  'training on data with unknown labels fails with exit code 2 naming the file, before writing a run',
  { skip: requirement('SHARED', !existsSync(SAMPLE) && `no BraTS sample at ${SAMPLE}`) },
  async (t) => {
    const o = mkdtempSync(join(tmpdir(), 'badlabel-'));
    const r = cli(
      'train',
      '--dataset',
      'brats',
      '--data',
      SAMPLE,
      '--out',
      o,
      '--steps',
      '1',
      '--quiet',
      '--set',
      'data.split=[1,0,0]',
    );
    t.equal(r.status, 2, r.stderr);
    t.match(r.stderr, /BraTS19_2013_10_1_seg\.nii\.gz/);
    t.match(r.stderr, /-1|3|5/);
    t.same(readdirSync(o), [], 'no run folder left behind');
  },
);

t.test("export writes subset k's plain network; a plain U-Net loading it reproduces the family", async (t) => {
  const plain = join(out, 'plain-k5.safetensors');
  const r = cli('export', '--checkpoint', CK, '--subset', 'flair+t1ce', '--out', plain);
  t.equal(r.status, 0, r.stderr);
  const dec = decodeSafetensors(new Uint8Array(readFileSync(plain)), plain);
  t.equal(dec.metadata['largo.subset'], '5');
  t.same(JSON.parse(dec.metadata['largo.modalities']!), ['flair', 't1ce']);
  const cfg = JSON.parse(readFileSync(join(out, 'r', 'config.json'), 'utf8')).config;
  const opts = {
    modalities: 2,
    classes: 3,
    baseFeatures: cfg.model.baseFeatures,
    depth: cfg.model.depth,
    deepSupervision: cfg.model.deepSupervision,
    seed: 1,
  };
  const plainNet = buildSegmentationFamily({ method: 'full-only', ...opts });
  for (const [name, p] of plainNet.namedParameters()) {
    const e = dec.tensors[name];
    t.ok(e, `tensor ${name} exported`);
    if (!e) return;
    t.same(e.shape, [...p.shape], `${name} shape`);
    const src = tensor(e.data as Float32Array, p.shape);
    p.backend.copy(src.dataId, p.dataId);
    src.dispose();
  }
  t.equal(Object.keys(dec.tensors).length, plainNet.namedParameters().length, 'no extra tensors');
  // the family from the checkpoint, subset 5, on a zero-filled 4-channel input
  const { loadCheckpoint, restoreParams } = await import('../src/checkpoint.js');
  const family = buildSegmentationFamily({ method: 'largo', ...opts, modalities: 4, seed: cfg.seed });
  const ck = loadCheckpoint(CK);
  restoreParams(ck, family.namedParameters());
  family.train(false);
  plainNet.train(false);
  const x = Float32Array.from({ length: 4 * 8 * 8 * 8 }, (_, i) => Math.sin(i * 0.37));
  const ch = channelsOf(5, 4);
  for (let m = 0; m < 4; m++) if (!ch.includes(m)) x.fill(0, m * 512, (m + 1) * 512);
  const [a, b] = noGrad(() =>
    tidy(() => {
      const xt = tensor(x, [1, 4, 8, 8, 8]);
      return [family.forward(xt, 5)[0]!.dataSync(), plainNet.forward(indexSelect(xt, 1, [...ch]), 0)[0]!.dataSync()];
    }),
  );
  let maxDiff = 0;
  for (let i = 0; i < a!.length; i++) maxDiff = Math.max(maxDiff, Math.abs(a![i]! - b![i]!));
  t.ok(maxDiff < 1e-5, `max |family − plain| = ${maxDiff}`);
  family.dispose();
  plainNet.dispose();
  const bad = cli('export', '--checkpoint', CK, '--subset', 'flair+pet', '--out', join(out, 'x.safetensors'));
  t.equal(bad.status, 2);
  t.match(bad.stderr, /unknown modality 'pet'/);
});

t.test("per-subset weight caching: after prepareSubset every factorized layer holds subset k's kernel", async (t) => {
  const { prepareSubset } = await import('../src/infer/predict.js');
  const { FamilyLayer } = await import('../src/layers/family.js');
  const net = buildSegmentationFamily({
    method: 'largo',
    modalities: 4,
    classes: 3,
    baseFeatures: 2,
    depth: 2,
    seed: 3,
  });
  prepareSubset(net, 6);
  const fam = net
    .namedLayers()
    .map(([, l]) => l)
    .filter((l): l is InstanceType<typeof FamilyLayer> => l instanceof FamilyLayer && !l.shared);
  t.ok(fam.length > 0);
  t.ok(
    fam.every((l) => l.isCached(6)),
    `${fam.length} layers cached for subset 6`,
  );
  net.train(true);
  t.ok(
    fam.every((l) => !l.isCached(6)),
    'train(true) drops the caches',
  );
  net.dispose();
});
