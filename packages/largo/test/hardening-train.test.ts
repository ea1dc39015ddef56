// Issue 12: run folders stay fresh and inside --out (item 2), non-finite weights are never
// written or accepted and divergence exits 3 (item 3), SIGINT writes a checkpoint and exits 130,
// stale temporary files are cleaned (item 8).
import t from 'tap';
import { mkdtempSync, existsSync, readFileSync, writeFileSync, mkdirSync, readdirSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { keep, tensor, full } from '@largo/core';
import { resolveConfig } from '../src/config.js';
import { trainLoop, DivergenceError, type TrainTask } from '../src/train/loop.js';
import {
  saveCheckpoint,
  loadCheckpoint,
  encodeCheckpoint,
  decodeCheckpoint,
  CheckpointError,
} from '../src/checkpoint.js';
import { exitCodeFor } from '../src/cli/common.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const DIST_CLI = join(here, '..', 'dist', 'cli.js');
const CLI_ARGS = existsSync(DIST_CLI) ? [DIST_CLI] : [...process.execArgv, join(here, '..', 'src', 'cli.ts')];
const TINY = join(here, '..', 'configs', 'tiny.json');
const cli = (args: string[], cwd?: string) =>
  spawnSync(process.execPath, [...CLI_ARGS, ...args], { encoding: 'utf8', cwd });
const tmp = (p: string) => mkdtempSync(join(tmpdir(), p));

t.test('item 2: a run folder is made fresh and stays inside --out', async (t) => {
  const out = tmp('fresh-');
  mkdirSync(join(out, 'mine'));
  writeFileSync(join(out, 'mine', 'results.md'), 'my notes\n');
  let r = cli(['train', '--config', TINY, '--out', out, '--run-name', 'mine', '--quiet', '--steps', '1', '--no-eval']);
  t.equal(r.status, 2, r.stderr);
  t.match(r.stderr, /run folder .*mine exists and is not empty \(results\.md\).*--force/);
  t.equal(
    readFileSync(join(out, 'mine', 'results.md'), 'utf8'),
    'my notes\n',
    'a file the run did not create is untouched',
  );
  t.same(readdirSync(join(out, 'mine')), ['results.md'], 'nothing was written');
  for (const name of ['..', '.', 'a/b', '../escape', 'a\\b', '']) {
    r = cli([
      'train',
      '--config',
      TINY,
      '--out',
      join(out, 'inner'),
      '--run-name',
      name,
      '--quiet',
      '--steps',
      '1',
      '--no-eval',
    ]);
    t.equal(r.status, 2, `--run-name '${name}' is refused`);
    t.match(r.stderr, /'runName' must be a single folder name/);
  }
  t.same(readdirSync(out).sort(), ['mine'], 'nothing was written outside --out/<run>');
  r = cli([
    'train',
    '--config',
    TINY,
    '--out',
    out,
    '--run-name',
    'mine',
    '--quiet',
    '--steps',
    '1',
    '--no-eval',
    '--force',
  ]);
  t.equal(r.status, 0, '--force writes into it');
  t.ok(existsSync(join(out, 'mine', 'config.json')));
  r = cli(['train', '--config', TINY, '--out', out, '--run-name', 'mine', '--quiet', '--steps', '1', '--no-eval']);
  t.equal(r.status, 2);
  t.match(r.stderr, /already holds a run; pass --resume/);
});

t.test('item 3: checkpoints with non-finite tensors are neither written nor read', async (t) => {
  const dir = tmp('nonfinite-');
  const w = keep(tensor(new Float32Array([1, 2, Infinity, 4]), [4], 'float32'));
  const base = { step: 5, method: 'largo', config: {}, model: { method: 'largo', modalities: ['a'], classes: 1 } };
  t.throws(
    () => saveCheckpoint(join(dir, 'last'), { ...base, params: [['conv.weight', w]] }),
    /refusing to write tensor 'param\/conv\.weight' at step 5: it holds 1 non-finite value\(s\) of 4 \(first: Infinity at index 2\)/,
  );
  t.notOk(existsSync(join(dir, 'last.safetensors')), 'nothing written');
  t.same(readdirSync(dir), [], 'no temporary file left');
  t.throws(
    () =>
      encodeCheckpoint({ ...base, params: [], optim: { momentum_buffer: [['conv.weight', new Float32Array([NaN])]] } }),
    /optim\/momentum_buffer\/conv\.weight/,
  );
  // a checkpoint with NaN written by something else is refused on reading, naming the tensor
  const good = encodeCheckpoint({
    ...base,
    params: [['conv.weight', keep(tensor(new Float32Array([1, 2, 3, 4]), [4], 'float32'))]],
  });
  const bytes = good.slice();
  const at = findFloats(bytes, [1, 2, 3, 4]);
  new DataView(bytes.buffer).setFloat32(at + 4, NaN, true);
  writeFileSync(join(dir, 'nan.safetensors'), bytes);
  t.throws(
    () => loadCheckpoint(join(dir, 'nan.safetensors')),
    /tensor 'param\/conv\.weight' holds 1 non-finite value\(s\) of 4 \(first: NaN at index 1\)/,
  );
  let caught: unknown = null;
  try {
    decodeCheckpoint(bytes, 'x');
  } catch (e) {
    caught = e;
  }
  t.ok(caught instanceof CheckpointError, 'a CheckpointError');
  t.equal(exitCodeFor(caught), 2, 'bad input: exit 2');
});

/** Byte offset of consecutive little-endian float32 values. */
function findFloats(bytes: Uint8Array, vals: number[]): number {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i + 4 * vals.length <= bytes.length; i++)
    if (vals.every((v, k) => dv.getFloat32(i + 4 * k, true) === v)) return i;
  throw new Error('not found');
}

t.test(
  'item 3: weights that become Inf while the loss is finite stop training; the last good checkpoint stays',
  async (t) => {
    const dir = tmp('diverge-');
    const cfg = resolveConfig(JSON.parse(readFileSync(TINY, 'utf8')), {
      'train.steps': 10,
      'train.checkpointEvery': 1,
      'train.valEvery': 0,
      'train.optimizer': 'sgd',
      'train.momentum': 0,
      'train.weightDecay': 0,
      'train.clipGradNorm': 0,
      'train.schedule': 'constant',
      'train.lr': 1,
    });
    const w = keep(tensor(new Float32Array([1, 1]), [2], 'float32'));
    // an infinite gradient at step 4 makes w -Inf while the reported loss stays 1
    const task: TrainTask = {
      params: [['w', w]],
      descriptor: { method: 'fake', modalities: ['a'], classes: 1 },
      setTraining: () => undefined,
      lossStep: (s) => {
        w.grad = keep(full([2], s >= 3 ? Infinity : 1e-3, 'float32'));
        return [tensor(new Float32Array([1]), [1], 'float32')];
      },
      validate: async () => ({ score: 0, metrics: {} }),
      rngState: () => ({}),
      setRngState: () => undefined,
    };
    let err: unknown;
    try {
      await trainLoop(task, cfg, { dir, method: 'fake', stream: { write: () => true, isTTY: false } });
    } catch (e) {
      err = e;
    }
    t.ok(err instanceof DivergenceError, String(err));
    const d = err as DivergenceError;
    t.equal(d.step, 4);
    t.equal(exitCodeFor(d), 3);
    t.match(
      d.message,
      /fake diverged at step 4 \(param\/w is no longer finite; loss 1\); the last good checkpoint is kept: .*last\.safetensors \(step 3\)/,
    );
    const ck = loadCheckpoint(join(dir, 'last.safetensors'));
    t.equal(ck.step, 3, 'the checkpoint on disk is the last finite one');
    t.ok([...ck.params.get('w')!.data].every(Number.isFinite));
  },
);

t.test(
  'item 3: a NaN loss exits 3 with step, loss and the kept checkpoint; eval/predict/export refuse non-finite checkpoints',
  async (t) => {
    const out = tmp('diverge-cli-');
    const r = cli([
      'train',
      '--config',
      TINY,
      '--out',
      out,
      '--run-name',
      'r',
      '--quiet',
      '--no-eval',
      '--lr',
      '1e38',
      '--set',
      'train.clipGradNorm=0',
      '--set',
      'train.checkpointEvery=1',
    ]);
    t.equal(r.status, 3, r.stderr);
    t.match(
      r.stderr,
      /largo train: largo diverged at step \d+ \(the loss became NaN with learning rate [^)]+\); the last good checkpoint is kept: .*largo\/last\.safetensors \(step \d+\)/,
    );
    t.notMatch(r.stderr, /internal error/);
    // plant a NaN in a good checkpoint: every consumer refuses it and names the tensor
    const ckFile = join(out, 'r', 'largo', 'last.safetensors');
    const bytes = new Uint8Array(readFileSync(ckFile));
    const dv = new DataView(bytes.buffer);
    const hl = Number(dv.getBigUint64(0, true));
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + hl))) as Record<
      string,
      { data_offsets: [number, number] }
    >;
    const name = Object.keys(header).find((k) => k.startsWith('param/'))!;
    dv.setFloat32(8 + hl + header[name]!.data_offsets[0], NaN, true);
    const bad = join(out, 'bad.safetensors');
    writeFileSync(bad, bytes);
    const re = new RegExp(`tensor '${name.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}' holds 1 non-finite value`);
    let c = cli(['export', '--checkpoint', bad, '--subset', '0', '--out', join(out, 'plain.safetensors')]);
    t.equal(c.status, 2);
    t.match(c.stderr, re);
    t.notOk(existsSync(join(out, 'plain.safetensors')));
    c = cli(['predict', '--checkpoint', bad, '--out', join(out, 'seg.nii.gz'), '--flair', join(out, 'none.nii.gz')]);
    t.equal(c.status, 2);
    t.match(c.stderr, re);
    copyFileSync(bad, ckFile);
    c = cli([
      'train',
      '--resume',
      join(out, 'r'),
      '--quiet',
      '--lr',
      '1e38',
      '--set',
      'train.clipGradNorm=0',
      '--set',
      'train.checkpointEvery=1',
    ]);
    t.equal(c.status, 2);
    t.match(c.stderr, re);
    c = cli(['eval', '--run', join(out, 'r'), '--quiet']);
    t.equal(c.status, 2);
    t.match(c.stderr, re);
    t.notOk(existsSync(join(out, 'r', 'eval-config.json')), 'a failed eval writes no eval-config.json (item 7)');
  },
);

t.test(
  'item 8: SIGINT writes a checkpoint at the current step, says how to resume, exits 130; the resumed run is bitwise the uninterrupted one',
  async (t) => {
    const out = tmp('sigint-');
    const args = [
      'train',
      '--config',
      TINY,
      '--out',
      out,
      '--quiet',
      '--no-eval',
      '--methods',
      'largo',
      '--steps',
      '400',
      '--set',
      'train.valEvery=0',
      '--set',
      'train.checkpointEvery=0',
    ];
    const child = spawn(process.execPath, [...CLI_ARGS, ...args, '--run-name', 'cut'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    // wait until training runs (the method folder exists), then interrupt
    const dir = join(out, 'cut', 'largo');
    await new Promise<void>((res) => {
      const iv = setInterval(() => {
        if (existsSync(dir)) {
          clearInterval(iv);
          setTimeout(res, 1500);
        }
      }, 50);
    });
    writeFileSync(join(dir, 'last.safetensors.tmp-4194303'), 'left by a kill -9');
    child.kill('SIGINT');
    const code = await new Promise<number | null>((res) => child.on('close', (c) => res(c)));
    t.equal(code, 130, err);
    t.match(
      err,
      /interrupted by SIGINT at step (\d+) of largo; checkpoint: .*cut\/largo\/last\.safetensors\nresume with: largo train --resume .*cut/,
    );
    const step = loadCheckpoint(join(dir, 'last.safetensors')).step;
    t.ok(step > 0 && step < 400, `checkpoint at the current step (${step})`);
    const res = cli(['train', '--resume', join(out, 'cut'), '--quiet', '--no-eval']);
    t.equal(res.status, 0, res.stderr);
    t.notOk(
      existsSync(join(dir, 'last.safetensors.tmp-4194303')),
      'the stale temporary file of a dead writer is removed',
    );
    const full = cli([...args, '--run-name', 'straight']);
    t.equal(full.status, 0, full.stderr);
    const a = loadCheckpoint(join(out, 'cut', 'largo', 'last.safetensors')),
      b = loadCheckpoint(join(out, 'straight', 'largo', 'last.safetensors'));
    t.equal(a.step, 400);
    t.equal(b.step, 400);
    let same = true;
    for (const [n, p] of b.params)
      if (
        Buffer.compare(
          Buffer.from(p.data.buffer, p.data.byteOffset, p.data.byteLength),
          Buffer.from(a.params.get(n)!.data.buffer, a.params.get(n)!.data.byteOffset, a.params.get(n)!.data.byteLength),
        ) !== 0
      )
        same = false;
    t.ok(same, 'interrupted + resumed == uninterrupted, bitwise');
  },
);
