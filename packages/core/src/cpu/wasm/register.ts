import { getKernel, overrideKernel, type Backend, type TensorInfo } from '../../backend.js';
import type { OpName } from '../../ops/schema.js';
import type { TypedArray } from '../../dtype.js';
import { broadcastShapes } from '../../shape.js';
import {
  convOutputSize,
  type Conv3dAttrs as ConvAttrs,
  type Conv3dGradInputAttrs as ConvGradInputAttrs,
  type Conv3dGradWeightAttrs as ConvGradWeightAttrs,
} from '../../conv-geometry.js';
import { CpuBackend, vals } from '../backend.js';
import { forEachBroadcast } from '../elementwise.js';
interface MatmulAttrs {
  transposeA?: boolean;
  transposeB?: boolean;
}
import { useWasm } from './runtime.js';
import { wasmMatmul } from './matmul.js';
import { wasmCpReconstruct, wasmCpReconstructGrad } from './cp.js';
import {
  wasmBceGrad,
  wasmBceSum,
  wasmBinary,
  wasmLeakyRelu,
  wasmLeakyReluGrad,
  type BinaryKernel,
} from './pointwise.js';
import { wasmInstanceNorm, wasmInstanceNormGrad } from './instance-norm.js';
import type { InstanceNormAttrs, InstanceNormGradAttrs } from '../../ops/schema.js';
import { wasmConv3dForward, wasmConv3dGradInput, wasmConv3dGradWeight, type ConvGeom } from './conv.js';

/**
 * Puts the WebAssembly SIMD kernels in front of the JavaScript ones on the
 * 'cpu' backend: each wrapper runs wasm for float32 when `useWasm` says so
 * (LARGO_CPU_KERNELS, SIMD support, size) and otherwise calls the kernel it
 * replaced. The only file that knows both kernel sets.
 */
type Raw<A> = (inputs: readonly TensorInfo[], attrs: A, backend: Backend) => TensorInfo | TensorInfo[];

/** Replaces the 'cpu' kernel of `op` by `make(previous)`. */
export function overrideCpu<A>(op: string, make: (prev: Raw<A>) => Raw<A>): void {
  const prev = getKernel(op, 'cpu') as Raw<A>;
  overrideKernel(op as OpName, 'cpu', make(prev) as never);
}

function wrap<A>(
  op: string,
  wasm: (inputs: readonly TensorInfo[], attrs: A, be: CpuBackend, js: Raw<A>) => TensorInfo | TensorInfo[] | null,
): void {
  overrideCpu<A>(op, (js) => (inputs, attrs, backend) => {
    if (inputs.every((t) => t.dtype === 'float32')) {
      const r = wasm(inputs, attrs, backend as CpuBackend, js);
      if (r) return r;
    }
    return js(inputs, attrs, backend);
  });
}

function geom(x: readonly number[], w: readonly number[], y: readonly number[], a: ConvAttrs): ConvGeom {
  const [N, C, D, H, W] = x,
    [O, , kd, kh, kw] = w,
    [oD, oH, oW] = y;
  const [sd, sh, sw] = a.stride,
    [pd, ph, pw] = a.padding,
    [dd, dh, dw] = a.dilation;
  return { N, C, O, D, H, W, kd, kh, kw, oD, oH, oW, sd, sh, sw, pd, ph, pw, dd, dh, dw };
}
let flipBuf = new Float32Array(0);
/** W'[c, o, a, b, e] = W[o, c, kd−1−a, kh−1−b, kw−1−e], in a reused buffer. */
function flipped(w: TypedArray, g: ConvGeom): Float32Array {
  const taps = g.kd * g.kh * g.kw;
  if (flipBuf.length < g.O * g.C * taps) flipBuf = new Float32Array(g.O * g.C * taps);
  for (let o = 0; o < g.O; o++) {
    for (let c = 0; c < g.C; c++) {
      const src = (o * g.C + c) * taps,
        dst = (c * g.O + o) * taps;
      for (let t = 0; t < taps; t++) flipBuf[dst + t] = w[src + taps - 1 - t];
    }
  }
  return flipBuf;
}

const convWork = (g: ConvGeom) => g.N * g.O * g.C * g.kd * g.kh * g.kw * g.oD * g.oH * g.oW;

/** Puts the wasm kernels over the registered JavaScript ones (called once by cpu/index.ts). */
export function installWasmKernels(): void {
  wrap<MatmulAttrs>('matmul', (inputs, attrs, be) => {
    const [a, b] = inputs;
    const tA = !!attrs?.transposeA,
      tB = !!attrs?.transposeB;
    const ra = a.shape.length,
      rb = b.shape.length;
    const aR = a.shape[ra - 2],
      aC = a.shape[ra - 1],
      bR = b.shape[rb - 2],
      bC = b.shape[rb - 1];
    const M = tA ? aC : aR,
      K = tA ? aR : aC,
      N = tB ? bR : bC;
    const rt = useWasm(M * N * K, 1 << 15);
    if (!rt) return null;
    const batchA = a.shape.slice(0, ra - 2),
      batchB = b.shape.slice(0, rb - 2);
    const batch = broadcastShapes('matmul', batchA, batchB);
    const o = be.out([...batch, M, N], a.dtype);
    if (M * N === 0) return o.info;
    const av = vals(a),
      bv = vals(b),
      ov = o.values;
    const aI = tA ? 1 : aC,
      aK = tA ? aC : 1,
      bK = tB ? 1 : bC,
      bJ = tB ? bC : 1;
    const sa = aR * aC,
      sb = bR * bC,
      so = M * N;
    forEachBroadcast(batch, [batchA, batchB], (i, offs) => {
      wasmMatmul(rt, M, N, K, av, offs[0] * sa, aI, aK, bv, offs[1] * sb, bK, bJ, ov, i * so);
    });
    return o.info;
  });

  wrap<ConvAttrs>('conv3d', (inputs, attrs, be) => {
    const [x, w, b] = inputs as [TensorInfo, TensorInfo, TensorInfo?];
    const sp = [2, 3, 4].map((i) =>
      convOutputSize(x.shape[i], w.shape[i], attrs.stride[i - 2], attrs.padding[i - 2], attrs.dilation[i - 2]),
    );
    const g = geom(x.shape, w.shape, sp, attrs);
    const rt = useWasm(convWork(g));
    if (!rt || convWork(g) === 0) return null;
    const o = be.out([g.N, g.O, ...sp], x.dtype);
    wasmConv3dForward(rt, vals(x), vals(w), b ? vals(b) : null, o.values, g);
    return o.info;
  });

  wrap<ConvGradInputAttrs>('conv3dGradInput', (inputs, attrs, be) => {
    const [dy, w, b] = inputs as [TensorInfo, TensorInfo, TensorInfo?];
    const g = geom(attrs.inputShape, w.shape, dy.shape.slice(2), attrs);
    const rt = useWasm(convWork(g));
    if (!rt || convWork(g) === 0) return null;
    const o = be.out(attrs.inputShape, dy.dtype);
    if (
      g.sd === 1 &&
      g.sh === 1 &&
      g.sw === 1 &&
      g.pd <= g.dd * (g.kd - 1) &&
      g.ph <= g.dh * (g.kh - 1) &&
      g.pw <= g.dw * (g.kw - 1)
    ) {
      // Stride 1: the input gradient is a forward convolution of dy with the
      // flipped, transposed kernel, which reduces over O·taps per output (a
      // gather) instead of adding each tap's product into dx (a scatter).
      const gf: ConvGeom = {
        ...g,
        C: g.O,
        O: g.C,
        D: g.oD,
        H: g.oH,
        W: g.oW,
        oD: g.D,
        oH: g.H,
        oW: g.W,
        pd: g.dd * (g.kd - 1) - g.pd,
        ph: g.dh * (g.kh - 1) - g.ph,
        pw: g.dw * (g.kw - 1) - g.pw,
      };
      wasmConv3dForward(rt, vals(dy), flipped(vals(w), g), b ? vals(b) : null, o.values, gf);
      return o.info;
    }
    wasmConv3dGradInput(rt, vals(dy), vals(w), b ? vals(b) : null, o.values, g);
    return o.info;
  });

  wrap<ConvGradWeightAttrs>('conv3dGradWeight', (inputs, attrs, be) => {
    const [x, dy] = inputs;
    const g = geom(x.shape, attrs.weightShape, dy.shape.slice(2), attrs);
    const rt = useWasm(convWork(g));
    if (!rt || convWork(g) === 0) return null;
    const o = be.out(attrs.weightShape, x.dtype);
    wasmConv3dGradWeight(rt, vals(x), vals(dy), o.values, g);
    return o.info;
  });

  wrap<unknown>('cpReconstruct', (inputs, _attrs, be) => {
    const [wt, ao, ai, ak] = inputs;
    const R = wt.shape[0],
      O = ao.shape[0],
      I = ai.shape[0],
      S = ak.shape[0];
    const rt = useWasm(O * I * S * R, CP_MIN);
    if (!rt || O * I * S === 0) return null;
    const o = be.out([O, I, S], wt.dtype);
    wasmCpReconstruct(rt, R, O, I, S, vals(wt), vals(ao), vals(ai), vals(ak), o.values);
    return o.info;
  });

  wrap<InstanceNormAttrs>('instanceNorm', (inputs, attrs, be) => {
    const x = inputs[0];
    let k = 1;
    const w = attrs.hasWeight ? vals(inputs[k++]) : null;
    const b = attrs.hasBias ? vals(inputs[k++]) : null;
    const N = x.shape[0],
      C = x.shape[1],
      S = spatial(x.shape);
    const rt = useWasm(N * C * S);
    if (!rt || N * C * S === 0) return null;
    const y = be.out(x.shape, x.dtype),
      mo = be.out([N, C], x.dtype),
      io = be.out([N, C], x.dtype);
    wasmInstanceNorm(rt, vals(x), w, b, C, N * C, S, attrs.eps, y.values, mo.values, io.values);
    return [y.info, mo.info, io.info];
  });

  wrap<InstanceNormGradAttrs>('instanceNormGrad', (inputs, attrs, be) => {
    const [dy, x, mean, invstd] = inputs;
    let k = 4;
    const w = attrs.hasWeight ? vals(inputs[k++]) : null;
    const gm = attrs.hasStatGrads ? vals(inputs[k++]) : null;
    const gi = attrs.hasStatGrads ? vals(inputs[k++]) : null;
    const N = x.shape[0],
      C = x.shape[1],
      S = spatial(x.shape);
    const rt = useWasm(N * C * S);
    if (!rt || N * C * S === 0) return null;
    const dx = be.out(x.shape, x.dtype),
      dw = be.out([C], x.dtype),
      db = be.out([C], x.dtype);
    wasmInstanceNormGrad(
      rt,
      vals(dy),
      vals(x),
      vals(mean),
      vals(invstd),
      w,
      gm,
      gi,
      C,
      N * C,
      S,
      dx.values,
      dw.values,
      db.values,
    );
    return [dx.info, dw.info, db.info];
  });

  wrap<unknown>('bceWithLogits', (inputs, _attrs, be) => {
    const [x, t] = inputs;
    const n = vals(x).length;
    const rt = useWasm(n);
    if (!rt || n === 0 || vals(t).length !== n) return null;
    const o = be.out([], x.dtype);
    o.values[0] = wasmBceSum(rt, vals(x), vals(t), n) / n;
    return o.info;
  });

  wrap<unknown>('bceWithLogitsGrad', (inputs, _attrs, be) => {
    const [x, t, dy] = inputs;
    const n = vals(x).length;
    const rt = useWasm(n);
    if (!rt || n === 0 || vals(t).length !== n) return null;
    const dx = be.out(x.shape, x.dtype),
      dt = be.out(x.shape, x.dtype);
    wasmBceGrad(rt, vals(x), vals(t), vals(dy)[0]! / n, dx.values, dt.values, n);
    return [dx.info, dt.info];
  });

  // Elementwise arithmetic on large float32 tensors (activations and their
  // gradients): copying in and out of the arena costs less than the
  // JavaScript loop's typed-array accesses (~5 ns per element).
  const binary: Record<string, BinaryKernel> = { add: 'ewAdd', sub: 'ewSub', mul: 'ewMul', div: 'ewDiv' };
  for (const [op, kernel] of Object.entries(binary)) {
    wrap<{ dtype: string }>(op, (inputs, attrs, be) => {
      const [a, b] = inputs;
      if (attrs.dtype !== 'float32') return null;
      const shape = broadcastShapes(op, a.shape, b.shape);
      const n = shape.reduce((x, d) => x * d, 1);
      const av = vals(a),
        bv = vals(b);
      if (n === 0 || (av.length !== n && av.length !== 1) || (bv.length !== n && bv.length !== 1)) return null;
      const rt = useWasm(n, EW_MIN);
      if (!rt) return null;
      const o = be.out(shape, 'float32');
      wasmBinary(rt, kernel, av, bv, o.values, n);
      return o.info;
    });
  }
  wrap<{ alpha?: number }>('leakyRelu', (inputs, attrs, be) => {
    const x = inputs[0];
    const n = vals(x).length;
    const rt = n > 0 ? useWasm(n, EW_MIN) : null;
    if (!rt) return null;
    const o = be.out(x.shape, 'float32');
    wasmLeakyRelu(rt, vals(x), o.values, attrs?.alpha ?? 0.01, n);
    return o.info;
  });

  wrap<{ alpha: number }>('leakyReluGrad', (inputs, attrs, be) => {
    const [x, dy] = inputs;
    const n = vals(dy).length;
    const rt = n > 0 && vals(x).length === n ? useWasm(n, EW_MIN) : null;
    if (!rt) return null;
    const o = be.out(dy.shape, 'float32');
    wasmLeakyReluGrad(rt, vals(x), vals(dy), o.values, Math.fround(attrs.alpha), n);
    return o.info;
  });

  registerGradCp();
}

/** CP reconstruction (forward + gradient) from 8×4·4·27 multiply-adds ran 3× faster in wasm than in JavaScript (38 vs 124 µs). */
const CP_MIN = 1024;
/** Elements from which the elementwise ops go to wasm ('auto'): the staging costs ~1 µs a call. */
const EW_MIN = 1024;

const spatial = (shape: readonly number[]) => shape.slice(2).reduce((a, d) => a * d, 1);

function registerGradCp(): void {
  overrideCpu<unknown>('cpReconstructGrad', (js) => (inputs, attrs, backend) => {
    const be = backend as CpuBackend;
    const [gW, wt, ao, ai, ak] = inputs;
    const R = wt.shape[0],
      O = ao.shape[0],
      I = ai.shape[0],
      S = ak.shape[0];
    const rt = inputs.every((t) => t.dtype === 'float32') ? useWasm(O * I * S * R, CP_MIN) : null;
    if (!rt || O * I * S * R === 0) return js(inputs, attrs, backend);
    const dt = wt.dtype;
    const dw = be.out([R], dt),
      dA = be.out([O, R], dt),
      dB = be.out([I, R], dt),
      dK = be.out([S, R], dt);
    wasmCpReconstructGrad(
      rt,
      R,
      O,
      I,
      S,
      vals(gW),
      vals(wt),
      vals(ao),
      vals(ai),
      vals(ak),
      dw.values,
      dA.values,
      dB.values,
      dK.values,
    );
    return [dw.info, dA.info, dB.info, dK.info];
  });
}
