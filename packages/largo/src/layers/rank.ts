/**
 * Rank rules and parameter-count formulas of the factorized layers.
 *
 * Notation: K subsets (models), O output channels, I input channels,
 * S = kd·kh·kw flattened kernel size (S = 1 for a linear layer: no S mode).
 */

/** Rank multipliers of the paper's ablation (Appendix B.1). */
export const RANK_MULTIPLIERS = [0.25, 0.5, 1, 2, 4] as const;

/**
 * CP rank (paper Eq. 3): the rank at which R(K+O+I+S) ≈ O·I·S, i.e. the
 * whole family of K kernels costs what one dedicated kernel costs:
 * R = max(1, floor(m · O·I·S / (K+O+I+S))). For a linear layer pass S = 0
 * (no kernel mode): R = floor(m · O·I / (K+O+I)).
 */
export function cpRank(K: number, O: number, I: number, S: number, multiplier = 1): number {
  const sMode = S > 0 ? S : 0;
  const elems = O * I * Math.max(1, sMode);
  return Math.max(1, Math.floor((multiplier * elems) / (K + O + I + sMode)));
}

/**
 * The rank at which a CP family can hold ANY K kernels exactly: the tensor
 * [K, O, I, S] is a sum of its slices along its largest mode, each slice a
 * sum of (product of the other three dims) rank-one terms, so
 * R* = K·O·I·S / max(K, O, I, S) suffices (a sufficient bound, not the
 * tensor's true rank; see packages/largo/test/exactness.test.ts).
 */
export function exactCpRank(K: number, O: number, I: number, S: number): number {
  const dims = [K, O, I, S > 0 ? S : 1];
  return dims.reduce((a, b) => a * b, 1) / Math.max(...dims);
}

/** Rank rule of the factorized layers: the paper's budget rule (× multiplier) or the exact-representation bound. */
export type RankRule = 'budget' | 'exact';

/** CP layer parameters: R(K+O+I+S) factor entries + K·O biases (S = 0: linear). */
export function cpParams(K: number, O: number, I: number, S: number, R: number, bias = true): number {
  return R * (K + O + I + (S > 0 ? S : 0)) + (bias ? K * O : 0);
}

/** K dedicated copies: K(O·I·S + O). */
export function dedicatedParams(K: number, O: number, I: number, S: number, bias = true): number {
  return K * (O * I * Math.max(1, S) + (bias ? O : 0));
}

/** One plain layer: O·I·S + O. */
export function plainParams(O: number, I: number, S: number, bias = true): number {
  return O * I * Math.max(1, S) + (bias ? O : 0);
}

export interface TuckerRanks {
  out: number;
  in: number;
}

/**
 * Tucker ranks (paper Appendix B.2, Eq. 6). The model mode (K) and the
 * kernel mode (S) are not compressed: the core is [K, R_o, R_i, S] and only
 * O and I get factor matrices, with a shared rank R. Matching the budget
 * m·O·I·S of one dedicated kernel:
 *   K·S·R² + (O+I)·R = m·O·I·S
 *   R = floor((−(O+I) + sqrt(Δ)) / (2·K·S)),  Δ = (O+I)² + 4·K·S·m·O·I·S.
 * Then R_o = min(R, O), R_i = min(R, I) (a rank above the dimension adds
 * nothing), each at least 1.
 */
export function tuckerRanks(K: number, O: number, I: number, S: number, multiplier = 1): TuckerRanks {
  const s = Math.max(1, S);
  const budget = multiplier * O * I * s;
  const disc = (O + I) ** 2 + 4 * K * s * budget;
  const R = Math.max(1, Math.floor((-(O + I) + Math.sqrt(disc)) / (2 * K * s)));
  return { out: Math.min(R, O), in: Math.min(R, I) };
}

/** Tucker layer parameters: K·R_o·R_i·S (core) + O·R_o + I·R_i (factors) + K·O biases. */
export function tuckerParams(K: number, O: number, I: number, S: number, r: TuckerRanks, bias = true): number {
  return K * r.out * r.in * Math.max(1, S) + O * r.out + I * r.in + (bias ? K * O : 0);
}
