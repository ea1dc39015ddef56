import { getKernel, type Backend, type TensorInfo } from './backend.js';
import type { DType, TypedArray } from './dtype.js';
import { OpError } from './errors.js';
import { OPS, type AttrsOf, type OpName, type RecordedAttrs, type ViewOpName } from './ops/schema.js';
import { sizeOf } from './shape.js';
import { Storage, Tensor, type TensorOwner } from './tensor.js';

/**
 * Autograd plugs in here: it sees every op that runs (kernels and storage
 * views) and decides whether to put it on its tape. Core never imports autograd.
 */
export interface Recorder {
  record(op: string, inputs: readonly Tensor[], attrs: unknown, outputs: readonly Tensor[]): void;
}

export interface MemoryInfo {
  /** Tensor handles not yet disposed. */
  tensors: number;
  /** Storages held by tensors (several handles may share one). */
  storages: number;
  /** Buffers the active backend reports as allocated. */
  backendBuffers: number;
}

type BackendFactory = () => Backend;

export class Engine implements TensorOwner {
  private factories = new Map<string, { factory: BackendFactory; priority: number }>();
  private instances = new Map<string, Backend>();
  private active: Backend | null = null;
  private scopes: Tensor[][] = [];
  recorder: Recorder | null = null;
  private liveTensors = 0;
  private liveStorages = 0;

  registerBackend(name: string, factory: BackendFactory, priority = 0): void {
    this.factories.set(name, { factory, priority });
  }

  backendNames(): string[] {
    return [...this.factories.keys()];
  }

  setBackend(name: string): Backend {
    this.active = this.findBackend(name);
    return this.active;
  }

  /** Registers an already-created backend instance (async devices such as WebGPU). */
  addBackendInstance(backend: Backend, priority = 0): void {
    this.instances.set(backend.name, backend);
    if (!this.factories.has(backend.name)) this.factories.set(backend.name, { factory: () => backend, priority });
  }

  findBackend(name: string): Backend {
    let b = this.instances.get(name);
    if (!b) {
      const f = this.factories.get(name);
      if (!f) throw new Error(`unknown backend '${name}' (registered: ${this.backendNames().join(', ') || 'none'})`);
      b = f.factory();
      this.instances.set(name, b);
    }
    return b;
  }

  get backend(): Backend {
    if (!this.active) {
      const best = [...this.factories.entries()].sort((a, b) => b[1].priority - a[1].priority)[0];
      if (!best) throw new Error('no backend registered');
      this.active = this.findBackend(best[0]);
    }
    return this.active;
  }

  /** Wraps freshly allocated backend storage into a tracked tensor. */
  makeTensor(info: TensorInfo, backend: Backend = this.backend): Tensor {
    const storage = new Storage(backend, info.dataId, info.dtype, sizeOf(info.shape), this);
    this.liveStorages++;
    return this.track(new Tensor([...info.shape], info.dtype, storage));
  }

  /** Uploads host values as a new tensor on the active backend (or on `backend`). */
  fromValues(values: TypedArray, shape: readonly number[], dtype: DType, backend: Backend = this.backend): Tensor {
    const b = backend;
    const id = b.alloc(dtype, values.length);
    b.write(id, values);
    return this.makeTensor({ dataId: id, shape, dtype }, b);
  }

  /** A new handle on the same storage, with another shape (reshape). */
  view(t: Tensor, shape: readonly number[]): Tensor {
    t.storage.refs++;
    return this.track(new Tensor([...shape], t.dtype, t.storage));
  }

  /** A handle that no scope tracks; autograd uses it to keep saved tensors alive. */
  share(t: Tensor): Tensor {
    t.storage.refs++;
    const s = new Tensor(t.shape, t.dtype, t.storage);
    s.kept = true;
    this.liveTensors++;
    return s;
  }

  private track(t: Tensor): Tensor {
    this.liveTensors++;
    const scope = this.scopes[this.scopes.length - 1];
    if (scope) scope.push(t);
    return t;
  }

  runKernel<Op extends OpName>(op: Op, inputs: readonly Tensor[], attrs: AttrsOf<Op>): Tensor[] {
    checkArity(op, inputs.length);
    let backend: Backend | null = null;
    for (const t of inputs) {
      t.assertAlive(op);
      if (backend === null) backend = t.backend;
      else if (t.backend !== backend) {
        throw new OpError(op, `inputs live on different backends ('${backend.name}' and '${t.backend.name}')`);
      }
    }
    const b = backend ?? this.backend;
    const kernel = getKernel(op, b.name);
    const infos: TensorInfo[] = inputs.map((t) => ({ dataId: t.dataId, shape: t.shape, dtype: t.dtype }));
    const res = kernel(infos, attrs, b);
    const outs = (Array.isArray(res) ? res : [res]).map((info) => this.makeTensor(info, b));
    if (this.recorder) this.recorder.record(op, inputs, attrs, outs);
    return outs;
  }

  /** Lets autograd see non-kernel ops (reshape) as well. */
  recordView<Op extends ViewOpName>(
    op: Op,
    inputs: readonly Tensor[],
    attrs: RecordedAttrs<Op>,
    outputs: readonly Tensor[],
  ): void {
    if (this.recorder) this.recorder.record(op, inputs, attrs, outputs);
  }

  /**
   * Overwrites `target`'s storage with `src`'s values (optimizer updates).
   * Views sharing the storage see the change; autograd does not record it.
   */
  assign(target: Tensor, src: Tensor): void {
    target.assertAlive('assign');
    src.assertAlive('assign');
    if (target.dtype !== src.dtype || target.size !== src.size || target.backend !== src.backend) {
      throw new OpError(
        'assign',
        `cannot assign ${src.dtype} [${src.shape.join(', ')}] to ${target.dtype} [${target.shape.join(', ')}]`,
      );
    }
    target.backend.copy(src.dataId, target.dataId);
  }

  /**
   * Moves `t`'s storage to `to` in place: every handle sharing the storage
   * (views, the tensors a module holds) follows, so a model built and
   * initialized on the CPU can be placed on a device without rebuilding it.
   * The source must be readable synchronously (the CPU backend).
   */
  moveToBackend(t: Tensor, to: Backend): void {
    t.assertAlive('moveToBackend');
    const s = t.storage;
    if (s.backend === to) return;
    const values = s.backend.readSync(s.dataId);
    const id = to.alloc(s.dtype, s.size);
    try {
      to.write(id, values.length === s.size ? values : values.subarray(0, s.size));
    } catch (e) {
      to.free(id);
      throw e;
    }
    s.backend.free(s.dataId);
    s.backend = to;
    s.dataId = id;
    if (t.grad) this.moveToBackend(t.grad, to);
  }

  onDispose(t: Tensor): void {
    this.liveTensors--;
    if (t.gradNode) {
      t.gradNode.release();
      t.gradNode = null;
    }
    if (t.grad) {
      t.grad.dispose();
      t.grad = null;
    }
    const s = t.storage;
    if (--s.refs === 0) {
      s.backend.free(s.dataId);
      this.liveStorages--;
    }
  }

  startScope(): void {
    this.scopes.push([]);
  }

  /** Disposes what the scope created, except `result`'s tensors and kept ones, which move to the outer scope. */
  endScope(result?: unknown): void {
    const scope = this.scopes.pop();
    if (!scope) throw new Error('endScope without startScope');
    const keep = new Set<Tensor>();
    collectTensors(result, keep);
    const outer = this.scopes[this.scopes.length - 1];
    for (const t of scope) {
      if (t.isDisposed || t.kept) continue;
      if (keep.has(t)) {
        if (outer) outer.push(t);
        continue;
      }
      t.dispose();
    }
  }

  tidy<T>(fn: () => T): T {
    this.startScope();
    let result: T;
    try {
      result = fn();
    } catch (e) {
      this.endScope();
      throw e;
    }
    if (result instanceof Promise) {
      // Close the scope before failing: a scope left open would collect every later tensor.
      this.endScope();
      throw new Error('tidy: the function must be synchronous');
    }
    this.endScope(result);
    return result;
  }

  keep<T extends Tensor>(t: T): T {
    t.kept = true;
    return t;
  }

  memory(): MemoryInfo {
    return {
      tensors: this.liveTensors,
      storages: this.liveStorages,
      backendBuffers: this.active ? this.active.liveBuffers() : 0,
    };
  }
}

/** The schema's input count, checked at run time too (JavaScript callers, computed op names). */
function checkArity(op: OpName, n: number): void {
  const spec = OPS[op];
  if (!spec) throw new OpError(op, 'not an op of the schema (packages/core/src/ops/schema.ts)');
  const req = spec.inputs.length,
    opt = 'optional' in spec ? spec.optional : [];
  const variadic = opt.some((name) => name.startsWith('...'));
  if (n < req || (!variadic && n > req + opt.length)) {
    const names = [...spec.inputs, ...opt.map((o) => o + '?')].join(', ');
    throw new OpError(op, `kernel takes inputs (${names}), got ${n} tensor${n === 1 ? '' : 's'}`);
  }
}

function collectTensors(x: unknown, into: Set<Tensor>, depth = 0): void {
  if (x instanceof Tensor) {
    into.add(x);
    return;
  }
  if (depth > 4 || x === null || typeof x !== 'object') return;
  if (Array.isArray(x)) {
    for (const v of x) collectTensors(v, into, depth + 1);
    return;
  }
  if (x instanceof Map) {
    for (const v of x.values()) collectTensors(v, into, depth + 1);
    return;
  }
  if (Object.getPrototypeOf(x) === Object.prototype)
    for (const v of Object.values(x)) collectTensors(v, into, depth + 1);
}

let global: Engine | null = null;
export function engine(): Engine {
  if (!global) global = new Engine();
  return global;
}

export const tidy = <T>(fn: () => T): T => engine().tidy(fn);
export const keep = <T extends Tensor>(t: T): T => engine().keep(t);
export const memory = (): MemoryInfo => engine().memory();
export const setBackend = (name: string): Backend => engine().setBackend(name);
export const getBackend = (): Backend => engine().backend;
