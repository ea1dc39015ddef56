// Shared by the tests of the WebGPU backend itself (moving tensors, training
// on the GPU): backend acquisition, skipping with the reason when there is no
// adapter. Tests of an op's values are written once for every backend with
// forEachBackend (@largo/test-support) in the op's test file (core/test).
import { setBackend } from '@largo/core';
import { initWebGpu, webGpuUnavailableReason, type WebGpuBackend } from '@largo/gpu';
import { requirement } from '@largo/test-support';

/** The backend, or null; when null `skipReason` says why (tests then skip with it). */
export const backend: WebGpuBackend | null = await initWebGpu({ quiet: true });
// With LARGO_REQUIRE_WEBGPU=1 (CI) a missing adapter is a failure, not a skip.
export const skipReason: string | false = requirement(
  'WEBGPU',
  backend ? false : `no WebGPU adapter: ${webGpuUnavailableReason()}`,
);
if (backend) setBackend('webgpu');

/** A title that names the backend, as forEachBackend's do. */
export const wg = (title: string): string => `${title} [webgpu]`;
/** Test options: skip with the reason when there is no adapter (a fresh object each time: tap annotates it). */
export const gpuOpts = (): { skip: string | false } => ({ skip: skipReason });
