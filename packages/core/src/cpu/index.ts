import { registerKernels } from '../backend.js';
import { engine } from '../engine.js';
import { CpuBackend, type CpuKernelTable } from './backend.js';
import { convKernels } from './conv.js';
import { cpReconstructKernels } from './cp-reconstruct.js';
import { elementwiseKernels } from './elementwise.js';
import { instanceNormKernels } from './instance-norm.js';
import { layoutKernels } from './layout.js';
import { lossKernels } from './losses.js';
import { matmulKernels } from './matmul.js';
import { reduceKernels } from './reduce.js';
import { softmaxKernels } from './softmax.js';
import { installHotPaths } from './hot-paths.js';
import { installWasmKernels } from './wasm/register.js';

export { CpuBackend, vals, fvals, type CpuData, type CpuKernel, type CpuKernelTable } from './backend.js';

/**
 * The CPU backend's kernel table: every op of the schema. A missing op or a
 * kernel whose attributes differ from the schema fails the build here.
 */
export const cpuKernels = {
  ...elementwiseKernels,
  ...reduceKernels,
  ...layoutKernels,
  ...matmulKernels,
  ...convKernels,
  ...softmaxKernels,
  ...instanceNormKernels,
  ...lossKernels,
  ...cpReconstructKernels,
} satisfies CpuKernelTable;

engine().registerBackend('cpu', () => new CpuBackend(), 1);
registerKernels('cpu', cpuKernels);

// Over the table: monomorphic loops for the hottest elementwise ops, then the
// WebAssembly SIMD kernels (each falls back to the kernel it replaces).
installHotPaths();
installWasmKernels();
