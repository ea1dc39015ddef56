// Node's thread and core-count modules behind one file, so that browser
// bundles swap it (package.json "browser") for node-threads.browser.ts and
// hold no `node:` import; in a browser the pool uses Web Workers.
const isNode = typeof process !== 'undefined' && !!process.versions?.node;
export const nodeWorkers: typeof import('node:worker_threads') | null = isNode
  ? await import('node:worker_threads')
  : null;
export const nodeCores: number | null = isNode ? (await import('node:os')).availableParallelism() : null;
