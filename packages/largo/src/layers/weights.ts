/**
 * Weight families: the K per-subset weight tensors of one layer, stored
 * plainly (shared / dedicated) or factorized (CP / Tucker). A family only
 * makes weights; the conv / linear layers in `conv.ts` and `linear.ts` apply
 * them, add biases and cache the reconstructed kernels for inference.
 */
import {
  add,
  cpReconstruct,
  div,
  matmul,
  mul,
  permute,
  reshape,
  slice,
  sqrt,
  sum,
  type Philox,
  type Tensor,
} from '@largo/core';
import { fanIn, kaimingGain, kaimingNormal, onesInit } from '../init.js';
import { Layer, checkSubsetIndex } from './base.js';
import { cpRank, exactCpRank, tuckerRanks, type RankRule, type TuckerRanks } from './rank.js';

/** Tiny constant under the square root of the column normalization. */
export const NORM_EPS = 1e-12;

/**
 * Scales every column of a [D, R] factor to unit L2 norm, differentiably:
 * a / sqrt(Σ_d a² + ε). The column norms are absorbed by A_model (paper §3.2).
 */
export function normalizeColumns(a: Tensor, eps = NORM_EPS): Tensor {
  return div(a, sqrt(add(sum(mul(a, a), 0, true), eps)));
}

/** Row k of a [K, ...] tensor, as a [...] tensor (a differentiable slice). */
export function row(t: Tensor, k: number): Tensor {
  const begin = t.shape.map(() => 0);
  begin[0] = k;
  const size = [1, ...t.shape.slice(1)];
  return reshape(slice(t, begin, size), t.shape.slice(1));
}

export interface FamilyShape {
  /** Number of subsets K (1 for a shared weight). */
  numSubsets: number;
  out: number;
  in: number;
  /** Kernel extents; [] for a linear layer. */
  kernel: readonly number[];
  /** Transposed conv: weight layout [I, O, ...kernel] instead of [O, I, ...kernel]. */
  transposed?: boolean;
}

export abstract class WeightFamily extends Layer {
  readonly numSubsets: number;
  readonly outFeatures: number;
  readonly inFeatures: number;
  readonly kernel: readonly number[];
  readonly transposed: boolean;
  /** Per-subset weight shape: [O, I, ...k] (conv, linear) or [I, O, ...k] (transposed). */
  readonly shape: readonly number[];
  /** S = prod(kernel) (1 for linear). */
  readonly kernelSize: number;
  /** Whether weight(k) computes a new tensor worth caching at inference. */
  abstract readonly cacheable: boolean;

  constructor(s: FamilyShape) {
    super();
    this.numSubsets = s.numSubsets;
    this.outFeatures = s.out;
    this.inFeatures = s.in;
    this.kernel = [...s.kernel];
    this.transposed = s.transposed ?? false;
    this.shape = this.transposed ? [s.in, s.out, ...s.kernel] : [s.out, s.in, ...s.kernel];
    this.kernelSize = this.kernel.reduce((a, b) => a * b, 1);
  }

  /** Subset k's weight, differentiable w.r.t. the family's parameters. */
  abstract weight(k: number): Tensor;
}

/** One weight for every subset (plain networks). weight(k) is the parameter itself. */
export class SharedWeights extends WeightFamily {
  readonly kind = 'SharedWeights';
  readonly cacheable = false;
  readonly w: Tensor;
  constructor(s: Omit<FamilyShape, 'numSubsets'>, gen: Philox, negativeSlope = 0) {
    super({ ...s, numSubsets: 1 });
    this.w = this.param('weight', kaimingNormal(this.shape, gen, { negativeSlope }), 'weight');
  }
  weight(_k: number): Tensor {
    return this.w;
  }
}

/** K independent plain weights: the family of dedicated networks, stored explicitly. */
export class DedicatedWeights extends WeightFamily {
  readonly kind = 'DedicatedWeights';
  readonly cacheable = true;
  readonly w: Tensor;
  constructor(s: FamilyShape, gen: Philox, negativeSlope = 0) {
    super(s);
    this.w = this.param(
      'weight',
      kaimingNormal([s.numSubsets, ...this.shape], gen, { negativeSlope, fan: fanIn(this.shape) }),
      'weight',
    );
  }
  weight(k: number): Tensor {
    checkSubsetIndex(this.kind, k, this.numSubsets);
    return row(this.w, k);
  }
}

export interface CPOptions {
  /** Explicit rank; overrides the rule. */
  rank?: number;
  /** Multiplies the default rank (paper ablation: ¼, ½, 1, 2, 4). */
  rankMultiplier?: number;
  /** 'exact': the rank that holds any K kernels exactly (exactCpRank), ignoring the multiplier */
  rankRule?: RankRule;
}

/**
 * CP-factorized family (paper Eq. 2):
 *   W[k, o, i, s] = Σ_r A_model[k, r] · Â_out[o, r] · Â_in[i, r] · Â_kernel[s, r]
 * with Â the column-normalized factors. A_model [K, R] starts at ones,
 * A_out [O, R], A_in [I, R], A_kernel [S, R] Kaiming-normal (as
 * torch.nn.init.kaiming_normal_ on a [D, R] matrix: std = gain/√R). Linear
 * layers have no kernel mode. Only subset k's kernel is ever reconstructed.
 */
export class CPWeights extends WeightFamily {
  readonly kind = 'CPWeights';
  readonly cacheable = true;
  readonly rank: number;
  readonly aModel: Tensor;
  readonly aOut: Tensor;
  readonly aIn: Tensor;
  readonly aKernel: Tensor | null;

  constructor(s: FamilyShape, gen: Philox, opts: CPOptions = {}, negativeSlope = 0) {
    super(s);
    const S = s.kernel.length > 0 ? this.kernelSize : 0;
    this.rank =
      opts.rank ??
      (opts.rankRule === 'exact'
        ? exactCpRank(s.numSubsets, s.out, s.in, S)
        : cpRank(s.numSubsets, s.out, s.in, S, opts.rankMultiplier ?? 1));
    if (!Number.isInteger(this.rank) || this.rank < 1)
      throw new RangeError(`CPWeights: rank must be a positive integer, got ${this.rank}`);
    const R = this.rank;
    this.aModel = this.param('aModel', onesInit([s.numSubsets, R]), 'cp.model');
    this.aOut = this.param('aOut', kaimingNormal([s.out, R], gen, { negativeSlope }), 'cp.out');
    this.aIn = this.param('aIn', kaimingNormal([s.in, R], gen, { negativeSlope }), 'cp.in');
    this.aKernel = S > 0 ? this.param('aKernel', kaimingNormal([S, R], gen, { negativeSlope }), 'cp.kernel') : null;
  }

  weight(k: number): Tensor {
    checkSubsetIndex(this.kind, k, this.numSubsets);
    const w = row(this.aModel, k);
    const nOut = normalizeColumns(this.aOut),
      nIn = normalizeColumns(this.aIn);
    if (!this.aKernel) {
      // Linear: W = (Â_out · diag(w)) Â_inᵀ.
      return matmul(mul(nOut, w), nIn, { transposeB: true });
    }
    const nK = normalizeColumns(this.aKernel);
    const W = this.transposed ? cpReconstruct(w, nIn, nOut, nK) : cpReconstruct(w, nOut, nIn, nK);
    return reshape(W, this.shape);
  }
}

export interface TuckerOptions {
  ranks?: TuckerRanks;
  rankMultiplier?: number;
  /** 'exact': full ranks (R_o = O, R_i = I), which hold any K kernels exactly */
  rankRule?: RankRule;
}

/**
 * Tucker-factorized family (paper Appendix B.2): core G [K, R_o, R_i, S]
 * (model and kernel modes uncompressed) and factors A_out [O, R_o],
 * A_in [I, R_i] with normalized columns:
 *   W[k, o, i, s] = Σ_{p,q} Â_out[o, p] · Â_in[i, q] · G[k, p, q, s].
 * Ranks from `tuckerRanks` (budget-matched to one dedicated kernel). The
 * core starts Kaiming-normal with the variance that gives the reconstructed
 * kernel Kaiming variance: var(G) = gain² · O · I / (fan_in · R_o · R_i).
 */
export class TuckerWeights extends WeightFamily {
  readonly kind = 'TuckerWeights';
  readonly cacheable = true;
  readonly ranks: TuckerRanks;
  readonly core: Tensor;
  readonly aOut: Tensor;
  readonly aIn: Tensor;

  constructor(s: FamilyShape, gen: Philox, opts: TuckerOptions = {}, negativeSlope = 0) {
    super(s);
    const S = this.kernelSize;
    this.ranks =
      opts.ranks ??
      (opts.rankRule === 'exact'
        ? { out: s.out, in: s.in }
        : tuckerRanks(s.numSubsets, s.out, s.in, S, opts.rankMultiplier ?? 1));
    const { out: Ro, in: Ri } = this.ranks;
    const fan = fanIn(this.shape);
    const std = kaimingGain(negativeSlope) * Math.sqrt((s.out * s.in) / (fan * Ro * Ri));
    // Drawn through kaimingNormal with the fan that yields `std`.
    const coreFan = (kaimingGain(negativeSlope) / std) ** 2;
    this.core = this.param(
      'core',
      kaimingNormal([s.numSubsets, Ro, Ri, S], gen, { negativeSlope, fan: coreFan }),
      'tucker.core',
    );
    this.aOut = this.param('aOut', kaimingNormal([s.out, Ro], gen, { negativeSlope }), 'tucker.out');
    this.aIn = this.param('aIn', kaimingNormal([s.in, Ri], gen, { negativeSlope }), 'tucker.in');
  }

  weight(k: number): Tensor {
    checkSubsetIndex(this.kind, k, this.numSubsets);
    const { out: Ro, in: Ri } = this.ranks;
    const O = this.outFeatures,
      I = this.inFeatures,
      S = this.kernelSize;
    const G = reshape(row(this.core, k), [Ro, Ri * S]);
    const t1 = matmul(normalizeColumns(this.aOut), G); // [O, Ri·S]
    const t1p = reshape(permute(reshape(t1, [O, Ri, S]), [1, 0, 2]), [Ri, O * S]);
    const t2 = reshape(matmul(normalizeColumns(this.aIn), t1p), [I, O, S]); // [I, O, S]
    const W = this.transposed ? t2 : permute(t2, [1, 0, 2]);
    return reshape(W, this.shape);
  }
}
