import { engine } from '../engine.js';
import { CpuBackend } from './backend.js';
import './elementwise.js';
import './reduce.js';
import './layout.js';

export { CpuBackend, vals, fvals, type CpuData } from './backend.js';
engine().registerBackend('cpu', () => new CpuBackend(), 1);
import './matmul.js';
import './softmax.js';
import './instance-norm.js';
import './losses.js';
import './cp-reconstruct.js';
import './conv.js';
