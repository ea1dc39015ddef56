/**
 * Which backend a command runs on: `--backend cpu|webgpu|auto` (default
 * `LARGO_BACKEND`, else cpu). `@largo/gpu` is imported only when the GPU is
 * asked for, so the CPU path never loads Dawn. `auto` takes a WebGPU adapter
 * only when it is a real GPU: a software adapter (Mesa's llvmpipe / lavapipe,
 * SwiftShader, WARP) is slower than the CPU backend and is used only when
 * `webgpu` is asked for by name.
 */
import { engine, setBackend, type Backend, type Tensor } from '@largo/core';

export type BackendChoice = 'cpu' | 'webgpu' | 'auto';
export const BACKEND_CHOICES: readonly BackendChoice[] = ['cpu', 'webgpu', 'auto'];

export interface SelectedBackend { name: 'cpu' | 'webgpu'; adapter: string }

/** Bad `--backend` / `LARGO_BACKEND` value, or `webgpu` asked for and unavailable (exit code 2). */
export class BackendError extends Error {
  constructor(message: string) { super(message); this.name = 'BackendError'; }
}

/** What this module needs of `@largo/gpu` (typed here so the import can stay dynamic). */
interface GpuModule {
  initWebGpu(opts?: { quiet?: boolean }): Promise<{ info: { path: string; vendor: string; architecture: string; device: string; description: string }; adapter: { info?: { isFallbackAdapter?: boolean } } | null } | null>;
  webGpuUnavailableReason(): string;
}

const SOFTWARE = /llvmpipe|lavapipe|softpipe|swiftshader|\bwarp\b|microsoft basic render/i;

/** A readable adapter name, e.g. "nvidia ampere (Vulkan: NVIDIA A100)" or "llvmpipe (dawn-opengles)". */
function adapterName(info: { path: string; vendor: string; architecture: string; device: string; description: string }): string {
  const what = [info.vendor, info.architecture, info.device].filter(Boolean).join(' ');
  return `${what || 'unknown adapter'}${info.description ? ` — ${info.description}` : ''} (${info.path})`;
}

/** The value of `--backend`, or `LARGO_BACKEND`, checked; `flag` names the source in the error. */
export function parseBackendChoice(value: unknown, flag = '--backend'): BackendChoice {
  const v = value === undefined || value === '' ? (process.env['LARGO_BACKEND'] || 'cpu') : String(value);
  const from = value === undefined || value === '' ? (process.env['LARGO_BACKEND'] ? 'LARGO_BACKEND' : flag) : flag;
  if (!(BACKEND_CHOICES as readonly string[]).includes(v)) throw new BackendError(`${from} must be one of ${BACKEND_CHOICES.join(', ')}, got '${v}'`);
  return v as BackendChoice;
}

async function loadGpu(): Promise<GpuModule> {
  const spec = '@largo/gpu';
  try {
    return (await import(spec)) as GpuModule;
  } catch (e) {
    throw new BackendError(`the WebGPU backend needs the package @largo/gpu, which could not be loaded (${(e as Error).message}); install it or use --backend cpu`);
  }
}

/**
 * Creates the chosen backend, makes it the engine's active backend and
 * returns its name and adapter. `webgpu` without an adapter is an error;
 * `auto` falls back to the CPU (and says why through `log`).
 */
export async function selectBackend(choice: BackendChoice, opts: { log?: (s: string) => void } = {}): Promise<SelectedBackend> {
  const log = opts.log ?? (() => undefined);
  if (choice === 'cpu') { setBackend('cpu'); return { name: 'cpu', adapter: 'cpu' }; }
  if (choice !== 'webgpu' && choice !== 'auto') throw new BackendError(`--backend must be one of ${BACKEND_CHOICES.join(', ')}, got '${String(choice)}'`);
  let gpu: GpuModule;
  try {
    gpu = await loadGpu();
  } catch (e) {
    if (choice === 'webgpu') throw e;
    log(`backend auto: cpu (${(e as Error).message})`);
    setBackend('cpu');
    return { name: 'cpu', adapter: 'cpu' };
  }
  const be = await gpu.initWebGpu({ quiet: true });
  if (!be) {
    if (choice === 'webgpu') throw new BackendError(`--backend webgpu: ${gpu.webGpuUnavailableReason()}`);
    log(`backend auto: cpu (no WebGPU adapter: ${gpu.webGpuUnavailableReason()})`);
    setBackend('cpu');
    return { name: 'cpu', adapter: 'cpu' };
  }
  const name = adapterName(be.info);
  const software = be.adapter?.info?.isFallbackAdapter === true || SOFTWARE.test(`${be.info.vendor} ${be.info.architecture} ${be.info.device} ${be.info.description}`);
  if (choice === 'auto' && software) {
    log(`backend auto: cpu (the only WebGPU adapter is a software rasterizer: ${name}; pass --backend webgpu to use it anyway)`);
    setBackend('cpu');
    return { name: 'cpu', adapter: 'cpu' };
  }
  setBackend('webgpu');
  return { name: 'webgpu', adapter: name };
}

/** Runs `fn` with the CPU as the active backend (model construction and host-side init), then restores the previous one. */
export function onCpu<T>(fn: () => T): T {
  const e = engine();
  const prev = e.backend;
  if (prev.name === 'cpu') return fn();
  e.setBackend('cpu');
  try { return fn(); } finally { e.setBackend(prev.name); }
}

/** Moves tensors built on the CPU to `backend` (default: the active one); views and module references follow. */
export function placeOn(tensors: readonly Tensor[] | readonly (readonly [string, Tensor])[], backend: Backend = engine().backend): void {
  const e = engine();
  for (const q of tensors as readonly (Tensor | readonly [string, Tensor])[]) {
    const t = (Array.isArray(q) ? q[1] : q) as Tensor;
    e.moveToBackend(t, backend);
  }
}
