import type { DType, TypedArray } from './dtype.js';
import { OpError } from './errors.js';

/** Opaque handle to backend-owned storage (a typed array on CPU, a GPUBuffer on WebGPU). */
export interface DataId { readonly backendName: string }

/** What a kernel sees of a tensor: storage plus metadata, no autograd or lifetime state. */
export interface TensorInfo {
  readonly dataId: DataId;
  readonly shape: readonly number[];
  readonly dtype: DType;
}

/**
 * The whole contract between the engine and a device. Kernels are registered
 * separately by (op, backend name), so one kernel can be replaced without
 * touching callers.
 */
export interface Backend {
  readonly name: string;
  /** Allocates storage for `size` elements; contents are unspecified. */
  alloc(dtype: DType, size: number): DataId;
  /** Copies `values` into existing storage of the same length. */
  write(id: DataId, values: TypedArray): void;
  /** Synchronous read; backends that cannot read synchronously throw. The result may alias storage. */
  readSync(id: DataId): TypedArray;
  read(id: DataId): Promise<TypedArray>;
  free(id: DataId): void;
  /** Copies `src` into `dst` (same dtype and length); used for in-place parameter updates. */
  copy(src: DataId, dst: DataId): void;
  /** Number of storages allocated and not yet freed. */
  liveBuffers(): number;
  dispose(): void;
}

export type Kernel<A = any> = (inputs: readonly TensorInfo[], attrs: A, backend: Backend) => TensorInfo | TensorInfo[];

const kernels = new Map<string, Kernel>();
const key = (op: string, backend: string) => `${backend}/${op}`;

export function registerKernel<A>(op: string, backendName: string, fn: Kernel<A>): void {
  kernels.set(key(op, backendName), fn as Kernel);
}

export function getKernel(op: string, backendName: string): Kernel {
  const k = kernels.get(key(op, backendName));
  if (!k) throw new OpError(op, `no kernel registered for backend '${backendName}'`);
  return k;
}

export function hasKernel(op: string, backendName: string): boolean {
  return kernels.has(key(op, backendName));
}

/** All ops with a kernel on the given backend (used by the coverage meta-test). */
export function kernelsFor(backendName: string): string[] {
  const out: string[] = [];
  for (const k of kernels.keys()) if (k.startsWith(backendName + '/')) out.push(k.slice(backendName.length + 1));
  return out.sort();
}
