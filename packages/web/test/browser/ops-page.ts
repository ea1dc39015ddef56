// Test page: runs the inference-op property suite (@largo/test-support/op-suite)
// inside the browser on webgpu and gpujs, for browser-ops.test.ts to read.
import { initWebGpu, webGpuUnavailableReason } from '@largo/gpu';
import { initGpuJs, gpuJsBackend } from '@largo/gpu/gpujs';
import { runOpSuite, SUITE_OPS, type OpResult } from '@largo/test-support/op-suite';

async function run(
  backend: 'webgpu' | 'gpujs',
  runs: number,
): Promise<{ available: string | null; mode: string; results: OpResult[] }> {
  if (backend === 'webgpu') {
    const b = await initWebGpu({ quiet: true });
    if (!b) return { available: webGpuUnavailableReason(), mode: '', results: [] };
    const info = (b as unknown as { info?: { description?: string; architecture?: string; vendor?: string } }).info;
    return {
      available: null,
      mode: [info?.vendor, info?.architecture, info?.description].filter(Boolean).join(' '),
      results: await runOpSuite('webgpu', runs),
    };
  }
  const why = await initGpuJs();
  if (why) return { available: why, mode: '', results: [] };
  const results = await runOpSuite('gpujs', runs);
  // gpu.js creates its context with the first kernel: ask for the mode afterwards
  return { available: null, mode: gpuJsBackend()!.mode, results };
}

(window as unknown as Record<string, unknown>).__ops = { run, ops: SUITE_OPS };
document.title = 'ops ready';
