/**
 * Backend choice in the page: WebGPU first, gpu.js (WebGL2) when WebGPU is
 * missing, the CPU kernels last. Each is initialised on first use; the
 * reason a backend is unavailable is kept for the page to show.
 */
import { engine } from '@largo/core';
import { initWebGpu, webGpuUnavailableReason } from '@largo/gpu';

export type BackendName = 'webgpu' | 'gpujs' | 'cpu';
export const BACKENDS: readonly BackendName[] = ['webgpu', 'gpujs', 'cpu'];

const unavailable = new Map<BackendName, string>();
const ready = new Set<BackendName>(['cpu']);

/** Makes `name` the engine's backend; returns null, or why it cannot be used. */
export async function useBackend(name: BackendName): Promise<string | null> {
  if (!ready.has(name)) {
    if (unavailable.has(name)) return unavailable.get(name)!;
    if (name === 'webgpu') {
      const b = await initWebGpu({ quiet: true });
      if (!b) {
        unavailable.set(name, webGpuUnavailableReason());
        return unavailable.get(name)!;
      }
    } else if (name === 'gpujs') {
      // gpu.js (~600 KiB) is a separate chunk, fetched only when this backend is used
      const { initGpuJs } = await import('@largo/gpu/gpujs');
      const why = await initGpuJs();
      if (why) {
        unavailable.set(name, why);
        return why;
      }
    }
    ready.add(name);
  }
  engine().setBackend(name);
  return null;
}

/** The first backend of webgpu → gpujs → cpu that works. */
export async function bestBackend(): Promise<BackendName> {
  for (const b of BACKENDS) if ((await useBackend(b)) === null) return b;
  return 'cpu';
}

export function unavailableReason(name: BackendName): string | undefined {
  return unavailable.get(name);
}
