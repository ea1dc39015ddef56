// forEachBackend: one test body, run on every backend that is available
// (cpu always; webgpu when an adapter is found, llvmpipe in CI; the backends
// that come later add a line to BACKENDS). Each case's title names its
// backend; each backend declares its float dtypes, accumulation precision
// (tests pick a tolerance per precision class) and property-run count.
import { engine, memory, setBackend, type DType } from '@largo/core';

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
const GPU_RUNS = Number(process.env.LARGO_GPU_FC_RUNS ?? 12);

/** Every backend the shared tests know, in the order they run. */
export const BACKENDS: readonly BackendProfile[] = [
  { name: 'cpu', floatDtypes: ['float32', 'float64'], accumulate: 'f64', runs: CPU_RUNS, init: async () => null },
  {
    name: 'webgpu', floatDtypes: ['float32'], accumulate: 'f32', runs: GPU_RUNS,
    init: async () => {
      const gpu = await import('@largo/gpu');
      const b = await gpu.initWebGpu({ quiet: true });
      if (b) return null;
      const reason = `no WebGPU adapter: ${gpu.webGpuUnavailableReason()}`;
      // Where a GPU (or llvmpipe) is known to be there, a missing adapter is a failure, not a skip.
      if (process.env.LARGO_REQUIRE_WEBGPU === '1') throw new Error(`LARGO_REQUIRE_WEBGPU=1 but ${reason}`);
      return reason;
    },
  },
];

export interface BackendCase extends BackendProfile {
  /** The value for this backend's accumulation class (a tolerance, say). */
  pick<V>(byAccumulation: { f64: V; f32: V }): V;
}

interface TapLike {
  test(name: string, opts: { skip: string | false }, fn: (t: any) => Promise<void>): unknown;
  same(a: unknown, b: unknown, m?: string): unknown;
}

const unavailable = new Map<string, Promise<string | null>>();
function availability(p: BackendProfile): Promise<string | null> {
  let r = unavailable.get(p.name);
  if (!r) { r = p.init(); unavailable.set(p.name, r); }
  return r;
}

export interface ForEachBackendOptions {
  /** Restrict to these backends (a backend-specific behaviour); default: all. */
  only?: readonly string[];
  /** Check that the body leaves no tensor or backend buffer behind (default true). */
  leakCheck?: boolean;
}

/**
 * Runs `body` once per backend as a subtest titled `<title> [<backend>]`,
 * with that backend active; skipped, with the reason, where it is unavailable.
 * Use an `oracleCase('<op>')` / `gradCase('<op>')` marker as the title: the
 * coverage guard then counts the op as verified on every backend.
 */
export async function forEachBackend<T extends TapLike>(t: T, title: string, body: (t: T, b: BackendCase) => Promise<void> | void,
  opts: ForEachBackendOptions = {}): Promise<void> {
  for (const p of BACKENDS) {
    if (opts.only && !opts.only.includes(p.name)) continue;
    const reason = await availability(p);
    const b: BackendCase = { ...p, pick: (byAcc) => byAcc[p.accumulate] };
    await t.test(`${title} [${p.name}]`, { skip: reason ?? false }, async (st: T) => {
      const prev = engine().backend.name;
      setBackend(p.name);
      try {
        const before = memory();
        await body(st, b);
        if (opts.leakCheck !== false) st.same(memory(), before, `no tensor or buffer leaked on ${p.name}`);
      } finally {
        setBackend(prev);
      }
    });
  }
}
