import { buildKernels } from './kernels.js';

/**
 * Start-up of the WebAssembly kernels and the scratch arena they compute in.
 *
 * Storage decision (see docs/cpu-kernels.md): tensors stay in ordinary
 * typed arrays owned by CpuBackend; a compute-bound kernel packs its inputs
 * into this one linear memory (the packing it needs anyway: GEMM panels, the
 * padded and phase-split conv input), runs, and copies its output back. The
 * arena is a bump allocator reset by every kernel call, so it grows to the
 * largest call's need during the first step and never allocates again.
 */

type I = number;
export interface KernelExports {
  gemm(A: I, B: I, C: I, mPanels: I, nPanels: I, K: I, ldc: I, accumulate: I): void;
  gemmBlocks(A: I, B: I, C: I, mPanels: I, nPanels: I, K: I, jp0: I, jp1: I): void;
  padRows(src: I, dst: I, u0: I, u1: I, rowBytes: I, Dp: I, Hp: I, pd: I, ph: I, pw: I, D: I, H: I, W: I): void;
  packBT(src: I, dst: I, ldb: I, K: I, Npad: I, p0: I, p1: I): void;
  convForward(
    Wp: I,
    X: I,
    K: I,
    Y: I,
    mPanels: I,
    r0: I,
    r1: I,
    oH: I,
    tiles: I,
    rowD: I,
    rowH: I,
    ldY: I,
    yRow: I,
    KB: I,
  ): void;
  convGradInput(
    Wt: I,
    DY: I,
    kTab: I,
    O: I,
    DX: I,
    c0: I,
    c1: I,
    panelsPerC: I,
    rows: I,
    oH: I,
    tiles: I,
    rowD: I,
    rowH: I,
    ldY: I,
    yRow: I,
  ): void;
  convGradWeight(
    DY: I,
    X: I,
    kTab: I,
    DW: I,
    o0: I,
    o1: I,
    kPanels: I,
    Kpad: I,
    rows: I,
    oH: I,
    vecs: I,
    rowD: I,
    rowH: I,
    ldY: I,
    yRow: I,
    accumulate: I,
  ): void;
  copyRows(
    src: I,
    dst: I,
    W: I,
    n1: I,
    n2: I,
    n3: I,
    s1: I,
    s2: I,
    s3: I,
    d1: I,
    d2: I,
    d3: I,
    bias: I,
    hasBias: I,
  ): void;
  inormStats(X: I, S: I, out: I, r0: I, r1: I): void;
  inormApply(X: I, Y: I, S: I, coef: I, r0: I, r1: I): void;
  inormGradStats(DY: I, X: I, S: I, mu0: I, out: I, r0: I, r1: I): void;
  inormGradApply(DY: I, X: I, DX: I, S: I, coef: I, r0: I, r1: I): void;
  bceSum(X: I, T: I, n: I, out: I): void;
  bceGrad(X: I, T: I, DX: I, DT: I, nv: I, G: I): void;
  copyStrided(
    src: I,
    dst: I,
    n: I,
    n1: I,
    n2: I,
    n3: I,
    s1: I,
    s2: I,
    s3: I,
    d1: I,
    d2: I,
    d3: I,
    srcStep: I,
    dstStep: I,
    bias: I,
    hasBias: I,
  ): void;
  ewAdd(A: I, B: I, O: I, nv: I, aStep: I, bStep: I): void;
  ewSub: KernelExports['ewAdd'];
  ewMul: KernelExports['ewAdd'];
  ewDiv: KernelExports['ewAdd'];
  leakyRelu(X: I, O: I, nv: I, alpha: I): void;
  cpGrad(H: I, K: I, B: I, W: I, DB: I, SW: I, SK: I, I: I, S: I, Rp: I): void;
  leakyReluGrad(X: I, DY: I, O: I, nv: I, alpha: I): void;
  khatriRao(W: I, B: I, K: I, KR: I, I: I, S: I, Rp: I): void;
}

const PAGE = 65536;
/** 2 GiB: the most a 32-bit memory can address through our signed offsets. */
const MAX_PAGES = 32768;

export class Arena {
  private top = 0;
  constructor(readonly memory: WebAssembly.Memory) {}
  reset(): void {
    this.top = 0;
  }
  /** A 64-byte-aligned block of `bytes`; contents unspecified. */
  alloc(bytes: number): number {
    const p = this.top;
    this.top = (p + bytes + 63) & ~63;
    const need = this.top;
    const have = this.memory.buffer.byteLength;
    if (need > have) {
      if (need > MAX_PAGES * PAGE)
        throw new RangeError(`wasm kernels: a single kernel needs ${need} bytes of scratch, more than 2 GiB`);
      this.memory.grow(Math.ceil((need - have) / PAGE));
    }
    return p;
  }
  f32(): Float32Array {
    return new Float32Array(this.memory.buffer);
  }
  i32(): Int32Array {
    return new Int32Array(this.memory.buffer);
  }
}

export interface WasmRuntime {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  shared: boolean;
  k: KernelExports;
  arena: Arena;
}

let runtime: WasmRuntime | null | undefined;

/** The kernels, or null where WebAssembly SIMD is missing (then the JavaScript kernels run). */
export function wasmRuntime(): WasmRuntime | null {
  if (runtime !== undefined) return runtime;
  runtime = null;
  if (typeof WebAssembly !== 'object') return null;
  const shared = typeof SharedArrayBuffer === 'function';
  const initialPages = 16;
  const bytes = buildKernels({ initialPages, maxPages: MAX_PAGES, shared });
  if (!WebAssembly.validate(bytes)) return null;
  try {
    const module = new WebAssembly.Module(bytes);
    const memory = new WebAssembly.Memory({
      initial: initialPages,
      maximum: MAX_PAGES,
      shared,
    } as WebAssembly.MemoryDescriptor);
    const inst = new WebAssembly.Instance(module, { env: { memory } });
    runtime = { module, memory, shared, k: inst.exports as unknown as KernelExports, arena: new Arena(memory) };
  } catch {
    runtime = null;
  }
  return runtime;
}

export type KernelMode = 'auto' | 'js' | 'wasm';

function envMode(): KernelMode {
  const v = typeof process !== 'undefined' ? process.env?.LARGO_CPU_KERNELS : undefined;
  if (v === undefined || v === '' || v === 'auto') return 'auto';
  if (v === 'js' || v === 'wasm') return v;
  throw new Error(`LARGO_CPU_KERNELS must be 'js', 'wasm' or 'auto', got '${v}'`);
}

let mode: KernelMode = envMode();

/**
 * Which CPU kernels run: 'js' (the portable JavaScript kernels), 'wasm' (the
 * WebAssembly SIMD kernels for every float32 call they cover, however small)
 * or 'auto' (wasm for calls large enough to gain from it). Set by
 * LARGO_CPU_KERNELS at start-up.
 */
export function setCpuKernels(m: KernelMode): void {
  if (m !== 'auto' && m !== 'js' && m !== 'wasm')
    throw new Error(`setCpuKernels: mode must be 'js', 'wasm' or 'auto', got '${String(m)}'`);
  if (m === 'wasm' && !wasmRuntime()) throw new Error("setCpuKernels('wasm'): this runtime has no WebAssembly SIMD");
  mode = m;
}
export function cpuKernelMode(): KernelMode {
  return mode;
}

/**
 * The runtime if a call of `work` multiply-adds should run on it: always in
 * 'wasm' mode, above a small threshold in 'auto', never in 'js'.
 */
export function useWasm(work: number, autoThreshold = 4096): WasmRuntime | null {
  if (mode === 'js') return null;
  const rt = wasmRuntime();
  if (mode === 'wasm') {
    if (!rt) throw new Error('LARGO_CPU_KERNELS=wasm: this runtime has no WebAssembly SIMD');
    return rt;
  }
  return rt && work >= autoThreshold ? rt : null;
}
