// Browser stand-in for node-threads.ts: no worker_threads, no os module.
export const nodeWorkers: typeof import('node:worker_threads') | null = null;
export const nodeCores: number | null = null;
