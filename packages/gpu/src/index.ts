/// <reference types="@webgpu/types" preserve="true" />
// preserve: the published .d.ts must pull in the GPU* types too (TypeScript drops plain reference directives)
import { engine, registerKernels } from '@largo/core';
import { WebGpuBackend, type GpuKernelTable } from './backend.js';
import { acquireDevice, onProcessExit } from './device.js';
import { convKernels } from './kernels/conv.js';
import { cpReconstructKernels } from './kernels/cp-reconstruct.js';
import { elementwiseKernels } from './kernels/elementwise.js';
import { indexKernels } from './kernels/index-ops.js';
import { instanceNormKernels } from './kernels/instance-norm.js';
import { layoutKernels } from './kernels/layout.js';
import { lossKernels } from './kernels/losses.js';
import { matmulKernels } from './kernels/matmul.js';
import { reduceKernels } from './kernels/reduce.js';
import { softmaxKernels } from './kernels/softmax.js';

/**
 * The WebGPU backend's kernel table: every op of the schema. A missing op or
 * a kernel whose attributes differ from the schema fails the build here.
 */
export const webGpuKernels = {
  ...elementwiseKernels,
  ...reduceKernels,
  ...layoutKernels,
  ...indexKernels,
  ...matmulKernels,
  ...convKernels,
  ...softmaxKernels,
  ...instanceNormKernels,
  ...lossKernels,
  ...cpReconstructKernels,
} satisfies GpuKernelTable;
registerKernels('webgpu', webGpuKernels);

export {
  WebGpuBackend,
  bucketBytes,
  type GpuData,
  type GpuLimits,
  type Dispatch,
  type GpuKernel,
  type GpuKernelTable,
} from './backend.js';
export { acquireDevice, REQUESTED_LIMITS, type AcquiredDevice, type GpuDeviceInfo } from './device.js';
export { Uniforms } from './wgsl.js';

let pending: Promise<WebGpuBackend | null> | null = null;
let lastReason = '';

/** Why the last `initWebGpu()` returned null ('' when it did not). */
export function webGpuUnavailableReason(): string {
  return lastReason;
}

/**
 * Creates the WebGPU backend, registers it with the engine at priority 0
 * (below the CPU's 1, so the CPU stays the default until
 * `setBackend('webgpu')`), and returns it; or returns null, with the reason
 * logged, when no adapter can be found. Later calls return the same backend.
 * The device is destroyed when the process exits.
 */
export function initWebGpu(opts: { quiet?: boolean } = {}): Promise<WebGpuBackend | null> {
  if (!pending || (pending && lastReason)) {
    pending = (async () => {
      const got = await acquireDevice();
      if (typeof got === 'string') {
        lastReason = got;
        if (!opts.quiet) console.warn(`webgpu: ${got}`);
        return null;
      }
      lastReason = '';
      const backend = new WebGpuBackend(got.device, got.info, got.adapter);
      onProcessExit(() => backend.destroy());
      engine().addBackendInstance(backend, 0);
      return backend;
    })();
  }
  return pending;
}
