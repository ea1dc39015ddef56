import type { Backend, DataId, KernelFn, KernelTable, TensorInfo } from '../backend.js';
import type { OpName } from '../ops/schema.js';
import { newArray, type DType, type TypedArray } from '../dtype.js';

export interface CpuData extends DataId {
  values: TypedArray;
}

/**
 * Host-memory backend. Freed arrays go back to a pool keyed by dtype and
 * length: training loops allocate the same shapes every step, and fresh large
 * allocations are slow, so reuse is the common case. Pooled arrays are not
 * zeroed: every kernel writes all of its output (or asks for `zeros`).
 */
export class CpuBackend implements Backend {
  readonly name = 'cpu';
  private pool = new Map<string, TypedArray[]>();
  private pooledBytes = 0;
  private live = 0;
  /** Upper bound on memory parked in the pool. */
  maxPooledBytes = 1 << 30;

  alloc(dtype: DType, size: number): CpuData {
    this.live++;
    const list = this.pool.get(dtype + ':' + size);
    const values = list?.pop();
    if (values) {
      this.pooledBytes -= values.byteLength;
      return { backendName: 'cpu', values };
    }
    return { backendName: 'cpu', values: newArray(dtype, size) };
  }

  write(id: DataId, values: TypedArray): void {
    const v = (id as CpuData).values;
    if (v.length !== values.length) throw new Error(`cpu write: length ${values.length} into storage of ${v.length}`);
    v.set(values);
  }

  readSync(id: DataId): TypedArray {
    return (id as CpuData).values;
  }
  async read(id: DataId): Promise<TypedArray> {
    return (id as CpuData).values;
  }

  free(id: DataId): void {
    this.live--;
    const v = (id as CpuData).values;
    if (this.pooledBytes + v.byteLength > this.maxPooledBytes) return;
    const k = dtypeKey(v) + ':' + v.length;
    let list = this.pool.get(k);
    if (!list) {
      list = [];
      this.pool.set(k, list);
    }
    list.push(v);
    this.pooledBytes += v.byteLength;
    (id as CpuData).values = EMPTY;
  }

  copy(src: DataId, dst: DataId): void {
    (dst as CpuData).values.set((src as CpuData).values);
  }

  liveBuffers(): number {
    return this.live;
  }

  dispose(): void {
    this.pool.clear();
    this.pooledBytes = 0;
  }

  // Helpers for kernels.
  out(shape: readonly number[], dtype: DType): { info: TensorInfo; values: TypedArray } {
    let n = 1;
    for (const d of shape) n *= d;
    const id = this.alloc(dtype, n);
    return { info: { dataId: id, shape: [...shape], dtype }, values: id.values };
  }

  zeros(shape: readonly number[], dtype: DType): { info: TensorInfo; values: TypedArray } {
    const o = this.out(shape, dtype);
    o.values.fill(0);
    return o;
  }
}

const EMPTY = new Float32Array(0);

function dtypeKey(v: TypedArray): DType {
  if (v instanceof Float32Array) return 'float32';
  if (v instanceof Float64Array) return 'float64';
  if (v instanceof Int32Array) return 'int32';
  return 'uint8';
}

/** The values behind a kernel input (CPU only). */
export function vals(t: TensorInfo): TypedArray {
  return (t.dataId as CpuData).values;
}
export function fvals(t: TensorInfo): Float32Array | Float64Array {
  return (t.dataId as CpuData).values as Float32Array | Float64Array;
}

/** A kernel of `Op` on the CPU backend (the backend argument is typed: no casts). */
export type CpuKernel<Op extends OpName> = KernelFn<Op, CpuBackend>;
export type CpuKernelTable = KernelTable<CpuBackend>;
