/// <reference types="@webgpu/types" />
import type { Backend, DataId, DType, KernelFn, KernelTable, OpName, TensorInfo, TypedArray } from '@largo/core';
import type { GpuDeviceInfo } from './device.js';
import { Uniforms, wtype } from './wgsl.js';

/** GPUBufferUsage / GPUMapMode values (fixed by the spec; Node has no such globals). */
const USAGE = { MAP_READ: 1, COPY_SRC: 4, COPY_DST: 8, UNIFORM: 64, STORAGE: 128 } as const;
const MAP_READ = 1;
const COMPUTE = 4; // GPUShaderStage.COMPUTE

/**
 * Storage of one tensor: a pooled GPU buffer (its size is the bucket, at
 * least 4·size bytes). Every dtype takes 4 bytes per element on the GPU:
 * float32 as f32, int32 as i32, uint8 as u32 (converted on write and read).
 */
export interface GpuData extends DataId {
  readonly backendName: 'webgpu';
  /** May be swapped for another buffer of the same bucket by `write` (see there). */
  buffer: GPUBuffer;
  readonly dtype: DType;
  /** Elements. */
  readonly size: number;
  freed: boolean;
}

export interface GpuLimits {
  maxInvocations: number;
  maxSizeX: number;
  maxSizeY: number;
  maxWorkgroupsPerDim: number;
  maxWorkgroupStorage: number;
  maxStorageBuffers: number;
  maxBinding: number;
  maxBufferSize: number;
  uniformAlign: number;
}

/** One compute dispatch: bindings are inputs (read-only), then outputs (read-write), then the uniform block. */
export interface Dispatch {
  /** Pipeline cache key: (op, dtypes, shape class); `wgsl` is called once per key. */
  key: string;
  wgsl: () => string;
  inputs: readonly GpuData[];
  outputs: readonly GpuData[];
  uniforms?: Uniforms;
  workgroups: readonly [number, number?, number?];
}

const MIN_BUCKET = 256;
const DEBUG = typeof process !== 'undefined' && !!process.env?.LARGO_WEBGPU_DEBUG;

/** Power-of-two bucket ≥ 256 B; above the binding limit, exact multiples of 4 KiB. */
export function bucketBytes(bytes: number, maxBinding = Infinity): number {
  let b = MIN_BUCKET;
  while (b < bytes) b *= 2;
  if (b > maxBinding && bytes <= maxBinding) b = Math.ceil(bytes / 4096) * 4096;
  return b;
}

/**
 * The WebGPU backend.
 *
 * Memory: storage buffers come from a size-bucketed pool (power-of-two
 * buckets ≥ 256 B) and go back to it on `free`; `liveBuffers()` counts
 * buffers handed out and not freed.
 *
 * Ordering: kernels are encoded into one command encoder and submitted on a
 * read, on `flush()`, or every `maxBatch` dispatches. `queue.writeBuffer`
 * runs before any later submit, so a write into a buffer that an unsubmitted
 * command still uses (a recycled buffer, typically the scalar of `x + 1`)
 * moves the storage to another buffer instead of flushing. Uniforms of one
 * batch live in one arena buffer written once per submit.
 *
 * `readSync` throws: GPU reads are asynchronous (`await t.data()`).
 */
export class WebGpuBackend implements Backend {
  readonly name = 'webgpu';
  readonly limits: GpuLimits;
  /** Dispatches per submitted command buffer. */
  maxBatch = 64;
  /** Upper bound on bytes parked in the pool; buffers beyond it are destroyed. */
  maxPooledBytes = 1 << 30;

  private pool = new Map<number, GPUBuffer[]>();
  private pooledBytes = 0;
  private live = 0;
  private stagingPool = new Map<number, GPUBuffer[]>();

  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private pendingDispatches = 0;
  /** Buffers used by commands encoded but not yet submitted. */
  private pendingUse = new Set<GPUBuffer>();

  private arena: GPUBuffer;
  private arenaHost: Uint8Array;
  private arenaUsed = 0;
  private readonly arenaBytes: number;

  private pipelines = new Map<string, GPUComputePipeline>();
  private layouts = new Map<string, { bgl: GPUBindGroupLayout; pl: GPUPipelineLayout }>();
  private errors: string[] = [];
  private destroyed = false;

  /** Counters for tests and benchmarks. */
  readonly stats = { dispatches: 0, submits: 0, pipelinesCompiled: 0, buffersCreated: 0, reads: 0 };

  constructor(
    readonly device: GPUDevice,
    readonly info: GpuDeviceInfo,
    readonly adapter: GPUAdapter | null = null,
  ) {
    const l = device.limits;
    this.limits = {
      maxInvocations: l.maxComputeInvocationsPerWorkgroup,
      maxSizeX: l.maxComputeWorkgroupSizeX,
      maxSizeY: l.maxComputeWorkgroupSizeY,
      maxWorkgroupsPerDim: l.maxComputeWorkgroupsPerDimension,
      maxWorkgroupStorage: l.maxComputeWorkgroupStorageSize,
      maxStorageBuffers: l.maxStorageBuffersPerShaderStage,
      maxBinding: l.maxStorageBufferBindingSize,
      maxBufferSize: l.maxBufferSize,
      uniformAlign: l.minUniformBufferOffsetAlignment,
    };
    this.arenaBytes = Math.min(65536, l.maxUniformBufferBindingSize) >= 65536 ? 65536 : 16384;
    this.arena = device.createBuffer({
      size: this.arenaBytes,
      usage: USAGE.UNIFORM | USAGE.COPY_DST,
      label: 'largo-uniforms',
    });
    this.arenaHost = new Uint8Array(this.arenaBytes);
    device.addEventListener('uncapturederror', (ev) => {
      const msg = (ev as GPUUncapturedErrorEvent).error.message;
      if (this.errors.length < 20) this.errors.push(msg);
    });
    void device.lost.then((info) => {
      if (!this.destroyed) this.errors.push(`device lost (${info.reason}): ${info.message}`);
    });
  }

  /** Workgroup size for 1-d elementwise kernels. */
  get wgSize(): number {
    return Math.min(256, this.limits.maxInvocations, this.limits.maxSizeX);
  }

  // ---------------------------------------------------------------- memory

  alloc(dtype: DType, size: number): GpuData {
    wtype(dtype, 'webgpu alloc');
    const bytes = Math.max(4, size * 4);
    if (bytes > this.limits.maxBinding) {
      throw new Error(
        `webgpu: a ${dtype} tensor of ${size} elements (${bytes} bytes) exceeds this device's maxStorageBufferBindingSize of ${this.limits.maxBinding} bytes`,
      );
    }
    const bucket = bucketBytes(bytes, this.limits.maxBinding);
    this.live++;
    return { backendName: 'webgpu', buffer: this.takeBuffer(bucket, false), dtype, size, freed: false };
  }

  /** A buffer of `bucket` bytes from the pool (one no unsubmitted command uses, if asked) or a new one. */
  private takeBuffer(bucket: number, notPending: boolean): GPUBuffer {
    const list = this.pool.get(bucket);
    if (list && list.length) {
      let i = list.length - 1;
      if (notPending) while (i >= 0 && this.pendingUse.has(list[i])) i--;
      if (i >= 0) {
        const b = list[i];
        list[i] = list[list.length - 1];
        list.pop();
        this.pooledBytes -= bucket;
        return b;
      }
    }
    this.stats.buffersCreated++;
    return this.device.createBuffer({ size: bucket, usage: USAGE.STORAGE | USAGE.COPY_SRC | USAGE.COPY_DST });
  }

  private returnBuffer(buffer: GPUBuffer): void {
    const bucket = buffer.size;
    if (this.destroyed || this.pooledBytes + bucket > this.maxPooledBytes) {
      // Destroying a buffer that an unsubmitted command uses would invalidate that command.
      if (this.pendingUse.has(buffer)) this.flush();
      buffer.destroy();
      return;
    }
    let list = this.pool.get(bucket);
    if (!list) {
      list = [];
      this.pool.set(bucket, list);
    }
    list.push(buffer);
    this.pooledBytes += bucket;
  }

  free(id: DataId): void {
    const d = id as GpuData;
    if (d.freed) return;
    d.freed = true;
    this.live--;
    this.returnBuffer(d.buffer);
  }

  liveBuffers(): number {
    return this.live;
  }

  /** Bytes parked in the pool (free buffers kept for reuse). */
  pooledByteCount(): number {
    return this.pooledBytes;
  }

  write(id: DataId, values: TypedArray): void {
    const d = id as GpuData;
    if (values.length !== d.size) throw new Error(`webgpu write: ${values.length} values into storage of ${d.size}`);
    if (values.length === 0) return;
    let src: Float32Array | Int32Array | Uint32Array;
    if (d.dtype === 'uint8') src = Uint32Array.from(values as Uint8Array);
    else if (d.dtype === 'float32')
      src = values instanceof Float32Array ? values : Float32Array.from(values as ArrayLike<number>);
    else if (d.dtype === 'int32')
      src = values instanceof Int32Array ? values : Int32Array.from(values as ArrayLike<number>);
    else throw new Error(`webgpu: dtype ${d.dtype} is not supported`);
    if (this.pendingUse.has(d.buffer)) {
      // writeBuffer would land before the unsubmitted commands that use this buffer. The write
      // replaces every value, so give the storage a buffer no pending command touches instead
      // (those commands keep the old one, which is what program order asks for) — no flush.
      const old = d.buffer;
      d.buffer = this.takeBuffer(old.size, true);
      this.returnBuffer(old);
    }
    this.device.queue.writeBuffer(d.buffer, 0, src.buffer, src.byteOffset, src.byteLength);
  }

  readSync(_id: DataId): TypedArray {
    throw new Error(
      'webgpu: synchronous reads are not possible on the GPU (dataSync(), item() and toArray() are CPU-only); use `await t.data()`',
    );
  }

  async read(id: DataId): Promise<TypedArray> {
    const d = id as GpuData;
    if (d.freed) throw new Error('webgpu read: storage was freed');
    this.stats.reads++;
    const bytes = d.size * 4;
    if (bytes === 0) {
      this.flush();
      this.throwErrors();
      return emptyOf(d.dtype);
    }
    const bucket = bucketBytes(bytes);
    const staging =
      this.stagingPool.get(bucket)?.pop() ??
      this.device.createBuffer({ size: bucket, usage: USAGE.MAP_READ | USAGE.COPY_DST, label: 'largo-staging' });
    this.endPass();
    this.enc().copyBufferToBuffer(d.buffer, 0, staging, 0, bytes);
    this.flush();
    try {
      await staging.mapAsync(MAP_READ, 0, bytes);
    } catch (e) {
      this.throwErrors();
      throw e;
    }
    const copy = staging.getMappedRange(0, bytes).slice(0);
    staging.unmap();
    let list = this.stagingPool.get(bucket);
    if (!list) {
      list = [];
      this.stagingPool.set(bucket, list);
    }
    if (list.length < 4) list.push(staging);
    else staging.destroy();
    this.throwErrors();
    switch (d.dtype) {
      case 'float32':
        return new Float32Array(copy);
      case 'int32':
        return new Int32Array(copy);
      case 'uint8':
        return Uint8Array.from(new Uint32Array(copy));
      default:
        throw new Error(`webgpu: dtype ${d.dtype} is not supported`);
    }
  }

  copy(src: DataId, dst: DataId): void {
    const s = src as GpuData,
      t = dst as GpuData;
    if (s.size !== t.size) throw new Error(`webgpu copy: ${s.size} elements into ${t.size}`);
    if (s.buffer === t.buffer || s.size === 0) return;
    this.endPass();
    this.enc().copyBufferToBuffer(s.buffer, 0, t.buffer, 0, s.size * 4);
    this.pendingUse.add(s.buffer);
    this.pendingUse.add(t.buffer);
    this.countDispatch();
  }

  /** Copies `n` elements from `src` at element `srcOff` to `dst` at `dstOff` (a buffer-to-buffer copy, in order with the kernels). */
  copyRange(src: GpuData, srcOff: number, dst: GpuData, dstOff: number, n: number): void {
    if (n === 0) return;
    if (src.freed || dst.freed) throw new Error('webgpu copy: storage was freed');
    this.endPass();
    this.enc().copyBufferToBuffer(src.buffer, srcOff * 4, dst.buffer, dstOff * 4, n * 4);
    this.pendingUse.add(src.buffer);
    this.pendingUse.add(dst.buffer);
    this.countDispatch();
  }

  /** Releases pooled buffers (live tensors are untouched). */
  dispose(): void {
    this.flush();
    for (const list of this.pool.values()) for (const b of list) b.destroy();
    for (const list of this.stagingPool.values()) for (const b of list) b.destroy();
    this.pool.clear();
    this.stagingPool.clear();
    this.pooledBytes = 0;
  }

  /** Releases everything and destroys the device; the backend is unusable afterwards. */
  destroy(): void {
    if (this.destroyed) return;
    try {
      this.dispose();
    } catch {
      /* device may already be lost */
    }
    this.destroyed = true;
    this.arena.destroy();
    this.device.destroy();
  }

  get isDestroyed(): boolean {
    return this.destroyed;
  }

  // ------------------------------------------------------------- helpers

  /** A new output tensor's storage and info. */
  out(shape: readonly number[], dtype: DType): { info: TensorInfo; data: GpuData } {
    let n = 1;
    for (const s of shape) n *= s;
    const data = this.alloc(dtype, n);
    return { info: { dataId: data, shape: [...shape], dtype }, data };
  }

  /** [x, y] workgroup counts for `groups` 1-d workgroups within the per-dimension limit. */
  grid(groups: number): [number, number] {
    const m = this.limits.maxWorkgroupsPerDim;
    if (groups <= m) return [Math.max(groups, 1), 1];
    const y = Math.ceil(groups / m);
    return [Math.ceil(groups / y), y];
  }

  // ------------------------------------------------------------ dispatch

  private enc(): GPUCommandEncoder {
    if (!this.encoder) this.encoder = this.device.createCommandEncoder();
    return this.encoder;
  }

  private endPass(): void {
    if (this.pass) {
      this.pass.end();
      this.pass = null;
    }
  }

  private countDispatch(): void {
    this.pendingDispatches++;
    if (this.pendingDispatches >= this.maxBatch) this.flush();
  }

  private layoutFor(nIn: number, nOut: number, uniform: boolean) {
    const k = `${nIn}:${nOut}:${uniform ? 1 : 0}`;
    let l = this.layouts.get(k);
    if (!l) {
      const entries: GPUBindGroupLayoutEntry[] = [];
      for (let i = 0; i < nIn; i++)
        entries.push({ binding: i, visibility: COMPUTE, buffer: { type: 'read-only-storage' } });
      for (let i = 0; i < nOut; i++)
        entries.push({ binding: nIn + i, visibility: COMPUTE, buffer: { type: 'storage' } });
      if (uniform) entries.push({ binding: nIn + nOut, visibility: COMPUTE, buffer: { type: 'uniform' } });
      const bgl = this.device.createBindGroupLayout({ entries });
      l = { bgl, pl: this.device.createPipelineLayout({ bindGroupLayouts: [bgl] }) };
      this.layouts.set(k, l);
    }
    return l;
  }

  /** Keys of the pipelines compiled so far (which kernel variants ran: tests and benchmarks). */
  pipelineKeys(): string[] {
    return [...this.pipelines.keys()];
  }

  private pipeline(spec: Dispatch): GPUComputePipeline {
    const k = `${spec.key}|${spec.inputs.length}:${spec.outputs.length}:${spec.uniforms ? 1 : 0}`;
    let p = this.pipelines.get(k);
    if (!p) {
      const code = spec.wgsl();
      const module = this.device.createShaderModule({ code, label: spec.key });
      const { pl } = this.layoutFor(spec.inputs.length, spec.outputs.length, !!spec.uniforms);
      p = this.device.createComputePipeline({ layout: pl, compute: { module, entryPoint: 'main' }, label: spec.key });
      this.pipelines.set(k, p);
      this.stats.pipelinesCompiled++;
      if (DEBUG) {
        void module.getCompilationInfo().then((info) => {
          for (const m of info.messages)
            if (m.type === 'error') console.error(`webgpu: ${spec.key}: ${m.message}\n${code}`);
        });
      }
    }
    return p;
  }

  /** Encodes one compute dispatch (nothing for an empty grid). */
  dispatch(spec: Dispatch): void {
    if (this.destroyed) throw new Error('webgpu: the device was destroyed');
    const [x, y = 1, z = 1] = spec.workgroups;
    if (x === 0 || y === 0 || z === 0) return;
    const storage = spec.inputs.length + spec.outputs.length;
    if (storage > this.limits.maxStorageBuffers) {
      throw new Error(
        `webgpu: ${spec.key} binds ${storage} storage buffers; this device allows ${this.limits.maxStorageBuffers}`,
      );
    }
    for (const d of [...spec.inputs, ...spec.outputs]) {
      if (d.freed) throw new Error(`webgpu: ${spec.key} uses freed storage`);
    }
    const pipe = this.pipeline(spec);
    const { bgl } = this.layoutFor(spec.inputs.length, spec.outputs.length, !!spec.uniforms);
    const entries: GPUBindGroupEntry[] = [];
    spec.inputs.forEach((d, i) => entries.push({ binding: i, resource: { buffer: d.buffer } }));
    spec.outputs.forEach((d, i) => entries.push({ binding: spec.inputs.length + i, resource: { buffer: d.buffer } }));
    if (spec.uniforms) {
      const u = spec.uniforms.bytes();
      const size = u.byteLength;
      const align = this.limits.uniformAlign;
      let at = Math.ceil(this.arenaUsed / align) * align;
      if (at + size > this.arenaBytes) {
        this.flush();
        at = 0;
      }
      this.arenaHost.set(new Uint8Array(u.buffer, 0, size), at);
      this.arenaUsed = at + size;
      entries.push({ binding: storage, resource: { buffer: this.arena, offset: at, size } });
    }
    const bg = this.device.createBindGroup({ layout: bgl, entries });
    if (!this.pass) this.pass = this.enc().beginComputePass();
    this.pass.setPipeline(pipe);
    this.pass.setBindGroup(0, bg);
    this.pass.dispatchWorkgroups(x, y, z);
    for (const d of spec.inputs) this.pendingUse.add(d.buffer);
    for (const d of spec.outputs) this.pendingUse.add(d.buffer);
    this.stats.dispatches++;
    this.countDispatch();
  }

  /** Submits everything encoded so far. */
  flush(): void {
    if (!this.encoder) return;
    this.endPass();
    if (this.arenaUsed > 0) {
      this.device.queue.writeBuffer(this.arena, 0, this.arenaHost.buffer, 0, Math.ceil(this.arenaUsed / 4) * 4);
      this.arenaUsed = 0;
    }
    const cb = this.encoder.finish();
    this.encoder = null;
    this.device.queue.submit([cb]);
    this.pendingDispatches = 0;
    this.pendingUse.clear();
    this.stats.submits++;
  }

  /** Resolves when the GPU has finished all submitted work; throws recorded GPU errors. */
  async sync(): Promise<void> {
    this.flush();
    await this.device.queue.onSubmittedWorkDone();
    this.throwErrors();
  }

  private throwErrors(): void {
    if (this.errors.length === 0) return;
    const e = this.errors.splice(0);
    throw new Error(`webgpu: ${e.join('\n')}`);
  }
}

function emptyOf(dtype: DType): TypedArray {
  switch (dtype) {
    case 'float32':
      return new Float32Array(0);
    case 'int32':
      return new Int32Array(0);
    case 'uint8':
      return new Uint8Array(0);
    default:
      throw new Error(`webgpu: dtype ${dtype} is not supported`);
  }
}

/** A kernel of `Op` on the WebGPU backend (the backend argument is typed: no casts). */
export type GpuKernel<Op extends OpName> = KernelFn<Op, WebGpuBackend>;
export type GpuKernelTable = KernelTable<WebGpuBackend>;
