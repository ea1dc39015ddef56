import type { KernelExports } from './runtime.js';
import { workerLoop } from './pool.js';

/** A kernel thread (see pool.ts): instantiates the kernels on the shared memory, then serves jobs. */
interface Init {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  ctl: Int32Array;
  index: number;
}

function run(init: Init): void {
  const inst = new WebAssembly.Instance(init.module, { env: { memory: init.memory } });
  workerLoop(inst.exports as unknown as KernelExports, init.ctl, init.index);
}

const isNode = typeof process !== 'undefined' && !!process.versions?.node;
if (isNode) {
  const { workerData } = await import('node:worker_threads');
  run(workerData as Init);
} else {
  (globalThis as unknown as { onmessage: ((e: MessageEvent<Init>) => void) | null }).onmessage = (e) => run(e.data);
}
