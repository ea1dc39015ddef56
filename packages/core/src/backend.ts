import type { DType, TypedArray } from './dtype.js';
import { OpError } from './errors.js';
import { isOpName, type AttrsOf, type KernelInputs, type OpName } from './ops/schema.js';

/** Opaque handle to backend-owned storage (a typed array on CPU, a GPUBuffer on WebGPU). */
export interface DataId {
  readonly backendName: string;
}

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

/**
 * A kernel of `Op` on a backend of type `B`: inputs as the schema names them
 * (required ones typed by position), the schema's attributes, and the backend
 * itself, already of its own type (no casts in kernels).
 */
export type KernelFn<Op extends OpName, B extends Backend = Backend> = (
  inputs: KernelInputs<Op, TensorInfo>,
  attrs: AttrsOf<Op>,
  backend: B,
) => TensorInfo | TensorInfo[];

/**
 * A backend's complete kernel table. A backend declares its table with
 * `satisfies KernelTable<ItsBackend>`: a missing op, or a kernel whose
 * attributes differ from the schema, is then a compile error naming the op.
 * (A backend that implements a subset on purpose uses `Partial<KernelTable<B>>`.)
 */
export type KernelTable<B extends Backend = Backend> = { [Op in OpName]: KernelFn<Op, B> };

/** The registry's erased view of a kernel (the one place the types are erased). */
type AnyKernel = (inputs: readonly TensorInfo[], attrs: unknown, backend: Backend) => TensorInfo | TensorInfo[];

const kernels = new Map<string, AnyKernel>();
const key = (op: string, backend: string) => `${backend}/${op}`;

function checkOp(op: string, backendName: string, what: string): void {
  if (!isOpName(op))
    throw new Error(
      `${what}: '${op}' (backend '${backendName}') is not an op of the schema (packages/core/src/ops/schema.ts)`,
    );
}

/**
 * Registers the kernel of `op` on `backendName`. Registering the same
 * (op, backend) twice throws: a deliberate replacement goes through `overrideKernel`.
 */
export function registerKernel<Op extends OpName, B extends Backend = Backend>(
  op: Op,
  backendName: string,
  fn: KernelFn<Op, B>,
): void {
  checkOp(op, backendName, 'registerKernel');
  const k = key(op, backendName);
  if (kernels.has(k)) {
    throw new Error(
      `registerKernel: '${op}' already has a kernel on backend '${backendName}' (use overrideKernel to replace it deliberately)`,
    );
  }
  kernels.set(k, fn as unknown as AnyKernel);
}

/** Registers every kernel of a backend's table (see `KernelTable`). */
export function registerKernels<B extends Backend>(backendName: string, table: Partial<KernelTable<B>>): void {
  for (const [op, fn] of Object.entries(table) as [OpName, KernelFn<OpName, B>][]) registerKernel(op, backendName, fn);
}

/**
 * Replaces the registered kernel of `op` on `backendName` (for instance a
 * faster WebAssembly kernel over the JavaScript one) and returns the previous
 * kernel, so that the caller can restore it or fall back to it. Throws when
 * there is nothing to replace: overriding is never a silent first registration.
 */
export function overrideKernel<Op extends OpName, B extends Backend = Backend>(
  op: Op,
  backendName: string,
  fn: KernelFn<Op, B>,
): KernelFn<Op, B> {
  checkOp(op, backendName, 'overrideKernel');
  const k = key(op, backendName);
  const prev = kernels.get(k);
  if (!prev)
    throw new Error(
      `overrideKernel: '${op}' has no kernel on backend '${backendName}' to replace (use registerKernel)`,
    );
  kernels.set(k, fn as unknown as AnyKernel);
  return prev as unknown as KernelFn<Op, B>;
}

export function getKernel(op: string, backendName: string): AnyKernel {
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
