// Long GPU training in one process: the live-buffer count stays flat over
// 200 steps (LARGO_GPU_FLAT_STEPS to change), and a device lost mid-training
// stops with an error that names the last checkpoint, which then loads and
// resumes on the CPU. The device-loss test destroys the device: it runs last.
import t from 'tap';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { engine, setBackend } from '@largo/core';
import { initWebGpu, webGpuUnavailableReason } from '@largo/gpu';
import { loadCheckpoint } from '../src/checkpoint.js';
import { readConfigFile, resolveConfig } from '../src/config.js';
import { loadSegData } from '../src/train/data.js';
import { buildSegNet } from '../src/train/experiment.js';
import { SegTask } from '../src/train/seg-task.js';
import { DeviceLostError, trainLoop } from '../src/train/loop.js';
import { onCpu, placeOn } from '../src/backend-select.js';

// llvmpipe on a shared 2-core machine: several minutes for this file, beyond tap's default 600 s
t.setTimeout(30 * 60_000);
const gpu = await initWebGpu({ quiet: true });
const skip = gpu ? false : `no WebGPU adapter: ${webGpuUnavailableReason()}`;
if (!gpu && process.env['LARGO_REQUIRE_WEBGPU'] === '1') throw new Error(`LARGO_REQUIRE_WEBGPU=1 but ${skip}`);

const here = fileURLToPath(new URL('.', import.meta.url));
const TINY = readConfigFile(join(here, '..', 'configs', 'tiny.json'));
const quiet = { write: () => true, isTTY: false };
// unusedGrads=zero: every parameter has its optimizer state from step 1, so nothing may grow afterwards
const config = (over: Record<string, unknown>) =>
  resolveConfig(TINY, { methods: ['largo'], 'train.unusedGrads': 'zero', 'train.clipGradNorm': 12, ...over });

async function gpuTask(cfg: ReturnType<typeof config>) {
  const data = await loadSegData(cfg);
  const net = onCpu(() => buildSegNet(cfg, 'largo', data));
  const task = onCpu(() => new SegTask(net, data, cfg, 'largo'));
  placeOn(net.namedParameters());
  return { net, task, data };
}

t.test('live GPU buffers stay flat over a long training run', { skip }, async (t) => {
  const steps = Number(process.env['LARGO_GPU_FLAT_STEPS'] ?? 200);
  setBackend('webgpu');
  const be = engine().backend;
  const before = be.liveBuffers();
  const cfg = config({ 'train.steps': steps, 'train.valEvery': 0, 'train.checkpointEvery': 50 });
  const { net, task } = await gpuTask(cfg);
  const live: number[] = [];
  await trainLoop(task, cfg, {
    dir: mkdtempSync(join(tmpdir(), 'gpu-flat-')),
    method: 'largo',
    stream: quiet,
    onStep: () => live.push(be.liveBuffers()),
  });
  t.equal(live.length, steps);
  // after the first steps (optimizer state, kernel caches) the count may only wobble by the loss read in flight
  const early = live.slice(5, 20),
    late = live.slice(20);
  const lo = Math.min(...early),
    hi = Math.max(...early);
  t.ok(
    Math.max(...late) <= hi && Math.min(...late) >= lo,
    `steps 21–${steps}: ${Math.min(...late)}–${Math.max(...late)} live buffers, within steps 6–20's ${lo}–${hi}`,
  );
  net.dispose();
  t.equal(be.liveBuffers(), before, 'every buffer is released once the network is disposed');
  setBackend('cpu');
});

t.test('GPU training is deterministic run to run on one device (no atomics in reductions)', { skip }, async (t) => {
  setBackend('webgpu');
  const cfg = config({ 'train.steps': 5, 'train.valEvery': 0, 'train.checkpointEvery': 0 });
  const run = async () => {
    const { net, task } = await gpuTask(cfg);
    const r = await trainLoop(task, cfg, {
      dir: mkdtempSync(join(tmpdir(), 'gpu-det-')),
      method: 'largo',
      stream: quiet,
    });
    const params = await Promise.all(task.params.map(async ([, p]) => Array.from(await p.data())));
    net.dispose();
    return { loss: r.history.loss, params };
  };
  const a = await run(),
    b = await run();
  t.same(b.loss, a.loss, 'identical loss history');
  t.ok(
    a.params.every((p, i) => p.every((v, j) => Object.is(v, b.params[i]![j]))),
    'bitwise identical weights',
  );
  setBackend('cpu');
});

t.test(
  'device lost mid-training: a clear error naming the last checkpoint, which loads and resumes on the CPU',
  { skip },
  async (t) => {
    setBackend('webgpu');
    const cfg = config({ 'train.steps': 12, 'train.valEvery': 0, 'train.checkpointEvery': 4 });
    const dir = mkdtempSync(join(tmpdir(), 'gpu-lost-'));
    const { net, task, data } = await gpuTask(cfg);
    const err = await trainLoop(task, cfg, {
      dir,
      method: 'largo',
      stream: quiet,
      onStep: (s) => {
        if (s === 6) gpu!.device.destroy();
      },
    }).then(
      () => null,
      (e: unknown) => e as Error,
    );
    t.ok(err instanceof DeviceLostError, `a DeviceLostError (${err?.name}: ${err?.message})`);
    t.match(
      err?.message ?? '',
      /largo: the GPU device was lost during step \d+ .*last checkpoint .*last\.safetensors \(step 4\) is intact/,
    );
    const ck = loadCheckpoint(join(dir, 'last'));
    t.equal(ck.step, 4, 'the checkpoint on disk is the last one written before the loss');
    try {
      net.dispose();
    } catch {
      /* the device is gone */
    }
    // the checkpoint is usable: a fresh CPU task resumes from it to the end
    setBackend('cpu');
    const net2 = buildSegNet(cfg, 'largo', data);
    const r = await trainLoop(new SegTask(net2, data, cfg, 'largo'), cfg, {
      dir,
      method: 'largo',
      stream: quiet,
      resume: true,
    });
    t.equal(r.resumedFrom, 4);
    t.equal(r.steps, 12);
    t.ok(
      r.history.loss.every(([, v]) => Number.isFinite(v)),
      'finite losses after resuming on the CPU',
    );
    net2.dispose();
  },
);
