import { registerKernel } from '@largo/core';
import { isSoftwareAdapter } from './igemm.js';
import type { GpuData, WebGpuBackend, GpuKernel, GpuKernelTable } from '../backend.js';
import {
  Uniforms,
  broadcastStridesOf,
  collapse,
  offsetsCode,
  roDecl,
  rwDecl,
  uniformDecl,
  uw,
  wtype,
} from '../wgsl.js';

/*
 * Tiled matrix product Y[z] = op(A[z]) · op(B[z]) for [..., M, K] × [..., K, N]
 * with broadcast batch axes. Each workgroup computes a BM×BN tile of Y; the
 * K axis is walked in BK-slices staged in workgroup memory; each thread keeps
 * a TM×TN block of accumulators in registers (unrolled by the generator), so
 * every value read from workgroup memory feeds TM or TN multiply-adds.
 * Transposes are a choice of index order in the tile loads (no transposed
 * copy); loads are ordered so that consecutive threads read consecutive
 * addresses in both layouts. Out-of-range elements load as 0, so any M, N, K
 * works. Batches go on the z axis of the grid.
 */

interface Tile {
  bm: number;
  bn: number;
  bk: number;
  tm: number;
  tn: number;
}

/**
 * Tiles by adapter kind. GPUs: 64×64 tiles, 256 threads of 4×4 outputs.
 * Software adapters (llvmpipe) run a workgroup as SIMD batches of
 * invocations with every barrier a context switch: 64 threads of 8×8 outputs
 * and BK = 8 do twice the multiply-adds per workgroup-memory read and a
 * quarter of the thread switches, measured 1.5× faster on 1024³ (llvmpipe,
 * 2-core VM). LARGO_MATMUL_TILE=bm,bn,bk,tm,tn overrides both (measuring).
 */
const TILE_OVERRIDE = typeof process !== 'undefined' ? process.env?.LARGO_MATMUL_TILE : undefined;

function pickTile(be: WebGpuBackend, M: number, N: number): Tile {
  if (TILE_OVERRIDE) {
    const [bm, bn, bk, tm, tn] = TILE_OVERRIDE.split(',').map(Number) as [number, number, number, number, number];
    return { bm, bn, bk, tm, tn };
  }
  const big: Tile = isSoftwareAdapter(be)
    ? { bm: 64, bn: 64, bk: 8, tm: 8, tn: 8 }
    : { bm: 64, bn: 64, bk: 16, tm: 4, tn: 4 };
  const small: Tile = { bm: 32, bn: 32, bk: 16, tm: 4, tn: 4 };
  const fits = (t: Tile) => {
    const tx = t.bn / t.tn,
      ty = t.bm / t.tm;
    return (
      tx * ty <= be.limits.maxInvocations &&
      tx <= be.limits.maxSizeX &&
      ty <= be.limits.maxSizeY &&
      (t.bm + t.bn) * t.bk * 4 <= be.limits.maxWorkgroupStorage
    );
  };
  if (M > 32 && N > 32 && fits(big)) return big;
  if (fits(small)) return small;
  return { bm: 16, bn: 16, bk: 16, tm: 2, tn: 2 };
}

function matmulWgsl(
  t: Tile,
  tA: boolean,
  tB: boolean,
  batchRank: number,
  u: Uniforms,
  w: { M: number; N: number; K: number; zBase: number; shapeAt: number; aAt: number; bAt: number },
): string {
  const tx = t.bn / t.tn,
    ty = t.bm / t.tm,
    nt = tx * ty;
  const M = uw(w.M),
    N = uw(w.N),
    K = uw(w.K);
  const la = (t.bm * t.bk) / nt,
    lb = (t.bk * t.bn) / nt;
  // A tile As[m·BK + k]: row-major A reads along k (k fastest), transposed A along m.
  const aIdx = tA ? `let m = e % ${t.bm}u; let kk = e / ${t.bm}u;` : `let m = e / ${t.bk}u; let kk = e % ${t.bk}u;`;
  const aAddr = tA ? `gk * ${M} + gm` : `gm * ${K} + gk`;
  const bIdx = tB ? `let kk = e % ${t.bk}u; let n = e / ${t.bk}u;` : `let kk = e / ${t.bn}u; let n = e % ${t.bn}u;`;
  const bAddr = tB ? `gn * ${K} + gk` : `gk * ${N} + gn`;
  const accDecl: string[] = [],
    fma: string[] = [],
    store: string[] = [];
  for (let i = 0; i < t.tm; i++)
    for (let j = 0; j < t.tn; j++) {
      accDecl.push(`var c${i}_${j} = 0.0f;`);
      fma.push(`c${i}_${j} = c${i}_${j} + a${i} * b${j};`);
      store.push(`if (r${i} < ${M} && q${j} < ${N}) { Y[yOff + r${i} * ${N} + q${j}] = c${i}_${j}; }`);
    }
  const aRegs = Array.from({ length: t.tm }, (_, i) => `let a${i} = As[(ty * ${t.tm}u + ${i}u) * ${t.bk}u + kk];`).join(
    ' ',
  );
  const bRegs = Array.from({ length: t.tn }, (_, j) => `let b${j} = Bs[kk * ${t.bn}u + tx * ${t.tn}u + ${j}u];`).join(
    ' ',
  );
  const rows = Array.from({ length: t.tm }, (_, i) => `let r${i} = row0 + ty * ${t.tm}u + ${i}u;`).join(' ');
  const cols = Array.from({ length: t.tn }, (_, j) => `let q${j} = col0 + tx * ${t.tn}u + ${j}u;`).join(' ');
  return `${roDecl(0, 'A', 'f32')}${roDecl(1, 'B', 'f32')}${rwDecl(2, 'Y', 'f32')}${uniformDecl(3, u.vec4s)}
var<workgroup> As: array<f32, ${t.bm * t.bk}>;
var<workgroup> Bs: array<f32, ${t.bk * t.bn}>;
@compute @workgroup_size(${tx}, ${ty}, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid3: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let z = wid.z + ${uw(w.zBase)};
  ${offsetsCode(
    batchRank,
    w.shapeAt,
    [
      { name: 'aOff', at: w.aAt },
      { name: 'bOff', at: w.bAt },
    ],
    'z',
  )}
  let yOff = z * ${M} * ${N};
  let row0 = wid.y * ${t.bm}u;
  let col0 = wid.x * ${t.bn}u;
  let tx = lid3.x;
  let ty = lid3.y;
  ${accDecl.join(' ')}
  for (var k0 = 0u; k0 < ${K}; k0 = k0 + ${t.bk}u) {
    for (var l = 0u; l < ${la}u; l = l + 1u) {
      let e = lid + l * ${nt}u;
      ${aIdx}
      let gm = row0 + m; let gk = k0 + kk;
      var v = 0.0f;
      if (gm < ${M} && gk < ${K}) { v = A[aOff + ${aAddr}]; }
      As[m * ${t.bk}u + kk] = v;
    }
    for (var l = 0u; l < ${lb}u; l = l + 1u) {
      let e = lid + l * ${nt}u;
      ${bIdx}
      let gk = k0 + kk; let gn = col0 + n;
      var v = 0.0f;
      if (gk < ${K} && gn < ${N}) { v = B[bOff + ${bAddr}]; }
      Bs[kk * ${t.bn}u + n] = v;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < ${t.bk}u; kk = kk + 1u) {
      ${aRegs}
      ${bRegs}
      ${fma.join(' ')}
    }
    workgroupBarrier();
  }
  ${rows}
  ${cols}
  ${store.join('\n  ')}
}`;
}

/*
 * The software-adapter kernel (llvmpipe, lavapipe, SwiftShader). These run
 * 8 invocations as one SIMD batch, but every storage or workgroup-memory
 * load is a loop over the 8 lanes (one scalar read each, whatever the
 * addresses), so the cost is the number of load instructions, not the
 * bytes: what pays is many multiply-adds per loaded value and vec4 loads
 * (one lane loop for 4 values). Workgroup memory is no faster than a
 * storage buffer there and every barrier switches coroutines, so this
 * kernel stages nothing: each invocation reads its operands straight from
 * the storage buffers as vec4 (along k, m or n, whichever is contiguous)
 * and keeps a TM×TN block of outputs (up to 16×16) in registers: TM + TN
 * vec4 loads feed 4·TM·TN multiply-adds per 4 k. Measured on llvmpipe
 * (2-core VM), 1024³: 16×16 blocks ≈ 3× faster than the tiled kernel's
 * best software tile (64 threads of 8×8, BK = 8); 32×16 and 16×32 compile
 * 3× slower and run slower (register spills). Needs M, N, K multiples of
 * 4 (vec4 rows); other shapes take the tiled kernel.
 */
interface Block {
  tm: number;
  tnv: number;
}

function softBlock(M: number, N: number): Block {
  return { tm: M >= 16 ? 16 : M > 4 ? 8 : 4, tnv: N >= 16 ? 4 : N > 4 ? 2 : 1 };
}

const SOFT_WG = [8, 8] as const;

function matmulSoftWgsl(
  bl: Block,
  tA: boolean,
  tB: boolean,
  batchRank: number,
  u: Uniforms,
  w: { M: number; N: number; K: number; zBase: number; shapeAt: number; aAt: number; bAt: number },
): string {
  const M = uw(w.M),
    N = uw(w.N),
    K = uw(w.K);
  const { tm, tnv } = bl;
  const tn = 4 * tnv;
  const L: string[] = [];
  // a(i, kk): A at row m0 + i, reduction index k + kk; b(kk, j): B at k + kk, column n0 + 4j .. n0 + 4j + 3 (a vec4).
  let a: (i: number, kk: number) => string;
  let b: (kk: number, j: number) => string;
  if (!tA) {
    // rows clamped: out-of-range rows compute garbage that is never stored
    for (let i = 0; i < tm; i++) L.push(`let a${i} = A[(aOff + min(m0 + ${i}u, ${M} - 1u) * ${K} + k) >> 2u];`);
    a = (i, kk) => `a${i}.${'xyzw'[kk]}`;
  } else {
    for (let kk = 0; kk < 4; kk++)
      for (let g = 0; g < tm / 4; g++)
        L.push(`let a${kk}_${g} = A[(aOff + (k + ${kk}u) * ${M} + min(m0 + ${4 * g}u, ${M} - 4u)) >> 2u];`);
    a = (i, kk) => `a${kk}_${i >> 2}.${'xyzw'[i & 3]}`;
  }
  if (!tB) {
    for (let kk = 0; kk < 4; kk++)
      for (let j = 0; j < tnv; j++)
        L.push(`let b${kk}_${j} = B[(bOff + (k + ${kk}u) * ${N} + min(n0 + ${4 * j}u, ${N} - 4u)) >> 2u];`);
    b = (kk, j) => `b${kk}_${j}`;
  } else {
    for (let n = 0; n < tn; n++) L.push(`let b${n} = B[(bOff + min(n0 + ${n}u, ${N} - 1u) * ${K} + k) >> 2u];`);
    b = (kk, j) => `vec4<f32>(${[0, 1, 2, 3].map((q) => `b${4 * j + q}.${'xyzw'[kk]}`).join(', ')})`;
  }
  const fma: string[] = [];
  for (let kk = 0; kk < 4; kk++) {
    for (let j = 0; j < tnv; j++) {
      if (tB) fma.push(`let bv${kk}_${j} = ${b(kk, j)};`);
      for (let i = 0; i < tm; i++)
        fma.push(`c${i}_${j} = c${i}_${j} + ${a(i, kk)} * ${tB ? `bv${kk}_${j}` : b(kk, j)};`);
    }
  }
  const acc: string[] = [],
    st: string[] = [];
  for (let i = 0; i < tm; i++)
    for (let j = 0; j < tnv; j++) {
      acc.push(`var c${i}_${j} = vec4<f32>(0.0f);`);
      st.push(
        `if (m0 + ${i}u < ${M} && n0 + ${4 * j}u < ${N}) { Y[(yOff + (m0 + ${i}u) * ${N} + n0 + ${4 * j}u) >> 2u] = c${i}_${j}; }`,
      );
    }
  const v4 = (bnd: number, name: string, rw: boolean) =>
    `@group(0) @binding(${bnd}) var<storage, ${rw ? 'read_write' : 'read'}> ${name}: array<vec4<f32>>;\n`;
  return `${v4(0, 'A', false)}${v4(1, 'B', false)}${v4(2, 'Y', true)}${uniformDecl(3, u.vec4s)}
@compute @workgroup_size(${SOFT_WG[0]}, ${SOFT_WG[1]}, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let z = wid.z + ${uw(w.zBase)};
  ${offsetsCode(
    batchRank,
    w.shapeAt,
    [
      { name: 'aOff', at: w.aAt },
      { name: 'bOff', at: w.bAt },
    ],
    'z',
  )}
  let yOff = z * ${M} * ${N};
  let n0 = gid.x * ${tn}u;
  let m0 = gid.y * ${tm}u;
  if (n0 >= ${N} || m0 >= ${M}) { return; }
  ${acc.join(' ')}
  for (var k = 0u; k < ${K}; k = k + 4u) {
    ${L.join('\n    ')}
    ${fma.join('\n    ')}
  }
  ${st.join('\n  ')}
}`;
}

const matmulKernel: GpuKernel<'matmul'> = (inputs, attrs, be) => {
  const [a, b] = inputs;
  if (wtype(a.dtype, 'matmul') !== 'f32' || b.dtype !== a.dtype)
    throw new Error(`matmul: the webgpu kernel takes float32 operands, got ${a.dtype} and ${b.dtype}`);
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
  const batchA = a.shape.slice(0, ra - 2),
    batchB = b.shape.slice(0, rb - 2);
  const nb = Math.max(batchA.length, batchB.length);
  const batch = new Array<number>(nb).fill(1);
  for (const s of [batchA, batchB])
    s.forEach((d, i) => {
      if (d !== 1) batch[i + nb - s.length] = d;
    });
  const o = be.out([...batch, M, N], 'float32');
  const nBatch = batch.reduce((p, d) => p * d, 1);
  if (M * N * nBatch === 0) return o.info;
  const soft = isSoftwareAdapter(be) && !TILE_OVERRIDE && M % 4 === 0 && N % 4 === 0 && K % 4 === 0;
  const t = pickTile(be, M, N);
  const bl = softBlock(M, N);
  const gx = soft ? Math.ceil(N / (4 * bl.tnv) / SOFT_WG[0]) : Math.ceil(N / t.bn),
    gy = soft ? Math.ceil(M / bl.tm / SOFT_WG[1]) : Math.ceil(M / t.bm);
  const maxZ = be.limits.maxWorkgroupsPerDim;
  if (gx > maxZ || gy > maxZ) throw new Error(`matmul: [${M}, ${N}] output exceeds the dispatch limit of this device`);
  const sa = batchA.length ? broadcastStridesOf(batchA, batch).map((s) => s * aR * aC) : [];
  const sb = batchB.length ? broadcastStridesOf(batchB, batch).map((s) => s * bR * bC) : [];
  const c = collapse(batch, [batch.map((_, i) => sa[i] ?? 0), batch.map((_, i) => sb[i] ?? 0)]);
  const batchRank = c.shape.length;
  for (let z0 = 0; z0 < nBatch; z0 += maxZ) {
    const u = new Uniforms();
    const w = {
      M: u.u(M),
      N: u.u(N),
      K: u.u(K),
      zBase: u.u(z0),
      shapeAt: u.us(c.shape),
      aAt: u.us(c.strides[0]),
      bAt: u.us(c.strides[1]),
    };
    be.dispatch({
      key: soft
        ? `matmul-soft:${tA ? 'T' : 'N'}${tB ? 'T' : 'N'}:${bl.tm}x${bl.tnv}:b${batchRank}`
        : `matmul:${tA ? 'T' : 'N'}${tB ? 'T' : 'N'}:${t.bm}x${t.bn}x${t.bk}/${t.tm}x${t.tn}:b${batchRank}`,
      inputs: [a.dataId as GpuData, b.dataId as GpuData],
      outputs: [o.data],
      uniforms: u,
      workgroups: [gx, gy, Math.min(maxZ, nBatch - z0)],
      wgsl: () => (soft ? matmulSoftWgsl(bl, tA, tB, batchRank, u, w) : matmulWgsl(t, tA, tB, batchRank, u, w)),
    });
  }
  return o.info;
};

export const matmulKernels = {
  matmul: matmulKernel,
} satisfies Partial<GpuKernelTable>;
