// The WebGPU path end to end, through the CLI: `largo train --backend webgpu`
// on the phantom config (shrunk to an 8³ patch and a 2-stage net unless
// LARGO_GPU_TEST_FULL=1, which runs phantom.json as it is), its loss
// trajectory against the CPU run's, its checkpoint read by `eval` and
// `predict` on both backends, and predict on a crop of the BraTS sample
// equal to the CPU's up to voxels whose scores tie. Every child process
// must exit by itself (a GPU device left open would keep it alive).
import t from 'tap';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { initWebGpu, webGpuUnavailableReason } from '@largo/gpu';
import { readNiftiSync, createNifti, writeNiftiSync, niftiToVolume, zscoreNonzero } from '@largo/datasets';
import { decodeSafetensors, setBackend } from '@largo/core';
import { loadCheckpoint, restoreParams } from '../src/checkpoint.js';
import { resolveConfig } from '../src/config.js';
import { buildSegNet } from '../src/train/experiment.js';
import { predictVolume, prepareSubset } from '../src/infer/predict.js';
import { placeOn } from '../src/backend-select.js';

// llvmpipe on a shared 2-core machine: several minutes for this file, beyond tap's default 600 s
t.setTimeout(30 * 60_000);
const gpu = await initWebGpu({ quiet: true });
const skip = gpu ? false : `no WebGPU adapter: ${webGpuUnavailableReason()}`;
if (!gpu && process.env['LARGO_REQUIRE_WEBGPU'] === '1') throw new Error(`LARGO_REQUIRE_WEBGPU=1 but ${skip}`);

const here = fileURLToPath(new URL('.', import.meta.url));
const DIST_CLI = join(here, '..', 'dist', 'cli.js');
const CLI_ARGS = existsSync(DIST_CLI) ? [DIST_CLI] : [...process.execArgv, join(here, '..', 'src', 'cli.ts')];
const PHANTOM = join(here, '..', 'configs', 'phantom.json');
const SAMPLE = join(here, '..', '..', '..', '..', 'shared', 'datasets', 'brats-sample');
// a child that does not exit by itself is killed here and fails the test (status null)
const cli = (...args: string[]) =>
  spawnSync(process.execPath, [...CLI_ARGS, ...args], { encoding: 'utf8', timeout: 20 * 60_000 });

const FULL = process.env['LARGO_GPU_TEST_FULL'] === '1';
const STEPS = 50;
const SMALL = FULL
  ? []
  : ['--patch-size', '8', '--batch-size', '1', '--base-features', '2', '--depth', '2', '--set', 'data.phantom.size=8'];
/**
 * Loss trajectory tolerance: |gpu − cpu| ≤ LOSS_TOL·(1 + |cpu|) at every
 * step. Both start from the same weights and data; the GPU sums in float32
 * where the CPU accumulates in float64, and SGD with momentum 0.99 carries
 * those rounding differences forward, so the gap grows with the steps
 * (measured on llvmpipe, shrunk phantom: 4.4e-5 at worst over 50 steps).
 */
const LOSS_TOL = 5e-4;
/** Logits of one voxel on the two backends differ by at most this; a predicted label may differ only where a CPU score is this close to the decision boundary. */
const TIE_TOL = 1e-3;

const out = mkdtempSync(join(tmpdir(), 'gpu-train-'));
const runOf = (b: string) => join(out, b);
const history = (b: string) =>
  (
    JSON.parse(readFileSync(join(runOf(b), 'largo', 'history.json'), 'utf8')) as {
      history: { loss: [number, number][] };
    }
  ).history.loss;

t.test(
  `train --backend webgpu (${STEPS} steps${FULL ? '' : ', shrunk phantom'}) follows the CPU's loss trajectory; the processes exit by themselves`,
  { skip },
  async (t) => {
    const runs: Record<string, ReturnType<typeof cli>> = {};
    for (const b of ['cpu', 'webgpu']) {
      runs[b] = cli(
        'train',
        '--config',
        PHANTOM,
        '--backend',
        b,
        '--steps',
        String(STEPS),
        '--methods',
        'largo',
        '--val-every',
        '25',
        ...SMALL,
        '--out',
        out,
        '--run-name',
        b,
        '--plain',
      );
      t.equal(runs[b]!.status, 0, `${b} run exits 0 by itself`, { stderr: runs[b]!.stderr.slice(-2000) });
    }
    t.match(
      runs['webgpu']!.stderr,
      /run folder: .*backend webgpu: \S/,
      'the first line names the backend and the adapter',
    );
    const cfg = JSON.parse(readFileSync(join(runOf('webgpu'), 'config.json'), 'utf8')) as {
      backend: { name: string; choice: string; adapter: string };
    };
    t.equal(cfg.backend.name, 'webgpu', 'config.json records the backend');
    t.ok(cfg.backend.adapter.length > 0, `and the adapter (${cfg.backend.adapter})`);
    const a = history('cpu'),
      g = history('webgpu');
    t.equal(g.length, STEPS);
    t.same(
      g.map(([s]) => s),
      a.map(([s]) => s),
      'same steps',
    );
    let worst = 0,
      at = 0;
    g.forEach(([, v], i) => {
      const d = Math.abs(v - a[i]![1]) / (1 + Math.abs(a[i]![1]));
      if (d > worst) {
        worst = d;
        at = i + 1;
      }
    });
    t.ok(
      worst <= LOSS_TOL,
      `losses agree within ${LOSS_TOL} (worst ${worst.toExponential(2)} at step ${at}; first ${g[0]![1]} vs ${a[0]![1]})`,
    );
    t.ok(g[STEPS - 1]![1] < g[0]![1], 'the loss goes down on the GPU');
  },
);

t.test('the GPU checkpoint: eval accepts it on both backends and scores it alike', { skip }, async (t) => {
  const results: Record<string, { rows: unknown }> = {};
  for (const b of ['cpu', 'webgpu']) {
    const r = cli('eval', '--run', runOf('webgpu'), '--backend', b, '--no-hd95', '--quiet');
    t.equal(r.status, 0, `eval --backend ${b} exits 0`, { stderr: r.stderr.slice(-2000) });
    results[b] = JSON.parse(readFileSync(join(runOf('webgpu'), 'results.json'), 'utf8'));
  }
  const flat = (x: unknown): number[] =>
    typeof x === 'number' ? [x] : x && typeof x === 'object' ? Object.values(x).flatMap(flat) : [];
  const c = flat(results['cpu']),
    w = flat(results['webgpu']);
  t.equal(w.length, c.length);
  // Dice over whole phantom cases: a handful of boundary voxels may flip, so agreement to 1e-2
  const worst = c.reduce((m, v, i) => Math.max(m, Math.abs(v - w[i]!)), 0);
  t.ok(worst <= 1e-2, `Dice tables agree (worst difference ${worst.toExponential(2)})`);
});

t.test(
  'predict --backend webgpu on a crop of the BraTS sample: the CPU segmentation up to ties',
  { skip: skip || (!existsSync(SAMPLE) && 'no ../shared/datasets/brats-sample') },
  async (t) => {
    const ck = join(runOf('webgpu'), 'largo', 'last.safetensors');
    // a [16, 24, 24] block around the centre keeps the sliding window short on llvmpipe
    const files: Record<string, string> = {};
    const crops: Record<string, Float32Array> = {};
    const [cd, ch, cw] = [16, 24, 24];
    for (const [m, f] of [
      ['flair', 'flair'],
      ['t1', 't1'],
      ['t1ce', 't1post'],
      ['t2', 't2'],
    ] as const) {
      const v = niftiToVolume(readNiftiSync(join(SAMPLE, `BraTS19_2013_10_1_${f}.nii.gz`)));
      const [D, H, W] = v.shape as [number, number, number];
      const [d0, h0, w0] = [Math.floor((D - cd) / 2), Math.floor((H - ch) / 2), Math.floor((W - cw) / 2)];
      const c = new Float32Array(cd * ch * cw);
      for (let d = 0; d < cd; d++)
        for (let h = 0; h < ch; h++)
          c.set(
            v.data.subarray(((d0 + d) * H + h0 + h) * W + w0, ((d0 + d) * H + h0 + h) * W + w0 + cw),
            (d * ch + h) * cw,
          );
      files[m] = join(out, `crop_${m}.nii.gz`);
      writeNiftiSync(files[m]!, createNifti(c, [cw, ch, cd]));
      crops[m] = c;
    }
    const labels: Record<string, Uint8Array> = {};
    for (const b of ['cpu', 'webgpu']) {
      const seg = join(out, `seg-${b}.nii.gz`);
      const r = cli(
        'predict',
        '--checkpoint',
        ck,
        '--backend',
        b,
        ...Object.entries(files).flatMap(([m, f]) => [`--${m}`, f]),
        '--out',
        seg,
      );
      t.equal(r.status, 0, `predict --backend ${b} exits 0`, { stderr: r.stderr.slice(-2000) });
      t.match(r.stderr, new RegExp(`on ${b} `), 'the log names the backend');
      labels[b] = readNiftiSync(seg).data as Uint8Array;
    }
    // the logits themselves, in this process, on both backends: equal within TIE_TOL
    const ckd = loadCheckpoint(ck);
    const cfg = resolveConfig(ckd.config as Record<string, unknown>, {});
    const n = cd * ch * cw;
    const image = new Float32Array(4 * n);
    ['flair', 't1', 't1ce', 't2'].forEach((m, i) => {
      const a = crops[m]!.slice();
      zscoreNonzero(a);
      image.set(a, i * n);
    });
    const logitsOn = async (b: string) => {
      setBackend('cpu');
      const net = buildSegNet(cfg, 'largo', { modalities: ckd.model.modalities, classes: ckd.model.classes });
      restoreParams(ckd, net.namedParameters());
      setBackend(b);
      placeOn(net.namedParameters());
      prepareSubset(net, 14);
      try {
        return await predictVolume(net, image, [cd, ch, cw], 14, {
          patchSize: cfg.train.patchSize,
          step: cfg.eval.step,
        });
      } finally {
        net.dispose();
        setBackend('cpu');
      }
    };
    const lc = await logitsOn('cpu'),
      lg = await logitsOn('webgpu');
    let worst = 0;
    lc.forEach((v, i) => {
      worst = Math.max(worst, Math.abs(v - lg[i]!));
    });
    t.ok(
      worst <= TIE_TOL,
      `logits agree within ${TIE_TOL} (max abs diff ${worst.toExponential(2)} over ${lc.length} scores, range ${Math.min(...lc).toFixed(2)}…${Math.max(...lc).toFixed(2)})`,
    );
    const diff: number[] = [];
    labels['cpu']!.forEach((v, i) => {
      if (v !== labels['webgpu']![i]) diff.push(i);
    });
    // the CPU's region scores (logits) at differing voxels must sit on the decision boundary
    const C = ckd.model.classes;
    const untied = diff.filter((v) => {
      let m = Infinity;
      for (let c = 0; c < C; c++) m = Math.min(m, Math.abs(lc[c * n + v]!));
      return m > TIE_TOL;
    });
    t.same(
      untied,
      [],
      `${diff.length} of ${n} voxels differ between the CLI runs, all where a score ties within ${TIE_TOL}`,
    );
  },
);

t.test(
  'export --backend webgpu writes the plain network the CPU export writes (up to float32 rounding)',
  { skip },
  async (t) => {
    const ck = join(runOf('webgpu'), 'largo', 'last.safetensors');
    const got: Record<string, ReturnType<typeof decodeSafetensors>> = {};
    for (const b of ['cpu', 'webgpu']) {
      const file = join(out, `plain-${b}.safetensors`);
      const r = cli('export', '--checkpoint', ck, '--subset', 'flair+t1ce', '--out', file, '--backend', b);
      t.equal(r.status, 0, `export --backend ${b} exits 0`, { stderr: r.stderr.slice(-2000) });
      got[b] = decodeSafetensors(new Uint8Array(readFileSync(file)), file);
    }
    const c = got['cpu']!.tensors,
      g = got['webgpu']!.tensors;
    t.same(Object.keys(g).sort(), Object.keys(c).sort(), 'same tensors');
    let worst = 0;
    for (const [k, e] of Object.entries(c)) {
      const a = e.data as Float32Array,
        b = g[k]!.data as Float32Array;
      const scale = Math.max(1e-6, ...Array.from(a, Math.abs));
      for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!) / scale);
    }
    t.ok(worst <= 1e-5, `values agree (worst relative difference ${worst.toExponential(2)})`);
  },
);
