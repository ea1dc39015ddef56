// forEachBackend: one test body, run on every backend that is available
// (cpu always; webgpu when an adapter is found, llvmpipe in CI; the backends
// that come later add a line to BACKENDS). Each case's title names its
// backend; each backend declares its float dtypes, accumulation precision
// (tests pick a tolerance per precision class) and property-run count.
import { engine, memory, setBackend, type DType, type Tensor } from '@largo/core';
import { requirement } from './requirements.js';
import { runRecorded } from './record.js';

export interface BackendProfile {
  readonly name: string;
  /** Float dtypes its kernels take (WebGPU computes in f32 only). */
  readonly floatDtypes: readonly DType[];
  /**
   * Precision of its float32 accumulations: 'f64' (sums in doubles, rounded
   * once, like the CPU) or 'f32' (sums in float32, like WebGPU). Tests pick
   * their tolerance by it (`BackendCase.pick`), one per class, never per run.
   */
  readonly accumulate: 'f64' | 'f32';
  /** fast-check runs per property (a software GPU runs every shader on the CPU). */
  readonly runs: number;
  /** Makes the backend available (null with a reason when it is not). */
  readonly init: () => Promise<string | null>;
}

const CPU_RUNS = Number(process.env.LARGO_FC_RUNS ?? 60);
/**
 * llvmpipe runs every shader on the CPU, but most of a WebGPU test file's time
 * is shader compilation and fixed cases: on the 2-core CI VM the WebGPU suite
 * took 42 s at 12 runs and 58 s at 36.
 */
export const GPU_RUNS = Number(process.env.LARGO_GPU_FC_RUNS ?? 36);

/** Every backend the shared tests know, in the order they run. */
export const BACKENDS: readonly BackendProfile[] = [
  { name: 'cpu', floatDtypes: ['float32', 'float64'], accumulate: 'f64', runs: CPU_RUNS, init: async () => null },
  {
    name: 'webgpu',
    floatDtypes: ['float32'],
    accumulate: 'f32',
    runs: GPU_RUNS,
    init: async () => {
      const gpu = await import('@largo/gpu');
      const b = await gpu.initWebGpu({ quiet: true });
      if (b) return null;
      // Where a GPU (or llvmpipe) is known to be there (LARGO_REQUIRE_WEBGPU=1), a missing adapter is a failure, not a skip.
      return requirement('WEBGPU', `no WebGPU adapter: ${gpu.webGpuUnavailableReason()}`) || null;
    },
  },
];

export interface BackendCase extends BackendProfile {
  /** The value for this backend's accumulation class (a tolerance, say). */
  pick<V>(byAccumulation: { f64: V; f32: V }): V;
  /**
   * A copy of a CPU tensor on this backend (the tensor itself on the CPU):
   * inputs are made and read on the CPU (`onCpu`), the op runs here.
   */
  put<T extends Tensor | null | undefined>(x: T): T;
}

/** Runs `fn` with the CPU backend active (making inputs and oracle copies synchronously), then restores the active one. */
export function onCpu<T>(fn: () => T): T {
  const prev = engine().backend.name;
  setBackend('cpu');
  try {
    return fn();
  } finally {
    setBackend(prev);
  }
}

interface TapLike {
  test(name: string, opts: { skip: string | false }, fn: (t: any) => Promise<void>): unknown;
  same(a: unknown, b: unknown, m: string): unknown;
  passing(): boolean;
}

const unavailable = new Map<string, Promise<string | null>>();
/** Null when the backend is available in this process, else why not (tried once per process). */
export function availability(p: BackendProfile): Promise<string | null> {
  let r = unavailable.get(p.name);
  if (!r) {
    r = p.init();
    unavailable.set(p.name, r);
  }
  return r;
}

/**
 * Options. (No way to restrict a case to some backends: a test written once
 * runs on every backend, and a backend-specific check goes inside the body,
 * under `if (b.name === …)`.)
 */
export interface ForEachBackendOptions {
  /** Check that the body leaves no tensor or backend buffer behind (default true). */
  leakCheck?: boolean;
}

/**
 * Runs `body` once per backend as a subtest titled `<title> [<backend>]`,
 * with that backend active; skipped, with the reason, where it is unavailable.
 * With an `oracleCase('<op>')` / `gradCase('<op>')` title, each backend's
 * subtest that passes with at least one passing oracle comparison is written
 * to the run record (record.ts), which the coverage guard reads.
 */
export async function forEachBackend<T extends TapLike>(
  t: T,
  title: string,
  body: (t: T, b: BackendCase) => Promise<void> | void,
  opts: ForEachBackendOptions = {},
): Promise<void> {
  for (const p of BACKENDS) {
    const reason = await availability(p);
    const b: BackendCase = {
      ...p,
      pick: (byAcc) => byAcc[p.accumulate],
      put: <T extends Tensor | null | undefined>(x: T): T => {
        if (!x || x.backend.name === p.name) return x;
        return engine().fromValues(x.dataSync(), x.shape, x.dtype, engine().findBackend(p.name)) as T;
      },
    };
    await t.test(`${title} [${p.name}]`, { skip: reason ?? false }, async (st: T) => {
      const prev = engine().backend.name;
      setBackend(p.name);
      try {
        await runRecorded(st, title, p.name, async () => {
          const before = memory();
          await body(st, b);
          if (opts.leakCheck !== false) st.same(memory(), before, `no tensor or buffer leaked on ${p.name}`);
        });
      } finally {
        setBackend(prev);
      }
    });
  }
}
