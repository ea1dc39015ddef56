export * from './dtype.js';
export * from './errors.js';
export * from './shape.js';
export * from './backend.js';
export * from './tensor.js';
export * from './engine.js';
export * from './rng.js';
// Registers the CPU backend and its kernels; its host-memory helpers (CpuBackend,
// vals, fvals, the kernel table) are in the '@largo/core/cpu' subpath.
import './cpu/index.js';
// Which CPU kernels run (JavaScript or WebAssembly SIMD) and on how many threads.
export { setCpuKernels, cpuKernelMode, type KernelMode } from './cpu/wasm/runtime.js';
export { setCpuThreads, cpuThreads } from './cpu/wasm/pool.js';
export * from './ops/util.js';
export * from './ops/schema.js';
export * from './ops/creation.js';
export * from './ops/elementwise.js';
export * from './ops/reduce.js';
export * from './ops/layout.js';
export * from './safetensors.js';
export * from './safetensors-file.js';
export * from './ops/matmul.js';
export * from './ops/softmax.js';
export * from './ops/instance-norm.js';
export * from './ops/losses.js';
export * from './ops/cp-reconstruct.js';
export * from './ops/dropout.js';
export * from './conv-geometry.js';
export * from './ops/conv.js';
