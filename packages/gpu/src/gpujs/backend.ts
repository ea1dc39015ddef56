/**
 * The `gpujs` backend: every kernel is a gpu.js kernel (GLSL on WebGL2 in
 * browsers; in Node gpu.js has no WebGL without `headless-gl`, and the
 * version used here runs its WebAssembly mode instead). Storage stays in
 * host typed arrays: gpu.js uploads kernel arguments as textures and reads
 * each result back, so reads are synchronous and tensors move between this
 * backend and the CPU without copies. It is the portable fallback for
 * browsers without WebGPU, not the fast path.
 */
import type { Backend, DataId, DType, TypedArray } from '@largo/core';
import { GPU, type IKernelRunShortcut } from 'gpu.js';

export interface GpuJsData extends DataId {
  values: TypedArray;
}

function newArray(dtype: DType, n: number): TypedArray {
  switch (dtype) {
    case 'float32':
      return new Float32Array(n);
    case 'float64':
      return new Float64Array(n);
    case 'int32':
      return new Int32Array(n);
    case 'uint8':
      return new Uint8Array(n);
    default:
      throw new Error(`gpujs: unsupported dtype ${String(dtype)}`);
  }
}

export class GpuJsBackend implements Backend {
  readonly name = 'gpujs';
  readonly gpu: GPU;
  private kernels = new Map<string, IKernelRunShortcut>();
  private live = 0;

  constructor(gpu: GPU) {
    this.gpu = gpu;
  }

  /** gpu.js's mode: 'webgl2' in a browser with WebGL2, 'webasm' in Node. */
  get mode(): string {
    // gpu.js reports the requested mode ('gpu'); the context it created says what runs
    const g = this.gpu as unknown as { mode: string; context?: unknown };
    const G = globalThis as { WebGL2RenderingContext?: new () => unknown; WebGLRenderingContext?: new () => unknown };
    if (G.WebGL2RenderingContext && g.context instanceof G.WebGL2RenderingContext) return 'webgl2';
    if (G.WebGLRenderingContext && g.context instanceof G.WebGLRenderingContext) return 'webgl';
    return String(g.mode);
  }

  alloc(dtype: DType, size: number): GpuJsData {
    this.live++;
    return { backendName: 'gpujs', values: newArray(dtype, size) };
  }

  write(id: DataId, values: TypedArray): void {
    const v = (id as GpuJsData).values;
    if (v.length !== values.length) throw new Error(`gpujs write: length ${values.length} into storage of ${v.length}`);
    v.set(values);
  }

  readSync(id: DataId): TypedArray {
    return (id as GpuJsData).values;
  }
  async read(id: DataId): Promise<TypedArray> {
    return (id as GpuJsData).values;
  }
  free(id: DataId): void {
    this.live--;
    (id as GpuJsData).values = new Float32Array(0);
  }
  copy(src: DataId, dst: DataId): void {
    (dst as GpuJsData).values.set((src as GpuJsData).values);
  }
  liveBuffers(): number {
    return this.live;
  }

  dispose(): void {
    for (const k of this.kernels.values()) k.destroy?.();
    this.kernels.clear();
    this.gpu.destroy();
  }

  /**
   * Runs the kernel `name` (compiled once from `source`, a function written
   * as a string so that bundlers never rewrite what gpu.js parses) over `n`
   * output elements; returns float32 values.
   */
  run(name: string, source: string, n: number, args: unknown[]): Float32Array {
    let k = this.kernels.get(name);
    if (!k) {
      // loopMaxIterations bounds the loops with a runtime length (GLSL needs a constant bound)
      const settings = {
        dynamicOutput: true,
        dynamicArguments: true,
        precision: 'single',
        tactic: 'precision',
        loopMaxIterations: 1 << 20,
        output: [1],
      };
      k = this.gpu.createKernel(source, settings as Parameters<GPU['createKernel']>[1]);
      this.kernels.set(name, k);
    }
    if (n === 0) return new Float32Array(0);
    k.setOutput([n]);
    const out = k(...(args as never[])) as unknown;
    if (out instanceof Float32Array) return out.length === n ? out : out.slice(0, n);
    return Float32Array.from(out as ArrayLike<number>);
  }
}
