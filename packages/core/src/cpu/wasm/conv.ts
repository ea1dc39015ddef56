import type { TypedArray } from '../../dtype.js';
import { MR, NR, TAP_PANEL_STEP, WK, WO } from './kernels.js';
import type { WasmRuntime } from './runtime.js';
import { parallelFor } from './pool.js';

/**
 * 3-D convolution on the wasm kernels, as implicit GEMM with no im2col at
 * all. Each sample is copied into the arena zero-padded and split by W phase:
 * element w of a padded row goes to phase w mod sW at position ⌊w / sW⌋, so
 * the NR output voxels of a tile read NR consecutive floats for every tap,
 * whatever the stride or dilation. A tap is then one table entry (its byte
 * offset relative to the output row's origin), and the micro-kernel walks the
 * reduction axis (C·kd·kh·kw taps) through that table.
 *
 * Output rows are padded to whole tiles (oWpad = ⌈oW / NR⌉·NR); the padded
 * row of the input is made long enough that the extra voxels read zeros, and
 * their results are dropped when the output is copied back.
 */

export interface ConvGeom {
  N: number;
  C: number;
  O: number;
  D: number;
  H: number;
  W: number;
  kd: number;
  kh: number;
  kw: number;
  oD: number;
  oH: number;
  oW: number;
  sd: number;
  sh: number;
  sw: number;
  pd: number;
  ph: number;
  pw: number;
  dd: number;
  dh: number;
  dw: number;
}

interface Layout {
  Dp: number;
  Hp: number;
  Wq: number;
  rowLen: number;
  planeLen: number;
  chanLen: number;
  sampleLen: number;
  taps: number;
  Kc: number;
  tiles: number;
  oWpad: number;
  rows: number;
  rowD: number;
  rowH: number;
  yRow: number;
}

function layout(g: ConvGeom): Layout {
  const ext = (n: number, p: number, o: number, s: number, k: number, d: number) =>
    Math.max(n + 2 * p, o > 0 ? (o - 1) * s + (k - 1) * d + 1 : 0);
  const Dp = ext(g.D, g.pd, g.oD, g.sd, g.kd, g.dd),
    Hp = ext(g.H, g.ph, g.oH, g.sh, g.kh, g.dh);
  const Wp = ext(g.W, g.pw, g.oW, g.sw, g.kw, g.dw);
  const tiles = Math.ceil(g.oW / NR),
    oWpad = tiles * NR;
  const Wq = Math.max(Math.ceil(Wp / g.sw), oWpad + Math.floor(((g.kw - 1) * g.dw) / g.sw));
  const rowLen = g.sw * Wq,
    planeLen = Hp * rowLen,
    chanLen = Dp * planeLen;
  const taps = g.kd * g.kh * g.kw;
  return {
    Dp,
    Hp,
    Wq,
    rowLen,
    planeLen,
    chanLen,
    sampleLen: g.C * chanLen,
    taps,
    Kc: g.C * taps,
    tiles,
    oWpad,
    rows: g.oD * g.oH,
    rowD: 4 * g.sd * planeLen,
    rowH: 4 * g.sh * rowLen,
    yRow: 4 * oWpad,
  };
}

/** Byte offset of tap (c, a, b, e) in the padded, phase-split sample. */
function tapOffset(g: ConvGeom, L: Layout, c: number, a: number, b: number, e: number): number {
  const we = e * g.dw;
  return 4 * (c * L.chanLen + a * g.dd * L.planeLen + b * g.dh * L.rowLen + (we % g.sw) * L.Wq + Math.floor(we / g.sw));
}

let tapBuf = new Int32Array(64);
/** The tap table (k = c·taps + tap, the weight layout's order): byte offsets in the padded, phase-split sample, in a reused buffer. */
function tapTable(g: ConvGeom, L: Layout): Int32Array {
  if (tapBuf.length < L.Kc) tapBuf = new Int32Array(L.Kc);
  let k = 0;
  for (let c = 0; c < g.C; c++) {
    for (let a = 0; a < g.kd; a++)
      for (let b = 0; b < g.kh; b++) for (let e = 0; e < g.kw; e++) tapBuf[k++] = tapOffset(g, L, c, a, b, e);
  }
  return tapBuf;
}

/** Whether packSample writes the whole padded sample, zeros included (else the caller zeroes it once per call). */
function packWritesPadding(g: ConvGeom, x: TypedArray): boolean {
  return g.sw === 1 && x instanceof Float32Array;
}

/**
 * Copies sample n of x (NCDHW) into the padded, phase-split layout at byte
 * offset `Xp`. Stride 1 stages the sample in the arena with one memcpy at
 * `stage`, and the wasm `padRows` kernel writes every padded row, zeros
 * included (split over the threads when `work`, the convolution's
 * multiply-adds, is). Otherwise the padding must already be zero (it stays
 * zero: later samples of the same call overwrite only the interior), and
 * other strides scatter by W phase.
 */
function packSample(
  rt: WasmRuntime,
  x: TypedArray,
  n: number,
  g: ConvGeom,
  L: Layout,
  Xp: number,
  stage: number,
  work: number,
): void {
  const mem = rt.arena.f32();
  const len = g.C * g.D * g.H * g.W;
  let src = n * len;
  if (packWritesPadding(g, x)) {
    mem.set(x.subarray(src, src + len), stage >> 2);
    parallelFor(
      rt,
      'padRows',
      [stage, Xp, 0, 0, 4 * L.rowLen, L.Dp, L.Hp, g.pd, g.ph, g.pw, g.D, g.H, g.W],
      2,
      3,
      g.C * L.Dp * L.Hp,
      work,
    );
    return;
  }
  if (x instanceof Float32Array) {
    // Other strides: one strided copy per W phase (every sW-th float of a row to that phase's row).
    mem.set(x.subarray(src, src + len), stage >> 2);
    const sH = 4 * g.W;
    for (let p = 0; p < g.sw; p++) {
      const i0 = (((p - g.pw) % g.sw) + g.sw) % g.sw;
      if (i0 >= g.W) continue;
      rt.k.copyStrided(
        stage + 4 * i0,
        Xp + 4 * (g.pd * L.planeLen + g.ph * L.rowLen + p * L.Wq + Math.floor((i0 + g.pw) / g.sw)),
        Math.ceil((g.W - i0) / g.sw),
        g.C,
        g.D,
        g.H,
        sH * g.H * g.D,
        sH * g.H,
        sH,
        4 * L.chanLen,
        4 * L.planeLen,
        4 * L.rowLen,
        4 * g.sw,
        4,
        0,
        0,
      );
    }
    return;
  }
  const d0 = Xp >> 2,
    W = g.W;
  const to = phaseOffsets(g, L);
  for (let c = 0; c < g.C; c++) {
    for (let z = 0; z < g.D; z++) {
      for (let y = 0; y < g.H; y++) {
        const row = d0 + c * L.chanLen + (z + g.pd) * L.planeLen + (y + g.ph) * L.rowLen;
        for (let i = 0; i < W; i++) mem[row + to[i]] = x[src + i];
        src += W;
      }
    }
  }
}

let phaseBuf = new Int32Array(64);
/** Where element i of an input row sits in its padded, phase-split row (a reused buffer; no division per element). */
function phaseOffsets(g: ConvGeom, L: Layout): Int32Array {
  if (phaseBuf.length < g.W) phaseBuf = new Int32Array(g.W);
  for (let i = 0; i < g.W; i++) phaseBuf[i] = ((i + g.pw) % g.sw) * L.Wq + (((i + g.pw) / g.sw) | 0);
  return phaseBuf;
}

/**
 * Copies dy[n] ([O][oD·oH][oW]) into rows of oWpad floats ([oPad][rows][oWpad])
 * at byte offset DY, through a memcpy to `stage`; the padding (channels past
 * O, columns past oW) must already be zero and stays zero.
 */
function packDy(rt: WasmRuntime, dy: TypedArray, n: number, g: ConvGeom, L: Layout, DY: number, stage: number): void {
  const P = L.rows * g.oW;
  const mem = rt.arena.f32();
  const src = n * g.O * P;
  if (dy instanceof Float32Array) mem.set(dy.subarray(src, src + g.O * P), stage >> 2);
  else for (let i = 0; i < g.O * P; i++) mem[(stage >> 2) + i] = dy[src + i];
  rt.k.copyRows(stage, DY, g.oW, g.O, L.rows, 1, 4 * P, 4 * g.oW, 0, 4 * L.rows * L.oWpad, 4 * L.oWpad, 0, 0, 0);
}

let channelBlock = 0;
/** For tests: input channels per reduction block of the forward kernel (0: sized to L1). Not exported by the package. */
export function setConvChannelBlock(n: number): void {
  channelBlock = n;
}
/**
 * Input channels per reduction block of the forward kernel: as many as keep
 * one block's input rows (kd·kh rows per channel) within ~16 KiB of L1, next
 * to the A panel. The main job's small convolutions fit in one block.
 */
function convChannelBlock(g: ConvGeom, L: Layout): number {
  if (channelBlock > 0) return channelBlock;
  return Math.max(1, Math.floor(16384 / (g.kd * g.kh * L.rowLen * 4)));
}

/** y = conv3d(x, w) + bias, float32, on the wasm kernels. */
export function wasmConv3dForward(
  rt: WasmRuntime,
  x: TypedArray,
  w: TypedArray,
  bias: TypedArray | null,
  y: TypedArray,
  g: ConvGeom,
): void {
  const L = layout(g);
  const mP = Math.ceil(g.O / MR),
    Kc = L.Kc;
  const ar = rt.arena;
  ar.reset();
  const Wp = ar.alloc(mP * Kc * TAP_PANEL_STEP);
  const Xp = ar.alloc(L.sampleLen * 4),
    Y = ar.alloc(mP * MR * L.rows * L.oWpad * 4);
  const stage = ar.alloc(g.C * g.D * g.H * g.W * 4),
    B = ar.alloc(g.O * 4);
  const mem = ar.f32(),
    mi = ar.i32();
  // Weights as panels [mP][Kc][MR floats, tap offset], channels past O zero.
  const tab = tapTable(g, L);
  for (let m = 0; m < mP; m++) {
    let d = (Wp + m * Kc * TAP_PANEL_STEP) >> 2;
    for (let k = 0; k < Kc; k++) {
      for (let i = 0; i < MR; i++) {
        const o = m * MR + i;
        mem[d++] = o < g.O ? w[o * Kc + k] : 0;
      }
      mi[d++] = tab[k];
    }
  }
  if (bias) for (let o = 0; o < g.O; o++) mem[(B >> 2) + o] = bias[o];
  if (!packWritesPadding(g, x)) mem.fill(0, Xp >> 2, (Xp >> 2) + L.sampleLen);
  const ldY = L.rows * L.oWpad * 4;
  const P = L.rows * g.oW;
  const work = L.rows * g.O * Kc * L.oWpad;
  for (let n = 0; n < g.N; n++) {
    packSample(rt, x, n, g, L, Xp, stage, work);
    parallelFor(
      rt,
      'convForward',
      [Wp, Xp, Kc, Y, mP, 0, 0, g.oH, L.tiles, L.rowD, L.rowH, ldY, L.yRow, convChannelBlock(g, L) * L.taps],
      5,
      6,
      L.rows,
      work,
    );
    // Drop the tile padding of each row and add the bias, compacting Y in
    // place (each row moves down, rows in increasing order), then one memcpy.
    // Whole-tile rows and no bias: Y is already the output (and never −0:
    // the accumulators start at +0).
    if (bias || L.oWpad !== g.oW || ldY !== 4 * P)
      rt.k.copyRows(Y, Y, g.oW, g.O, L.rows, 1, ldY, L.yRow, 0, 4 * P, 4 * g.oW, 0, B, bias ? 1 : 0);
    y.set(ar.f32().subarray(Y >> 2, (Y >> 2) + g.O * P), n * g.O * P);
  }
}

/** dx = conv3d's input gradient (+ bias per input channel: the transposed convolution's forward). */
export function wasmConv3dGradInput(
  rt: WasmRuntime,
  dy: TypedArray,
  w: TypedArray,
  bias: TypedArray | null,
  dx: TypedArray,
  g: ConvGeom,
): void {
  const L = layout(g);
  const pPC = Math.ceil(L.taps / MR),
    Kc = L.Kc;
  const ar = rt.arena;
  ar.reset();
  const Wt = ar.alloc(g.C * pPC * MR * g.O * 4),
    kTab = ar.alloc(g.C * pPC * MR * 4);
  const DX = ar.alloc(L.sampleLen * 4),
    DY = ar.alloc(g.O * L.rows * L.oWpad * 4);
  const S = g.D * g.H * g.W;
  const stage = ar.alloc(Math.max(g.O * L.rows * g.oW, g.C * S) * 4),
    B = ar.alloc(g.C * 4);
  const mem = ar.f32(),
    mi = ar.i32();
  // Wᵀ panels: panel (c, q) holds taps q·MR + i of channel c as [O][MR]; taps past the end have zero weight.
  for (let c = 0; c < g.C; c++) {
    for (let q = 0; q < pPC; q++) {
      let d = (Wt >> 2) + (c * pPC + q) * g.O * MR;
      for (let o = 0; o < g.O; o++) {
        for (let i = 0; i < MR; i++) {
          const tap = q * MR + i;
          mem[d++] = tap < L.taps ? w[o * Kc + c * L.taps + tap] : 0;
        }
      }
    }
  }
  {
    let t = kTab >> 2;
    for (let c = 0; c < g.C; c++) {
      for (let q = 0; q < pPC * MR; q++) {
        if (q < L.taps) {
          const e = q % g.kw,
            b = ((q / g.kw) | 0) % g.kh,
            a = (q / (g.kw * g.kh)) | 0;
          mi[t++] = tapOffset(g, L, c, a, b, e);
        } else mi[t++] = tapOffset(g, L, c, 0, 0, 0);
      }
    }
  }
  const ldY = L.rows * L.oWpad * 4;
  if (bias) for (let c = 0; c < g.C; c++) mem[(B >> 2) + c] = bias[c];
  mem.fill(0, DY >> 2, (DY >> 2) + g.O * L.rows * L.oWpad);
  for (let n = 0; n < g.N; n++) {
    packDy(rt, dy, n, g, L, DY, stage);
    mem.fill(0, DX >> 2, (DX >> 2) + L.sampleLen);
    parallelFor(
      rt,
      'convGradInput',
      [Wt, DY, kTab, g.O, DX, 0, 0, pPC, L.rows, g.oH, L.tiles, L.rowD, L.rowH, ldY, L.yRow],
      5,
      6,
      g.C,
      L.rows * g.O * Kc * L.oWpad,
    );
    if (g.sw === 1) {
      const from = DX + 4 * (g.pd * L.planeLen + g.ph * L.rowLen + g.pw);
      const sH = 4 * g.W;
      rt.k.copyRows(
        from,
        stage,
        g.W,
        g.C,
        g.D,
        g.H,
        4 * L.chanLen,
        4 * L.planeLen,
        4 * L.rowLen,
        sH * g.H * g.D,
        sH * g.H,
        sH,
        B,
        bias ? 1 : 0,
      );
      dx.set(ar.f32().subarray(stage >> 2, (stage >> 2) + g.C * S), n * g.C * S);
      continue;
    }
    if (dx instanceof Float32Array) {
      // Other strides: gather each W phase's row back to every sW-th float of the dense row, then one memcpy.
      const sH = 4 * g.W;
      for (let p = 0; p < g.sw; p++) {
        const i0 = (((p - g.pw) % g.sw) + g.sw) % g.sw;
        if (i0 >= g.W) continue;
        rt.k.copyStrided(
          DX + 4 * (g.pd * L.planeLen + g.ph * L.rowLen + p * L.Wq + Math.floor((i0 + g.pw) / g.sw)),
          stage + 4 * i0,
          Math.ceil((g.W - i0) / g.sw),
          g.C,
          g.D,
          g.H,
          4 * L.chanLen,
          4 * L.planeLen,
          4 * L.rowLen,
          sH * g.H * g.D,
          sH * g.H,
          sH,
          4,
          4 * g.sw,
          B,
          bias ? 1 : 0,
        );
      }
      dx.set(ar.f32().subarray(stage >> 2, (stage >> 2) + g.C * S), n * g.C * S);
      continue;
    }
    const v = ar.f32(),
      src = phaseOffsets(g, L);
    let dst = n * g.C * S;
    for (let c = 0; c < g.C; c++) {
      const bc = bias ? bias[c] : 0;
      for (let z = 0; z < g.D; z++) {
        for (let yy = 0; yy < g.H; yy++) {
          const row = (DX >> 2) + c * L.chanLen + (z + g.pd) * L.planeLen + (yy + g.ph) * L.rowLen;
          for (let i = 0; i < g.W; i++) dx[dst + i] = v[row + src[i]] + bc;
          dst += g.W;
        }
      }
    }
  }
}

/** dw = Σ_n dy[n] ⋆ x[n], the weight gradient. */
export function wasmConv3dGradWeight(
  rt: WasmRuntime,
  x: TypedArray,
  dy: TypedArray,
  dw: TypedArray,
  g: ConvGeom,
): void {
  const L = layout(g);
  const Kc = L.Kc,
    kP = Math.ceil(Kc / WK),
    Kpad = kP * WK,
    oPad = Math.ceil(g.O / WO) * WO;
  const ar = rt.arena;
  ar.reset();
  const kTab = ar.alloc(Kpad * 4),
    DW = ar.alloc(oPad * Kpad * 4);
  const Xp = ar.alloc(L.sampleLen * 4),
    DY = ar.alloc(oPad * L.rows * L.oWpad * 4);
  const stage = ar.alloc(Math.max(g.C * g.D * g.H * g.W, g.O * L.rows * g.oW) * 4);
  const mem = ar.f32(),
    mi = ar.i32();
  mi.set(tapTable(g, L).subarray(0, Kc), kTab >> 2);
  mi.fill(0, (kTab >> 2) + Kc, (kTab >> 2) + Kpad);
  const ldY = L.rows * L.oWpad * 4;
  if (g.N === 0) mem.fill(0, DW >> 2, (DW >> 2) + oPad * Kpad);
  if (!packWritesPadding(g, x)) mem.fill(0, Xp >> 2, (Xp >> 2) + L.sampleLen);
  mem.fill(0, DY >> 2, (DY >> 2) + oPad * L.rows * L.oWpad);
  const work = L.rows * oPad * Kpad * L.oWpad;
  for (let n = 0; n < g.N; n++) {
    packSample(rt, x, n, g, L, Xp, stage, work);
    packDy(rt, dy, n, g, L, DY, stage);
    const acc = n > 0 ? 1 : 0;
    parallelFor(
      rt,
      'convGradWeight',
      [DY, Xp, kTab, DW, 0, 0, kP, Kpad, L.rows, g.oH, L.oWpad / 4, L.rowD, L.rowH, ldY, L.yRow, acc],
      4,
      5,
      oPad / WO,
      work,
      WO,
    );
  }
  const v = ar.f32();
  for (let o = 0; o < g.O; o++) {
    const s = (DW >> 2) + o * Kpad;
    for (let k = 0; k < Kc; k++) dw[o * Kc + k] = v[s + k];
  }
}
