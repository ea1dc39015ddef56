import type { GpuData, WebGpuBackend } from '../backend.js';
import { Uniforms, roDecl, rwDecl, uniformDecl, uw } from '../wgsl.js';

/*
 * A generator of implicit GEMMs: Y[m, n] = Σ_k A(m, k)·B(k, n) where A and B
 * are not matrices in memory but WGSL loaders (a strided read, a gather
 * through a convolution's taps, a product of CP factors, …). Nothing like an
 * im2col matrix is ever materialized.
 *
 * Each workgroup computes a BM×BN tile of Y; the K axis is walked in
 * BK-slices that the loaders stage into workgroup memory (out-of-range
 * elements load as 0); each thread keeps TM×TN accumulators in registers
 * (unrolled by the generator) for the rows ty + i·(BM/TM) and columns
 * tx + j·(BN/TN), so that consecutive threads touch consecutive columns in
 * workgroup memory and in the stores. Each operand loads either "k-fast"
 * (consecutive threads take consecutive k: contiguous when memory runs along
 * k) or "mn-fast" (consecutive threads take consecutive rows/columns). A
 * loader may split into a `setup` part that depends only on its row/column
 * and a `load` part per k; when every load slot of a thread has the same
 * row/column (mn-fast loads with a thread count that is a multiple of the
 * tile extent: the gathered operand of every convolution), the setup runs
 * once per thread, before the K loop. The slots are a loop, not unrolled:
 * small shaders compile much faster (software rasterizers compile with LLVM).
 *
 * Long reductions with few output tiles are split along K (split-K): each
 * workgroup of the grid's z axis reduces one chunk into a [chunks, M, N]
 * partial buffer, and a second kernel adds the chunks in order and runs the
 * store epilogue. Every dispatch binds at most 4 storage buffers (the
 * minimum of compatibility mode), and uniforms go in one block.
 */

export interface Tile {
  bm: number;
  bn: number;
  bk: number;
  tm: number;
  tn: number;
}

export interface Operand {
  /** Consecutive threads load consecutive k (true) or consecutive rows (A) / columns (B) (false). */
  kFast: boolean;
  /** WGSL statements run before the K loop for row/column `g` (u32, < extent); names it declares end in `s`. */
  setup?: (g: string, s: string) => string;
  /** WGSL statements that assign `v` (a `var v = 0.0f` declared before) for row/column `g` and reduction index `k` (both in range). */
  load: (g: string, k: string, s: string) => string;
}

export interface Binding {
  name: string;
  data: GpuData;
}

export interface GemmPlan {
  /** Pipeline key prefix: must determine every generated line except the tile (added here). */
  key: string;
  M: number;
  N: number;
  K: number;
  /** Appends the plan's uniform words (the same layout for every dispatch of one key). */
  words: (u: Uniforms) => void;
  /** WGSL helper functions (may read `prm`). */
  helpers?: string;
  /**
   * Per-k values shared by the loaders (e.g. a convolution tap's offsets):
   * each K-slice, BK threads decode them once into workgroup arrays
   * `kf_<name>`, which the loaders read as `kf_<name>[slK]` instead of
   * decoding k per element. `decode` gets `gk` (< K) and declares a `let`
   * per field.
   */
  kFields?: { names: string[]; type: 'i32' | 'u32'; decode: (k: string) => string };
  /** Read by the loaders. */
  loadInputs: Binding[];
  /** Read by the store epilogue (e.g. a bias). */
  epiInputs?: Binding[];
  /** The result; `store` writes it as `Y`. */
  out: GpuData;
  A: Operand;
  B: Operand;
  /** WGSL statements storing f32 `acc` at (m, n) (both in range) into `Y`. */
  store: (m: string, n: string, acc: string) => string;
  /** Split-K: allow it (default true when few tiles and a long K). */
  splitK?: boolean;
}

/**
 * Few shapes, so that few pipelines are compiled: square, short-and-wide
 * (few output channels: the first and last layers of a segmentation net,
 * 16–32-channel layers), tall-and-narrow, and small ones for tiny problems.
 */
const TILES: Tile[] = [
  { bm: 64, bn: 64, bk: 16, tm: 4, tn: 4 },
  { bm: 32, bn: 128, bk: 16, tm: 4, tn: 4 },
  { bm: 16, bn: 128, bk: 16, tm: 2, tn: 4 },
  { bm: 128, bn: 16, bk: 16, tm: 4, tn: 2 },
  { bm: 8, bn: 128, bk: 16, tm: 2, tn: 4 },
  { bm: 4, bn: 256, bk: 8, tm: 1, tn: 4 },
  { bm: 256, bn: 4, bk: 8, tm: 4, tn: 1 },
  { bm: 32, bn: 32, bk: 16, tm: 2, tn: 2 },
  { bm: 16, bn: 16, bk: 16, tm: 2, tn: 2 },
];

const threads = (t: Tile) => (t.bm / t.tm) * (t.bn / t.tn);

function fits(be: WebGpuBackend, t: Tile): boolean {
  const nt = threads(t);
  return (
    nt <= be.limits.maxInvocations &&
    nt <= be.limits.maxSizeX &&
    (t.bm + t.bn) * t.bk * 4 <= be.limits.maxWorkgroupStorage
  );
}

/**
 * The tile with the least estimated cost that this device can run. Per unit
 * of padded work (Mp·Np·K multiply-adds): 1 for the multiply-add,
 * (1/TM + 1/TN)/2 for the workgroup-memory reads that feed it, and
 * 8·(1/BM + 1/BN) for the global loads (gathers with index arithmetic, the
 * dominant cost of an implicit GEMM).
 */
export function pickTile(be: WebGpuBackend, M: number, N: number): Tile {
  let best: Tile | null = null,
    bestScore = Infinity;
  for (const t of TILES) {
    if (!fits(be, t)) continue;
    const padded = Math.ceil(M / t.bm) * t.bm * Math.ceil(N / t.bn) * t.bn;
    const score = padded * (1 + 0.5 * (1 / t.tm + 1 / t.tn) + 8 * (1 / t.bm + 1 / t.bn));
    if (score < bestScore) {
      best = t;
      bestScore = score;
    }
  }
  if (!best) throw new Error("webgpu: no GEMM tile fits this device's workgroup limits");
  return best;
}

/**
 * Which kernel configuration a device gets: the software one (llvmpipe,
 * lavapipe, SwiftShader: shaders compiled by LLVM for the CPU) or the GPU
 * one. Software adapters compile at the first dispatch, and loops with
 * constant trip counts get unrolled: there the load-slot and BK loops take
 * their bounds from the uniforms (same values), which halves the compile
 * time; GPUs get constant bounds (unrolled). Matmul (matmul.ts) and the
 * stride-1 convolutions (conv-soft.ts) also have software-only kernels.
 *
 * LARGO_WEBGPU_CONFIG=gpu (or the older LARGO_WEBGPU_UNROLL=1) forces the GPU
 * configuration, so that a software adapter tests it too;
 * LARGO_WEBGPU_CONFIG=software forces the software one (measuring).
 */
export function isSoftwareAdapter(be: WebGpuBackend): boolean {
  const env = typeof process !== 'undefined' ? process.env : undefined;
  const config = env?.LARGO_WEBGPU_CONFIG;
  if (config !== undefined && config !== '' && config !== 'gpu' && config !== 'software')
    throw new Error(`LARGO_WEBGPU_CONFIG must be 'gpu' or 'software' (or unset), got '${config}'`);
  if (config === 'gpu' || env?.LARGO_WEBGPU_UNROLL === '1') return false;
  if (config === 'software') return true;
  return /llvmpipe|lavapipe|softpipe|swiftshader/i.test(
    `${be.info.device} ${be.info.description} ${be.info.architecture}`,
  );
}

interface Words {
  M: number;
  N: number;
  K: number;
  RT: number;
  gx: number;
  chunk: number;
  slotsA: number;
  slotsB: number;
  bk: number;
}

/** WGSL of the tiled kernel. `w` holds the word indices appended by `gemm`. */
function gemmWgsl(p: GemmPlan, t: Tile, u: Uniforms, w: Words, split: boolean, soft: boolean): string {
  const nt = threads(t),
    TX = t.bn / t.tn,
    TY = t.bm / t.tm;
  const M = uw(w.M),
    N = uw(w.N),
    K = uw(w.K);
  const bound = (n: number, word: number) => (soft ? uw(word) : `${n}u`);
  const lines: string[] = [];
  const loop: string[] = [];
  for (const [name, op, ext, extW, orig] of [
    ['A', p.A, t.bm, M, 'row0'],
    ['B', p.B, t.bn, N, 'col0'],
  ] as const) {
    const slots = Math.ceil((ext * t.bk) / nt);
    const exact = (ext * t.bk) % nt === 0;
    const shared = !op.kFast && nt % ext === 0;
    const sm = name === 'A' ? 'As' : 'Bs';
    const slot = (l: string) =>
      [
        `let slE = lid + ${l} * ${nt}u;`,
        op.kFast
          ? `let slK = slE % ${t.bk}u; let slM = slE / ${t.bk}u;`
          : `let slM = slE % ${ext}u; let slK = slE / ${ext}u;`,
        `let slG = ${orig} + slM;`,
      ].join(' ');
    // The row/column index is clamped, so that a setup never decodes an out-of-range one (its loads are skipped anyway).
    const setup = op.setup
      ? `let slC${name} = min(slG, ${extW} - 1u);\n      ${op.setup(`slC${name}`, name)}`
      : `let slC${name} = min(slG, ${extW} - 1u);`;
    if (shared) {
      // Every slot of a thread has the same row/column: decode it once, before the K loop.
      lines.push(`let slC${name} = min(${orig} + lid % ${ext}u, ${extW} - 1u);`);
      if (op.setup) lines.push(op.setup(`slC${name}`, name));
    }
    // A loop over the thread's load slots (not unrolled: smaller shaders compile much faster on software rasterizers).
    loop.push(`for (var l = 0u; l < ${bound(slots, name === 'A' ? w.slotsA : w.slotsB)}; l = l + 1u) {
      ${slot('l')}
      ${exact ? '' : `if (slE >= ${ext * t.bk}u) { break; }`}
      ${shared ? '' : setup}
      let gk = k0 + slK;
      var v = 0.0f;
      if (slG < ${extW} && gk < kEnd) { ${op.load(`slC${name}`, 'gk', name)} }
      ${sm}[slK * ${ext}u + slM] = v;
    }`);
  }
  const acc: string[] = [],
    fma: string[] = [],
    aR: string[] = [],
    bR: string[] = [],
    st: string[] = [];
  for (let i = 0; i < t.tm; i++) aR.push(`let a${i} = As[kk * ${t.bm}u + ty + ${i * TY}u];`);
  for (let j = 0; j < t.tn; j++) bR.push(`let b${j} = Bs[kk * ${t.bn}u + tx + ${j * TX}u];`);
  for (let i = 0; i < t.tm; i++)
    for (let j = 0; j < t.tn; j++) {
      acc.push(`var c${i}_${j} = 0.0f;`);
      fma.push(`c${i}_${j} = c${i}_${j} + a${i} * b${j};`);
    }
  for (let i = 0; i < t.tm; i++) {
    for (let j = 0; j < t.tn; j++) {
      const m = `(row0 + ty + ${i * TY}u)`,
        n = `(col0 + tx + ${j * TX}u)`;
      const s = split ? `P[(wid.z * ${M} + m) * ${N} + n] = c${i}_${j};` : p.store('m', 'n', `c${i}_${j}`);
      st.push(`{ let m = ${m}; let n = ${n}; if (m < ${M} && n < ${N}) { ${s} } }`);
    }
  }
  let b = 0;
  const decl: string[] = [];
  for (const x of p.loadInputs) decl.push(roDecl(b++, x.name, 'f32'));
  if (!split) for (const x of p.epiInputs ?? []) decl.push(roDecl(b++, x.name, 'f32'));
  decl.push(rwDecl(b++, split ? 'P' : 'Y', 'f32'));
  return `${decl.join('')}${uniformDecl(b, u.vec4s)}
${p.helpers ?? ''}
${(p.kFields?.names ?? []).map((f) => `var<workgroup> kf_${f}: array<${p.kFields!.type}, ${t.bk}>;\n`).join('')}var<workgroup> As: array<f32, ${t.bm * t.bk}>;
var<workgroup> Bs: array<f32, ${t.bk * t.bn}>;
@compute @workgroup_size(${nt})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let wt = wid.y * ${uw(w.gx)} + wid.x;
  let rt = wt % ${uw(w.RT)};
  let ct = wt / ${uw(w.RT)};
  if (ct * ${t.bn}u >= ${N}) { return; }
  let row0 = rt * ${t.bm}u;
  let col0 = ct * ${t.bn}u;
  let kBegin = wid.z * ${uw(w.chunk)};
  let kEnd = min(${K}, kBegin + ${uw(w.chunk)});
  let tx = lid % ${TX}u;
  let ty = lid / ${TX}u;
  ${lines.join('\n  ')}
  ${acc.join(' ')}
  for (var k0 = kBegin; k0 < kEnd; k0 = k0 + ${t.bk}u) {
    ${
      p.kFields
        ? `if (lid < ${t.bk}u && k0 + lid < kEnd) {
      let gk = k0 + lid;
      ${p.kFields.decode('gk')}
      ${p.kFields.names.map((f) => `kf_${f}[lid] = ${f};`).join(' ')}
    }
    workgroupBarrier();`
        : ''
    }
    ${loop.join('\n    ')}
    workgroupBarrier();
    for (var kk = 0u; kk < ${bound(t.bk, w.bk)}; kk = kk + 1u) {
      ${aR.join(' ')}
      ${bR.join(' ')}
      ${fma.join(' ')}
    }
    workgroupBarrier();
  }
  ${st.join('\n  ')}
}`;
}

/** Bytes a split-K partial buffer may take. */
const MAX_PARTIAL = 64 << 20;

/** Runs the implicit GEMM of `p` (one or two dispatches). */
export function gemm(be: WebGpuBackend, p: GemmPlan): void {
  const { M, N, K } = p;
  if (M === 0 || N === 0) return;
  const t = pickTile(be, M, N);
  const RT = Math.ceil(M / t.bm),
    CT = Math.ceil(N / t.bn);
  const tiles = RT * CT;
  const [gx, gy] = be.grid(tiles);
  // Split-K when the tiles alone leave the GPU idle and each chunk keeps ≥ 256 k.
  let chunks = 1;
  if (p.splitK !== false && tiles < 128 && K >= 1024) {
    chunks = Math.min(Math.ceil(256 / tiles), Math.floor(K / 512), 64, be.limits.maxWorkgroupsPerDim);
    while (chunks > 1 && chunks * M * N * 4 > Math.min(MAX_PARTIAL, be.limits.maxBinding)) chunks--;
  }
  let chunk = Math.max(t.bk, Math.ceil(K / chunks / t.bk) * t.bk);
  chunks = Math.max(1, Math.ceil(K / chunk));
  if (K === 0) {
    chunk = 0;
    chunks = 1;
  }
  const split = chunks > 1;
  const u = new Uniforms();
  p.words(u);
  const nt = threads(t);
  const w: Words = {
    M: u.u(M),
    N: u.u(N),
    K: u.u(K),
    RT: u.u(RT),
    gx: u.u(gx),
    chunk: u.u(chunk),
    slotsA: u.u(Math.ceil((t.bm * t.bk) / nt)),
    slotsB: u.u(Math.ceil((t.bn * t.bk) / nt)),
    bk: u.u(t.bk),
  };
  const soft = isSoftwareAdapter(be);
  const tk = `${t.bm}x${t.bn}x${t.bk}/${t.tm}x${t.tn}:w${u.length}`;
  if (p.loadInputs.length + (p.epiInputs?.length ?? 0) + 1 > 4)
    throw new Error(`webgpu: ${p.key} would bind more than 4 storage buffers`);
  if (!split) {
    be.dispatch({
      key: `igemm:${p.key}:${tk}`,
      inputs: [...p.loadInputs.map((x) => x.data), ...(p.epiInputs ?? []).map((x) => x.data)],
      outputs: [p.out],
      uniforms: u,
      workgroups: [gx, gy, 1],
      wgsl: () => gemmWgsl(p, t, u, w, false, soft),
    });
    return;
  }
  const partial = be.alloc('float32', chunks * M * N);
  try {
    be.dispatch({
      key: `igemm:${p.key}:${tk}:split`,
      inputs: p.loadInputs.map((x) => x.data),
      outputs: [partial],
      uniforms: u,
      workgroups: [gx, gy, chunks],
      wgsl: () => gemmWgsl(p, t, u, w, true, soft),
    });
    // Finalize: Σ over chunks in order, then the store epilogue.
    const v = new Uniforms();
    p.words(v);
    const wg = be.wgSize;
    const total = M * N;
    const [fx, fy] = be.grid(Math.ceil(total / wg));
    const fw = { M: v.u(M), N: v.u(N), chunks: v.u(chunks), gx: v.u(fx) };
    let b = 0;
    const decl = [
      roDecl(b++, 'P', 'f32'),
      ...(p.epiInputs ?? []).map((x) => roDecl(b++, x.name, 'f32')),
      rwDecl(b++, 'Y', 'f32'),
    ].join('');
    be.dispatch({
      key: `igemm:${p.key}:finalize:w${v.length}`,
      inputs: [partial, ...(p.epiInputs ?? []).map((x) => x.data)],
      outputs: [p.out],
      uniforms: v,
      workgroups: [fx, fy],
      wgsl: () => `${decl}${uniformDecl(b, v.vec4s)}
${p.helpers ?? ''}
@compute @workgroup_size(${wg})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let idx = gid.y * (${uw(fw.gx)} * ${wg}u) + gid.x;
  let mn = ${uw(fw.M)} * ${uw(fw.N)};
  if (idx >= mn) { return; }
  var acc = 0.0f;
  for (var z = 0u; z < ${uw(fw.chunks)}; z = z + 1u) { acc = acc + P[z * mn + idx]; }
  let m = idx / ${uw(fw.N)};
  let n = idx % ${uw(fw.N)};
  ${p.store('m', 'n', 'acc')}
}`,
    });
  } finally {
    be.free(partial);
  }
}
