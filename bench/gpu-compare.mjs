// LARGO.ts's WebGPU kernels against TensorFlow.js's WebGPU backend, in one
// process, on one Dawn device (the same GPUDevice is handed to both).
//
//   node bench/gpu-compare.mjs                        # every case, 5 interleaved rounds
//   node bench/gpu-compare.mjs --reps 3 --only conv3d-fwd,matmul --no-save
//
// The cases are the CPU bench's (lib/cases.mjs: same inputs, same checks)
// plus one LARGO training step (the phantom job's U-Net family: forward over
// the sampled subsets, backward, clipping, SGD), which TensorFlow.js has no
// implementation of. Each library's outputs are compared with ours before
// timing; a peer whose outputs disagree is shown as "wrong", not timed as a
// win. A sample runs the computation `inner` times and waits for the device
// queue to drain (both libraries submit to the same queue), so it measures
// the GPU work, not just the encoding. Rounds are interleaved and the table
// holds the medians, as in compare.mjs.
//
// Dawn picks its default backend (Vulkan, Metal, D3D12) and falls back to
// OpenGL ES (Mesa's llvmpipe without a GPU) exactly as `largo --backend webgpu`.
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, hostname, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const here = dirname(fileURLToPath(import.meta.url));
const { values: args } = parseArgs({
  options: {
    reps: { type: 'string', default: '5' },
    only: { type: 'string' },
    'sample-ms': { type: 'string', default: '200' },
    tol: { type: 'string', default: '1e-3' },
    'no-tfjs': { type: 'boolean', default: false },
    'no-save': { type: 'boolean', default: false },
    out: { type: 'string' },
    json: { type: 'string' },
  },
});
const REPS = Math.max(1, Number(args.reps));
const SAMPLE_MS = Number(args['sample-ms']);
const TOL = Number(args.tol);
const MAX_INNER = 16;

for (const k of ['log', 'warn']) {
  const orig = console[k].bind(console);
  console[k] = (...a) => {
    if (typeof a[0] === 'string' && /tfjs-node|^=+$/.test(a[0].trim())) return;
    orig(...a);
  };
}

const C = await import('@largo/core');
const { initWebGpu, webGpuUnavailableReason } = await import('@largo/gpu');
const gpu = await initWebGpu({ quiet: true });
if (!gpu) {
  console.error(`gpu-compare: no WebGPU adapter: ${webGpuUnavailableReason()}`);
  process.exit(3);
}
const info = gpu.info;
const adapterText = `${[info.vendor, info.architecture, info.device].filter(Boolean).join(' ') || 'unknown'}${info.description ? ` — ${info.description}` : ''} (${info.path}, ${info.featureLevel})`;

// TensorFlow.js on the same device: its WebGPU backend reads the GPUBufferUsage/… globals, which Node lacks
let tf = null,
  tfWhyNot = null;
if (!args['no-tfjs']) {
  try {
    const { globals } = await import('webgpu');
    for (const [k, v] of Object.entries(globals)) if (!(k in globalThis)) globalThis[k] = v;
    // tfjs checks navigator.gpu before accepting a device (Node 20 has no navigator); it gets our device, not an adapter
    const nav = globalThis.navigator ?? {};
    Object.defineProperty(globalThis, 'navigator', {
      value: Object.assign(Object.create(nav), {
        gpu: { requestAdapter: () => Promise.reject(new Error('gpu-compare: tfjs uses the shared device')) },
      }),
      configurable: true,
    });
    tf = await import('@tensorflow/tfjs');
    const { WebGPUBackend } = await import('@tensorflow/tfjs-backend-webgpu');
    tf.env().set('IS_TEST', false);
    // tfjs's kernels are registered for the name 'webgpu': replace its adapter-requesting factory with ours
    if (tf.findBackendFactory('webgpu')) tf.removeBackend('webgpu');
    tf.registerBackend('webgpu', () => new WebGPUBackend(gpu.device, gpu.adapter?.info), 10);
    if (!(await tf.setBackend('webgpu')) || tf.getBackend() !== 'webgpu')
      throw new Error(`tfjs could not start its WebGPU backend on the shared device (it is on '${tf.getBackend()}')`);
    await tf.ready();
  } catch (e) {
    tfWhyNot = e.message.split('\n')[0];
    tf = null;
  }
}

const { CASES, convCases, instNormCase } = await import('./lib/cases.mjs');
const { largoStepCase } = await import('./lib/largo-step.mjs');
// the CPU bench's cases, plus the shapes of issue 9's measurements ([1,32,32³]: one full-resolution U-Net stage)
const extra = [...convCases('stage', [1, 32, 32, 32, 32], [32, 32, 3, 3, 3]), instNormCase([1, 32, 32, 32, 32])];
// (CASES' 'largo-step' is the CPU bench's step, which reads the loss synchronously: largoStepCase is its GPU form)
const cases = [...CASES.filter((c) => c.id !== 'largo-step'), ...extra, largoStepCase()].filter(
  (c) => !args.only || args.only.split(',').some((s) => c.id.includes(s.trim())),
);

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const drainOurs = () => gpu.sync();
const drainTf = async () => {
  const b = tf.backend();
  // tfjs batches its dispatches in a pass and an encoder of its own
  b.endComputePassEncoder();
  if (b.commandEncoder) b.submitQueue();
  await gpu.device.queue.onSubmittedWorkDone();
};
/** ms per call of `inner` calls followed by a drained queue. */
async function sample(run, drain, inner) {
  await drain();
  const t0 = performance.now();
  for (let k = 0; k < inner; k++) run();
  await drain();
  return (performance.now() - t0) / inner;
}
const innerFor = (ms) => Math.max(1, Math.min(MAX_INNER, Math.round(SAMPLE_MS / Math.max(ms, 1e-3))));

function compare(mine, theirs) {
  const maxAbs = (a) => {
    let m = 0;
    for (const v of a) m = Math.max(m, Math.abs(v));
    return m;
  };
  const scale = Math.max(...Object.values(mine).map(maxAbs));
  let rel = 0,
    abs = 0;
  for (const [k, v] of Object.entries(mine)) {
    const w = theirs[k];
    if (!w || w.length !== v.length) return { abs: NaN, rel: NaN, note: `output ${k} missing or of another size` };
    let d = 0;
    for (let i = 0; i < v.length; i++) {
      const e = Math.abs(v[i] - w[i]);
      if (!(e <= d)) d = e;
    }
    abs = Math.max(abs, d);
    rel = Math.max(rel, d / Math.max(maxAbs(v), 1e-3 * scale, 1e-30));
  }
  return { abs, rel };
}

const loadStart = loadavg();
const machine = {
  date: new Date().toISOString(),
  host: hostname(),
  cpu: cpus()[0]?.model ?? 'unknown',
  cores: cpus().length,
  node: process.version,
  adapter: adapterText,
  tfjs: tf ? `${tf.version.tfjs} (tfjs-backend-webgpu, same GPUDevice)` : `not run (${tfWhyNot ?? 'disabled'})`,
  loadStart,
};
console.log(`# LARGO.ts WebGPU vs TensorFlow.js WebGPU — ${machine.date}`);
console.log(
  `host ${machine.host}: ${machine.cpu}, ${machine.cores} cores; node ${machine.node}; adapter ${adapterText}; tfjs ${machine.tfjs}`,
);
console.log(`load average at start: ${loadStart.map((x) => x.toFixed(2)).join(' / ')}; ${REPS} interleaved rounds\n`);

const results = [];
for (const cs of cases) {
  C.setBackend('cpu');
  const inputs = cs.make();
  const rec = { id: cs.id, label: cs.label, what: cs.what, flops: cs.flops, ms: {}, agree: null, note: cs.note };
  const libs = [];
  try {
    C.setBackend('webgpu');
    const mine = cs.ours(inputs);
    const ref = await mine.outputs();
    libs.push({ lib: 'ours', inst: mine, drain: drainOurs });
    if (tf && cs.tfjs) {
      try {
        // tfjs's GPU validation errors (an invalid shader for a case it does not support) go to this scope, not
        // to the device's uncaptured errors, which our backend would throw at its next read
        gpu.device.pushErrorScope('validation');
        const got = await (async () => {
          const inst = cs.tfjs(tf, inputs);
          return { inst, out: await inst.outputs() };
        })().then(
          (v) => ({ v }),
          (e) => ({ e }),
        );
        const scoped = await gpu.device.popErrorScope();
        if (got.e) throw got.e;
        if (scoped) {
          got.v.inst.dispose();
          throw new Error(`GPU validation error: ${scoped.message.split('\n')[0]}`);
        }
        const { inst: theirs, out } = got.v;
        const c = compare(ref, out);
        rec.agree = c;
        if (c.rel <= TOL) libs.push({ lib: 'tfjs-webgpu', inst: theirs, drain: drainTf });
        else {
          rec.ms['tfjs-webgpu'] = null;
          rec.tfNote = `wrong: max rel diff ${Number.isNaN(c.rel) ? c.note : c.rel.toExponential(2)}`;
          theirs.dispose();
        }
      } catch (e) {
        rec.tfNote = `failed: ${e.message.split('\n')[0]}`;
      }
    } else rec.tfNote = tf ? 'no implementation' : 'not run';
    // warm-up (pipelines) and calibration
    const inner = {};
    for (const l of libs) {
      const ms = await sample(l.inst.run, l.drain, 1);
      inner[l.lib] = innerFor(ms);
    }
    const samples = Object.fromEntries(libs.map((l) => [l.lib, []]));
    for (let r = 0; r < REPS; r++) {
      const order = libs.map((_, i) => libs[(i + r) % libs.length]);
      for (const l of order) samples[l.lib].push(await sample(l.inst.run, l.drain, inner[l.lib]));
    }
    for (const l of libs) rec.ms[l.lib] = median(samples[l.lib]);
    for (const l of libs) l.inst.dispose();
  } catch (e) {
    rec.error = e.message.split('\n')[0];
    for (const l of libs) {
      try {
        l.inst.dispose();
      } catch {
        /* ignore */
      }
    }
  }
  const o = rec.ms.ours,
    p = rec.ms['tfjs-webgpu'];
  rec.ratio = o && p ? p / o : null;
  const fmt = (x) => (x == null ? '-' : x < 10 ? x.toFixed(2) : x.toFixed(1));
  console.log(
    `${cs.label}: ours ${fmt(o)} ms, tfjs-webgpu ${p != null ? `${fmt(p)} ms` : (rec.tfNote ?? '-')}${rec.ratio ? ` → ${rec.ratio.toFixed(2)}× ours faster` : ''}${rec.agree ? ` (agree ${rec.agree.rel.toExponential(1)})` : ''}${rec.error ? ` ERROR ${rec.error}` : ''}`,
  );
  results.push(rec);
}
machine.loadEnd = loadavg();

const fmt = (x) => (x == null ? '—' : x < 10 ? x.toFixed(2) : x.toFixed(1));
const lines = [
  `# LARGO.ts WebGPU vs TensorFlow.js WebGPU (${machine.date.slice(0, 10)})`,
  '',
  `Adapter: ${adapterText}. Host: ${machine.cpu}, ${machine.cores} cores (${machine.host}); Node ${machine.node}; TensorFlow.js ${machine.tfjs}.`,
  `Load average at start / end: ${loadStart.map((x) => x.toFixed(2)).join(' / ')} — ${machine.loadEnd.map((x) => x.toFixed(2)).join(' / ')}. Median of ${REPS} interleaved rounds; ms per call with the device queue drained.`,
  '',
  '| case | ours (ms) | tfjs-webgpu (ms) | tfjs ÷ ours | agreement (max rel diff) |',
  '|---|--:|--:|--:|--:|',
  ...results.map(
    (r) =>
      `| ${r.label} | ${fmt(r.ms.ours)} | ${r.ms['tfjs-webgpu'] != null ? fmt(r.ms['tfjs-webgpu']) : (r.tfNote ?? '—')} | ${r.ratio ? `**${r.ratio.toFixed(2)}×**` : '—'} | ${r.agree ? r.agree.rel.toExponential(1) : '—'}${r.error ? ` (error: ${r.error})` : ''} |`,
  ),
  '',
  'Cases:',
  '',
  ...results.map((r) => `- **${r.label}**: ${r.what}`),
  '',
];
const md = lines.join('\n');
console.log('\n' + md);
if (!args['no-save']) {
  const tag = /llvmpipe|swiftshader|lavapipe/i.test(adapterText)
    ? 'llvmpipe'
    : (info.vendor || 'gpu').replace(/\W+/g, '-');
  const base = args.out ?? join(here, 'results', `${machine.date.slice(0, 10)}-webgpu-${tag}`);
  mkdirSync(dirname(base), { recursive: true });
  writeFileSync(`${base}.md`, md);
  writeFileSync(args.json ?? `${base}.json`, JSON.stringify({ machine, results }, null, 2) + '\n');
  console.log(`written ${base}.md and .json`);
}
process.exit(0);
