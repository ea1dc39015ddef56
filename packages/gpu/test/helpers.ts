// Shared by the WebGPU-only tests: backend acquisition (skip with the reason
// when there is no adapter), async reads; the comparison and the generators
// come from @largo/test-support. Tests of an op's values on every backend use
// forEachBackend (@largo/test-support) instead.
import { memory, setBackend, type Tensor } from '@largo/core';
import { initWebGpu, webGpuUnavailableReason, type WebGpuBackend } from '@largo/gpu';
import { GPU_RUNS as RUNS, requirement } from '@largo/test-support';
export {
  oracleCase,
  arbShape,
  check,
  size,
  arbF32,
  arbInts,
  arbBroadcastable,
  arbShapePair,
  stored,
  toRefAsync,
} from '@largo/test-support';

/** The backend, or null; when null `skipReason` says why (tests then skip with it). */
export const backend: WebGpuBackend | null = await initWebGpu({ quiet: true });
// With LARGO_REQUIRE_WEBGPU=1 (CI) a missing adapter is a failure, not a skip.
export const skipReason: string | false = requirement(
  'WEBGPU',
  backend ? false : `no WebGPU adapter: ${webGpuUnavailableReason()}`,
);
if (backend) setBackend('webgpu');

/** Property runs per WebGPU test: the webgpu profile's (see @largo/test-support backends.ts). */
export const GPU_RUNS = RUNS;

export const wg = (op: string): string => `${op} [webgpu]`;
/** Test options: skip with the reason when there is no adapter (a fresh object each time: tap annotates it). */
export const gpuOpts = (): { skip: string | false } => ({ skip: skipReason });

/** Runs `body` and checks that it left no tensor or GPU buffer behind. */
export async function leakFree(
  t: { same(a: unknown, b: unknown, m?: string): boolean },
  body: () => Promise<void>,
): Promise<void> {
  const before = memory();
  await body();
  t.same(memory(), before, 'no tensor or buffer leaked');
}

/** Reads `t`, then disposes it. */
export async function take(t: Tensor): Promise<{ shape: number[]; data: number[] }> {
  const d = Array.from((await t.data()) as ArrayLike<number>);
  const shape = [...t.shape];
  t.dispose();
  return { shape, data: d };
}

/** The shared comparison on values already read (NaN matches NaN, infinities exactly, finite within atol + rtol·|want|). */
export { compareValues as compareTo, type Tol } from '@largo/test-support';
