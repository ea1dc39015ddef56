import type { GpuData, WebGpuBackend } from '../backend.js';
import { Uniforms, uniformDecl, uw, uwi } from '../wgsl.js';
import { launch1d } from './launch.js';

/*
 * A direct 3-D convolution for software adapters (llvmpipe, lavapipe,
 * SwiftShader), used instead of the implicit GEMM of igemm.ts for unit
 * stride and dilation when the rows of the input and the output are whole
 * vec4s (W and oW multiples of 4).
 *
 * Why a second kernel: software adapters run 8 invocations as one SIMD
 * batch, but every storage-buffer or workgroup-memory load is a loop over
 * the 8 lanes, one scalar read each (whatever the addresses), so the cost is
 * the number of load instructions. The implicit GEMM gathers each im2col
 * element with a scalar load (and stages it through workgroup memory, whose
 * reads cost the same), 16 loads per 64 multiply-adds. Here each invocation
 * computes TO output channels × TX consecutive output voxels of one row
 * (x-axis), walks the (c, a, b) window rows, and per window row loads the
 * TX + kw − 1 input values it needs as ⌈…/4⌉ aligned vec4s (shared by all
 * kw taps: the shifted vectors are swizzles of neighbouring loads) and the
 * kw × TO weights as vec4s along the output channels, from a copy of the
 * weights transposed to [C·kd·kh·kw, Op] (Op: O rounded up to TO, zeros).
 * With TO = 16, TX = 32 and kw = 3: 22 vec4 loads per 1536 multiply-adds
 * (rows of 32 or more voxels; TX = 16 below: 18 per 768). Measured on
 * llvmpipe (2-core VM), [1,32,32³]×[32,32,3³]: 16×32 blocks 0.56 s,
 * 16×16 0.87 s, 8×32 0.8 s, 16×8 and 32×8 1.2 s, the implicit GEMM 3.6 s;
 * 16×32 compiles in about 5 s (LLVM; once per pipeline, then Mesa's cache).
 * Out-of-volume window rows and vec4s are zeroed by a select (the address
 * is clamped), never branched around: masked branches do not skip work on
 * these adapters.
 *
 * The weight copy is a small dispatch (C·k³·Op elements) per call; the same
 * kernel computes the stride-1 gradient with respect to the input, a
 * convolution of dy with the flipped, channel-swapped weights (the copy
 * does the flip and swap) and padding k − 1 − p.
 *
 * GPUs keep the implicit GEMM (conv.ts): coalesced loads through workgroup
 * memory are what is fast there. LARGO_WEBGPU_CONFIG=gpu forces that
 * configuration on a software adapter too (tests run both).
 */

export interface DirectGeom {
  /** Batch, input channels and input volume (of this convolution: dy for the gradient). */
  N: number;
  C: number;
  D: number;
  H: number;
  W: number;
  /** Output channels and output volume. */
  O: number;
  oD: number;
  oH: number;
  oW: number;
  kd: number;
  kh: number;
  kw: number;
  /** Padding (non-negative). */
  pd: number;
  ph: number;
  pw: number;
}

/** Whether the direct kernel takes this geometry (unit stride and dilation are the caller's check). */
export function directFits(g: DirectGeom): boolean {
  return g.W % 4 === 0 && g.oW % 4 === 0 && g.kw <= 8 && g.pw <= 8 && g.N * g.C * g.D * g.H * g.W > 0;
}

/** Block overrides, for measuring: LARGO_CONV_SOFT_TILE=to,tx (forward, input gradient), LARGO_CONV_SOFT_GW_TILE=to,tc. */
const TILE_ENV = typeof process !== 'undefined' ? process.env?.LARGO_CONV_SOFT_TILE : undefined;
const GW_TILE_ENV = typeof process !== 'undefined' ? process.env?.LARGO_CONV_SOFT_GW_TILE : undefined;

function block(g: DirectGeom): { to: number; tx: number } {
  if (TILE_ENV) {
    const [to, tx] = TILE_ENV.split(',').map(Number) as [number, number];
    return { to, tx: Math.min(tx, g.oW) };
  }
  // Row blocks of 16 even for shorter rows (the extra voxels are masked): fewer pipelines to compile.
  return { to: g.O >= 16 ? 16 : g.O > 4 ? 8 : 4, tx: g.oW >= 32 ? 32 : 16 };
}

/**
 * Copies weights into the kernel's [C·kd·kh·kw, Op] layout: from [O, C, kd, kh, kw] (the forward), or with
 * `flip` from [C, O, kd, kh, kw] with the taps reversed (the input gradient, where C and O are swapped).
 */
export function prepareWeights(
  be: WebGpuBackend,
  w: GpuData,
  g: DirectGeom,
  flip: boolean,
): { data: GpuData; op: number; to: number } {
  const { to } = block(g);
  const op = Math.ceil(g.O / to) * to;
  const k3 = g.kd * g.kh * g.kw;
  const kc = g.C * k3;
  const data = be.alloc('float32', kc * op);
  let Wd!: Record<'op' | 'O' | 'C' | 'k3' | 'kd' | 'kh' | 'kw', string>;
  launch1d(be, kc * op, {
    key: `conv-soft-weights:${flip ? 'flip' : 'fwd'}`,
    inputs: [{ name: 'Wsrc', data: w }],
    outputs: [{ name: 'Wdst', data }],
    words: (u) => {
      const v = (x: number) => uw(u.u(x));
      Wd = { op: v(op), O: v(g.O), C: v(g.C), k3: v(k3), kd: v(g.kd), kh: v(g.kh), kw: v(g.kw) };
    },
    // Forward: source [O, C, kd, kh, kw]. Gradient: source [C', O', …] with C' = this O, O' = this C, taps flipped.
    body: () => `let o = idx % ${Wd.op}; let k = idx / ${Wd.op};
  var v = 0.0f;
  if (o < ${Wd.O}) {
    let c = k / ${Wd.k3}; let t = k % ${Wd.k3};
    ${
      flip
        ? `let a = t / (${Wd.kh} * ${Wd.kw}); let b = (t / ${Wd.kw}) % ${Wd.kh}; let e = t % ${Wd.kw};
    let tf = ((${Wd.kd} - 1u - a) * ${Wd.kh} + ${Wd.kh} - 1u - b) * ${Wd.kw} + ${Wd.kw} - 1u - e;
    v = Wsrc[(c * ${Wd.O} + o) * ${Wd.k3} + tf];`
        : `v = Wsrc[(o * ${Wd.C} + c) * ${Wd.k3} + t];`
    }
  }
  Wdst[idx] = v;`,
  });
  return { data, op, to };
}

const WG = 64;
/** Invocations the weight gradient aims for before it splits its reduction (llvmpipe: 8 per SIMD batch, a few batches per core). */
const SPLIT_TARGET = 128;

/** Y[N, O, oD, oH, oW] = conv(X, weights prepared by `prepareWeights`) (+ bias[o]). */
export function directConv(
  be: WebGpuBackend,
  x: GpuData,
  wt: { data: GpuData; op: number; to: number },
  bias: GpuData | null,
  out: GpuData,
  g: DirectGeom,
): void {
  const { tx } = block(g);
  const to = wt.to;
  const nX = Math.ceil(g.oW / tx);
  const total = g.N * g.oD * g.oH * nX;
  const [gx, gy] = be.grid(Math.ceil(total / WG));
  const nOB = Math.ceil(g.O / to);
  const u = new Uniforms();
  const v = (n: number) => uw(u.u(n));
  const G = {
    C: v(g.C),
    D: v(g.D),
    H: v(g.H),
    W4: v(g.W / 4),
    O: v(g.O),
    op4: v(wt.op / 4),
    oD: v(g.oD),
    oH: v(g.oH),
    oW: v(g.oW),
    kd: v(g.kd),
    kh: v(g.kh),
    pd: uwi(u.i(g.pd)),
    ph: uwi(u.i(g.ph)),
    nX: v(nX),
    total: v(total),
    gx: v(gx),
    hb: v(bias ? 1 : 0),
  };
  const { kw, pw } = g;
  const tv = tx / 4;
  // Loaded vec4s r = qLo..qHi relative to x0's vec4: input x = x0 + 4r + q.
  const qLo = Math.floor(-pw / 4),
    qHi = Math.floor((tx - 1 - pw + kw - 1) / 4);
  const pre: string[] = [],
    loads: string[] = [],
    fma: string[] = [],
    acc: string[] = [],
    st: string[] = [];
  const rn = (r: number) => (r < 0 ? `m${-r}` : `${r}`);
  for (let r = qLo; r <= qHi; r++) {
    pre.push(
      `let xq${rn(r)} = xq + ${r}; let ok${rn(r)} = u32(xq${rn(r)}) < ${G.W4}; let xc${rn(r)} = u32(clamp(xq${rn(r)}, 0, i32(${G.W4}) - 1));`,
    );
    loads.push(`let x${rn(r)} = select(vec4<f32>(0.0f), X[rb + xc${rn(r)}], rowOk && ok${rn(r)});`);
  }
  /** The input vec4 for output voxels 4j..4j+3 at tap e: elements at x0 + 4j + q − pw + e. */
  const xvec = (j: number, e: number) => {
    const off = 4 * j - pw + e;
    const parts: string[] = [];
    for (let q = 0; q < 4; q++) {
      const p = off + q;
      const r = Math.floor(p / 4);
      parts.push(`x${rn(r)}.${'xyzw'[p - 4 * r]}`);
    }
    if (((off % 4) + 4) % 4 === 0) return `x${rn(Math.floor(off / 4))}`;
    return `vec4<f32>(${parts.join(', ')})`;
  };
  for (let e = 0; e < kw; e++) {
    for (let gq = 0; gq < to / 4; gq++) loads.push(`let w${e}_${gq} = WT[wb + ${e}u * ${G.op4} + ${gq}u];`);
    for (let j = 0; j < tv; j++) {
      fma.push(`let v${e}_${j} = ${xvec(j, e)};`);
      for (let o = 0; o < to; o++) fma.push(`c${o}_${j} = c${o}_${j} + w${e}_${o >> 2}.${'xyzw'[o & 3]} * v${e}_${j};`);
    }
  }
  for (let o = 0; o < to; o++)
    for (let j = 0; j < tv; j++) {
      acc.push(`var c${o}_${j} = vec4<f32>(0.0f);`);
      st.push(
        `if (o0 + ${o}u < ${G.O} && x0 + ${4 * j}u < ${G.oW}) { Y[yb + ${o}u * ysO + ${j}u] = c${o}_${j} + bias(o0 + ${o}u); }`,
      );
    }
  be.dispatch({
    key: `conv-soft:${to}x${tx}:k${kw}p${pw}`,
    inputs: [x, wt.data, bias ?? wt.data],
    outputs: [out],
    uniforms: u,
    workgroups: [gx, gy, nOB],
    wgsl: () => `@group(0) @binding(0) var<storage, read> X: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> WT: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> Bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> Y: array<vec4<f32>>;
${uniformDecl(4, u.vec4s)}
fn bias(o: u32) -> vec4<f32> {
  if (${G.hb} != 0u) { return vec4<f32>(Bias[o]); }
  return vec4<f32>(0.0f);
}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let idx = (wid.y * ${G.gx} + wid.x) * ${WG}u + lid;
  if (idx >= ${G.total}) { return; }
  let o0 = wid.z * ${to}u;
  let xb = idx % ${G.nX};
  var rest = idx / ${G.nX};
  let oy = rest % ${G.oH};
  rest = rest / ${G.oH};
  let oz = rest % ${G.oD};
  let n = rest / ${G.oD};
  let x0 = xb * ${tx}u;
  let xq = i32(x0 / 4u);
  ${pre.join('\n  ')}
  ${acc.join(' ')}
  for (var c = 0u; c < ${G.C}; c = c + 1u) {
    for (var a = 0u; a < ${G.kd}; a = a + 1u) {
      let iz = i32(oz + a) - ${G.pd};
      for (var b = 0u; b < ${G.kh}; b = b + 1u) {
        let iy = i32(oy + b) - ${G.ph};
        let rowOk = u32(iz) < ${G.D} && u32(iy) < ${G.H};
        let zc = u32(clamp(iz, 0, i32(${G.D}) - 1));
        let yc = u32(clamp(iy, 0, i32(${G.H}) - 1));
        let rb = (((n * ${G.C} + c) * ${G.D} + zc) * ${G.H} + yc) * ${G.W4};
        let wb = (((c * ${G.kd} + a) * ${G.kh} + b) * ${kw}u) * ${G.op4} + o0 / 4u;
        ${loads.join('\n        ')}
        ${fma.join('\n        ')}
      }
    }
  }
  let ysO = ${G.oD} * ${G.oH} * ${G.oW} / 4u;
  let yb = (n * ${G.O} + o0) * ysO + ((oz * ${G.oH} + oy) * ${G.oW} + x0) / 4u;
  ${st.join('\n  ')}
}`,
  });
}

/**
 * The stride-1 weight gradient on software adapters: dW[o, c, a, b, e] =
 * Σ_{n, z, y, x} dy[n, o, z, y, x] · X[n, c, z + a − pd, y + b − ph, x + e − pw].
 * An invocation owns TO output channels × TC input channels × the kw taps of
 * one (a, b) and walks the output rows in vec4 chunks of x: per chunk TO dy
 * vec4s and, per input channel, the few aligned vec4s that the kw shifted
 * windows need (TO + TC·⌈(kw + 3)/4⌉ loads for TO·TC·kw 4-term dot
 * products; TO = 16 and TC = 8, fewer for 8 or 4 channels or fewer). When
 * that leaves fewer than 128 invocations (few channels), the (n, z) output
 * rows split into slabs, each summed into a partial buffer, and a second
 * pass adds the slabs in order (deterministic). Measured on llvmpipe (2-core
 * VM, ms for [2,16,32³]×[16,16,3³] / [1,32,16³]×[64,32,3³] /
 * [1,32,32³]×[32,32,3³]): 16×8 blocks 190 / 111 / 380, 8×8 286 / 151 / 594,
 * 8×16 254 / 131 / 513, 32×8 564 / 160 / 573, 16×16 324 / 167 / 838; the
 * implicit GEMM took 829 ms on the second (before this kernel). The implicit GEMM
 * (split-K over the voxels) stays the GPU configuration. `g` is the forward
 * geometry (X → dy).
 */
export function directGradWeight(be: WebGpuBackend, x: GpuData, dy: GpuData, out: GpuData, g: DirectGeom): void {
  const [to, tc] = GW_TILE_ENV
    ? (GW_TILE_ENV.split(',').map(Number) as [number, number])
    : [g.O <= 4 ? 4 : g.O <= 8 ? 8 : 16, g.C <= 4 ? 4 : 8];
  const nCB = Math.ceil(g.C / tc),
    nOB = Math.ceil(g.O / to);
  // Few invocations (few channels): the (n, z) rows split into S slabs summed by a second pass, in slab order.
  const rows = g.N * g.oD;
  const per = Math.ceil(rows / Math.max(1, Math.min(rows, Math.ceil(SPLIT_TARGET / (nOB * nCB * g.kd * g.kh)))));
  const slabs = Math.ceil(rows / per);
  const total = nOB * nCB * g.kd * g.kh * slabs;
  const size = g.O * g.C * g.kd * g.kh * g.kw;
  const dst = slabs > 1 ? be.alloc('float32', slabs * size) : out;
  const wg = 8;
  const [gx, gy] = be.grid(Math.ceil(total / wg));
  const u = new Uniforms();
  const v = (n: number) => uw(u.u(n));
  const G = {
    N: v(g.N),
    C: v(g.C),
    D: v(g.D),
    H: v(g.H),
    W4: v(g.W / 4),
    O: v(g.O),
    oD: v(g.oD),
    oH: v(g.oH),
    oW4: v(g.oW / 4),
    kd: v(g.kd),
    kh: v(g.kh),
    pd: uwi(u.i(g.pd)),
    ph: uwi(u.i(g.ph)),
    nCB: v(nCB),
    nSlab: v(slabs),
    total: v(total),
    gx: v(gx),
    rows: v(rows),
    per: v(per),
    size: v(size),
  };
  const { kw, pw } = g;
  const qLo = Math.floor(-pw / 4),
    qHi = Math.floor((3 - pw + kw - 1) / 4);
  const rn = (r: number) => (r < 0 ? `m${-r}` : `${r}`);
  const pre: string[] = [],
    body: string[] = [],
    acc: string[] = [],
    st: string[] = [];
  for (let r = qLo; r <= qHi; r++)
    pre.push(
      `let ok${rn(r)} = rowOk && u32(i32(q) + ${r}) < ${G.W4}; let xc${rn(r)} = u32(clamp(i32(q) + ${r}, 0, i32(${G.W4}) - 1));`,
    );
  const offs: string[] = [];
  // channels past C / O read a clamped (valid) channel; their sums are never stored
  for (let o = 0; o < to; o++) offs.push(`let do${o} = min(o0 + ${o}u, ${G.O} - 1u) * dyO;`);
  for (let c = 0; c < tc; c++) offs.push(`let xo${c} = min(c0 + ${c}u, ${G.C} - 1u) * xC;`);
  for (let o = 0; o < to; o++) body.push(`let d${o} = DY[dyb + do${o} + q];`);
  for (let c = 0; c < tc; c++) {
    for (let r = qLo; r <= qHi; r++)
      body.push(`let x${c}_${rn(r)} = select(vec4<f32>(0.0f), X[xb + xo${c} + xc${rn(r)}], ok${rn(r)});`);
    for (let e = 0; e < kw; e++) {
      const parts: string[] = [];
      for (let t = 0; t < 4; t++) {
        const p = t - pw + e;
        const r = Math.floor(p / 4);
        parts.push(`x${c}_${rn(r)}.${'xyzw'[p - 4 * r]}`);
      }
      const off = e - pw;
      const xv = ((off % 4) + 4) % 4 === 0 ? `x${c}_${rn(Math.floor(off / 4))}` : `vec4<f32>(${parts.join(', ')})`;
      body.push(`let s${c}_${e} = ${xv};`);
      for (let o = 0; o < to; o++) body.push(`c${o}_${c}_${e} = c${o}_${c}_${e} + dot(d${o}, s${c}_${e});`);
    }
  }
  for (let o = 0; o < to; o++)
    for (let c = 0; c < tc; c++)
      for (let e = 0; e < kw; e++) {
        acc.push(`var c${o}_${c}_${e} = 0.0f;`);
        st.push(
          `if (o0 + ${o}u < ${G.O} && c0 + ${c}u < ${G.C}) { Y[slab * ${G.size} + (((o0 + ${o}u) * ${G.C} + c0 + ${c}u) * ${G.kd} + a) * ${G.kh} * ${kw}u + b * ${kw}u + ${e}u] = c${o}_${c}_${e}; }`,
        );
      }
  be.dispatch({
    key: `conv-soft-gw:${to}x${tc}:k${kw}p${pw}`,
    inputs: [x, dy],
    outputs: [dst],
    uniforms: u,
    workgroups: [gx, gy],
    wgsl: () => `@group(0) @binding(0) var<storage, read> X: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> DY: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;
${uniformDecl(3, u.vec4s)}
@compute @workgroup_size(${wg})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let idx = (wid.y * ${G.gx} + wid.x) * ${wg}u + lid;
  if (idx >= ${G.total}) { return; }
  let b = idx % ${G.kh};
  var rest = idx / ${G.kh};
  let a = rest % ${G.kd};
  rest = rest / ${G.kd};
  let c0 = (rest % ${G.nCB}) * ${tc}u;
  rest = rest / ${G.nCB};
  let slab = rest % ${G.nSlab};
  let o0 = (rest / ${G.nSlab}) * ${to}u;
  let r0 = slab * ${G.per};
  let r1 = min(${G.rows}, r0 + ${G.per});
  let xC = ${G.D} * ${G.H} * ${G.W4};
  let dyO = ${G.oD} * ${G.oH} * ${G.oW4};
  ${offs.join(' ')}
  ${acc.join(' ')}
  for (var r = r0; r < r1; r = r + 1u) {
    {
      let n = r / ${G.oD};
      let z = r % ${G.oD};
      let iz = i32(z + a) - ${G.pd};
      for (var y = 0u; y < ${G.oH}; y = y + 1u) {
        let iy = i32(y + b) - ${G.ph};
        let rowOk = u32(iz) < ${G.D} && u32(iy) < ${G.H};
        let zc = u32(clamp(iz, 0, i32(${G.D}) - 1));
        let yc = u32(clamp(iy, 0, i32(${G.H}) - 1));
        let xb = n * ${G.C} * xC + (zc * ${G.H} + yc) * ${G.W4};
        let dyb = n * ${G.O} * dyO + (z * ${G.oH} + y) * ${G.oW4};
        for (var q = 0u; q < ${G.oW4}; q = q + 1u) {
          ${pre.join('\n          ')}
          ${body.join('\n          ')}
        }
      }
    }
  }
  ${st.join('\n  ')}
}`,
  });
  if (slabs === 1) return;
  try {
    let S!: Record<'slabs' | 'size', string>;
    launch1d(be, size, {
      key: 'conv-soft-gw-sum',
      inputs: [{ name: 'P', data: dst }],
      outputs: [{ name: 'Y', data: out }],
      words: (u2) => {
        S = { slabs: uw(u2.u(slabs)), size: uw(u2.u(size)) };
      },
      body: () => `var s = 0.0f;
  for (var k = 0u; k < ${S.slabs}; k = k + 1u) { s = s + P[k * ${S.size} + idx]; }
  Y[idx] = s;`,
    });
  } finally {
    be.free(dst);
  }
}
