#!/usr/bin/env node
// Seeded fuzzing of everything the CLI reads: NIfTI (header fields, truncation,
// gzip framing), safetensors checkpoints (header JSON, offsets, dtypes, lengths),
// config JSON and CLI argument vectors. Every case must end in a clear error (one
// of the named input errors, or exit code 0/2 for the CLI) or a correct result;
// anything else -- an uncaught exception, exit code 1, a hang or a memory
// blow-up -- is a failure, printed with its seed and case index to replay it.
//
// Usage: node scripts/fuzz/fuzz.mjs [--cases N] [--seed S] [--formats nifti,safetensors,config,argv]
//                                   [--timeout-ms T] [--max-rss-mb M] [--json]
// Needs `npm run build` (it runs the built packages). Replay one case:
//   node scripts/fuzz/fuzz.mjs --formats nifti --seed S --from I --cases 1 --verbose
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createInterface } from 'node:readline';
import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const FORMATS = ['nifti', 'safetensors', 'config', 'argv'];
const { values } = parseArgs({
  options: {
    cases: { type: 'string', default: '100000' },
    seed: { type: 'string', default: '1' },
    formats: { type: 'string', default: FORMATS.join(',') },
    from: { type: 'string', default: '0' },
    'timeout-ms': { type: 'string', default: '30000' },
    'max-rss-mb': { type: 'string', default: '1536' },
    json: { type: 'boolean', default: false },
    verbose: { type: 'boolean', default: false },
    child: { type: 'string' },
    heartbeat: { type: 'string' },
    skip: { type: 'string', default: '' },
  },
});
const cases = Number(values.cases),
  seed = Number(values.seed),
  from = Number(values.from);
const timeoutMs = Number(values['timeout-ms']),
  maxRssMb = Number(values['max-rss-mb']);

if (values.child) {
  const { runCases } = await import('./cases.mjs');
  await runCases(values.child, seed, from, cases, {
    maxRssMb,
    verbose: values.verbose,
    heartbeat: values.heartbeat,
    skip: new Set(values.skip.split(',').filter(Boolean).map(Number)),
  });
} else {
  const formats = values.formats
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const f of formats)
    if (!FORMATS.includes(f)) {
      console.error(`fuzz: unknown format '${f}' (${FORMATS.join(', ')})`);
      process.exit(2);
    }
  const summary = { seed, casesPerFormat: cases, formats: {}, failures: 0, seconds: 0 };
  const t0 = performance.now();
  for (const f of formats) {
    const r = await supervise(f);
    summary.formats[f] = r;
    summary.failures += r.failures.length;
    if (!values.json) {
      console.log(
        `${f}: ${r.done} cases in ${r.seconds.toFixed(1)} s — ${r.ok} accepted, ${r.refused} refused with a clear error, ${r.failures.length} failure(s)${r.maxCaseMs ? `; slowest case ${r.maxCaseMs.toFixed(0)} ms` : ''}; peak RSS ${r.peakRssMb.toFixed(0)} MiB`,
      );
      for (const x of r.failures.slice(0, 10)) console.log(`  FAIL ${x.kind} at case ${x.index}: ${x.detail}`);
      const kinds = Object.entries(r.errors)
        .sort((a, b) => b[1] - a[1])
        .slice(0, 8)
        .map(([k, n]) => `${k} ${n}`)
        .join(', ');
      if (kinds) console.log(`  errors: ${kinds}`);
    }
  }
  summary.seconds = (performance.now() - t0) / 1000;
  if (values.json) console.log(JSON.stringify(summary, null, 2));
  else
    console.log(
      `total: ${summary.failures} failure(s) in ${summary.seconds.toFixed(1)} s (seed ${seed}, ${cases} cases per format)`,
    );
  process.exit(summary.failures ? 1 : 0);
}

/**
 * Runs one format's cases in a child process, restarting it after a hang
 * (no progress for --timeout-ms) or a crash, so one bad case cannot stop the run.
 */
async function supervise(format) {
  const res = { done: 0, ok: 0, refused: 0, failures: [], errors: {}, seconds: 0, maxCaseMs: 0, peakRssMb: 0 };
  const t0 = performance.now();
  let next = from;
  const skip = new Set();
  const end = from + cases;
  while (next < end) {
    let last = next - 1;
    let lastBeat = performance.now();
    const heartbeat = join(tmpdir(), `largo-fuzz-${process.pid}-${format}.beat`);
    const child = spawn(
      process.execPath,
      [
        `--max-old-space-size=${maxRssMb}`,
        fileURLToPath(import.meta.url),
        '--child',
        format,
        '--seed',
        String(seed),
        '--from',
        String(next),
        '--cases',
        String(end - next),
        '--max-rss-mb',
        String(maxRssMb),
        '--heartbeat',
        heartbeat,
        '--skip',
        [...skip].join(','),
        ...(values.verbose ? ['--verbose'] : []),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stderr = '';
    child.stderr.on('data', (d) => {
      stderr = (stderr + d).slice(-4000);
      if (values.verbose) process.stderr.write(d);
    });
    const lines = createInterface({ input: child.stdout });
    lines.on('line', (line) => {
      let m;
      try {
        m = JSON.parse(line);
      } catch {
        return;
      }
      if (m.t === 'batch') {
        res.done += m.n;
        res.ok += m.ok;
        last = m.upTo;
        for (const [k, n] of Object.entries(m.refused)) {
          res.refused += n;
          res.errors[k] = (res.errors[k] ?? 0) + n;
        }
        if (m.maxMs > res.maxCaseMs) res.maxCaseMs = m.maxMs;
        if (m.rss > res.peakRssMb) res.peakRssMb = m.rss;
      } else if (m.t === 'fail') {
        last = m.i;
        res.failures.push({ index: m.i, kind: m.outcome, detail: m.detail });
      }
    });
    // a case that runs longer than --timeout-ms is a hang: the heartbeat file names it
    let beatIndex = -1;
    const timer = setInterval(() => {
      let i = -1;
      try {
        i = Number(readFileSync(heartbeat, 'utf8').trim());
      } catch {
        /* not started yet */
      }
      if (i !== beatIndex) {
        beatIndex = i;
        lastBeat = performance.now();
      } else if (i >= 0 && performance.now() - lastBeat > timeoutMs) {
        child.kill('SIGKILL');
        clearInterval(timer);
      }
    }, 100);
    const code = await new Promise((r) => child.on('close', (c, sig) => r(sig ?? c)));
    clearInterval(timer);
    let current = -1;
    try {
      current = Number(readFileSync(heartbeat, 'utf8').trim());
    } catch {
      /* none */
    }
    rmSync(heartbeat, { force: true });
    if (code === 0) break;
    // the case in the heartbeat hung or crashed the process: record it and go on past it
    const bad = current >= 0 ? current : last + 1;
    const kind = code === 'SIGKILL' ? 'hang' : /heap out of memory|Allocation failed/.test(stderr) ? 'memory' : 'crash';
    res.failures.push({
      index: bad,
      kind,
      detail:
        kind === 'hang'
          ? `no result within ${timeoutMs} ms`
          : `exit ${code}: ${stderr.trim().split('\n').slice(-3).join(' | ')}`,
    });
    // cases after the last report ran but were not counted: the next child runs them again, without the bad one
    res.done++;
    skip.add(bad);
    next = last + 1;
  }
  res.seconds = (performance.now() - t0) / 1000;
  return res;
}
