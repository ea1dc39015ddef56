import type { TensorInfo } from '../backend.js';
import { overrideCpu } from './wasm/register.js';
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
type Run = (
  out: TypedArray,
  o: number,
  a: TypedArray,
  ia: number,
  sa: number,
  b: TypedArray,
  ib: number,
  sb: number,
  n: number,
) => void;

const RUNS: Record<string, Run> = {
  add: (out, o, a, ia, sa, b, ib, sb, n) => {
    for (let j = 0; j < n; j++) out[o + j] = a[ia + j * sa] + b[ib + j * sb];
  },
  sub: (out, o, a, ia, sa, b, ib, sb, n) => {
    for (let j = 0; j < n; j++) out[o + j] = a[ia + j * sa] - b[ib + j * sb];
  },
  mul: (out, o, a, ia, sa, b, ib, sb, n) => {
    for (let j = 0; j < n; j++) out[o + j] = a[ia + j * sa] * b[ib + j * sb];
  },
  div: (out, o, a, ia, sa, b, ib, sb, n) => {
    for (let j = 0; j < n; j++) out[o + j] = a[ia + j * sa] / b[ib + j * sb];
  },
  greater: (out, o, a, ia, sa, b, ib, sb, n) => {
    for (let j = 0; j < n; j++) out[o + j] = a[ia + j * sa] > b[ib + j * sb] ? 1 : 0;
  },
};

/**
 * Output shape and the two operands' strides with adjacent axes merged
 * wherever both operands step the same way across them (so [N,C,D,H,W] ∘
 * [N,C,1,1,1] becomes [N·C, D·H·W] with strides [1, 0] for the second).
 */
function merged(shape: readonly number[], sa: number[], sb: number[]): { dims: number[]; sa: number[]; sb: number[] } {
  const dims: number[] = [],
    ra: number[] = [],
    rb: number[] = [];
  for (let d = 0; d < shape.length; d++) {
    const n = shape[d];
    if (n === 1) continue;
    const k = dims.length - 1;
    if (k >= 0 && ra[k] === sa[d] * n && rb[k] === sb[d] * n) {
      dims[k] *= n;
      ra[k] = sa[d];
      rb[k] = sb[d];
    } else {
      dims.push(n);
      ra.push(sa[d]);
      rb.push(sb[d]);
    }
  }
  return { dims, sa: ra, sb: rb };
}

function runBroadcast(
  run: Run,
  shape: readonly number[],
  a: TensorInfo,
  b: TensorInfo,
  av: TypedArray,
  bv: TypedArray,
  ov: TypedArray,
): void {
  const m = merged(shape, broadcastStrides(a.shape, shape), broadcastStrides(b.shape, shape));
  const r = m.dims.length;
  if (r === 0) {
    run(ov, 0, av, 0, 0, bv, 0, 0, ov.length);
    return;
  }
  const inner = m.dims[r - 1],
    isa = m.sa[r - 1],
    isb = m.sb[r - 1];
  const idx = new Array<number>(r).fill(0);
  let ia = 0,
    ib = 0;
  for (let o = 0; o < ov.length; o += inner) {
    run(ov, o, av, ia, isa, bv, ib, isb, inner);
    for (let d = r - 2; d >= 0; d--) {
      ia += m.sa[d];
      ib += m.sb[d];
      if (++idx[d] < m.dims[d]) break;
      ia -= m.sa[d] * m.dims[d];
      ib -= m.sb[d] * m.dims[d];
      idx[d] = 0;
    }
  }
}

const isFloat = (d: DType) => d === 'float32' || d === 'float64';

function installBinary(): void {
  for (const op of Object.keys(RUNS)) {
    const run = RUNS[op];
    const cmp = op === 'greater';
    overrideCpu<{ dtype: DType }>(op, (generic) => (inputs, attrs, backend) => {
      const [a, b] = inputs;
      if (!isFloat(a.dtype) || !isFloat(b.dtype) || (!cmp && !isFloat(attrs.dtype)))
        return generic(inputs, attrs, backend);
      const be = backend as CpuBackend;
      const shape = broadcastShapes(op, a.shape, b.shape);
      const o = be.out(shape, cmp ? 'uint8' : attrs.dtype);
      const av = vals(a),
        bv = vals(b),
        ov = o.values;
      if (av.length === ov.length && bv.length === ov.length) run(ov, 0, av, 0, 1, bv, 0, 1, ov.length);
      else if (bv.length === 1 && av.length === ov.length) run(ov, 0, av, 0, 1, bv, 0, 0, ov.length);
      else if (av.length === 1 && bv.length === ov.length) run(ov, 0, av, 0, 0, bv, 0, 1, ov.length);
      else if (ov.length > 0) runBroadcast(run, shape, a, b, av, bv, ov);
      return o.info;
    });
  }
}

function installWhere(): void {
  overrideCpu<{ dtype: DType }>('where', (generic) => (inputs, attrs, backend) => {
    const [c, a, b] = inputs;
    const n = c.shape.reduce((x, y) => x * y, 1);
    const same = (t: TensorInfo) => t.shape.length === c.shape.length && t.shape.every((d, i) => d === c.shape[i]);
    if (!same(a) || !same(b)) return generic(inputs, attrs, backend);
    const o = (backend as CpuBackend).out(c.shape, attrs.dtype);
    const cv = vals(c),
      av = vals(a),
      bv = vals(b),
      ov = o.values;
    for (let i = 0; i < n; i++) ov[i] = cv[i] !== 0 ? av[i] : bv[i]; // NaN counts as true
    return o.info;
  });
}

/**
 * sum over axes that are not one contiguous block (a bias gradient sums
 * [N, C, D, H, W] over N, D, H, W): one pass over the input in storage order,
 * runs along the innermost merged axis either summed into one output value
 * or added onto a run of outputs, float64 accumulators. The generic kernel
 * would first copy the whole input into reduced-axes-last order.
 */
function installSum(): void {
  overrideCpu<{ axes: number[]; keepDims: boolean }>('sum', (generic) => (inputs, attrs, backend) => {
    const x = inputs[0];
    const axes = attrs.axes;
    let contiguous = true;
    for (let i = 1; i < axes.length; i++) if (axes[i] !== axes[i - 1] + 1) contiguous = false;
    if (contiguous || !isFloat(x.dtype)) return generic(inputs, attrs, backend);
    // Merge adjacent axes that are both reduced or both kept; drop unit axes.
    const dims: number[] = [],
      red: boolean[] = [];
    x.shape.forEach((n, d) => {
      if (n === 1) return;
      const r = axes.includes(d),
        k = dims.length - 1;
      if (k >= 0 && red[k] === r) dims[k] *= n;
      else {
        dims.push(n);
        red.push(r);
      }
    });
    if (dims.length === 0) {
      dims.push(1);
      red.push(true);
    }
    const rank = dims.length;
    const ostr = new Array<number>(rank).fill(0);
    let nOut = 1;
    for (let d = rank - 1; d >= 0; d--)
      if (!red[d]) {
        ostr[d] = nOut;
        nOut *= dims[d];
      }
    const outShape = x.shape.flatMap((n, d) => (axes.includes(d) ? (attrs.keepDims ? [1] : []) : [n]));
    const o = (backend as CpuBackend).out(outShape, x.dtype);
    const acc = new Float64Array(nOut);
    const v = vals(x);
    if (v.length > 0) {
      const inner = dims[rank - 1],
        innerRed = red[rank - 1];
      const idx = new Array<number>(rank).fill(0);
      let off = 0;
      for (let i = 0; i < v.length; i += inner) {
        if (innerRed) {
          let s = 0;
          for (let j = 0; j < inner; j++) s += v[i + j];
          acc[off] += s;
        } else {
          for (let j = 0; j < inner; j++) acc[off + j] += v[i + j];
        }
        for (let d = rank - 2; d >= 0; d--) {
          off += ostr[d];
          if (++idx[d] < dims[d]) break;
          off -= ostr[d] * dims[d];
          idx[d] = 0;
        }
      }
    }
    o.values.set(acc);
    return o.info;
  });
}

/** The unary ops a training step calls most, each with its own loop (same semantics as elementwise.ts's UNARY). */
type UnaryLoop = (out: TypedArray, x: TypedArray, n: number, alpha: number) => void;
const UNARY_LOOPS: Record<string, UnaryLoop> = {
  leakyRelu: (out, x, n, s) => {
    for (let i = 0; i < n; i++) {
      const v = x[i];
      out[i] = v > 0 ? v : s * v;
    }
  },
  sigmoid: (out, x, n) => {
    for (let i = 0; i < n; i++) {
      // One exp per element: e^(−|v|), the same double the generic kernel's two calls give.
      const v = x[i],
        e = Math.exp(v >= 0 ? -v : v);
      out[i] = v >= 0 ? 1 / (1 + e) : e / (1 + e);
    }
  },
  neg: (out, x, n) => {
    for (let i = 0; i < n; i++) out[i] = -x[i];
  },
  exp: (out, x, n) => {
    for (let i = 0; i < n; i++) out[i] = Math.exp(x[i]);
  },
};
function installUnary(): void {
  for (const op of Object.keys(UNARY_LOOPS)) {
    const loop = UNARY_LOOPS[op];
    overrideCpu<{ alpha?: number }>(op, (generic) => (inputs, attrs, backend) => {
      const x = inputs[0];
      if (!isFloat(x.dtype)) return generic(inputs, attrs, backend);
      const o = (backend as CpuBackend).out(x.shape, x.dtype);
      const xv = vals(x);
      loop(o.values, xv, xv.length, attrs?.alpha ?? 0.01);
      return o.info;
    });
  }
}

/** Puts the hot paths over the registered kernels (called once by cpu/index.ts). */
export function installHotPaths(): void {
  installBinary();
  installWhere();
  installSum();
  installUnary();
}
