/**
 * Layer factories: the same network topology made of plain, dedicated, CP
 * (LARGO) or Tucker layers. A network asks the factory for each layer with
 * the number of subsets K that layer serves; the factory picks the class.
 */
import type { Philox, Tensor } from '@largo/core';
import type { Layer } from '../layers/base.js';
import {
  CPConv3d,
  CPConvTranspose3d,
  Conv3d,
  ConvTranspose3d,
  DedicatedConv3d,
  DedicatedConvTranspose3d,
  TuckerConv3d,
  TuckerConvTranspose3d,
  type Int3,
} from '../layers/conv.js';
import { CPLinear, DedicatedLinear, Linear, TuckerLinear } from '../layers/linear.js';
import type { RankRule } from '../layers/rank.js';
import { InstanceNorm3d, LayerNorm, SubsetInstanceNorm, SubsetLayerNorm } from '../layers/norm.js';

/**
 * - `largo`: CP-factorized inner layers, per-subset stems/heads/norm affines.
 * - `largo-tucker`: the same with Tucker-factorized inner layers.
 * - `dedicated`: K independent copies of every layer (the family stored explicitly).
 * - `dropout`: one shared plain network on the zero-filled input (trained with modality dropout).
 * - `full-only`: one shared plain network (trained on the full set only).
 */
export type Method = 'largo' | 'largo-tucker' | 'dedicated' | 'dropout' | 'full-only';
export const METHODS: readonly Method[] = ['largo', 'largo-tucker', 'dedicated', 'dropout', 'full-only'];

/** Whether the method keeps one parameter set per subset (stems, heads, norms). */
export function isPerSubset(method: Method): boolean {
  return method === 'largo' || method === 'largo-tucker' || method === 'dedicated';
}

export type Factorization = 'cp' | 'tucker' | 'dedicated' | 'shared';
export function factorizationOf(method: Method): Factorization {
  switch (method) {
    case 'largo':
      return 'cp';
    case 'largo-tucker':
      return 'tucker';
    case 'dedicated':
      return 'dedicated';
    case 'dropout':
    case 'full-only':
      return 'shared';
    default:
      throw new RangeError(`unknown method '${String(method)}' (known: ${METHODS.join(', ')})`);
  }
}

/** Any layer with forward(x, k). */
export type SubsetModule = Layer & { forward(x: Tensor, k: number): Tensor };

export interface ConvSpec {
  in: number;
  out: number;
  kernel: Int3;
  stride?: Int3;
  padding?: Int3;
}

export interface LayerFactoryOptions {
  method: Method;
  generator: Philox;
  rankMultiplier?: number;
  /** 'exact' overrides the multiplier with the exact-representation rank (layers/rank.ts) */
  rankRule?: RankRule;
  /** Kaiming slope of the convs (nnU-Net: 0.01). */
  negativeSlope?: number;
}

export class LayerFactory {
  readonly method: Method;
  readonly factorization: Factorization;
  readonly generator: Philox;
  readonly rankMultiplier: number;
  readonly rankRule: RankRule;
  readonly negativeSlope: number;

  constructor(o: LayerFactoryOptions) {
    this.method = o.method;
    this.factorization = factorizationOf(o.method);
    this.generator = o.generator;
    this.rankMultiplier = o.rankMultiplier ?? 1;
    this.rankRule = o.rankRule ?? 'budget';
    this.negativeSlope = o.negativeSlope ?? 0;
    if (!(this.rankMultiplier > 0)) throw new RangeError(`rankMultiplier must be > 0, got ${this.rankMultiplier}`);
  }

  get perSubset(): boolean {
    return this.factorization !== 'shared';
  }

  /** An inner conv serving K subsets. */
  conv(s: ConvSpec, K: number): SubsetModule {
    const o = {
      inChannels: s.in,
      outChannels: s.out,
      kernelSize: s.kernel,
      stride: s.stride,
      padding: s.padding,
      generator: this.generator,
      negativeSlope: this.negativeSlope,
      numSubsets: K,
      rankMultiplier: this.rankMultiplier,
      rankRule: this.rankRule,
    };
    switch (this.factorization) {
      case 'cp':
        return new CPConv3d(o);
      case 'tucker':
        return new TuckerConv3d(o);
      case 'dedicated':
        return new DedicatedConv3d(o);
      case 'shared':
        return new Conv3d(o);
    }
  }

  /** An inner transposed conv serving K subsets. */
  convTranspose(s: ConvSpec, K: number): SubsetModule {
    const o = {
      inChannels: s.in,
      outChannels: s.out,
      kernelSize: s.kernel,
      stride: s.stride,
      padding: s.padding,
      generator: this.generator,
      negativeSlope: this.negativeSlope,
      numSubsets: K,
      rankMultiplier: this.rankMultiplier,
      rankRule: this.rankRule,
    };
    switch (this.factorization) {
      case 'cp':
        return new CPConvTranspose3d(o);
      case 'tucker':
        return new TuckerConvTranspose3d(o);
      case 'dedicated':
        return new DedicatedConvTranspose3d(o);
      case 'shared':
        return new ConvTranspose3d(o);
    }
  }

  /** An inner linear layer serving K subsets. */
  linear(inF: number, outF: number, K: number): SubsetModule {
    const o = {
      inFeatures: inF,
      outFeatures: outF,
      generator: this.generator,
      negativeSlope: this.negativeSlope,
      numSubsets: K,
      rankMultiplier: this.rankMultiplier,
      rankRule: this.rankRule,
    };
    switch (this.factorization) {
      case 'cp':
        return new CPLinear(o);
      case 'tucker':
        return new TuckerLinear(o);
      case 'dedicated':
        return new DedicatedLinear(o);
      case 'shared':
        return new Linear(o);
    }
  }

  /** Instance norm: per-subset affine [K, C] or shared [C]. */
  instanceNorm(C: number, K: number): SubsetModule {
    return this.perSubset ? new SubsetInstanceNorm(K, C) : new InstanceNorm3d(C);
  }

  /** Layer norm: per-subset affine [K, C] or shared [C]. */
  layerNorm(C: number, K: number): SubsetModule {
    return this.perSubset ? new SubsetLayerNorm(K, C) : new LayerNorm(C);
  }
}
