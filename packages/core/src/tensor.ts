import type { DataId, Backend } from './backend.js';
import type { DType, TypedArray } from './dtype.js';
import { OpError, fmtShape } from './errors.js';
import { sizeOf } from './shape.js';

/**
 * Who counts tensors and frees storage (the engine). Tensors reach it through
 * their storage, so that this module does not import the engine (no cycle).
 */
export interface TensorOwner {
  onDispose(t: Tensor): void;
}

/** Reference-counted storage shared by tensors that view the same data (e.g. reshape). */
export class Storage {
  refs = 1;
  // backend and dataId change only in Engine.moveToBackend (a model built on the CPU moved to a device).
  constructor(
    public backend: Backend,
    public dataId: DataId,
    readonly dtype: DType,
    readonly size: number,
    readonly owner: TensorOwner,
  ) {}
}

/** Autograd's per-tensor record; core only knows how to release it. */
export interface GradNodeLike {
  release(): void;
}

let nextId = 0;

export class Tensor {
  readonly id = nextId++;
  readonly size: number;
  /** Set by autograd. Leaves with requiresGrad accumulate into `grad`. */
  requiresGrad = false;
  grad: Tensor | null = null;
  gradNode: GradNodeLike | null = null;
  /** Kept tensors survive the end of the tidy scope they were created in. */
  kept = false;
  name?: string;
  private disposedFlag = false;

  constructor(
    readonly shape: readonly number[],
    readonly dtype: DType,
    readonly storage: Storage,
  ) {
    this.size = sizeOf(shape);
  }

  get rank(): number {
    return this.shape.length;
  }
  get isDisposed(): boolean {
    return this.disposedFlag;
  }
  get dataId(): DataId {
    return this.storage.dataId;
  }
  get backend(): Backend {
    return this.storage.backend;
  }

  assertAlive(op: string): void {
    if (this.disposedFlag)
      throw new OpError(op, `use of a disposed tensor (id ${this.id}, shape ${fmtShape(this.shape)})`);
  }

  /** A copy of the contents (safe to keep after dispose). */
  dataSync(): TypedArray {
    this.assertAlive('dataSync');
    return this.backend.readSync(this.dataId).slice();
  }

  async data(): Promise<TypedArray> {
    this.assertAlive('data');
    return (await this.backend.read(this.dataId)).slice();
  }

  /** The single value of a one-element tensor. */
  item(): number {
    this.assertAlive('item');
    if (this.size !== 1)
      throw new OpError('item', `tensor of shape ${fmtShape(this.shape)} has ${this.size} elements, not 1`);
    return this.backend.readSync(this.dataId)[0];
  }

  /** Nested JS arrays, for printing and tests. */
  toArray(): unknown {
    const d = this.dataSync();
    const build = (dim: number, off: number): unknown => {
      if (dim === this.shape.length) return d[off];
      const stride = sizeOf(this.shape.slice(dim + 1));
      return Array.from({ length: this.shape[dim] }, (_, i) => build(dim + 1, off + i * stride));
    };
    return build(0, 0);
  }

  dispose(): void {
    if (this.disposedFlag) return;
    this.disposedFlag = true;
    this.storage.owner.onDispose(this);
  }

  toString(): string {
    return `Tensor(${fmtShape(this.shape)}, ${this.dtype}${this.disposedFlag ? ', disposed' : ''})`;
  }
}
