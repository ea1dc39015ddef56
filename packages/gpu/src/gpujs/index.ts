/**
 * `@largo/gpu/gpujs`: the gpu.js backend (WebGL2 in browsers). A separate
 * entry point, so that users of `@largo/gpu` never load gpu.js.
 */
import { engine, registerKernels } from '@largo/core';
import { GPU } from 'gpu.js';
import { GpuJsBackend } from './backend.js';
import { gpuJsKernels } from './kernels.js';

registerKernels('gpujs', gpuJsKernels);

export { GpuJsBackend } from './backend.js';
export { GPUJS_OPS } from './kernels.js';

let backend: GpuJsBackend | null = null;

/**
 * Creates the gpujs backend and registers it with the engine (priority 0:
 * the CPU stays the default until `setBackend('gpujs')`). Returns null, or
 * why it cannot run. `mode` forces gpu.js's mode ('webgl2', 'webasm', ...);
 * by default gpu.js picks (WebGL2 in browsers that have it).
 */
export async function initGpuJs(opts: { mode?: string } = {}): Promise<string | null> {
  if (backend) return null;
  try {
    const gpu = new GPU(opts.mode ? { mode: opts.mode as 'gpu' } : {});
    backend = new GpuJsBackend(gpu);
    engine().addBackendInstance(backend, 0);
    return null;
  } catch (e) {
    return `gpu.js could not start: ${(e as Error).message}`;
  }
}

/** The registered gpujs backend, or null before `initGpuJs`. */
export function gpuJsBackend(): GpuJsBackend | null {
  return backend;
}
