import { assemble, Fn, type Local } from './encode.js';
import { bceGradFn, bceSumFn, ewBinaryFn, leakyReluFn, leakyReluGradFn } from './kernels-pointwise.js';
import {
  copyRowsFn,
  padRowsFn,
  copyStridedFn,
  cpGradFn,
  khatriRaoFn,
  inormApplyFn,
  inormGradApplyFn,
  inormGradStatsFn,
  inormStatsFn,
} from './kernels-rows.js';

/**
 * The f32x4 SIMD kernels, written with the emitter in encode.ts. All pointers
 * are byte offsets into the one linear memory; all strides are in bytes.
 *
 * The heart is one register-blocked micro-kernel (`tile`): an MR × (4·NV)
 * block of C held in MR·NV f32x4 accumulators, updated once per reduction
 * step k with MR broadcast loads of A and NV vector loads of B. A is always a
 * packed panel ([K][MR] floats, contiguous); B rows are found either at a
 * fixed stride (packed GEMM panels, grad-input's dy) or through a table of
 * offsets (convolution taps read straight from the padded input: implicit
 * GEMM with no im2col at all). 4 × 8 keeps 8 accumulators + 2 B vectors + 1
 * broadcast in 11 of the 16 xmm registers V8 has on x86-64.
 * (Over 500 lines on purpose: every kernel of the one wasm module is emitted
 * here around the shared micro-tile, so the module's layout is read in one place.)
 */
export const MR = 4;
export const NV = 2;
export const NR = 4 * NV;

/** Grad-weight tile: WO output channels × WK taps, each a 4-lane partial sum over voxels. */
export const WO = 2;
export const WK = 4;

interface TileArgs {
  /** Packed A panel: element (k, i) at a + (k·MR + i)·4. */
  a: Local;
  /** B row k is at bBase + (table ? i32[table + 4k] : k·bStride). */
  bBase: Local;
  table?: Local;
  bStride?: Local;
  K: Local;
  /** Output: row i at c + i·ldc (store / add), or at c + i32[rowTab + 4i] (scatter-add). */
  c: Local;
  ldc?: Local;
  rowTab?: Local;
  /**
   * Taps inside the A panel: element (k, i) at a + k·(4·MR + 4) + 4i, and
   * B row k at bBase + i32[a + k·(4·MR + 4) + 4·MR]. One pointer walks both,
   * so a reduction step costs two integer ops fewer than with a separate
   * table (the convolution's loop is bound by instruction dispatch).
   */
  inlineTaps?: boolean;
  mode: 'store' | 'add' | 'scatterAdd';
}

/** Bytes per reduction step of an A panel with inline taps. */
export const TAP_PANEL_STEP = 4 * MR + 4;

/** Emits one micro-tile inline; `acc`, `b`, `t` are scratch locals owned by the caller. */
function tile(f: Fn, x: TileArgs, s: { acc: Local[]; b: Local[]; ap: Local; bp: Local; k: Local; addr: Local }): void {
  for (const v of s.acc) f.vzero().set(v);
  f.get(x.a).set(s.ap);
  if (!x.table) f.get(x.bBase).set(s.bp);
  const step = (g: Fn) => {
    for (let v = 0; v < NV; v++)
      g.get(s.bp)
        .v128Load(16 * v)
        .set(s.b[v]);
    for (let i = 0; i < MR; i++) {
      g.get(s.ap)
        .loadSplat32(4 * i)
        .set(s.b[NV]);
      for (let v = 0; v < NV; v++) {
        const acc = s.acc[i * NV + v];
        g.get(acc).get(s.b[NV]).get(s.b[v]).vmul().vadd().set(acc);
      }
    }
  };
  if (x.inlineTaps) {
    // s.k holds the panel's end pointer; the loop runs while ap < end.
    f.get(x.a).get(x.K).i32(TAP_PANEL_STEP).mul().add().set(s.k);
    f.block((b) => {
      b.get(x.K).eqz().brIf(0);
      b.loop((g) => {
        g.get(s.ap)
          .i32Load(4 * MR)
          .get(x.bBase)
          .add()
          .set(s.bp);
        step(g);
        g.get(s.ap).i32(TAP_PANEL_STEP).add().tee(s.ap).get(s.k).ltU().brIf(0);
      });
    });
  } else
    f.for(
      s.k,
      (g) => g.i32(0),
      (g) => g.get(x.K),
      1,
      (g) => {
        if (x.table) {
          g.get(x.table).get(s.k).i32(2).shl().add().i32Load().get(x.bBase).add().set(s.bp);
        }
        step(g);
        g.get(s.ap)
          .i32(4 * MR)
          .add()
          .set(s.ap);
        if (!x.table) g.get(s.bp).get(x.bStride!).add().set(s.bp);
      },
    );
  for (let i = 0; i < MR; i++) {
    if (x.mode === 'scatterAdd') {
      f.get(x.rowTab!)
        .i32Load(4 * i)
        .get(x.c)
        .add()
        .set(s.addr);
    } else {
      f.get(x.c);
      if (i > 0) f.get(x.ldc!).i32(i).mul().add();
      f.set(s.addr);
    }
    for (let v = 0; v < NV; v++) {
      const acc = s.acc[i * NV + v];
      f.get(s.addr);
      if (x.mode === 'store') f.get(acc);
      else
        f.get(s.addr)
          .v128Load(16 * v)
          .get(acc)
          .vadd();
      f.v128Store(16 * v);
    }
  }
}

function tileScratch(f: Fn) {
  return {
    acc: Array.from({ length: MR * NV }, () => f.local('v128')),
    b: Array.from({ length: NV + 1 }, () => f.local('v128')),
    ap: f.local('i32'),
    bp: f.local('i32'),
    k: f.local('i32'),
    addr: f.local('i32'),
  };
}

/**
 * gemm(A, B, C, mPanels, nPanels, K, ldc, accumulate):
 * C[mPanels·MR × nPanels·NR] (+)= A·B, A packed as mPanels panels of [K][MR],
 * B as nPanels panels of [K][NR]. Loops B panels outside so one B panel
 * (K·NR floats) stays in L1 while every A panel streams past it.
 */
function gemmFn(): Fn {
  const f = new Fn('gemm', ['i32', 'i32', 'i32', 'i32', 'i32', 'i32', 'i32', 'i32']);
  const [A, B, C, mP, nP, K, ldc, accum] = f.params;
  const jr = f.local('i32'),
    ir = f.local('i32'),
    a = f.local('i32'),
    bBase = f.local('i32'),
    c = f.local('i32'),
    bStride = f.local('i32');
  const s = tileScratch(f);
  f.i32(NR * 4).set(bStride);
  f.for(
    jr,
    (g) => g.i32(0),
    (g) => g.get(nP),
    1,
    (g) => {
      g.get(B)
        .get(jr)
        .get(K)
        .mul()
        .i32(NR * 4)
        .mul()
        .add()
        .set(bBase);
      g.for(
        ir,
        (h) => h.i32(0),
        (h) => h.get(mP),
        1,
        (h) => {
          h.get(A)
            .get(ir)
            .get(K)
            .mul()
            .i32(MR * 4)
            .mul()
            .add()
            .set(a);
          h.get(C)
            .get(ir)
            .i32(MR)
            .mul()
            .get(ldc)
            .mul()
            .add()
            .get(jr)
            .i32(NR * 4)
            .mul()
            .add()
            .set(c);
          h.get(accum)
            .eqz()
            .if((e) => tile(e, { a, bBase, bStride, K, c, ldc, mode: 'store' }, s));
          h.get(accum).if((e) => tile(e, { a, bBase, bStride, K, c, ldc, mode: 'add' }, s));
        },
      );
    },
  );
  return f;
}

/** GEMM cache blocking (see matmul.ts): reduction rows per packed block, A panels and B panels per block. */
export const KC = 256,
  MC_P = 32,
  NC_P = 64;

/**
 * packBT(src, dst, ldb, K, Npad, p0, p1): packs full column panels [p0, p1)
 * of a GEMM's B from its transpose (row j of Bᵀ, K floats, at src + j·ldb
 * bytes) into the [K/KC blocks][panels][kc][NR] layout at dst: a gather of
 * NR floats per reduction step, one float from each of NR rows of Bᵀ. (CP
 * reconstruction hands its Khatri-Rao rows this way: as a JavaScript loop
 * this was ~45% of cpReconstruct 64×64×27 at R = 650.)
 */
function packBTFn(): Fn {
  const f = new Fn('packBT', Array(7).fill('i32'));
  const [src, dst, ldb, K, Npad, p0, p1] = f.params;
  const p = f.local('i32'),
    k0 = f.local('i32'),
    kc = f.local('i32'),
    d = f.local('i32'),
    k4 = f.local('i32'),
    kEnd = f.local('i32');
  const rows = Array.from({ length: NR }, () => f.local('i32'));
  f.for(
    p,
    (g) => g.get(p0),
    (g) => g.get(p1),
    1,
    (g) => {
      g.for(
        k0,
        (h) => h.i32(0),
        (h) => h.get(K),
        KC,
        (h) => {
          h.minS(
            (q) => q.i32(KC),
            (q) => q.get(K).get(k0).sub(),
          ).set(kc);
          h.get(dst).get(k0).get(Npad).mul().get(p).i32(NR).mul().get(kc).mul().add().i32(2).shl().add().set(d);
          for (let j = 0; j < NR; j++)
            h.get(src).get(p).i32(NR).mul().i32(j).add().get(ldb).mul().add().get(k0).i32(2).shl().add().set(rows[j]);
          h.get(kc).i32(2).shl().set(kEnd);
          h.for(
            k4,
            (q) => q.i32(0),
            (q) => q.get(kEnd),
            4,
            (q) => {
              for (let j = 0; j < NR; j++)
                q.get(d)
                  .get(rows[j])
                  .get(k4)
                  .add()
                  .f32Load()
                  .f32Store(4 * j);
              q.get(d)
                .i32(4 * NR)
                .add()
                .set(d);
            },
          );
        },
      );
    },
  );
  return f;
}

/**
 * gemmBlocks(A, B, C, mP, nP, K, jp0, jp1): the whole blocked product for
 * column panels [jp0, min(jp1, nP)), operands packed by matmul.ts as
 * [K/KC blocks][panels][kc][MR or NR]. Each C element is summed over the K
 * blocks in order, so the column range a thread owns never changes its bits.
 * Calls gemm (function 0).
 */
function gemmBlocksFn(): Fn {
  const f = new Fn('gemmBlocks', Array(8).fill('i32'));
  const [A, B, C, mP, nP, K, jp0, jp1] = f.params;
  const jc = f.local('i32'),
    end = f.local('i32'),
    np = f.local('i32'),
    k0 = f.local('i32'),
    kc = f.local('i32');
  const ic = f.local('i32'),
    mp = f.local('i32'),
    Mpad = f.local('i32'),
    Npad = f.local('i32');
  f.get(mP).i32(MR).mul().set(Mpad);
  f.get(nP).i32(NR).mul().set(Npad);
  f.minS(
    (g) => g.get(jp1),
    (g) => g.get(nP),
  );
  f.set(end);
  f.for(
    jc,
    (g) => g.get(jp0),
    (g) => g.get(end),
    NC_P,
    (g) => {
      g.minS(
        (h) => h.i32(NC_P),
        (h) => h.get(end).get(jc).sub(),
      );
      g.set(np);
      g.for(
        k0,
        (h) => h.i32(0),
        (h) => h.get(K),
        KC,
        (h) => {
          h.minS(
            (q) => q.i32(KC),
            (q) => q.get(K).get(k0).sub(),
          );
          h.set(kc);
          h.for(
            ic,
            (q) => q.i32(0),
            (q) => q.get(mP),
            MC_P,
            (q) => {
              q.minS(
                (e) => e.i32(MC_P),
                (e) => e.get(mP).get(ic).sub(),
              );
              q.set(mp);
              q.get(A).get(k0).get(Mpad).mul().get(ic).i32(MR).mul().get(kc).mul().add().i32(2).shl().add();
              q.get(B).get(k0).get(Npad).mul().get(jc).i32(NR).mul().get(kc).mul().add().i32(2).shl().add();
              q.get(C).get(ic).i32(MR).mul().get(Npad).mul().get(jc).i32(NR).mul().add().i32(2).shl().add();
              q.get(mp).get(np).get(kc).get(Npad).i32(4).mul().get(k0).eqz().eqz();
              q.call(0);
            },
          );
        },
      );
    },
  );
  return f;
}

/**
 * convForward(Wp, X, K, Y, mPanels, r0, r1, oH, tiles, rowD, rowH, ldY, yRow, KB):
 * implicit-GEMM convolution over output rows r ∈ [r0, r1) (r = od·oH + oh).
 * Output row r, tile t, channels of panel m get
 *   Y[m·MR + i][r][t·NR + j] = Σ_k Wp[m][k][i] · X[xRow(r) + tap[k] + (t·NR + j)·4]
 * with xRow(r) = od·rowD + oh·rowH. The input is padded and split by W phase
 * so that every tap reads NR consecutive floats. Panels carry the taps
 * inline (`inlineTaps`: [K][MR floats, tap's byte offset]).
 *
 * The reduction runs in blocks of KB taps (whole channels), every block
 * over all panels and tiles of the row before the next: one block's input
 * rows (KB/taps channels × kd·kh rows) stay in L1 while the 8 panels × tiles
 * reuse them (1 thread, [1,32,32³]: 93 → 80 ms). Blocks after the first add
 * to Y, so each output is still summed in k order within a block and in
 * block order across them, whatever the thread count.
 */
function convForwardFn(): Fn {
  const f = new Fn('convForward', Array(14).fill('i32'));
  const [Wp, X, K, Y, mP, r0, r1, oH, tiles, rowD, rowH, ldY, yRow, KB] = f.params;
  const r = f.local('i32'),
    m = f.local('i32'),
    t = f.local('i32');
  const xRow = f.local('i32'),
    a = f.local('i32'),
    bBase = f.local('i32'),
    c = f.local('i32');
  const kb = f.local('i32'),
    k0 = f.local('i32'),
    kl = f.local('i32'),
    nB = f.local('i32');
  const s = tileScratch(f);
  // blocks of KB taps: nB = ceil(K / KB)
  f.get(K).get(KB).add().i32(1).sub().get(KB).divU().set(nB);
  f.for(
    r,
    (g) => g.get(r0),
    (g) => g.get(r1),
    1,
    (g) => {
      g.get(X).get(r).get(oH).divU().get(rowD).mul().add().get(r).get(oH).remU().get(rowH).mul().add().set(xRow);
      g.for(
        kb,
        (h) => h.i32(0),
        (h) => h.get(nB),
        1,
        (h) => {
          h.get(kb).get(KB).mul().set(k0);
          h.minS(
            (q) => q.get(KB),
            (q) => q.get(K).get(k0).sub(),
          ).set(kl);
          h.for(
            m,
            (q) => q.i32(0),
            (q) => q.get(mP),
            1,
            (q) => {
              q.get(Wp).get(m).get(K).mul().get(k0).add().i32(TAP_PANEL_STEP).mul().add().set(a);
              q.for(
                t,
                (e) => e.i32(0),
                (e) => e.get(tiles),
                1,
                (e) => {
                  e.get(xRow)
                    .get(t)
                    .i32(NR * 4)
                    .mul()
                    .add()
                    .set(bBase);
                  e.get(Y)
                    .get(m)
                    .i32(MR)
                    .mul()
                    .get(ldY)
                    .mul()
                    .add()
                    .get(r)
                    .get(yRow)
                    .mul()
                    .add()
                    .get(t)
                    .i32(NR * 4)
                    .mul()
                    .add()
                    .set(c);
                  e.get(kb)
                    .eqz()
                    .if((z) => tile(z, { a, bBase, inlineTaps: true, K: kl, c, ldc: ldY, mode: 'store' }, s));
                  e.get(kb).if((z) => tile(z, { a, bBase, inlineTaps: true, K: kl, c, ldc: ldY, mode: 'add' }, s));
                },
              );
            },
          );
        },
      );
    },
  );
  return f;
}

/**
 * convGradInput(Wt, DY, kTab, O, DX, c0, c1, panelsPerC, rows, oH, tiles, rowD, rowH, ldY, yRow):
 * the transposed product scattered into the padded, phase-split input
 * gradient, for input channels [c0, c1). Wt holds Wᵀ as panels of MR taps
 * ([O][MR] each), panelsPerC panels per channel (taps padded to a multiple
 * of MR with zero weights). For output row r and tile t:
 *   DX[xRow(r) + kTab[k] + (t·NR + j)·4] += Σ_o Wt[k][o] · DY[o·ldY + r·yRow + (t·NR + j)·4]
 * Each channel's taps only touch that channel's slice of DX, so threads
 * that own disjoint channel ranges never write the same float, and each
 * float is summed in the same (r, t, k) order whatever the thread count.
 */
function convGradInputFn(): Fn {
  const f = new Fn('convGradInput', Array(15).fill('i32'));
  const [Wt, DY, kTab, O, DX, c0, c1, pPC, rows, oH, tiles, rowD, rowH, ldY, yRow] = f.params;
  const ch = f.local('i32'),
    r = f.local('i32'),
    t = f.local('i32'),
    m = f.local('i32');
  const xRow = f.local('i32'),
    a = f.local('i32'),
    bBase = f.local('i32'),
    c = f.local('i32'),
    rowTab = f.local('i32');
  const s = tileScratch(f);
  f.for(
    ch,
    (g) => g.get(c0),
    (g) => g.get(c1),
    1,
    (g) => {
      g.for(
        r,
        (h) => h.i32(0),
        (h) => h.get(rows),
        1,
        (h) => {
          h.get(DX).get(r).get(oH).divU().get(rowD).mul().add().get(r).get(oH).remU().get(rowH).mul().add().set(xRow);
          h.for(
            t,
            (e) => e.i32(0),
            (e) => e.get(tiles),
            1,
            (e) => {
              e.get(DY)
                .get(r)
                .get(yRow)
                .mul()
                .add()
                .get(t)
                .i32(NR * 4)
                .mul()
                .add()
                .set(bBase);
              e.get(xRow)
                .get(t)
                .i32(NR * 4)
                .mul()
                .add()
                .set(c);
              e.for(
                m,
                (q) => q.get(ch).get(pPC).mul(),
                (q) => q.get(ch).i32(1).add().get(pPC).mul(),
                1,
                (q) => {
                  q.get(Wt)
                    .get(m)
                    .get(O)
                    .mul()
                    .i32(MR * 4)
                    .mul()
                    .add()
                    .set(a);
                  q.get(kTab)
                    .get(m)
                    .i32(MR * 4)
                    .mul()
                    .add()
                    .set(rowTab);
                  tile(q, { a, bBase, bStride: ldY, K: O, c, rowTab, mode: 'scatterAdd' }, s);
                },
              );
            },
          );
        },
      );
    },
  );
  return f;
}

/**
 * convGradWeight(DY, X, kTab, DW, o0, o1, kPanels, Kpad, rows, oH, vecs, rowD, rowH, ldY, yRow, accumulate):
 * DW[o][k] (+)= Σ_r Σ_j DY[o·ldY + r·yRow + 4j] · X[xRow(r) + kTab[k] + 4j]
 * for o ∈ [o0, o1) (a multiple of WO apart) and all kPanels·WK taps; DW rows
 * are Kpad floats apart. Each (o, k) pair keeps a 4-lane float32 partial sum
 * over about FLUSH vector steps, which is then added into float64 (4 lanes in
 * two f64x2): the reduction runs over every voxel of every sample, and a
 * float32 sum that long lost up to 1% of a gradient against PyTorch. Lanes
 * are added in a fixed order at the end.
 */
const FLUSH = 32;
function convGradWeightFn(): Fn {
  const f = new Fn('convGradWeight', Array(16).fill('i32'));
  const [DY, X, kTab, DW, o0, o1, kP, Kpad, rows, oH, vecs, rowD, rowH, ldY, yRow, accum] = f.params;
  const o = f.local('i32'),
    kp = f.local('i32'),
    r = f.local('i32'),
    j = f.local('i32');
  const xRow = f.local('i32'),
    yr = f.local('i32'),
    addr = f.local('i32'),
    steps = f.local('i32'),
    xBase = f.local('i32'),
    yBase = f.local('i32'),
    ohc = f.local('i32');
  // dy row of output channel o + u (yU[0] is yr)
  const yU = [yr, ...Array.from({ length: WO - 1 }, () => f.local('i32'))];
  const acc = Array.from({ length: WO * WK }, () => f.local('v128'));
  const xv = Array.from({ length: WK }, () => f.local('v128'));
  const av = f.local('v128');
  const koff = Array.from({ length: WK }, () => f.local('i32'));
  // float64 totals: lanes 0-1 and 2-3 of each pair's partial sum
  const lo = Array.from({ length: WO * WK }, () => f.local('v128'));
  const hi = Array.from({ length: WO * WK }, () => f.local('v128'));
  const sum = f.local('f64');
  const HIGH = [8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15];
  const flush = (e: Fn) => {
    for (let q = 0; q < WO * WK; q++) {
      e.get(lo[q]).get(acc[q]).promoteLow().f64x2Add().set(lo[q]);
      e.get(hi[q]).get(acc[q]).get(acc[q]).shuffle(HIGH).promoteLow().f64x2Add().set(hi[q]);
      e.vzero().set(acc[q]);
    }
  };
  f.for(
    o,
    (g) => g.get(o0),
    (g) => g.get(o1),
    WO,
    (g) => {
      g.for(
        kp,
        (h) => h.i32(0),
        (h) => h.get(kP),
        1,
        (h) => {
          for (const v of [...acc, ...lo, ...hi]) h.vzero().set(v);
          h.i32(0).set(steps);
          for (let q = 0; q < WK; q++)
            h.get(kTab)
              .get(kp)
              .i32(WK * 4)
              .mul()
              .add()
              .i32Load(4 * q)
              .set(koff[q]);
          // Row origins advance incrementally (an integer division per row
          // cost as much as the row's arithmetic on 8³ maps).
          h.get(X).set(xBase);
          h.get(DY).get(o).get(ldY).mul().add().set(yBase);
          h.i32(0).set(ohc);
          h.for(
            r,
            (e) => e.i32(0),
            (e) => e.get(rows),
            1,
            (e) => {
              e.get(xBase).set(xRow);
              e.get(yBase).set(yr);
              e.get(yBase).get(yRow).add().set(yBase);
              e.get(xBase).get(rowH).add().set(xBase);
              e.get(ohc)
                .i32(1)
                .add()
                .tee(ohc)
                .get(oH)
                .ltS()
                .eqz()
                .if((q) => {
                  q.i32(0).set(ohc);
                  q.get(xBase).get(rowD).get(oH).get(rowH).mul().sub().add().set(xBase);
                });
              for (let u = 1; u < WO; u++) e.get(yr).get(ldY).i32(u).mul().add().set(yU[u]!);
              // One vector step: WK input vectors (one per tap) times WO dy vectors;
              const step = (q: Fn) => {
                for (let w = 0; w < WK; w++) q.get(xRow).get(koff[w]).add().v128Load().set(xv[w]);
                for (let u = 0; u < WO; u++) {
                  q.get(yU[u]!).v128Load().set(av);
                  for (let w = 0; w < WK; w++) {
                    const a = acc[u * WK + w];
                    q.get(a).get(av).get(xv[w]).vmul().vadd().set(a);
                  }
                }
              };
              // One loop iteration per vector step. (Unrolling the row's steps made V8
              // hoist all their loads and spill the accumulators: 12 → 16–20 GFLOP/s
              // without it on the bench's grad-weight cases, the same bits.)
              e.for(
                j,
                (q) => q.i32(0),
                (q) => q.get(vecs),
                1,
                (q) => {
                  step(q);
                  q.get(xRow).i32(16).add().set(xRow);
                  for (const y of yU) q.get(y!).i32(16).add().set(y!);
                },
              );
              e.get(steps)
                .get(vecs)
                .add()
                .tee(steps)
                .i32(FLUSH)
                .ltS()
                .eqz()
                .if((q) => {
                  flush(q);
                  q.i32(0).set(steps);
                });
            },
          );
          flush(h);
          for (let u = 0; u < WO; u++) {
            for (let w = 0; w < WK; w++) {
              const q = u * WK + w;
              // addr = DW + ((o + u)·Kpad + kp·WK + w)·4
              h.get(DW)
                .get(o)
                .i32(u)
                .add()
                .get(Kpad)
                .mul()
                .get(kp)
                .i32(WK)
                .mul()
                .add()
                .i32(w)
                .add()
                .i32(2)
                .shl()
                .add()
                .set(addr);
              h.get(lo[q])
                .f64Lane(0)
                .get(lo[q])
                .f64Lane(1)
                .f64Add()
                .get(hi[q])
                .f64Lane(0)
                .f64Add()
                .get(hi[q])
                .f64Lane(1)
                .f64Add()
                .set(sum);
              h.get(accum).if((e) => e.get(sum).get(addr).f32Load().f64FromF32().f64Add().set(sum));
              h.get(addr).get(sum).f32FromF64().f32Store();
            }
          }
        },
      );
    },
  );
  return f;
}

export const KERNEL_NAMES = [
  'gemm',
  'gemmBlocks',
  'convForward',
  'convGradInput',
  'convGradWeight',
  'copyRows',
  'inormStats',
  'inormApply',
  'inormGradStats',
  'inormGradApply',
  'bceSum',
  'bceGrad',
  'copyStrided',
  'ewAdd',
  'ewSub',
  'ewMul',
  'ewDiv',
  'leakyRelu',
  'cpGrad',
  'leakyReluGrad',
  'khatriRao',
  'padRows',
  'packBT',
] as const;
export type KernelName = (typeof KERNEL_NAMES)[number];

export function buildKernels(memory: {
  initialPages: number;
  maxPages: number;
  shared: boolean;
}): Uint8Array<ArrayBuffer> {
  // Order = KERNEL_NAMES (the worker pool names kernels by index; gemmBlocks calls function 0).
  return assemble(
    [
      gemmFn(),
      gemmBlocksFn(),
      convForwardFn(),
      convGradInputFn(),
      convGradWeightFn(),
      copyRowsFn(),
      inormStatsFn(),
      inormApplyFn(),
      inormGradStatsFn(),
      inormGradApplyFn(),
      bceSumFn(),
      bceGradFn(),
      copyStridedFn(),
      ewBinaryFn('ewAdd', (g) => g.vadd()),
      ewBinaryFn('ewSub', (g) => g.vsub()),
      ewBinaryFn('ewMul', (g) => g.vmul()),
      ewBinaryFn('ewDiv', (g) => g.vdiv()),
      leakyReluFn(),
      cpGradFn(),
      leakyReluGradFn(),
      khatriRaoFn(),
      padRowsFn(),
      packBTFn(),
    ],
    memory,
  );
}
