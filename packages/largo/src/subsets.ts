/**
 * Modality subsets: the index k that every LARGO layer, network, loss and
 * report uses to name "which modalities are available".
 *
 * With M modalities there are K = 2^M − 1 non-empty subsets. They are
 * numbered in this fixed order:
 *
 *   1. by subset size (number of available modalities), smallest first;
 *   2. within one size, lexicographically by the sorted modality indices.
 *
 * So the single modalities come first in modality order, the full set is
 * always last (k = K − 1). For M = 4 (T1, T1c, T2, FLAIR):
 *
 *   k = 0..3   {0} {1} {2} {3}
 *   k = 4..9   {0,1} {0,2} {0,3} {1,2} {1,3} {2,3}
 *   k = 10..13 {0,1,2} {0,1,3} {0,2,3} {1,2,3}
 *   k = 14     {0,1,2,3}
 *
 * The order only depends on M, never on the modality names.
 */

export const MAX_MODALITIES = 16;

const cache = new Map<number, readonly (readonly number[])[]>();

function checkM(fn: string, M: number): void {
  if (!Number.isInteger(M) || M < 1 || M > MAX_MODALITIES) {
    throw new RangeError(`${fn}: number of modalities must be an integer in [1, ${MAX_MODALITIES}], got ${M}`);
  }
}

/** K = 2^M − 1, the number of non-empty modality subsets. */
export function numSubsets(M: number): number {
  checkM('numSubsets', M);
  return 2 ** M - 1;
}

/** All non-empty subsets of {0..M−1} as sorted index lists, in the documented order. */
export function enumerateSubsets(M: number): readonly (readonly number[])[] {
  checkM('enumerateSubsets', M);
  let out = cache.get(M);
  if (out) return out;
  const list: number[][] = [];
  // Combinations of each size in lexicographic order.
  for (let size = 1; size <= M; size++) {
    const comb = Array.from({ length: size }, (_, i) => i);
    for (;;) {
      list.push([...comb]);
      let i = size - 1;
      while (i >= 0 && comb[i] === M - size + i) i--;
      if (i < 0) break;
      comb[i]++;
      for (let j = i + 1; j < size; j++) comb[j] = comb[j - 1] + 1;
    }
  }
  out = Object.freeze(list.map((s) => Object.freeze(s)));
  cache.set(M, out);
  return out;
}

function checkK(fn: string, k: number, M: number): void {
  const K = numSubsets(M);
  if (!Number.isInteger(k) || k < 0 || k >= K)
    throw new RangeError(`${fn}: subset index must be an integer in [0, ${K - 1}] for M = ${M}, got ${k}`);
}

/** The modality indices (channels of the M-channel input) available in subset k, ascending. */
export function channelsOf(k: number, M: number): readonly number[] {
  checkK('channelsOf', k, M);
  return enumerateSubsets(M)[k];
}

/** Availability mask of subset k: mask[m] is true when modality m is available. */
export function subsetMask(k: number, M: number): boolean[] {
  const ch = channelsOf(k, M);
  const mask = new Array<boolean>(M).fill(false);
  for (const c of ch) mask[c] = true;
  return mask;
}

/** Index of the full set (all M modalities): always the last one, K − 1. */
export function fullSubset(M: number): number {
  return numSubsets(M) - 1;
}

/** Number of available modalities in subset k. */
export function subsetSize(k: number, M: number): number {
  return channelsOf(k, M).length;
}

/**
 * The index of a subset given as an availability mask (`boolean[]` of length
 * M), or as the names of the available modalities (`string[]`, then
 * `modalityNames` — all M names in modality order — is required).
 */
export function subsetIndex(available: readonly boolean[]): number;
export function subsetIndex(available: readonly string[], modalityNames: readonly string[]): number;
export function subsetIndex(
  available: readonly boolean[] | readonly string[],
  modalityNames?: readonly string[],
): number {
  let mask: boolean[];
  if (available.length > 0 && typeof available[0] === 'string') {
    if (!modalityNames) throw new TypeError('subsetIndex: modalityNames is required when subsets are given by name');
    mask = new Array<boolean>(modalityNames.length).fill(false);
    for (const n of available as readonly string[]) {
      const m = modalityNames.indexOf(n);
      if (m < 0) throw new RangeError(`subsetIndex: unknown modality '${n}' (known: ${modalityNames.join(', ')})`);
      mask[m] = true;
    }
  } else {
    if (available.length === 0 && modalityNames) mask = new Array<boolean>(modalityNames.length).fill(false);
    else mask = (available as readonly boolean[]).map((b) => b === true);
  }
  const M = mask.length;
  checkM('subsetIndex', M);
  const ch: number[] = [];
  mask.forEach((b, i) => {
    if (b) ch.push(i);
  });
  if (ch.length === 0)
    throw new RangeError('subsetIndex: the empty subset has no index (at least one modality must be available)');
  // Closed form: subsets of smaller size first, then the combination's lexicographic rank.
  let k = 0;
  for (let s = 1; s < ch.length; s++) k += binom(M, s);
  return k + combRank(ch, M);
}

function binom(n: number, r: number): number {
  if (r < 0 || r > n) return 0;
  let v = 1;
  for (let i = 1; i <= r; i++) v = (v * (n - r + i)) / i;
  return Math.round(v);
}

/** Lexicographic rank of a sorted combination among all combinations of its size. */
function combRank(ch: readonly number[], M: number): number {
  const r = ch.length;
  let rank = 0,
    prev = -1;
  for (let i = 0; i < r; i++) {
    for (let v = prev + 1; v < ch[i]; v++) rank += binom(M - 1 - v, r - 1 - i);
    prev = ch[i];
  }
  return rank;
}

/** "T1+FLAIR"-style name of subset k. */
export function subsetName(k: number, modalityNames: readonly string[]): string {
  return channelsOf(k, modalityNames.length)
    .map((m) => modalityNames[m])
    .join('+');
}

/** Indices of the subsets that contain modality m, ascending. */
export function subsetsContaining(m: number, M: number): number[] {
  checkM('subsetsContaining', M);
  if (!Number.isInteger(m) || m < 0 || m >= M)
    throw new RangeError(`subsetsContaining: modality ${m} out of range for M = ${M}`);
  const out: number[] = [];
  enumerateSubsets(M).forEach((s, k) => {
    if (s.includes(m)) out.push(k);
  });
  return out;
}

/**
 * Markdown table of the subsets: one row per index k, one column per
 * modality, ● available / ○ missing.
 */
export function subsetTable(modalityNames: readonly string[]): string {
  const M = modalityNames.length;
  const subs = enumerateSubsets(M);
  const head = `| k | ${modalityNames.join(' | ')} |`;
  const rule = `|---:|${modalityNames.map(() => ':---:').join('|')}|`;
  const rows = subs.map((s, k) => `| ${k} | ${modalityNames.map((_, m) => (s.includes(m) ? '●' : '○')).join(' | ')} |`);
  return [head, rule, ...rows].join('\n') + '\n';
}
