import { getKernel, registerKernel, type Kernel, type TensorInfo } from '../backend.js';
import type { DType, TypedArray } from '../dtype.js';
import { broadcastShapes, broadcastStrides } from '../shape.js';
import { CpuBackend, vals } from './backend.js';

/**
 * Monomorphic loops for the elementwise ops a training step calls most
 * (about a thousand calls per LARGO step: optimizer updates, norms, losses,
 * gradient rules). The generic kernels in elementwise.ts call one closure per
 * element from a loop that all ops share, so V8 cannot inline it; here every
 * op has its own loop. Broadcasts run along the innermost merged axis instead
 * of one callback per element. Anything else goes to the generic kernel.
 */

/** out[o + j] = a[ia + j·sa] ∘ b[ib + j·sb] for j < n. */
type Run = (out: TypedArray, o: number, a: TypedArray, ia: number, sa: number, b: TypedArray, ib: number, sb: number, n: number) => void;

const RUNS: Record<string, Run> = {
  add: (out, o, a, ia, sa, b, ib, sb, n) => { for (let j = 0; j < n; j++) out[o + j] = a[ia + j * sa] + b[ib + j * sb]; },
  sub: (out, o, a, ia, sa, b, ib, sb, n) => { for (let j = 0; j < n; j++) out[o + j] = a[ia + j * sa] - b[ib + j * sb]; },
  mul: (out, o, a, ia, sa, b, ib, sb, n) => { for (let j = 0; j < n; j++) out[o + j] = a[ia + j * sa] * b[ib + j * sb]; },
  div: (out, o, a, ia, sa, b, ib, sb, n) => { for (let j = 0; j < n; j++) out[o + j] = a[ia + j * sa] / b[ib + j * sb]; },
  greater: (out, o, a, ia, sa, b, ib, sb, n) => { for (let j = 0; j < n; j++) out[o + j] = a[ia + j * sa] > b[ib + j * sb] ? 1 : 0; },
};

/**
 * Output shape and the two operands' strides with adjacent axes merged
 * wherever both operands step the same way across them (so [N,C,D,H,W] ∘
 * [N,C,1,1,1] becomes [N·C, D·H·W] with strides [1, 0] for the second).
 */
function merged(shape: readonly number[], sa: number[], sb: number[]): { dims: number[]; sa: number[]; sb: number[] } {
  const dims: number[] = [], ra: number[] = [], rb: number[] = [];
  for (let d = 0; d < shape.length; d++) {
    const n = shape[d];
    if (n === 1) continue;
    const k = dims.length - 1;
    if (k >= 0 && ra[k] === sa[d] * n && rb[k] === sb[d] * n) {
      dims[k] *= n; ra[k] = sa[d]; rb[k] = sb[d];
    } else { dims.push(n); ra.push(sa[d]); rb.push(sb[d]); }
  }
  return { dims, sa: ra, sb: rb };
}

function runBroadcast(run: Run, shape: readonly number[], a: TensorInfo, b: TensorInfo, av: TypedArray, bv: TypedArray, ov: TypedArray): void {
  const m = merged(shape, broadcastStrides(a.shape, shape), broadcastStrides(b.shape, shape));
  const r = m.dims.length;
  if (r === 0) { run(ov, 0, av, 0, 0, bv, 0, 0, ov.length); return; }
  const inner = m.dims[r - 1], isa = m.sa[r - 1], isb = m.sb[r - 1];
  const idx = new Array<number>(r).fill(0);
  let ia = 0, ib = 0;
  for (let o = 0; o < ov.length; o += inner) {
    run(ov, o, av, ia, isa, bv, ib, isb, inner);
    for (let d = r - 2; d >= 0; d--) {
      ia += m.sa[d]; ib += m.sb[d];
      if (++idx[d] < m.dims[d]) break;
      ia -= m.sa[d] * m.dims[d]; ib -= m.sb[d] * m.dims[d];
      idx[d] = 0;
    }
  }
}

const isFloat = (d: DType) => d === 'float32' || d === 'float64';

for (const op of Object.keys(RUNS)) {
  const generic = getKernel(op, 'cpu') as Kernel<{ dtype: DType }>;
  const run = RUNS[op];
  const cmp = op === 'greater';
  registerKernel<{ dtype: DType }>(op, 'cpu', (inputs, attrs, backend) => {
    const [a, b] = inputs;
    if (!isFloat(a.dtype) || !isFloat(b.dtype) || (!cmp && !isFloat(attrs.dtype))) return generic(inputs, attrs, backend);
    const be = backend as CpuBackend;
    const shape = broadcastShapes(op, a.shape, b.shape);
    const o = be.out(shape, cmp ? 'uint8' : attrs.dtype);
    const av = vals(a), bv = vals(b), ov = o.values;
    if (av.length === ov.length && bv.length === ov.length) run(ov, 0, av, 0, 1, bv, 0, 1, ov.length);
    else if (bv.length === 1 && av.length === ov.length) run(ov, 0, av, 0, 1, bv, 0, 0, ov.length);
    else if (av.length === 1 && bv.length === ov.length) run(ov, 0, av, 0, 0, bv, 0, 1, ov.length);
    else if (ov.length > 0) runBroadcast(run, shape, a, b, av, bv, ov);
    return o.info;
  });
}

{
  const generic = getKernel('where', 'cpu') as Kernel<{ dtype: DType }>;
  registerKernel<{ dtype: DType }>('where', 'cpu', (inputs, attrs, backend) => {
    const [c, a, b] = inputs;
    const n = c.shape.reduce((x, y) => x * y, 1);
    const same = (t: TensorInfo) => t.shape.length === c.shape.length && t.shape.every((d, i) => d === c.shape[i]);
    if (!same(a) || !same(b)) return generic(inputs, attrs, backend);
    const o = (backend as CpuBackend).out(c.shape, attrs.dtype);
    const cv = vals(c), av = vals(a), bv = vals(b), ov = o.values;
    for (let i = 0; i < n; i++) ov[i] = cv[i] !== 0 ? av[i] : bv[i]; // NaN counts as true
    return o.info;
  });
}
