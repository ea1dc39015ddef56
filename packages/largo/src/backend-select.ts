/**
 * Backend selection for the CLI (`--backend cpu|webgpu|auto`).
 *
 * `@largo/gpu` (and through it the 132 MB `webgpu` Dawn binaries) is an
 * optional peer of `largo`: it is imported here, lazily, and nowhere else on
 * largo's paths, so a CPU-only install never loads or needs it. `auto` takes
 * a WebGPU adapter only when it is a real GPU: a software adapter (llvmpipe,
 * SwiftShader, WARP) is slower than the CPU backend and is used only when
 * `webgpu` is asked for by name. Default: `LARGO_BACKEND`, else cpu.
 */
import { engine, setBackend, type Backend, type Tensor } from '@largo/core';

export type BackendChoice = 'cpu' | 'webgpu' | 'auto';
export const BACKEND_CHOICES: readonly BackendChoice[] = ['cpu', 'webgpu', 'auto'];

export interface SelectedBackend {
  name: 'cpu' | 'webgpu';
  adapter: string;
}

/** The package to install for the WebGPU backend, named in every error about it. */
export const GPU_PACKAGE = '@largo/gpu';

/** A bad --backend request the user can fix (the CLI maps it to exit code 2). */
export class BackendError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BackendError';
  }
}

/** The part of `@largo/gpu` this module uses (typed here so largo's build does not need the package). */
interface GpuModule {
  initWebGpu(opts?: { quiet?: boolean }): Promise<{
    info: { path: string; vendor: string; architecture: string; device: string; description: string };
    adapter?: { info?: { isFallbackAdapter?: boolean } } | null;
  } | null>;
  webGpuUnavailableReason(): string;
}

/** Imports `@largo/gpu`, or returns null when it is not installed; other load failures are thrown. */
export async function loadGpuPackage(): Promise<GpuModule | null> {
  // A variable specifier: TypeScript and bundlers must not resolve the optional package.
  const spec: string = GPU_PACKAGE;
  try {
    return (await import(/* @vite-ignore */ spec)) as GpuModule;
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ERR_MODULE_NOT_FOUND' && err.message.includes(`'${GPU_PACKAGE}'`)) return null;
    throw e;
  }
}

/** Software rasterizers: a WebGPU backend on them is slower than the CPU backend. */
const SOFTWARE_ADAPTER = /llvmpipe|lavapipe|softpipe|swiftshader|software|basic render/i;

export function isSoftwareAdapter(info: {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
}): boolean {
  return SOFTWARE_ADAPTER.test([info.vendor, info.architecture, info.device, info.description].join(' '));
}

function adapterName(info: { path: string; vendor: string; device: string; description: string }): string {
  const what = [info.vendor, info.device, info.description].filter(Boolean).join(', ') || 'unknown adapter';
  return `${what} (${info.path})`;
}

/**
 * Makes the requested backend the engine's current one and says which it is.
 * - `cpu`: the CPU backend; never touches `@largo/gpu`.
 * - `webgpu`: loads `@largo/gpu` and its adapter (a software one such as llvmpipe
 *   is accepted: that is how CI runs the kernels); a clear error names the
 *   package to install when it is missing, or says why no adapter was found.
 * - `auto`: WebGPU on a hardware adapter when `@largo/gpu` is installed, else the CPU.
 */
export async function selectBackend(
  choice: BackendChoice,
  opts: { log?: (s: string) => void } = {},
): Promise<SelectedBackend> {
  const log = opts.log ?? (() => undefined);
  if (!BACKEND_CHOICES.includes(choice))
    throw new BackendError(`--backend must be one of ${BACKEND_CHOICES.join(', ')}, got '${String(choice)}'`);
  const cpu = (why: string) => {
    setBackend('cpu');
    if (why) log(`backend: cpu (${why})`);
    return { name: 'cpu' as const, adapter: 'cpu' };
  };
  if (choice === 'cpu') return cpu('');
  const gpu = await loadGpuPackage();
  if (!gpu) {
    if (choice === 'auto') return cpu(`${GPU_PACKAGE} is not installed`);
    throw new BackendError(
      `--backend webgpu needs the package ${GPU_PACKAGE}, which is not installed: npm install ${GPU_PACKAGE}`,
    );
  }
  const backend = await gpu.initWebGpu({ quiet: true });
  if (!backend) {
    const why = gpu.webGpuUnavailableReason();
    if (choice === 'auto') return cpu(`no WebGPU adapter: ${why}`);
    throw new BackendError(`--backend webgpu: ${why}`);
  }
  const adapter = adapterName(backend.info);
  if (choice === 'auto' && (isSoftwareAdapter(backend.info) || backend.adapter?.info?.isFallbackAdapter === true))
    return cpu(`the only WebGPU adapter is software: ${adapter}; pass --backend webgpu to use it anyway`);
  setBackend('webgpu');
  log(`backend: webgpu on ${adapter}`);
  return { name: 'webgpu', adapter };
}

/** Every backend the engine can run after trying to add WebGPU (for `largo audit --backend all`). */
export async function allBackends(): Promise<string[]> {
  const gpu = await loadGpuPackage();
  if (gpu) await gpu.initWebGpu({ quiet: true });
  return engine().backendNames();
}

/** The value of `--backend`, or `LARGO_BACKEND`, checked; `flag` names the source in the error. */
export function parseBackendChoice(value: unknown, flag = '--backend'): BackendChoice {
  const v = value === undefined || value === '' ? process.env['LARGO_BACKEND'] || 'cpu' : String(value);
  const from = value === undefined || value === '' ? (process.env['LARGO_BACKEND'] ? 'LARGO_BACKEND' : flag) : flag;
  if (!(BACKEND_CHOICES as readonly string[]).includes(v))
    throw new BackendError(`${from} must be one of ${BACKEND_CHOICES.join(', ')}, got '${v}'`);
  return v as BackendChoice;
}

/** Runs `fn` with the CPU as the active backend (model construction and host-side init), then restores the previous one. */
export function onCpu<T>(fn: () => T): T {
  const e = engine();
  const prev = e.backend;
  if (prev.name === 'cpu') return fn();
  e.setBackend('cpu');
  try {
    return fn();
  } finally {
    e.setBackend(prev.name);
  }
}

/** Moves tensors built on the CPU to `backend` (default: the active one); views and module references follow. */
export function placeOn(
  tensors: readonly Tensor[] | readonly (readonly [string, Tensor])[],
  backend: Backend = engine().backend,
): void {
  const e = engine();
  for (const q of tensors as readonly (Tensor | readonly [string, Tensor])[]) {
    const t = (Array.isArray(q) ? q[1] : q) as Tensor;
    e.moveToBackend(t, backend);
  }
}
