// Micro-benchmark of the CPU convolution kernels (forward, grad-input,
// grad-weight) against the float64 textbook oracle.
//   node bench/kernels-conv.mjs [--reps 3] [--dtype float32]
import { parseArgs } from 'node:util';
import { conv3d, conv3dGradInput, conv3dGradWeight, randn, tidy } from '@largo/core';
import { refConv3d, refConv3dGradInput, refConv3dGradWeight } from '@largo/core/reference';

const { values: args } = parseArgs({
  options: { reps: { type: 'string', default: '3' }, dtype: { type: 'string', default: 'float32' } },
});
const reps = Number(args.reps),
  dtype = args.dtype;

/**
 * Best of `reps` runs after a warm-up (JIT, scratch growth, buffer pool), as
 * process CPU time in ms: on a shared machine wall time mostly measures the
 * neighbours. Wall time is printed alongside.
 */
const walls = new Map();
function time(fn, label) {
  fn();
  let best = Infinity,
    bestWall = Infinity;
  for (let i = 0; i < reps; i++) {
    const c0 = process.cpuUsage(),
      t0 = performance.now();
    fn();
    const wall = performance.now() - t0,
      cpu = (process.cpuUsage(c0).user + process.cpuUsage(c0).system) / 1000;
    best = Math.min(best, cpu);
    bestWall = Math.min(bestWall, wall);
  }
  walls.set(label, bestWall);
  return best;
}

const ref = (t) => ({ shape: [...t.shape], data: Float64Array.from(t.dataSync()) });
const gflops = (flops, ms) => (flops / ms / 1e6).toFixed(2);

function bench(label, xs, ws, opts, withOracle) {
  const x = randn(xs, { seed: 1, dtype }),
    w = randn(ws, { seed: 2, dtype });
  const y = conv3d(x, w, null, opts);
  const dy = randn(y.shape, { seed: 3, dtype });
  const macs = xs[0] * y.shape.slice(1).reduce((a, b) => a * b, 1) * ws.slice(1).reduce((a, b) => a * b, 1);
  const rows = [
    ['conv3d', time(() => tidy(() => conv3d(x, w, null, opts)), 'conv3d')],
    ['conv3dGradInput', time(() => tidy(() => conv3dGradInput(dy, w, xs, opts)), 'conv3dGradInput')],
    ['conv3dGradWeight', time(() => tidy(() => conv3dGradWeight(x, dy, ws, opts)), 'conv3dGradWeight')],
  ];
  console.log(
    `${label}: x [${xs}] w [${ws}] ${JSON.stringify(opts)} ${dtype}, ${((2 * macs) / 1e9).toFixed(2)} GFLOP per kernel`,
  );
  for (const [name, ms] of rows)
    console.log(
      `  ${name.padEnd(18)} ${ms.toFixed(1).padStart(9)} ms cpu  ${gflops(2 * macs, ms)} GFLOP/s  (wall ${walls.get(name).toFixed(1)} ms)`,
    );
  console.log(
    `  ${'total'.padEnd(18)} ${rows
      .reduce((s, r) => s + r[1], 0)
      .toFixed(1)
      .padStart(9)} ms cpu`,
  );
  if (withOracle) {
    const rx = ref(x),
      rw = ref(w),
      rdy = ref(dy);
    const oracle = [
      ['refConv3d', time(() => refConv3d(rx, rw, null, opts), 'refConv3d')],
      ['refConv3dGradInput', time(() => refConv3dGradInput(rdy, rw, xs, opts), 'refConv3dGradInput')],
      ['refConv3dGradWeight', time(() => refConv3dGradWeight(rx, rdy, ws, opts), 'refConv3dGradWeight')],
    ];
    for (const [name, ms] of oracle)
      console.log(
        `  ${name.padEnd(18)} ${ms.toFixed(1).padStart(9)} ms cpu  ${gflops(2 * macs, ms)} GFLOP/s  (oracle, float64)`,
      );
    console.log(
      `  speed-up over the oracle: ${(oracle.reduce((s, r) => s + r[1], 0) / rows.reduce((s, r) => s + r[1], 0)).toFixed(1)}x`,
    );
  }
  x.dispose();
  w.dispose();
  y.dispose();
  dy.dispose();
}

bench('main', [2, 16, 32, 32, 32], [16, 16, 3, 3, 3], { padding: 1 }, false);
bench('small (vs oracle)', [1, 8, 16, 16, 16], [8, 8, 3, 3, 3], { padding: 1 }, true);
bench('strided', [2, 16, 32, 32, 32], [32, 16, 3, 3, 3], { stride: 2, padding: 1 }, false);
