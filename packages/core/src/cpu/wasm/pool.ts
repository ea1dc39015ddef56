import { KERNEL_NAMES, type KernelName } from './kernels.js';
import type { KernelExports, WasmRuntime } from './runtime.js';
import { nodeCores, nodeWorkers } from './node-threads.js';

/**
 * A pool of threads that run the wasm kernels on the shared memory: Node's
 * worker_threads, or Web Workers in a cross-origin-isolated page. One job at
 * a time: the caller writes the kernel and its arguments into a shared
 * control block, wakes the workers, claims chunks of the job itself like
 * they do, and waits until every unit of the job is done (kernels are
 * synchronous). A worker that wakes late finds nothing left and goes back to
 * sleep: the caller never waits for a worker that took no part.
 *
 * The job's fields are guarded by GEN as a sequence lock: the caller makes
 * GEN odd, waits until no worker is inside a job (ACTIVE = 0), writes the
 * job, then makes GEN even and wakes the workers. A worker enters with
 * ACTIVE + 1 and proceeds only if GEN is still the even value it woke to, so
 * it never reads a job while it is being written, and the caller never
 * rewrites a job a worker is still reading or claiming from.
 *
 * Work is split into contiguous ranges of independent units (output rows,
 * channels, panels), and each unit is computed start to end by one thread
 * with the same code, so the bits of every output do not depend on how
 * many threads ran, nor on which thread ran which unit. The threads claim
 * chunks of units from a shared counter rather than fixed halves: on a VM
 * one vCPU often runs 20–40% slower than the other for a while (a busy
 * neighbour on the host), and a late-waking worker simply claims fewer.
 */

/** Control block layout (Int32 slots). */
const GEN = 0,
  /** workers that have started (start-up handshake), then units done in the current job */
  DONE = 1,
  FN = 2,
  THREADS = 3,
  COUNT = 4,
  LO = 5,
  HI = 6,
  SCALE = 7,
  NARGS = 8,
  FAILED = 9,
  NEXT = 10,
  GRAIN = 11,
  ACTIVE = 12,
  ARGS = 13;
const MAX_ARGS = 24;
export const CONTROL_INTS = ARGS + MAX_ARGS;

/**
 * Below this many multiply-adds (~0.2 ms of work) a kernel runs on the
 * calling thread: waking a thread costs 10-50 µs on an idle machine and
 * milliseconds on a busy one (at load 30, matmul 256³ ran slower on 2
 * threads than on 1). 2²⁵ kept every conv of the main job's step on one
 * thread; at 2²² its larger convs split and the step took 102 ms on 2
 * threads instead of 121 (1 thread: 118; bench/compare.mjs's largo-step,
 * load 3 on 2 cores); 2²¹ and 2²⁰ were slower again.
 */
export const PARALLEL_MIN_WORK = 1 << 22;
let minWork = PARALLEL_MIN_WORK;
/** For tests: the smallest call (multiply-adds) that goes to the threads. Not exported by the package. */
export function setParallelMinWork(n: number): void {
  minWork = n;
}
let jobs = 0;
/** For tests: how many calls have been split across the pool so far. */
export function pooledJobs(): number {
  return jobs;
}

function defaultThreads(): number {
  const env = typeof process !== 'undefined' ? process.env?.LARGO_THREADS : undefined;
  if (env !== undefined && env !== '') {
    const n = Number(env);
    if (!Number.isInteger(n) || n < 1) throw new Error(`LARGO_THREADS must be a positive integer, got '${env}'`);
    return n;
  }
  if (typeof navigator !== 'undefined' && navigator.hardwareConcurrency) return navigator.hardwareConcurrency;
  return nodeCores ?? 1;
}

let wanted = -1;
let threads: { ctl: Int32Array; workers: { terminate(): unknown }[]; rt: WasmRuntime } | null = null;

/**
 * Sets how many threads the CPU kernels use (1 = the calling thread only).
 * The default is LARGO_THREADS, else the number of cores. Threads need
 * SharedArrayBuffer (Node, or a cross-origin-isolated page); elsewhere the
 * kernels run on one thread whatever is asked.
 */
export function setCpuThreads(n: number): void {
  if (!Number.isInteger(n) || n < 1)
    throw new Error(`setCpuThreads: thread count must be a positive integer, got ${n}`);
  // The pool is kept: with fewer threads some workers claim nothing.
  wanted = n;
}

/** Threads the kernels will use for large calls. */
export function cpuThreads(): number {
  if (wanted < 0) wanted = defaultThreads();
  return wanted;
}

function shutdown(): void {
  if (!threads) return;
  const { ctl, workers } = threads;
  Atomics.add(ctl, GEN, 1);
  waitActive(ctl);
  Atomics.store(ctl, FN, -1);
  Atomics.add(ctl, GEN, 1);
  Atomics.notify(ctl, GEN);
  for (const w of workers) w.terminate();
  threads = null;
}

function canShare(rt: WasmRuntime): boolean {
  if (!rt.shared) return false;
  if (nodeWorkers) return true;
  return (
    typeof globalThis !== 'undefined' &&
    (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated === true &&
    typeof Worker === 'function'
  );
}

function start(rt: WasmRuntime, n: number): typeof threads {
  const ctl = new Int32Array(new SharedArrayBuffer(CONTROL_INTS * 4));
  const workers: { terminate(): unknown }[] = [];
  const url = new URL('./worker.js', import.meta.url);
  for (let i = 1; i < n; i++) {
    const init = { module: rt.module, memory: rt.memory, ctl, index: i };
    if (nodeWorkers) {
      const w = new nodeWorkers.Worker(url, { workerData: init });
      w.unref();
      workers.push(w);
    } else {
      const w = new Worker(url, { type: 'module' });
      w.postMessage(init);
      workers.push(w);
    }
  }
  // Wait until every worker has instantiated the kernels (each adds 1 to DONE).
  // A worker that cannot start (its error event cannot fire while we block)
  // must not hang the caller: after 30 s, run on this thread only.
  if (!waitDone(ctl, n - 1, 30_000)) {
    for (const w of workers) w.terminate();
    startFailed = true;
    return null;
  }
  return { ctl, workers, rt };
}

let startFailed = false;

/**
 * Polls before the caller sleeps on a counter: the chunks of a job end
 * within microseconds of each other, and a futex wake-up of the caller costs
 * tens to hundreds of µs on a VM. ~20k polls are ~50 µs. (Workers do not
 * spin between jobs: a spinning worker slowed the caller's own work.)
 */
const SPIN = 20_000;

/** Waits until ctl[slot] >= target (spin, then sleep; a browser main thread may not block, so it spins). */
function waitAtLeast(ctl: Int32Array, slot: number, target: number, timeoutMs = Infinity): boolean {
  for (let i = 0; i < SPIN; i++) if (Atomics.load(ctl, slot) >= target) return true;
  const t0 = Date.now();
  for (;;) {
    const d = Atomics.load(ctl, slot);
    if (d >= target) return true;
    if (Date.now() - t0 > timeoutMs) return false;
    if (nodeWorkers) Atomics.wait(ctl, slot, d, 1000);
  }
}

function waitDone(ctl: Int32Array, target: number, timeoutMs = Infinity): boolean {
  return waitAtLeast(ctl, DONE, target, timeoutMs);
}

/** Waits until no worker is inside a job (see the sequence lock above). */
function waitActive(ctl: Int32Array): void {
  for (let i = 0; ; i++) {
    const a = Atomics.load(ctl, ACTIVE);
    if (a === 0) return;
    if (i >= SPIN && nodeWorkers) Atomics.wait(ctl, ACTIVE, a, 1);
  }
}

/** Units per claimed chunk: about 32 chunks per thread, so the threads finish within a small chunk of each other (conv3d [1,32,32³] on 2 threads: ~3% faster than with 8). */
export function grainFor(count: number, n: number): number {
  return Math.max(1, Math.ceil(count / (32 * n)));
}

/**
 * Claims chunks of the current job from ctl[NEXT] and runs them until none
 * is left, adding each chunk's units to DONE. A trap gives up the rest of
 * the job (counted as done, so nobody waits for it) and sets FAILED.
 */
function runChunks(fn: (...a: number[]) => void, args: number[], ctl: Int32Array): void {
  const count = ctl[COUNT],
    grain = ctl[GRAIN],
    scale = ctl[SCALE],
    lo = ctl[LO],
    hi = ctl[HI];
  for (;;) {
    const a = Atomics.add(ctl, NEXT, grain);
    if (a >= count) return;
    const b = Math.min(a + grain, count);
    let units = b - a;
    args[lo] = a * scale;
    args[hi] = b * scale;
    try {
      fn(...args);
    } catch {
      Atomics.store(ctl, FAILED, 1);
      const rest = Atomics.exchange(ctl, NEXT, count);
      if (rest < count) units += count - rest;
    }
    if (Atomics.add(ctl, DONE, units) + units >= count) Atomics.notify(ctl, DONE);
  }
}

/**
 * Runs kernel `name` over `count` units split among the threads. `args` are
 * its arguments with the unit range written at positions lo and hi
 * (multiplied by `scale`). `work` (multiply-adds) decides whether threads
 * are worth waking.
 */
export function parallelFor(
  rt: WasmRuntime,
  name: KernelName,
  args: number[],
  lo: number,
  hi: number,
  count: number,
  work: number,
  scale = 1,
): void {
  const n = Math.min(cpuThreads(), count);
  const fn = rt.k[name] as (...a: number[]) => void;
  if (n <= 1 || work < minWork || startFailed || !canShare(rt)) {
    args[lo] = 0;
    args[hi] = count * scale;
    fn(...args);
    return;
  }
  // The pool only grows (starting workers takes milliseconds); every worker
  // wakes for every job, those past the job's thread count without claiming any of it.
  if (!threads || threads.rt !== rt || threads.workers.length + 1 < n) {
    shutdown();
    threads = start(rt, n);
    if (!threads) {
      parallelFor(rt, name, args, lo, hi, count, work, scale);
      return;
    }
  }
  const ctl = threads!.ctl;
  jobs++;
  // Sequence lock: GEN odd while the job is written, and only once no worker is inside the last one.
  Atomics.add(ctl, GEN, 1);
  waitActive(ctl);
  ctl[FN] = KERNEL_NAMES.indexOf(name);
  ctl[THREADS] = n;
  ctl[COUNT] = count;
  ctl[LO] = lo;
  ctl[HI] = hi;
  ctl[SCALE] = scale;
  ctl[NARGS] = args.length;
  ctl[GRAIN] = grainFor(count, n);
  for (let i = 0; i < args.length; i++) ctl[ARGS + i] = args[i];
  Atomics.store(ctl, FAILED, 0);
  Atomics.store(ctl, DONE, 0);
  Atomics.store(ctl, NEXT, 0);
  Atomics.add(ctl, GEN, 1);
  Atomics.notify(ctl, GEN);
  runChunks(fn, args, ctl);
  waitDone(ctl, count);
  if (Atomics.load(ctl, FAILED)) throw new Error(`wasm kernel '${name}' failed (a trap on one of its threads)`);
}

/** The worker side: claims chunks of every job it wakes to until told to stop. */
export function workerLoop(k: KernelExports, ctl: Int32Array, index: number): void {
  // Read the generation before reporting ready: the first job may follow at once.
  let seen = Atomics.load(ctl, GEN);
  Atomics.add(ctl, DONE, 1);
  Atomics.notify(ctl, DONE);
  for (;;) {
    Atomics.wait(ctl, GEN, seen);
    const g = Atomics.load(ctl, GEN);
    seen = g;
    if (g & 1) continue; // a job is being written: its even GEN follows
    Atomics.add(ctl, ACTIVE, 1);
    if (Atomics.load(ctl, GEN) === g) {
      const f = ctl[FN];
      if (f < 0) return;
      if (index < ctl[THREADS]) {
        const args = Array.from(ctl.subarray(ARGS, ARGS + ctl[NARGS]));
        runChunks(k[KERNEL_NAMES[f]] as (...x: number[]) => void, args, ctl);
      }
    }
    if (Atomics.sub(ctl, ACTIVE, 1) === 1) Atomics.notify(ctl, ACTIVE);
  }
}
