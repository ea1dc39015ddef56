// CPU kernels of the network ops: softmax / logSoftmax, instance norm, the
// losses (cross-entropy, BCE with logits, soft Dice) and LARGO's CP weight
// reconstruction. Accumulations run in doubles (JS numbers); outputs take the
// input's dtype. Every kernel writes all of its (pooled, unzeroed) output.
import { registerKernel, type TensorInfo } from '../backend.js';
import { OpError, fmtShape } from '../errors.js';
import { sizeOf } from '../shape.js';
import { CpuBackend, fvals, vals } from './backend.js';

type FArr = Float32Array | Float64Array;

/** (outer, n, inner) split of `shape` around `axis`. */
function splitAt(shape: readonly number[], axis: number) {
  return { outer: sizeOf(shape.slice(0, axis)), n: shape[axis], inner: sizeOf(shape.slice(axis + 1)) };
}

// ---------------------------------------------------------------------------
// softmax / logSoftmax

export interface SoftmaxAttrs { axis: number }

function softmaxKernel(logOut: boolean) {
  return (inputs: readonly TensorInfo[], attrs: SoftmaxAttrs, backend: unknown): TensorInfo => {
    const be = backend as CpuBackend;
    const x = inputs[0];
    const { outer, n, inner } = splitAt(x.shape, attrs.axis);
    const o = be.out(x.shape, x.dtype);
    const xv = fvals(x), ov = o.values as FArr;
    if (inner === 1) {
      const e = new Float64Array(n);
      for (let a = 0, base = 0; a < outer; a++, base += n) {
        let m = -Infinity;
        for (let j = 0; j < n; j++) { const v = xv[base + j]; if (v > m) m = v; }
        // A NaN anywhere makes the whole row NaN through the sum below.
        let s = 0;
        if (logOut) {
          for (let j = 0; j < n; j++) s += Math.exp(xv[base + j] - m);
          const lse = m + Math.log(s);
          for (let j = 0; j < n; j++) ov[base + j] = xv[base + j] - lse;
        } else {
          for (let j = 0; j < n; j++) { const v = Math.exp(xv[base + j] - m); e[j] = v; s += v; }
          const inv = 1 / s;
          for (let j = 0; j < n; j++) ov[base + j] = e[j] * inv;
        }
      }
      return o.info;
    }
    const mx = new Float64Array(inner), sm = new Float64Array(inner);
    for (let a = 0; a < outer; a++) {
      const base = a * n * inner;
      mx.fill(-Infinity); sm.fill(0);
      for (let j = 0; j < n; j++) {
        const row = base + j * inner;
        for (let c = 0; c < inner; c++) { const v = xv[row + c]; if (v > mx[c]) mx[c] = v; }
      }
      if (logOut) {
        for (let j = 0; j < n; j++) {
          const row = base + j * inner;
          for (let c = 0; c < inner; c++) sm[c] += Math.exp(xv[row + c] - mx[c]);
        }
        for (let c = 0; c < inner; c++) mx[c] += Math.log(sm[c]);
        for (let j = 0; j < n; j++) {
          const row = base + j * inner;
          for (let c = 0; c < inner; c++) ov[row + c] = xv[row + c] - mx[c];
        }
      } else {
        // The exponentials go to the output (one exp per element), then are
        // scaled: for float32 that is two roundings, within 1.2e-7 relative.
        for (let j = 0; j < n; j++) {
          const row = base + j * inner;
          for (let c = 0; c < inner; c++) { const e = Math.exp(xv[row + c] - mx[c]); ov[row + c] = e; sm[c] += e; }
        }
        for (let c = 0; c < inner; c++) sm[c] = 1 / sm[c];
        for (let j = 0; j < n; j++) {
          const row = base + j * inner;
          for (let c = 0; c < inner; c++) ov[row + c] *= sm[c];
        }
      }
    }
    return o.info;
  };
}
registerKernel('softmax', 'cpu', softmaxKernel(false));
registerKernel('logSoftmax', 'cpu', softmaxKernel(true));

// ---------------------------------------------------------------------------
// instance norm

export interface InstanceNormAttrs { eps: number; hasWeight: boolean; hasBias: boolean }

/**
 * inputs [x (N,C,...), weight? (C), bias? (C)] → [y, mean (N,C), invstd (N,C)].
 * Two-pass variance with the compensation term Σd (corrected two-pass
 * algorithm), biased (÷S), as PyTorch's instance norm.
 */
registerKernel<InstanceNormAttrs>('instanceNorm', 'cpu', (inputs, attrs, backend) => {
  const be = backend as CpuBackend;
  const x = inputs[0];
  let k = 1;
  const w = attrs.hasWeight ? fvals(inputs[k++]) : null;
  const b = attrs.hasBias ? fvals(inputs[k++]) : null;
  const N = x.shape[0], C = x.shape[1], S = sizeOf(x.shape.slice(2));
  const y = be.out(x.shape, x.dtype), mo = be.out([N, C], x.dtype), io = be.out([N, C], x.dtype);
  const xv = fvals(x), yv = y.values, mv = mo.values, iv = io.values;
  const eps = attrs.eps;
  for (let nc = 0; nc < N * C; nc++) {
    const c = nc % C, base = nc * S;
    let s = 0;
    for (let j = 0; j < S; j++) s += xv[base + j];
    const mean = s / S;
    let sd = 0, sq = 0;
    for (let j = 0; j < S; j++) { const d = xv[base + j] - mean; sd += d; sq += d * d; }
    const variance = Math.max((sq - (sd * sd) / S) / S, 0);
    const invstd = 1 / Math.sqrt(variance + eps);
    mv[nc] = mean; iv[nc] = invstd;
    const scale = invstd * (w ? w[c] : 1), shift = b ? b[c] : 0;
    for (let j = 0; j < S; j++) yv[base + j] = (xv[base + j] - mean) * scale + shift;
  }
  return [y.info, mo.info, io.info];
});

export interface InstanceNormGradAttrs { hasWeight: boolean; hasStatGrads?: boolean }

/**
 * inputs [dy, x, mean, invstd, weight?, dmean?, dinvstd?] → [dx, dweight (C), dbias (C)].
 * With x̂ = (x − μ)·σ⁻¹: dbias = Σ dy, dweight = Σ dy·x̂,
 * dx = w·σ⁻¹·(dy − mean(dy) − x̂·mean(dy·x̂)) + dμ/S − dσ⁻¹·σ⁻³·(x − μ)/S,
 * the last two terms only when cotangents of the saved statistics are given.
 */
registerKernel<InstanceNormGradAttrs>('instanceNormGrad', 'cpu', (inputs, attrs, backend) => {
  const be = backend as CpuBackend;
  const [dy, x, mean, invstd] = inputs;
  let k = 4;
  const w = attrs.hasWeight ? fvals(inputs[k++]) : null;
  const gm = attrs.hasStatGrads ? fvals(inputs[k++]) : null;
  const gi = attrs.hasStatGrads ? fvals(inputs[k++]) : null;
  const N = x.shape[0], C = x.shape[1], S = sizeOf(x.shape.slice(2));
  const dxo = be.out(x.shape, x.dtype), dwo = be.out([C], x.dtype), dbo = be.out([C], x.dtype);
  const dyv = fvals(dy), xv = fvals(x), mv = fvals(mean), iv = fvals(invstd), dxv = dxo.values;
  const dw = new Float64Array(C), db = new Float64Array(C);
  for (let nc = 0; nc < N * C; nc++) {
    const c = nc % C, base = nc * S, mu0 = mv[nc], is = iv[nc];
    // The saved mean may be rounded (float32): refine it in the same pass,
    // mean = mu0 + Σ(x − mu0)/S, so that x − mean keeps full precision.
    let sdy = 0, sdyd = 0, sd = 0;
    for (let j = 0; j < S; j++) {
      const g = dyv[base + j], d = xv[base + j] - mu0;
      sdy += g; sdyd += g * d; sd += d;
    }
    const delta = sd / S, mu = mu0 + delta;
    const sdyx = (sdyd - delta * sdy) * is;
    db[c] += sdy; dw[c] += sdyx;
    const scale = is * (w ? w[c] : 1);
    // dx = scale·dy − A − (x − μ)·B
    let A = (scale * sdy) / S, B = (scale * sdyx * is) / S;
    if (gm && gi) { A -= gm[nc] / S; B += (gi[nc] * is * is * is) / S; }
    for (let j = 0; j < S; j++) dxv[base + j] = scale * dyv[base + j] - A - (xv[base + j] - mu) * B;
  }
  dwo.values.set(dw); dbo.values.set(db);
  return [dxo.info, dwo.info, dbo.info];
});

// ---------------------------------------------------------------------------
// cross-entropy

export interface CrossEntropyAttrs { ignoreIndex: number; hasWeight: boolean }

/** Checks labels before anything is allocated; the error names the offending value. */
function checkLabels(op: string, logits: TensorInfo, target: TensorInfo, ignoreIndex: number): void {
  const C = logits.shape[1], tv = vals(target);
  for (let i = 0; i < tv.length; i++) {
    const t = tv[i];
    if (t !== ignoreIndex && (t < 0 || t >= C)) {
      throw new OpError(op, `target value ${t} at flat index ${i} is out of range [0, ${C}) ` +
        `(logits ${fmtShape(logits.shape)}, target ${fmtShape(target.shape)}, ignoreIndex ${ignoreIndex})`);
    }
  }
}

/**
 * Visits every (n, position) of logits [N, C, inner] with its log-sum-exp:
 * body(n, n·C·inner, p, lse). Positions are processed in vectors of `inner` so that
 * reads stay contiguous.
 */
function forEachLse(xv: FArr, N: number, C: number, inner: number, body: (n: number, base: number, p: number, lse: number) => void): void {
  const mx = new Float64Array(inner), sm = new Float64Array(inner);
  for (let n = 0; n < N; n++) {
    const base = n * C * inner;
    mx.fill(-Infinity); sm.fill(0);
    for (let c = 0; c < C; c++) {
      const row = base + c * inner;
      for (let p = 0; p < inner; p++) { const v = xv[row + p]; if (v > mx[p]) mx[p] = v; }
    }
    for (let c = 0; c < C; c++) {
      const row = base + c * inner;
      for (let p = 0; p < inner; p++) sm[p] += Math.exp(xv[row + p] - mx[p]);
    }
    for (let p = 0; p < inner; p++) body(n, base, p, mx[p] + Math.log(sm[p]));
  }
}

/** inputs [logits (N,C,...), target int (N,...), weight? (C)] → mean loss (scalar). */
registerKernel<CrossEntropyAttrs>('crossEntropy', 'cpu', (inputs, attrs, backend) => {
  const be = backend as CpuBackend;
  const [logits, target] = inputs;
  checkLabels('crossEntropy', logits, target, attrs.ignoreIndex);
  const w = attrs.hasWeight ? fvals(inputs[2]) : null;
  const N = logits.shape[0], C = logits.shape[1], inner = sizeOf(logits.shape.slice(2));
  const xv = fvals(logits), tv = vals(target), ig = attrs.ignoreIndex;
  let total = 0, wsum = 0;
  forEachLse(xv, N, C, inner, (n, base, p, lse) => {
    const t = tv[n * inner + p];
    if (t === ig) return;
    const wt = w ? w[t] : 1;
    total += wt * (lse - xv[base + t * inner + p]);
    wsum += wt;
  });
  const o = be.out([], logits.dtype);
  o.values[0] = total / wsum; // 0/0 = NaN when every element is ignored, as PyTorch.
  return o.info;
});

/** inputs [logits, target, dy (scalar), weight?] → dlogits = dy·w_t·(softmax − onehot)/Σw. */
registerKernel<CrossEntropyAttrs>('crossEntropyGrad', 'cpu', (inputs, attrs, backend) => {
  const be = backend as CpuBackend;
  const [logits, target, dy] = inputs;
  checkLabels('crossEntropyGrad', logits, target, attrs.ignoreIndex);
  const w = attrs.hasWeight ? fvals(inputs[3]) : null;
  const N = logits.shape[0], C = logits.shape[1], inner = sizeOf(logits.shape.slice(2));
  const xv = fvals(logits), tv = vals(target), ig = attrs.ignoreIndex;
  let wsum = 0;
  for (let i = 0; i < tv.length; i++) { const t = tv[i]; if (t !== ig) wsum += w ? w[t] : 1; }
  const g = fvals(dy)[0] / wsum;
  const o = be.out(logits.shape, logits.dtype), ov = o.values;
  forEachLse(xv, N, C, inner, (n, base, p, lse) => {
    const t = tv[n * inner + p];
    if (t === ig) {
      for (let c = 0; c < C; c++) ov[base + c * inner + p] = 0;
      return;
    }
    const s = g * (w ? w[t] : 1);
    for (let c = 0; c < C; c++) {
      const q = base + c * inner + p;
      ov[q] = s * (Math.exp(xv[q] - lse) - (c === t ? 1 : 0));
    }
  });
  return o.info;
});

// ---------------------------------------------------------------------------
// binary cross-entropy with logits

/** inputs [x, t] → mean of max(x,0) − x·t + log1p(exp(−|x|)). */
registerKernel('bceWithLogits', 'cpu', (inputs, _attrs, backend) => {
  const be = backend as CpuBackend;
  const xv = fvals(inputs[0]), tv = fvals(inputs[1]);
  let s = 0;
  for (let i = 0; i < xv.length; i++) {
    const x = xv[i];
    s += (x > 0 ? x : 0) - x * tv[i] + Math.log1p(Math.exp(-Math.abs(x)));
  }
  const o = be.out([], inputs[0].dtype);
  o.values[0] = s / xv.length;
  return o.info;
});

/** inputs [x, t, dy (scalar)] → [dx = dy·(σ(x) − t)/n, dt = −dy·x/n]. */
registerKernel('bceWithLogitsGrad', 'cpu', (inputs, _attrs, backend) => {
  const be = backend as CpuBackend;
  const [x, t, dy] = inputs;
  const xv = fvals(x), tv = fvals(t);
  const g = fvals(dy)[0] / xv.length;
  const dx = be.out(x.shape, x.dtype), dt = be.out(x.shape, x.dtype);
  const dxv = dx.values, dtv = dt.values;
  for (let i = 0; i < xv.length; i++) {
    const v = xv[i];
    const sg = v >= 0 ? 1 / (1 + Math.exp(-v)) : Math.exp(v) / (1 + Math.exp(v));
    dxv[i] = g * (sg - tv[i]);
    dtv[i] = -g * v;
  }
  return [dx.info, dt.info];
});

// ---------------------------------------------------------------------------
// soft Dice

export interface SoftDiceAttrs { smooth: number; batchDice: boolean; reduction: 'mean' | 'none' }

/** Per-group sums (I = Σp·t, P = Σp, T = Σt); groups are (n, c), or c with batchDice. */
function diceSums(p: FArr, t: FArr, shape: readonly number[], batchDice: boolean) {
  const N = shape[0], C = shape[1], S = sizeOf(shape.slice(2));
  const G = batchDice ? C : N * C;
  const I = new Float64Array(G), P = new Float64Array(G), T = new Float64Array(G);
  for (let nc = 0; nc < N * C; nc++) {
    const base = nc * S, g = batchDice ? nc % C : nc;
    let si = 0, sp = 0, st = 0;
    for (let j = 0; j < S; j++) { const a = p[base + j], b = t[base + j]; si += a * b; sp += a; st += b; }
    I[g] += si; P[g] += sp; T[g] += st;
  }
  return { N, C, S, G, I, P, T };
}

/** inputs [probs, target] → 1 − mean(d) (scalar), or 1 − d per group ('none'). */
registerKernel<SoftDiceAttrs>('softDiceLoss', 'cpu', (inputs, attrs, backend) => {
  const be = backend as CpuBackend;
  const [p, t] = inputs;
  const { N, C, G, I, P, T } = diceSums(fvals(p), fvals(t), p.shape, attrs.batchDice);
  const sm = attrs.smooth;
  if (attrs.reduction === 'none') {
    const o = be.out(attrs.batchDice ? [C] : [N, C], p.dtype);
    for (let g = 0; g < G; g++) o.values[g] = 1 - (2 * I[g] + sm) / (P[g] + T[g] + sm);
    return o.info;
  }
  let s = 0;
  for (let g = 0; g < G; g++) s += (2 * I[g] + sm) / (P[g] + T[g] + sm);
  const o = be.out([], p.dtype);
  o.values[0] = 1 - s / G;
  return o.info;
});

/**
 * inputs [probs, target, dy] → [dprobs, dtarget]. With D = P + T + s and
 * d = (2I + s)/D: ∂d/∂p_j = 2t_j/D − d/D, ∂d/∂t_j = 2p_j/D − d/D; the loss
 * contributes −dy/G ('mean') or −dy_g ('none') per group.
 */
registerKernel<SoftDiceAttrs>('softDiceLossGrad', 'cpu', (inputs, attrs, backend) => {
  const be = backend as CpuBackend;
  const [p, t, dy] = inputs;
  const pv = fvals(p), tv = fvals(t), dyv = fvals(dy);
  const { N, C, S, G, I, P, T } = diceSums(pv, tv, p.shape, attrs.batchDice);
  const sm = attrs.smooth;
  const a = new Float64Array(G), b = new Float64Array(G);
  for (let g = 0; g < G; g++) {
    const coef = attrs.reduction === 'none' ? -dyv[g] : -dyv[0] / G;
    const D = P[g] + T[g] + sm, d = (2 * I[g] + sm) / D;
    a[g] = (2 * coef) / D; // times t_j (for dp) or p_j (for dt)
    b[g] = (coef * d) / D; // subtracted
  }
  const dp = be.out(p.shape, p.dtype), dt = be.out(p.shape, p.dtype);
  const dpv = dp.values, dtv = dt.values;
  for (let nc = 0; nc < N * C; nc++) {
    const base = nc * S, g = attrs.batchDice ? nc % C : nc, ag = a[g], bg = b[g];
    for (let j = 0; j < S; j++) {
      dpv[base + j] = ag * tv[base + j] - bg;
      dtv[base + j] = ag * pv[base + j] - bg;
    }
  }
  return [dp.info, dt.info];
});

// ---------------------------------------------------------------------------
// CP reconstruction: W[o,i,s] = Σ_r w_r·A[o,r]·B[i,r]·K[s,r]

// The GEMM helpers take Float64Array operands only, so that their inner loops
// stay monomorphic in V8 whatever mix of float32/float64 tensors a process
// uses; callers pack factors into float64 scratch first (O(size) work).

/** Chunk of the contraction (NT) or of the output row (NN) that stays in L1/L2. */
const KC = 512, NCH = 256;

/**
 * C[cOff + m*ldc + n] += Σ_k A[aOff + m*lda + k]·B[bOff + n*ldb + k]
 * (C += A·Bᵀ, dot products over contiguous k), 4×2 register block, the
 * contraction split into chunks of KC so that the operand strips stay in cache.
 */
export function gemmNT(M: number, N: number, K: number, A: Float64Array, aOff: number, lda: number,
  B: Float64Array, bOff: number, ldb: number, C: Float64Array, cOff: number, ldc: number): void {
  for (let k0 = 0; k0 < K; k0 += KC) {
    const k1 = Math.min(K, k0 + KC);
    let m = 0;
    for (; m + 4 <= M; m += 4) {
      const a0 = aOff + m * lda, a1 = a0 + lda, a2 = a1 + lda, a3 = a2 + lda;
      const c0 = cOff + m * ldc, c1 = c0 + ldc, c2 = c1 + ldc, c3 = c2 + ldc;
      let n = 0;
      for (; n + 2 <= N; n += 2) {
        const b0 = bOff + n * ldb, b1 = b0 + ldb;
        let s00 = 0, s01 = 0, s10 = 0, s11 = 0, s20 = 0, s21 = 0, s30 = 0, s31 = 0;
        for (let k = k0; k < k1; k++) {
          const x0 = B[b0 + k], x1 = B[b1 + k];
          let a = A[a0 + k]; s00 += a * x0; s01 += a * x1;
          a = A[a1 + k]; s10 += a * x0; s11 += a * x1;
          a = A[a2 + k]; s20 += a * x0; s21 += a * x1;
          a = A[a3 + k]; s30 += a * x0; s31 += a * x1;
        }
        C[c0 + n] += s00; C[c0 + n + 1] += s01; C[c1 + n] += s10; C[c1 + n + 1] += s11;
        C[c2 + n] += s20; C[c2 + n + 1] += s21; C[c3 + n] += s30; C[c3 + n + 1] += s31;
      }
      for (; n < N; n++) {
        const b0 = bOff + n * ldb;
        let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        for (let k = k0; k < k1; k++) {
          const x = B[b0 + k];
          s0 += A[a0 + k] * x; s1 += A[a1 + k] * x; s2 += A[a2 + k] * x; s3 += A[a3 + k] * x;
        }
        C[c0 + n] += s0; C[c1 + n] += s1; C[c2 + n] += s2; C[c3 + n] += s3;
      }
    }
    for (; m < M; m++) {
      const a0 = aOff + m * lda, c0 = cOff + m * ldc;
      for (let n = 0; n < N; n++) {
        const b0 = bOff + n * ldb;
        let s = 0;
        for (let k = k0; k < k1; k++) s += A[a0 + k] * B[b0 + k];
        C[c0 + n] += s;
      }
    }
  }
}

/**
 * C[m*ldc + n] += Σ_k X[xOff + m*xsM + k*xsK]·Y[k*ldy + n] (C += X·Y, rows of
 * Y and C contiguous in n); X may be strided (a transposed view) and of
 * either float type: it is read outside the inner loop. 2×4 register block,
 * the rows split into chunks of NCH columns.
 */
export function gemmNNAcc(M: number, N: number, K: number, X: ArrayLike<number>, xOff: number, xsM: number, xsK: number,
  Y: Float64Array, ldy: number, C: Float64Array, ldc: number): void {
  for (let n0 = 0; n0 < N; n0 += NCH) {
    const n1 = Math.min(N, n0 + NCH);
    let m = 0;
    for (; m + 2 <= M; m += 2) {
      const c0 = m * ldc, c1 = c0 + ldc;
      const p = xOff + m * xsM, q = p + xsM;
      let k = 0;
      for (; k + 4 <= K; k += 4) {
        const x0 = X[p + k * xsK], x1 = X[p + (k + 1) * xsK], x2 = X[p + (k + 2) * xsK], x3 = X[p + (k + 3) * xsK];
        const z0 = X[q + k * xsK], z1 = X[q + (k + 1) * xsK], z2 = X[q + (k + 2) * xsK], z3 = X[q + (k + 3) * xsK];
        const y0 = k * ldy, y1 = y0 + ldy, y2 = y1 + ldy, y3 = y2 + ldy;
        for (let n = n0; n < n1; n++) {
          const a = Y[y0 + n], b = Y[y1 + n], c = Y[y2 + n], d = Y[y3 + n];
          C[c0 + n] += x0 * a + x1 * b + x2 * c + x3 * d;
          C[c1 + n] += z0 * a + z1 * b + z2 * c + z3 * d;
        }
      }
      for (; k < K; k++) {
        const x = X[p + k * xsK], z = X[q + k * xsK], y = k * ldy;
        for (let n = n0; n < n1; n++) { const a = Y[y + n]; C[c0 + n] += x * a; C[c1 + n] += z * a; }
      }
    }
    for (; m < M; m++) {
      const c0 = m * ldc, p = xOff + m * xsM;
      for (let k = 0; k < K; k++) {
        const x = X[p + k * xsK], y = k * ldy;
        for (let n = n0; n < n1; n++) C[c0 + n] += x * Y[y + n];
      }
    }
  }
}

/** The factor as float64 (the storage itself when it already is). */
function asF64(v: FArr): Float64Array {
  return v instanceof Float64Array ? v : Float64Array.from(v);
}

/**
 * inputs [weights (R), aOut (O,R), aIn (I,R), aKernel (S,R)] → W (O,I,S).
 * For each input channel i: KR_i[s,r] = w_r·aIn[i,r]·aKernel[s,r] (S×R), then
 * W[:, i, :] = aOut · KR_iᵀ, a GEMM of O×S outputs with dot products of length R.
 * Cost O·I·S·R multiply-adds, extra memory S·R.
 */
registerKernel('cpReconstruct', 'cpu', (inputs, _attrs, backend) => {
  const be = backend as CpuBackend;
  const [wt, ao, ai, ak] = inputs;
  const R = wt.shape[0], O = ao.shape[0], I = ai.shape[0], S = ak.shape[0];
  const w = fvals(wt), A = asF64(fvals(ao)), B = fvals(ai), K = fvals(ak);
  const o = be.out([O, I, S], wt.dtype);
  const W = o.values;
  const kr = new Float64Array(S * R), cs = new Float64Array(O * S);
  for (let i = 0; i < I; i++) {
    const bi = i * R;
    for (let s = 0; s < S; s++) {
      const ks = s * R;
      for (let r = 0; r < R; r++) kr[ks + r] = w[r] * B[bi + r] * K[ks + r];
    }
    cs.fill(0);
    gemmNT(O, S, R, A, 0, R, kr, 0, R, cs, 0, S);
    for (let q = 0; q < O; q++) {
      const src = q * S, dst = (q * I + i) * S;
      for (let s = 0; s < S; s++) W[dst + s] = cs[src + s];
    }
  }
  return o.info;
});

/**
 * inputs [dW (O,I,S), weights, aOut, aIn, aKernel] → [dweights, daOut, daIn, daKernel].
 * Per input channel i, with G_i = dW[:, i, :] (O×S):
 *   daOut += G_i · KR_i               (O×S·S×R, KR_i as in the forward)
 *   H_i    = G_iᵀ · aOut              (S×O·O×R)
 *   T_i[r] = Σ_s H_i[s,r]·aKernel[s,r]
 *   daIn[i,r] = w_r·T_i[r],  dw[r] += aIn[i,r]·T_i[r],  daKernel += w_r·aIn[i,r]·H_i
 * Two GEMM-shaped contractions of O·I·S·R each: twice the forward's cost.
 */
registerKernel('cpReconstructGrad', 'cpu', (inputs, _attrs, backend) => {
  const be = backend as CpuBackend;
  const [gW, wt, ao, ai, ak] = inputs;
  const R = wt.shape[0], O = ao.shape[0], I = ai.shape[0], S = ak.shape[0];
  const G = fvals(gW), w = fvals(wt), A = asF64(fvals(ao)), B = fvals(ai), K = fvals(ak);
  const dt = wt.dtype;
  const dwo = be.out([R], dt), dao = be.out([O, R], dt), dio = be.out([I, R], dt), dko = be.out([S, R], dt);
  const dB = dio.values;
  // Accumulators and scratch in float64 (sums over the I blocks; monomorphic GEMM loops).
  const dA = new Float64Array(O * R), dw = new Float64Array(R), dK = new Float64Array(S * R), H = new Float64Array(S * R);
  const kr = new Float64Array(S * R);
  for (let i = 0; i < I; i++) {
    const bi = i * R;
    for (let s = 0; s < S; s++) {
      const ks = s * R;
      for (let r = 0; r < R; r++) kr[ks + r] = w[r] * B[bi + r] * K[ks + r];
    }
    // daOut[o, r] += Σ_s G[o, i, s]·KR_i[s, r]
    gemmNNAcc(O, R, S, G, i * S, I * S, 1, kr, R, dA, R);
    // H_i[s, r] = Σ_o G[o, i, s]·aOut[o, r]
    H.fill(0);
    gemmNNAcc(S, R, O, G, i * S, 1, I * S, A, R, H, R);
    for (let r = 0; r < R; r++) {
      let t = 0;
      for (let s = 0; s < S; s++) t += H[s * R + r] * K[s * R + r];
      dB[bi + r] = w[r] * t;
      dw[r] += B[bi + r] * t;
    }
    for (let s = 0; s < S; s++) {
      const ks = s * R;
      for (let r = 0; r < R; r++) dK[ks + r] += w[r] * B[bi + r] * H[ks + r];
    }
  }
  dwo.values.set(dw); dao.values.set(dA); dko.values.set(dK);
  return [dwo.info, dao.info, dio.info, dko.info];
});
