import { sizeOf, type TensorInfo, type SoftmaxAttrs } from '@largo/core';
import type { WebGpuBackend, GpuKernel, GpuKernelTable } from '../backend.js';
import { uw, type Uniforms } from '../wgsl.js';
import { checkF32, gd, launch1d, launchGroups, treeReduce, type Buf } from './launch.js';

/*
 * WebGPU kernels of softmax / logSoftmax.
 * Drop-in replacements of the CPU kernels in packages/core/src/cpu/ (same
 * op names, inputs, attrs and outputs). Accumulation is f32 (the CPU uses
 * doubles), with tree reductions in workgroup memory, so errors grow with log(length).
 *
 *  - softmax / logSoftmax: a workgroup per row (shared-memory max and sum)
 *    when the axis is innermost and long, else a thread per (outer, inner)
 *    position walking the axis (coalesced along inner: the NCDHW channel
 *    softmax). A NaN in a row, or an infinite row maximum, makes the row NaN
 *    (what the CPU's arithmetic gives).
 */

function softmaxKernel(logOut: boolean) {
  const op = logOut ? 'logSoftmax' : 'softmax';
  return (inputs: readonly TensorInfo[], attrs: SoftmaxAttrs, be: WebGpuBackend): TensorInfo => {
    const x = inputs[0];
    checkF32(op, x);
    const ax = attrs.axis;
    const outer = sizeOf(x.shape.slice(0, ax)),
      n = x.shape[ax],
      inner = sizeOf(x.shape.slice(ax + 1));
    const o = be.out(x.shape, 'float32');
    if (o.data.size === 0) return o.info;
    const write = (v: string, mx: string, tot: string, bad: string) =>
      logOut
        ? `if (${bad}) { Y[q] = f32_nan(); } else if (is_inf(${v})) { Y[q] = ${v}; } else { Y[q] = (${v} - ${mx}) - log(${tot}); }`
        : `if (${bad}) { Y[q] = f32_nan(); } else { Y[q] = exp_s(${v} - ${mx}) * (1.0f / ${tot}); }`;
    let nW = 0,
      innerW = 0;
    const words = (u: Uniforms) => {
      nW = u.u(n);
      innerW = u.u(inner);
    };
    const io: Pick<Buf, 'name' | 'data'>[][] = [[{ name: 'X', data: gd(x) }], [{ name: 'Y', data: o.data }]];
    if (inner === 1 && n >= 64) {
      launchGroups(be, outer, {
        key: `${op}:row`,
        inputs: io[0],
        outputs: io[1],
        words,
        helpers: 'var<workgroup> sm: array<f32, WG>;\nvar<workgroup> sb: array<u32, WG>;',
        body: () => `let n = ${uw(nW)};
  let base = grp * n;
  var m = -f32_inf(); var bad = 0u;
  for (var j = lid; j < n; j = j + WG) { let v = X[base + j]; if (is_nan(v)) { bad = 1u; } else if (v > m) { m = v; } }
  sm[lid] = m; sb[lid] = bad;
  workgroupBarrier();
  for (var hs = WG / 2u; hs > 0u; hs = hs >> 1u) {
    if (lid < hs) { sm[lid] = max(sm[lid], sm[lid + hs]); sb[lid] = sb[lid] | sb[lid + hs]; }
    workgroupBarrier();
  }
  let mx = sm[0];
  let isBad = sb[0] != 0u || is_inf(mx);
  workgroupBarrier();
  var s = 0.0f;
  if (!isBad) { for (var j = lid; j < n; j = j + WG) { s = s + exp_s(X[base + j] - mx); } }
  sm[lid] = s;
  ${treeReduce('sm', (a, b) => `${a} + ${b}`)}
  let tot = sm[0];
  for (var j = lid; j < n; j = j + WG) { let q = base + j; let v = X[q]; ${write('v', 'mx', 'tot', 'isBad')} }`,
      });
      return o.info;
    }
    launch1d(be, outer * inner, {
      key: `${op}:lane`,
      inputs: io[0],
      outputs: io[1],
      words,
      body: () => `let n = ${uw(nW)}; let inner = ${uw(innerW)};
  let base = (idx / inner) * n * inner + idx % inner;
  var m = -f32_inf(); var bad = false;
  for (var j = 0u; j < n; j = j + 1u) { let v = X[base + j * inner]; if (is_nan(v)) { bad = true; } else if (v > m) { m = v; } }
  bad = bad || is_inf(m);
  var tot = 0.0f;
  if (!bad) { for (var j = 0u; j < n; j = j + 1u) { tot = tot + exp_s(X[base + j * inner] - m); } }
  for (var j = 0u; j < n; j = j + 1u) { let q = base + j * inner; let v = X[q]; ${write('v', 'm', 'tot', 'bad')} }`,
    });
    return o.info;
  };
}

export const softmaxKernels = {
  softmax: softmaxKernel(false),
  logSoftmax: softmaxKernel(true),
} satisfies Partial<GpuKernelTable>;
