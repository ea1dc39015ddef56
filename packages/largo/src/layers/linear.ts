/**
 * Linear layers over a family of K subset-specific weights [O, I]
 * (y = x Wᵀ + b, x [..., I]). The CP family has no kernel mode:
 * W_k = Â_out diag(A_model[k]) Â_inᵀ, rank floor(O·I / (K+O+I)).
 */
import { add, matmul, reshape, type Tensor } from '@largo/core';
import { initGenerator } from '../init.js';
import { FamilyLayer, type FamilyLayerOptions } from './family.js';
import {
  CPWeights,
  DedicatedWeights,
  SharedWeights,
  TuckerWeights,
  type CPOptions,
  type FamilyShape,
  type TuckerOptions,
  type WeightFamily,
} from './weights.js';
import type { SubsetCount } from './conv.js';

export interface LinearOptions extends FamilyLayerOptions {
  inFeatures: number;
  outFeatures: number;
}

export class FamilyLinear extends FamilyLayer {
  readonly kind: string;
  readonly inFeatures: number;
  readonly outFeatures: number;

  constructor(kind: string, o: LinearOptions, makeWeights: (s: Omit<FamilyShape, 'numSubsets'>) => WeightFamily) {
    for (const [n, v] of [
      ['inFeatures', o.inFeatures],
      ['outFeatures', o.outFeatures],
    ] as const) {
      if (!Number.isInteger(v) || v < 1) throw new RangeError(`${kind}: ${n} must be a positive integer, got ${v}`);
    }
    super(makeWeights({ out: o.outFeatures, in: o.inFeatures, kernel: [] }), o.bias ?? true, o.role);
    this.kind = kind;
    this.inFeatures = o.inFeatures;
    this.outFeatures = o.outFeatures;
  }

  protected apply(x: Tensor, w: Tensor, b: Tensor | undefined): Tensor {
    const lead = x.shape.slice(0, -1);
    const x2 = x.rank === 2 ? x : reshape(x, [-1, this.inFeatures]);
    let y = matmul(x2, w, { transposeB: true });
    if (b) y = add(y, b);
    return x.rank === 2 ? y : reshape(y, [...lead, this.outFeatures]);
  }
}

const slope = (o: FamilyLayerOptions): number => o.negativeSlope ?? 0;

/** Plain linear layer: weight [O, I] Kaiming-normal (fan-in I), bias [O] zeros. */
export class Linear extends FamilyLinear {
  constructor(o: LinearOptions) {
    super('Linear', o, (s) => new SharedWeights(s, initGenerator(o), slope(o)));
  }
}

export class DedicatedLinear extends FamilyLinear {
  constructor(o: LinearOptions & SubsetCount) {
    super(
      'DedicatedLinear',
      o,
      (s) => new DedicatedWeights({ ...s, numSubsets: o.numSubsets }, initGenerator(o), slope(o)),
    );
  }
}

export class CPLinear extends FamilyLinear {
  constructor(o: LinearOptions & SubsetCount & CPOptions) {
    super('CPLinear', o, (s) => new CPWeights({ ...s, numSubsets: o.numSubsets }, initGenerator(o), o, slope(o)));
  }
  get rank(): number {
    return (this.weights as CPWeights).rank;
  }
}

export class TuckerLinear extends FamilyLinear {
  constructor(o: LinearOptions & SubsetCount & TuckerOptions) {
    super(
      'TuckerLinear',
      o,
      (s) => new TuckerWeights({ ...s, numSubsets: o.numSubsets }, initGenerator(o), o, slope(o)),
    );
  }
  get ranks(): { out: number; in: number } {
    return (this.weights as TuckerWeights).ranks;
  }
}
