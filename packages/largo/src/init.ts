/**
 * Weight initialization. Every network takes one `Philox` generator (made
 * from one seed) and draws every initial tensor from it in construction
 * order, so one seed fixes all initial weights bitwise, on every backend.
 */
import { Philox, full, randn, type Tensor } from '@largo/core';

export interface InitOptions {
  generator?: Philox;
  seed?: number;
}

/** The generator to use: the one given, one made from `seed`, or a fresh seed-0 stream. */
export function initGenerator(opts: InitOptions = {}): Philox {
  return opts.generator ?? new Philox(opts.seed ?? 0);
}

/**
 * PyTorch's fan-in of a weight tensor: shape[1] × prod(shape[2:]).
 * Conv [O, I, k...] → I·S; transposed conv [I, O, k...] → O·S (as
 * torch.nn.init computes it); linear [O, I] → I; CP factor [D, R] → R.
 */
export function fanIn(shape: readonly number[]): number {
  if (shape.length < 2) return Math.max(1, shape[0] ?? 1);
  let f = shape[1];
  for (let i = 2; i < shape.length; i++) f *= shape[i];
  return Math.max(1, f);
}

/** Kaiming gain for a leaky ReLU with this negative slope: sqrt(2 / (1 + a²)). */
export function kaimingGain(negativeSlope = 0): number {
  return Math.sqrt(2 / (1 + negativeSlope * negativeSlope));
}

/**
 * Kaiming (He) normal init, fan-in mode: N(0, gain² / fanIn), like
 * `torch.nn.init.kaiming_normal_(w, a=negativeSlope)`. `fan` overrides the
 * fan-in computed from the shape.
 */
export function kaimingNormal(
  shape: readonly number[],
  generator: Philox,
  opts: { negativeSlope?: number; fan?: number } = {},
): Tensor {
  const std = kaimingGain(opts.negativeSlope ?? 0) / Math.sqrt(opts.fan ?? fanIn(shape));
  return randn(shape, { generator, std });
}

export const zerosInit = (shape: readonly number[]): Tensor => full(shape, 0);
export const onesInit = (shape: readonly number[]): Tensor => full(shape, 1);
