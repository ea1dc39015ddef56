import t from 'tap';
import { mkdtempSync, existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { resolveConfig, type LargoConfig } from '../src/config.js';
import { loadSegData, type AvData } from '../src/train/data.js';
import { SegTask } from '../src/train/seg-task.js';
import { AvTask } from '../src/train/av-task.js';
import { trainLoop } from '../src/train/loop.js';
import { buildSegNet } from '../src/train/experiment.js';
import { buildAvMnistNet } from '../src/nets/avmnist.js';
import type { Method } from '../src/nets/factory.js';
import { loadCheckpoint } from '../src/checkpoint.js';

const here = fileURLToPath(new URL('.', import.meta.url));
// the built CLI when there is one (npm test builds first), else the TypeScript source through tap's loader
const DIST_CLI = join(here, '..', 'dist', 'cli.js');
const CLI_ARGS = existsSync(DIST_CLI) ? [DIST_CLI] : [...process.execArgv, join(here, '..', 'src', 'cli.ts')];
const TINY = join(here, '..', 'configs', 'tiny.json');
const quiet = { write: () => true, isTTY: false };

function tinyConfig(over: Record<string, unknown> = {}): LargoConfig {
  return resolveConfig(JSON.parse(readFileSync(TINY, 'utf8')), {
    'train.checkpointEvery': 3,
    'train.valEvery': 2,
    ...over,
  });
}

function paramsOf(task: { params: readonly [string, { dataSync(): ArrayLike<number> }][] }): Map<string, Float32Array> {
  return new Map(task.params.map(([n, p]) => [n, Float32Array.from(p.dataSync())]));
}

function bitwiseEqual(a: Map<string, Float32Array>, b: Map<string, Float32Array>): string | null {
  if (a.size !== b.size) return `${a.size} vs ${b.size} tensors`;
  for (const [n, x] of a) {
    const y = b.get(n);
    if (!y || y.length !== x.length) return `tensor ${n} missing or resized`;
    const xb = new Uint32Array(x.buffer, x.byteOffset, x.length),
      yb = new Uint32Array(y.buffer, y.byteOffset, y.length);
    for (let i = 0; i < xb.length; i++) if (xb[i] !== yb[i]) return `${n}[${i}]: ${x[i]} vs ${y[i]}`;
  }
  return null;
}

for (const method of ['largo', 'dropout', 'dedicated']) {
  t.test(`segmentation (${method}): 6 steps straight == 3 steps, crash, resume 3`, async (t) => {
    const cfg = tinyConfig();
    const data = await loadSegData(cfg);
    const dirA = mkdtempSync(join(tmpdir(), 'resume-a-')),
      dirB = mkdtempSync(join(tmpdir(), 'resume-b-'));
    const netA = buildSegNet(cfg, method, data);
    const taskA = new SegTask(netA, data, cfg, method);
    const ra = await trainLoop(taskA, cfg, { dir: dirA, method, stream: quiet });
    t.equal(ra.steps, 6);
    const straight = paramsOf(taskA);
    netA.dispose();

    const netB = buildSegNet(cfg, method, data);
    const rb1 = await trainLoop(new SegTask(netB, data, cfg, method), cfg, {
      dir: dirB,
      method,
      stream: quiet,
      stopAfter: 3,
    });
    t.equal(rb1.steps, 3, 'stopped after 3 steps ("killed")');
    t.equal(loadCheckpoint(join(dirB, 'last')).step, 3);
    netB.dispose();
    // a fresh process would rebuild everything from the seed: do the same
    const netC = buildSegNet(cfg, method, data);
    const taskC = new SegTask(netC, data, cfg, method);
    const rc = await trainLoop(taskC, cfg, { dir: dirB, method, stream: quiet, resume: true });
    t.equal(rc.resumedFrom, 3);
    t.equal(rc.steps, 6);
    t.equal(bitwiseEqual(straight, paramsOf(taskC)), null, 'weights bitwise equal');
    t.same(rc.history.loss, ra.history.loss, 'loss history identical');
    // the saved checkpoints agree too (weights + optimizer state)
    const ca = loadCheckpoint(join(dirA, 'last')),
      cc = loadCheckpoint(join(dirB, 'last'));
    t.same(cc.rng, ca.rng, 'RNG states identical');
    t.equal(
      bitwiseEqual(
        new Map([...ca.optim.get('momentum_buffer')!].map(([k, v]) => [k, v.data])),
        new Map([...cc.optim.get('momentum_buffer')!].map(([k, v]) => [k, v.data])),
      ),
      null,
      'momentum identical',
    );
    netC.dispose();
  });
}

t.test("avMNIST (dropout layers draw from the network's own stream): resume is bitwise exact", async (t) => {
  const cfg = resolveConfig(
    { dataset: 'avmnist', data: { path: '-' } },
    { 'train.steps': 6, 'train.batchSize': 4, 'train.valEvery': 3, 'train.checkpointEvery': 3, 'model.dropout': 0.3 },
  );
  const mk = (n: number, seed: number) => {
    let s = seed;
    const r = () => {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      return s / 2 ** 32;
    };
    return {
      count: n,
      images: Float32Array.from({ length: n * 784 }, r),
      imageShape: [n, 28, 28],
      audio: Float32Array.from({ length: n * 400 }, () => r() - 0.5),
      audioShape: [n, 20, 20],
      labels: Int32Array.from({ length: n }, (_, i) => i % 10),
      recordings: Array.from({ length: n }, (_, i) => `r${i}`),
      imageIndices: Int32Array.from({ length: n }, (_, i) => i),
    };
  };
  const data: AvData = { modalities: ['image', 'audio'], train: mk(12, 1), val: mk(6, 2), test: mk(6, 3) };
  // a narrow network (same topology) keeps the test fast
  const build = (method: string) =>
    buildAvMnistNet({
      method: method as Method,
      dropout: 0.3,
      seed: cfg.seed,
      encoderChannels: [2, 2, 2, 2],
      imageFeatures: 8,
      audioFeatures: 8,
      hidden: 8,
    });
  for (const method of ['largo', 'dropout']) {
    const dirA = mkdtempSync(join(tmpdir(), 'av-a-')),
      dirB = mkdtempSync(join(tmpdir(), 'av-b-'));
    const netA = build(method);
    const taskA = new AvTask(netA, data, cfg, method);
    await trainLoop(taskA, cfg, { dir: dirA, method, stream: quiet });
    const straight = paramsOf(taskA);
    netA.dispose();
    const netB = build(method);
    await trainLoop(new AvTask(netB, data, cfg, method), cfg, { dir: dirB, method, stream: quiet, stopAfter: 3 });
    netB.dispose();
    const netC = build(method);
    const taskC = new AvTask(netC, data, cfg, method);
    await trainLoop(taskC, cfg, { dir: dirB, method, stream: quiet, resume: true });
    t.equal(bitwiseEqual(straight, paramsOf(taskC)), null, `${method}: weights bitwise equal`);
    const rng = loadCheckpoint(join(dirB, 'last')).rng as { task: { module: Record<string, unknown> } };
    t.ok(Object.keys(rng.task.module).length > 0, `${method}: the dropout stream is saved`);
    netC.dispose();
  }
});

t.test('resume refuses a run folder trained with another config', async (t) => {
  const cfg = tinyConfig();
  const data = await loadSegData(cfg);
  const dir = mkdtempSync(join(tmpdir(), 'resume-x-'));
  const net = buildSegNet(cfg, 'largo', data);
  await trainLoop(new SegTask(net, data, cfg, 'largo'), cfg, { dir, method: 'largo', stream: quiet, stopAfter: 3 });
  net.dispose();
  const other = tinyConfig({ 'train.lr': 0.02 });
  const net2 = buildSegNet(other, 'largo', data);
  await t.rejects(
    trainLoop(new SegTask(net2, data, other, 'largo'), other, { dir, method: 'largo', stream: quiet, resume: true }),
    /last\.safetensors: does not match the current configuration .*train\.lr: checkpoint 0\.01, current 0\.02/,
  );
  net2.dispose();
});

t.test('CLI: kill -9 during training, then --resume, gives the weights of an uninterrupted run', async (t) => {
  const out = mkdtempSync(join(tmpdir(), 'cli-kill-'));
  const common = [
    '--config',
    TINY,
    '--out',
    out,
    '--methods',
    'largo',
    '--steps',
    '30',
    '--checkpoint-every',
    '1',
    '--val-every',
    '20',
    '--no-eval',
    '--quiet',
  ];
  const run = (args: string[]) => spawnSync(process.execPath, [...CLI_ARGS, 'train', ...args], { encoding: 'utf8' });
  const straight = run([...common, '--run-name', 'straight']);
  t.equal(straight.status, 0, straight.stderr);

  const child = spawn(process.execPath, [...CLI_ARGS, 'train', ...common, '--run-name', 'crash'], { stdio: 'ignore' });
  const lastJson = join(out, 'crash', 'largo', 'last.json');
  const killedAt = await new Promise<number>((resolve, reject) => {
    const timer = setInterval(() => {
      if (existsSync(lastJson)) {
        try {
          const step = JSON.parse(readFileSync(lastJson, 'utf8')).step as number;
          if (step >= 5) {
            clearInterval(timer);
            child.kill('SIGKILL');
            resolve(step);
          }
        } catch {
          /* being replaced: try again */
        }
      }
    }, 5);
    child.on('exit', () => {
      clearInterval(timer);
      reject(new Error('the child finished before it could be killed'));
    });
  });
  await new Promise((r) => child.on('exit', r));
  t.equal(child.signalCode, 'SIGKILL', `killed with SIGKILL at step ≥ ${killedAt}`);
  const mid = loadCheckpoint(join(out, 'crash', 'largo', 'last'));
  t.ok(mid.step >= 5 && mid.step < 30, `the last checkpoint survived the kill (step ${mid.step})`);

  const resumed = run(['--resume', join(out, 'crash'), '--no-eval', '--quiet']);
  t.equal(resumed.status, 0, resumed.stderr);
  const a = loadCheckpoint(join(out, 'straight', 'largo', 'last')),
    b = loadCheckpoint(join(out, 'crash', 'largo', 'last'));
  t.equal(b.step, 30);
  t.equal(
    bitwiseEqual(
      new Map([...a.params].map(([k, v]) => [k, v.data])),
      new Map([...b.params].map(([k, v]) => [k, v.data])),
    ),
    null,
    'final weights bitwise equal',
  );
  t.same(b.rng, a.rng, 'RNG states equal');
  // resuming a finished run is a no-op; resuming with another config is refused with exit code 2
  const again = run(['--resume', join(out, 'crash'), '--no-eval', '--quiet']);
  t.equal(again.status, 0);
  const bad = run(['--resume', join(out, 'crash'), '--lr', '0.5', '--no-eval', '--quiet']);
  t.equal(bad.status, 2);
  t.match(bad.stderr, /train\.lr/);
});
