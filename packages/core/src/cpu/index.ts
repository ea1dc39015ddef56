import { engine } from '../engine.js';
import { CpuBackend } from './backend.js';
import './elementwise.js';
import './reduce.js';
import './layout.js';
import './hot-paths.js';

export { CpuBackend, vals, fvals, type CpuData } from './backend.js';
engine().registerBackend('cpu', () => new CpuBackend(), 1);
import './matmul.js';
import './nn.js';
import './conv.js';
import './wasm/register.js';

export { setCpuKernels, cpuKernels, type KernelMode } from './wasm/runtime.js';
export { setCpuThreads, cpuThreads } from './wasm/pool.js';
