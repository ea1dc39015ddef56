// LARGO.ts side by side with peers, as ratios from one run.
//
//   npm run bench -w bench                 # every case, 9 interleaved rounds
//   node bench/compare.mjs --reps 3 --only conv --no-wasm --no-save
//
// For each case: make the inputs once (our seeded generator), hand the same
// numbers to every library, check that every peer's output agrees with ours
// (max abs diff, printed), then time. Timing is interleaved: each round runs
// one sample of every library in a rotating order, so a burst of load from
// other processes on the machine hits all of them alike; the table holds the
// median over rounds. A sample repeats the computation enough times to last
// ~50 ms (calibrated per library from the warm-up) and reports ms per call.
//
// Peers: @tensorflow/tfjs 4 on its pure-JS 'cpu' backend and on its 'wasm'
// backend (SIMD, single-threaded in Node: no worker support there), both in
// this process; PyTorch (Debian's /usr/bin/python3) in a subprocess
// (peers/torch_peer.py) with torch.set_num_threads(--threads, default 2).
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, hostname, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';

const here = dirname(fileURLToPath(import.meta.url));

const { values: args } = parseArgs({
  options: {
    reps: { type: 'string', default: '9' },
    only: { type: 'string' },
    threads: { type: 'string', default: '2' },
    python: { type: 'string', default: '/usr/bin/python3' },
    'sample-ms': { type: 'string', default: '50' },
    'budget-s': { type: 'string', default: '4' },
    'settle-ms': { type: 'string', default: '150' },
    tol: { type: 'string', default: '1e-3' },
    'no-torch': { type: 'boolean', default: false },
    'no-torch1': { type: 'boolean', default: false },
    'no-wasm': { type: 'boolean', default: false },
    'no-tfjs-cpu': { type: 'boolean', default: false },
    'no-save': { type: 'boolean', default: false },
    out: { type: 'string' },
  },
});
const REPS = Math.max(1, Number(args.reps));
const THREADS = Math.max(1, Number(args.threads));
const SAMPLE_MS = Number(args['sample-ms']);
const MAX_INNER = 64;
const BUDGET_MS = 1000 * Number(args['budget-s']);
const SLOW_MS = 1000; // see goesOn() below
const TOL = Number(args.tol);
// After a PyTorch sample its BLAS threads keep spinning: OpenBLAS's pthreads
// wait 2^28 cycles (~110 ms here) before they sleep, and measured on the
// 2-core VM the subprocess burned ~100 ms of CPU after each reply. The next
// library's sample ran on a shared core: matmul 256³ 1.79 ms vs 1.17 with no
// PyTorch in the run, tfjs-cpu 69 vs 47. So the driver waits that long after
// every PyTorch sample (PyTorch's own timing, taken inside the subprocess, is
// untouched: its threads spin between the calls of a sample as usual).
const SETTLE_MS = Number(args['settle-ms']);
const settle = () => new Promise((r) => setTimeout(r, SETTLE_MS));

// tfjs prints a banner recommending tfjs-node (not installable here: it downloads a binary).
for (const k of ['log', 'warn']) {
  const orig = console[k].bind(console);
  console[k] = (...a) => {
    if (typeof a[0] === 'string' && /tfjs-node|^=+$/.test(a[0].trim())) return;
    orig(...a);
  };
}
const tf = await import('@tensorflow/tfjs');
await import('@tensorflow/tfjs-backend-wasm');
tf.env().set('IS_TEST', false);

const { CASES } = await import('./lib/cases.mjs');
const C = await import('@largo/core');
// how many kernel calls the CPU backend's thread pool split (a test hook, not exported by the package)
const { pooledJobs } = await import(new URL('../packages/core/dist/cpu/wasm/pool.js', import.meta.url).href);

// Our columns: the JavaScript kernels (one thread), and the WebAssembly SIMD
// kernels ('auto': what users get) on one thread and on --threads threads.
// 'ours' is the last, the one compared with the peers.
const OURS = { ours: ['auto', THREADS], 'ours-1t': ['auto', 1], 'ours-js': ['js', 1] };
const useOurs = (lib) => {
  const [m, t] = OURS[lib];
  C.setCpuKernels(m);
  C.setCpuThreads(t);
};

// ---------------------------------------------------------------------------
// timing helpers

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const cpuMs = (c0) => {
  const u = process.cpuUsage(c0);
  return (u.user + u.system) / 1000;
};

/** Runs fn `inner` times; wall and process-CPU ms per call. */
function sampleLocal(fn, inner) {
  const c0 = process.cpuUsage(),
    t0 = performance.now();
  for (let k = 0; k < inner; k++) fn();
  return { wall: (performance.now() - t0) / inner, cpu: cpuMs(c0) / inner };
}
const innerFor = (ms) => Math.max(1, Math.min(MAX_INNER, Math.round(SAMPLE_MS / Math.max(ms, 1e-3))));

// ---------------------------------------------------------------------------
// the PyTorch subprocess

class TorchPeer {
  constructor(python, threads) {
    this.proc = spawn(python, [join(here, 'peers', 'torch_peer.py'), String(threads)], {
      stdio: ['pipe', 'pipe', 'inherit'],
      env: {
        ...process.env,
        OMP_NUM_THREADS: String(threads),
        MKL_NUM_THREADS: String(threads),
        OPENBLAS_NUM_THREADS: String(threads),
        // libgomp's default spin-waiting at barriers collapses when the cores are
        // shared: measured here, torch's 2-thread conv3d grad-weight took 100–2000 ms
        // spinning and 42–110 ms passive (45 ms on one thread). Keep a caller's choice.
        OMP_WAIT_POLICY: process.env.OMP_WAIT_POLICY ?? 'PASSIVE',
      },
    });
    this.waiting = [];
    this.dead = null;
    createInterface({ input: this.proc.stdout }).on('line', (line) => this.waiting.shift()?.resolve(JSON.parse(line)));
    this.proc.on('exit', (code) => {
      this.dead = `python exited with ${code}`;
      for (const w of this.waiting.splice(0)) w.reject(new Error(this.dead));
    });
    this.proc.on('error', (e) => {
      this.dead = e.message;
      for (const w of this.waiting.splice(0)) w.reject(e);
    });
  }
  request(msg) {
    if (this.dead) return Promise.reject(new Error(this.dead));
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve: (r) => (r.error ? reject(new Error(r.error)) : resolve(r)), reject });
      this.proc.stdin.write(JSON.stringify(msg) + '\n');
    });
  }
  close() {
    if (!this.dead) {
      this.proc.stdin.write('{"cmd":"quit"}\n');
      this.proc.stdin.end();
    }
  }
}

// ---------------------------------------------------------------------------
// machine

/** CPU model from /proc/cpuinfo, with family/model, clock and the SIMD extensions that matter here. */
const cpuModel = (() => {
  try {
    const info = readFileSync('/proc/cpuinfo', 'utf8');
    const field = (k) => info.match(new RegExp(`^${k}\\s*:\\s*(.*)$`, 'm'))?.[1].trim();
    const flags = new Set((field('flags') ?? '').split(/\s+/));
    const simd = ['avx', 'avx2', 'fma', 'avx512f'].filter((f) => flags.has(f)).map((f) => f.toUpperCase());
    const extra = [
      field('cpu family') && `family ${field('cpu family')} model ${field('model')}`,
      simd.join('+'),
      field('cpu MHz') && `${Math.round(Number(field('cpu MHz')))} MHz`,
    ];
    return `${field('model name') ?? cpus()[0]?.model ?? 'unknown'} (${extra.filter(Boolean).join(', ')})`;
  } catch {
    return cpus()[0]?.model ?? 'unknown';
  }
})();
const fmtLoad = (l) => l.map((x) => x.toFixed(2)).join(' / ');
const loadStart = loadavg();
const loads = [loadStart[0]];

// 'torch' runs with --threads (the table's peer); 'torch-1t' with one thread,
// for the single-core comparison (ours is single-threaded): an extra column,
// not counted as a peer in the ratio.
const torchProcs = {};
let torchInfo = null,
  torchWhyNot = null;
for (const [lib, threads, off] of [
  ['torch', THREADS, args['no-torch']],
  ['torch-1t', 1, args['no-torch'] || args['no-torch1']],
]) {
  if (off) continue;
  try {
    const p = new TorchPeer(args.python, threads);
    const info = await p.request({ cmd: 'info' });
    torchProcs[lib] = p;
    if (lib === 'torch') torchInfo = info;
  } catch (e) {
    torchWhyNot ??= e.message;
  }
}

const peers = [];
if (!args['no-tfjs-cpu']) peers.push('tfjs-cpu');
if (!args['no-wasm']) peers.push('tfjs-wasm');
for (const lib of Object.keys(torchProcs)) peers.push(lib);
const LIBS = ['ours', 'ours-1t', 'ours-js', ...peers];
const ALL_PEERS = ['tfjs-cpu', 'tfjs-wasm', 'torch'];

const machine = {
  date: new Date().toISOString(),
  host: hostname(),
  cpu: cpuModel,
  cores: cpus().length,
  node: process.version,
  tfjs: tf.version.tfjs,
  wasmSimd: await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'),
  wasmThreads: await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT'),
  torch: torchInfo
    ? `${torchInfo.torch} (numpy ${torchInfo.numpy}, Python ${torchInfo.python}, ${torchInfo.threads} threads, oneDNN ${torchInfo.mkldnn ? 'on' : 'off'}; BLAS ${torchInfo.blas.join(', ') || 'unknown'})`
    : `not run (${torchWhyNot ?? 'disabled'})`,
};
console.log(`# LARGO.ts vs peers — ${machine.date}`);
console.log(
  `host ${machine.host}: ${machine.cpu}, ${machine.cores} cores; node ${machine.node}; tfjs ${machine.tfjs} (wasm SIMD ${machine.wasmSimd}, threads ${machine.wasmThreads}); torch ${machine.torch}`,
);
console.log(
  `load average at start (1/5/15 min): ${fmtLoad(loadStart)}; ${REPS} interleaved rounds per case, ~${SAMPLE_MS} ms samples\n`,
);

// ---------------------------------------------------------------------------
// run

const workDir = mkdtempSync(join(tmpdir(), 'largo-bench-'));
const useBackend = async (name) => {
  if (tf.getBackend() !== name) {
    await tf.setBackend(name);
    await tf.ready();
  }
};

function maxAbsDiff(a, b) {
  if (a.length !== b.length) return Infinity;
  let d = 0;
  for (let k = 0; k < a.length; k++) {
    const e = Math.abs(a[k] - b[k]);
    if (!(e <= d)) d = e;
  }
  return d;
}
function maxAbs(a) {
  let m = 0;
  for (const v of a) {
    const e = Math.abs(v);
    if (e > m) m = e;
  }
  return m;
}

/**
 * Worst over the output tensors: absolute diff, and diff relative to the
 * output's scale (max |ours|, but at least 1e-3 of the largest output of the
 * case: a gradient that is zero up to rounding, like a conv bias followed by
 * instance norm, is judged on the case's scale rather than its own).
 */
function compare(mine, theirs) {
  let abs = 0,
    rel = 0;
  const per = {};
  const caseScale = Math.max(...Object.values(mine).map(maxAbs));
  for (const [k, v] of Object.entries(mine)) {
    if (!(k in theirs)) return { abs: NaN, rel: NaN, per, note: `missing output ${k}` };
    const d = maxAbsDiff(v, theirs[k]);
    const r = d / Math.max(maxAbs(v), 1e-3 * caseScale, 1e-30);
    per[k] = { abs: d, rel: r };
    abs = Math.max(abs, d);
    rel = Math.max(rel, r);
  }
  return { abs, rel, per };
}

const selected = args.only ? CASES.filter((c) => new RegExp(args.only, 'i').test(c.id + ' ' + c.label)) : CASES;
const results = [];
const tStart = performance.now();

for (const cs of selected) {
  const inputs = cs.make();
  const row = {
    // a case may ask for more rounds than --reps (a noisy one: the LARGO step)
    reps: Math.max(REPS, cs.minReps ?? 0),
    pooled: {},
    id: cs.id,
    label: cs.label,
    flops: cs.flops,
    check: {},
    wrong: {},
    verifyMs: {},
    wall: {},
    cpu: {},
    inner: {},
    errors: {},
  };
  const runners = {};

  // set up every library, run it once and check it against ours
  let mine;
  for (const lib of Object.keys(OURS)) {
    try {
      useOurs(lib);
      const r = cs.ours(inputs);
      const t0 = performance.now();
      const out = await r.outputs();
      row.verifyMs[lib] = performance.now() - t0;
      runners[lib] = {
        sample: async (n) => {
          useOurs(lib);
          const j0 = pooledJobs();
          const s = sampleLocal(r.run, n);
          // did any call of this sample split across the threads?
          row.pooled[lib] = (row.pooled[lib] ?? 0) + pooledJobs() - j0;
          return s;
        },
        dispose: r.dispose,
      };
      if (lib === 'ours') mine = out;
      // the other kernel sets must agree with the one compared with peers (not for a training step: its state moves on)
      else if (mine && !cs.oursOnly) {
        row.check[lib] = compare(mine, out);
        if (!(row.check[lib].rel <= TOL)) row.wrong[lib] = true;
      }
    } catch (e) {
      row.errors[lib] = e.message.split('\n')[0];
    }
  }
  for (const lib of cs.oursOnly ? [] : peers) {
    try {
      let theirs;
      if (torchProcs[lib]) {
        const torch = torchProcs[lib];
        const spec = {};
        for (const [k, a] of Object.entries(inputs)) {
          const path = join(workDir, `${cs.id}-${k}.f32`);
          writeFileSync(path, Buffer.from(a.data.buffer, a.data.byteOffset, a.data.byteLength));
          spec[k] = { path, shape: a.shape };
        }
        const rep = await torch.request({ cmd: 'setup', case: cs.id, kind: cs.kind, inputs: spec, dir: workDir });
        row.verifyMs[lib] = rep.ms;
        theirs = {};
        for (const [k, o] of Object.entries(rep.outputs)) {
          const buf = readFileSync(o.path);
          theirs[k] = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
        }
        runners[lib] = {
          sample: async (n) => {
            const t = await torch.request({ cmd: 'time', case: cs.id, inner: n });
            return { wall: t.wall_ms / n, cpu: t.cpu_ms / n };
          },
          dispose: () => torch.request({ cmd: 'free', case: cs.id }),
        };
      } else {
        const backend = lib === 'tfjs-cpu' ? 'cpu' : 'wasm';
        await useBackend(backend);
        const r = cs.tfjs(tf, inputs);
        const t0 = performance.now();
        theirs = await r.outputs();
        row.verifyMs[lib] = performance.now() - t0;
        runners[lib] = {
          sample: async (n) => {
            await useBackend(backend);
            return sampleLocal(r.run, n);
          },
          dispose: async () => {
            await useBackend(backend);
            r.dispose();
          },
        };
      }
      if (mine) {
        row.check[lib] = compare(mine, theirs);
        // a peer that computes something else is not timed (and never the "best peer")
        if (!(row.check[lib].rel <= TOL)) {
          row.wrong[lib] = true;
          await runners[lib].dispose();
          delete runners[lib];
        }
      }
    } catch (e) {
      row.errors[lib] = e.message.split('\n')[0];
    }
  }

  // warm-up (the check above was the first call; a fast case gets one more),
  // which also sets the calls per sample
  const libs = LIBS.filter((l) => runners[l]);
  const last = {};
  for (const l of libs) {
    last[l] = row.verifyMs[l];
    if (last[l] < 2000) last[l] = (await runners[l].sample(1)).wall;
    if (torchProcs[l]) await settle();
  }
  // A case may ask for more (a training step: the first steps include the
  // wasm kernels' tier-up from the baseline compiler and the JIT's warm-up),
  // taken in turns so that no library is warmed up alone first (measured:
  // with sequential warm-ups the first column ran the LARGO step up to 18%
  // slower than the second, both on one thread with the same code).
  for (let k = 0; k < (cs.warmup ?? 0); k++)
    for (const l of libs) {
      last[l] = (await runners[l].sample(1)).wall;
      if (torchProcs[l]) await settle();
    }
  for (const l of libs) {
    row.inner[l] = Math.max(cs.minInner ?? 1, innerFor(last[l]));
    row.wall[l] = [];
    row.cpu[l] = [];
  }
  // Rounds: every library takes part in round r while r < --reps and either
  // it has fewer than 3 samples (ours always; a peer if its calls take under
  // SLOW_MS), or one more sample still fits in --budget-s. Peers that take
  // seconds per call (tfjs on the big cases; never the fastest peer) thus get
  // one or two samples, which keeps a full run near five minutes on a loaded
  // 2-core machine; their check run above served as their warm-up.
  const goesOn = (l, r) => {
    const w = row.wall[l];
    if (r >= row.reps) return false;
    if (r === 0) return true;
    const m = median(w) * row.inner[l],
      spent = w.reduce((a, b) => a + b, 0) * row.inner[l];
    return (r < 3 && (l in OURS || m < SLOW_MS)) || spent + m <= BUDGET_MS;
  };
  for (let r = 0; r < row.reps; r++) {
    const active = libs.filter((l) => goesOn(l, r));
    if (!active.length) break;
    // Rotate the start each round, and reverse the cycle every other round:
    // with a fixed cycle the same library always follows the same one and
    // inherits its after-effects (garbage to collect): "ours" followed the
    // JavaScript kernels in every round and ran the LARGO step 5–8% slower
    // than "ours 1t" with the very same code.
    const cycle = r % 2 ? [...active].reverse() : active;
    const order = cycle.map((_, k) => cycle[(k + (r >> 1)) % cycle.length]);
    for (const l of order) {
      const s = await runners[l].sample(row.inner[l]);
      row.wall[l].push(s.wall);
      row.cpu[l].push(s.cpu);
      if (torchProcs[l]) await settle();
    }
    loads.push(loadavg()[0]);
  }
  for (const l of libs) await runners[l].dispose();
  row.median = Object.fromEntries(libs.map((l) => [l, median(row.wall[l])]));
  row.cpuMedian = Object.fromEntries(libs.map((l) => [l, median(row.cpu[l])]));
  results.push(row);

  const checks = Object.entries(row.check)
    .map(([l, c]) => `${l} ${c.abs.toExponential(1)}${row.wrong[l] ? ' (DISAGREES)' : ''}`)
    .join(', ');
  const times = libs.map((l) => `${l} ${fmtMs(row.median[l])}`).join(', ');
  const errs = Object.entries(row.errors)
    .map(([l, e]) => `${l}: ${e}`)
    .join('; ');
  console.log(`${cs.label}: max|Δ| vs ours: ${checks || '—'} | median ms: ${times}${errs ? ` | errors: ${errs}` : ''}`);
}
for (const p of Object.values(torchProcs)) p.close();
rmSync(workDir, { recursive: true, force: true });
const elapsed = (performance.now() - tStart) / 1000;
const loadEnd = loadavg();

// ---------------------------------------------------------------------------
// report

function fmtMs(ms) {
  if (ms === undefined || !Number.isFinite(ms)) return 'n/a';
  return ms < 10 ? ms.toFixed(2) : ms < 100 ? ms.toFixed(1) : ms.toFixed(0);
}
function ratioCell(row, which = 'median') {
  const ours = row[which].ours;
  const best = ALL_PEERS.filter((p) => row[which][p] !== undefined).sort((a, b) => row[which][a] - row[which][b])[0];
  if (ours === undefined || !best) return 'n/a';
  return `${(ours / row[which][best]).toFixed(2)} (${best})`;
}
function cell(row, lib, which = 'median') {
  if (row.wrong[lib]) return 'wrong ✗';
  if (row.errors[lib]) return 'error';
  if (row[which][lib] === undefined) return '—';
  const n = row.wall[lib].length;
  return fmtMs(row[which][lib]) + (n < row.reps ? ` (n=${n})` : '');
}

const lines = [];
lines.push(`## ${machine.date.slice(0, 10)} on ${machine.host}`, '');
lines.push(`- CPU: ${machine.cpu}, ${machine.cores} cores (/proc/cpuinfo)`);
lines.push(
  `- Node ${machine.node}; @tensorflow/tfjs ${machine.tfjs} (cpu backend: plain JS; wasm backend: SIMD ${machine.wasmSimd ? 'on' : 'off'}, threads ${machine.wasmThreads ? 'on' : 'off'})`,
);
lines.push(`- PyTorch ${machine.torch}; OMP_WAIT_POLICY=${process.env.OMP_WAIT_POLICY ?? 'PASSIVE'}`);
lines.push(
  `- LARGO.ts: CPU backend; "ours" = WebAssembly SIMD kernels on ${THREADS} threads, "ours 1t" = the same on one thread, "ours JS" = the JavaScript kernels (LARGO_CPU_KERNELS=js, one thread)`,
);
lines.push(
  `- load average (1/5/15 min): start ${fmtLoad(loadStart)}, end ${fmtLoad(loadEnd)}; 1-min load during the run ${Math.min(...loads).toFixed(1)}–${Math.max(...loads).toFixed(1)}`,
);
lines.push(
  `- median wall-clock ms per call over up to ${REPS} interleaved rounds (rotating order; (n=k): only k samples, a peer taking seconds per call); ${elapsed.toFixed(0)} s in all`,
  '',
);
const jsGain = (r, which = 'median') =>
  r[which].ours && r[which]['ours-js'] ? `${(r[which]['ours-js'] / r[which].ours).toFixed(1)}×` : 'n/a';
const gflops = (r) => (r.flops && r.median.ours ? (r.flops / r.median.ours / 1e6).toFixed(1) : '');
lines.push(
  `| case | ours ms | ours GFLOP/s | ours 1t ms | ours JS ms | JS / ours | tfjs-cpu ms | tfjs-wasm ms | torch ms | ours / best peer | torch 1-thread ms |`,
);
lines.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
for (const r of results)
  lines.push(
    `| ${r.label} | ${cell(r, 'ours')}${r.pooled.ours === 0 && THREADS > 1 ? ' ¹' : ''} | ${gflops(r)} | ${cell(r, 'ours-1t')} | ${cell(r, 'ours-js')} | ${jsGain(r)} | ${cell(r, 'tfjs-cpu')} | ${cell(r, 'tfjs-wasm')} | ${cell(r, 'torch')} | ${ratioCell(r)} | ${cell(r, 'torch-1t')} |`,
  );
lines.push(
  '',
  `Ratio > 1: we are slower than the fastest peer (among those that computed the right numbers) by that factor. torch runs ${THREADS} threads; the last column is the same PyTorch with one thread, like ours, and is not counted in the ratio.`,
);
lines.push(
  `"wrong ✗": the peer's output disagreed with ours beyond ${TOL} relative before timing (table below), so it was not timed.`,
  `¹ no call of this case was split across the ${THREADS} threads (each below the pool's threshold): "ours" and "ours 1t" ran the same code on one thread, and differ by run-to-run noise only.`,
  '',
);
lines.push('Process CPU time per call (median ms; torch counts all of its threads):', '');
lines.push('| case | ours | ours 1t | ours JS | tfjs-cpu | tfjs-wasm | torch | ours / best peer | torch 1-thread |');
lines.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|');
for (const r of results)
  lines.push(
    `| ${r.label} | ${cell(r, 'ours', 'cpuMedian')} | ${cell(r, 'ours-1t', 'cpuMedian')} | ${cell(r, 'ours-js', 'cpuMedian')} | ${cell(r, 'tfjs-cpu', 'cpuMedian')} | ${cell(r, 'tfjs-wasm', 'cpuMedian')} | ${cell(r, 'torch', 'cpuMedian')} | ${ratioCell(r, 'cpuMedian')} | ${cell(r, 'torch-1t', 'cpuMedian')} |`,
  );
lines.push(
  '',
  "Agreement with ours before timing: max abs diff over all outputs (relative to the output's scale in brackets):",
  '',
);
lines.push('| case | ours 1t | ours JS | tfjs-cpu | tfjs-wasm | torch | torch 1-thread |');
lines.push('|---|---:|---:|---:|---:|---:|---:|');
const chk = (r, l) =>
  r.check[l]
    ? `${r.check[l].abs.toExponential(1)} (${r.check[l].rel.toExponential(1)})${r.wrong[l] ? ' ✗' : ''}`
    : r.errors[l]
      ? `error: ${r.errors[l]}`
      : '—';
for (const r of results)
  lines.push(
    `| ${r.label} | ${chk(r, 'ours-1t')} | ${chk(r, 'ours-js')} | ${chk(r, 'tfjs-cpu')} | ${chk(r, 'tfjs-wasm')} | ${chk(r, 'torch')} | ${chk(r, 'torch-1t')} |`,
  );
const bad = results.flatMap((r) =>
  Object.keys(r.wrong).map((l) => {
    const worst = Object.entries(r.check[l].per)
      .filter(([, c]) => !(c.rel <= TOL))
      .map(([k]) => k);
    return `${r.label} / ${l} (${worst.join(', ')})`;
  }),
);
lines.push(
  '',
  bad.length
    ? `Disagreement above ${TOL} relative (outputs): ${bad.join('; ')}.`
    : `All peers agree with ours to ${TOL} relative or better.`,
);
const errs = results.flatMap((r) => Object.entries(r.errors).map(([l, e]) => `${r.label} / ${l}: ${e}`));
if (errs.length) lines.push('', 'Errors:', '', ...errs.map((e) => `- ${e}`));
const md = lines.join('\n') + '\n';
console.log('\n' + md);

if (!args['no-save']) {
  // the table as .md and the raw numbers as .json beside it (an --out without .md gets it added)
  const given = args.out ?? join(here, 'results', `${machine.date.slice(0, 10)}-${machine.host}.md`);
  const out = given.endsWith('.md') ? given : `${given}.md`;
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, md);
  writeFileSync(
    out.replace(/\.md$/, '.json'),
    JSON.stringify(
      {
        machine,
        reps: REPS,
        budgetS: BUDGET_MS / 1000,
        tol: TOL,
        loads: { start: loadStart, end: loadEnd, during: loads },
        results,
      },
      null,
      1,
    ) + '\n',
  );
  console.log(`written ${out}`);
}
