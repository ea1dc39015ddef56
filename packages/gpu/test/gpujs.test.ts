// The gpujs backend in Node: gpu.js has no WebGL here (no headless-gl), and
// the version used runs its WebAssembly mode (headless-gl where the optional
// native 'gl' package installed); the same op suite runs on
// WebGL2 in headless Chromium (packages/web/test/browser-ops.test.ts).
import t from 'tap';
import { initGpuJs, gpuJsBackend, GPUJS_OPS } from '@largo/gpu/gpujs';
import { runOpSuite, SUITE_OPS } from '@largo/test-support/op-suite';

const why = await initGpuJs();
t.equal(why, null, 'gpu.js starts in Node');
// without headless-gl (gpu.js's optional native 'gl', which npm may fail to build) gpu.js runs its WebAssembly mode
t.match(gpuJsBackend()?.mode, /^(webasm|headlessgl)$/, `gpu.js runs in Node (mode ${gpuJsBackend()?.mode})`);
t.same(
  SUITE_OPS.filter((op) => !GPUJS_OPS.includes(op) && op !== 'convTranspose3d'),
  [],
  'every suite op has a gpujs kernel',
);
// convTranspose3d runs the conv3dGradInput kernel
t.same(
  GPUJS_OPS.filter((op) => !SUITE_OPS.includes(op === 'conv3dGradInput' ? 'convTranspose3d' : op)),
  [],
  'every gpujs kernel has a property test in the suite',
);

const runs = Number(process.env.LARGO_GPUJS_FC_RUNS ?? 8);
for (const r of await runOpSuite('gpujs', runs)) {
  t.equal(
    r.error,
    null,
    `${r.op} [gpujs, ${gpuJsBackend()?.mode}] matches the float64 oracle (${r.runs} runs, ${r.ms.toFixed(0)} ms)`,
  );
}
