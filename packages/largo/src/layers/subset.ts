/**
 * Per-subset layers that are never factorized (paper §3.2, "Stem and Head
 * Layers"): one plain copy per subset.
 */
import { dropout, indexSelect, OpError, type Philox, type Tensor } from '@largo/core';
import { channelsOf, numSubsets } from '../subsets.js';
import { Layer, checkSubsetIndex, type LayerRole, type SubsetLayer } from './base.js';
import { Conv3d, FamilyConv3d, type Int3 } from './conv.js';
import { DedicatedWeights } from './weights.js';
import { initGenerator } from '../init.js';

/** K arbitrary layers, one per subset; forward(x, k) runs copy k. Paths "<k>.…". */
export class PerSubset<L extends Layer & { forward(x: Tensor, k: number): Tensor }> extends Layer {
  readonly kind = 'PerSubset';
  readonly copies: readonly L[];
  constructor(copies: readonly L[], role: LayerRole = 'container') {
    super();
    this.role = role;
    this.copies = copies.map((c, k) => this.child(String(k), c));
  }
  get numSubsets(): number {
    return this.copies.length;
  }
  forward(x: Tensor, k: number): Tensor {
    checkSubsetIndex(this.kind, k, this.copies.length);
    return this.copies[k].forward(x, k);
  }
}

export interface StemOptions {
  /** M, the number of modalities; there are K = 2^M − 1 copies. */
  modalities: number;
  outChannels: number;
  kernelSize?: Int3;
  stride?: Int3;
  padding?: Int3;
  generator?: Philox;
  seed?: number;
  negativeSlope?: number;
}

/**
 * The per-subset stem: copy k is a plain Conv3d with |subset k| input
 * channels. forward(x, k) takes the full M-channel input (missing channels
 * zero-filled) and selects subset k's channels with indexSelect; an input
 * that already has exactly |subset k| channels is used as is.
 */
export class SubsetStem extends Layer {
  readonly kind = 'SubsetStem';
  readonly modalities: number;
  readonly copies: readonly Conv3d[];
  constructor(o: StemOptions) {
    super();
    this.role = 'stem';
    this.modalities = o.modalities;
    const K = numSubsets(o.modalities);
    const gen = initGenerator(o);
    const copies: Conv3d[] = [];
    for (let k = 0; k < K; k++) {
      copies.push(
        this.child(
          String(k),
          new Conv3d({
            inChannels: channelsOf(k, o.modalities).length,
            outChannels: o.outChannels,
            kernelSize: o.kernelSize ?? 3,
            stride: o.stride,
            padding: o.padding ?? 1,
            generator: gen,
            negativeSlope: o.negativeSlope,
            role: 'stem',
          }),
        ),
      );
    }
    this.copies = copies;
  }
  get numSubsets(): number {
    return this.copies.length;
  }
  forward(x: Tensor, k: number): Tensor {
    checkSubsetIndex(this.kind, k, this.copies.length);
    const ch = channelsOf(k, this.modalities);
    let xs: Tensor;
    if (x.shape[1] === this.modalities && ch.length < this.modalities) xs = indexSelect(x, 1, ch);
    else if (x.shape[1] === ch.length) xs = x;
    else
      throw new OpError(
        this.kind,
        `input has ${x.shape[1]} channels; expected ${this.modalities} (all modalities) or ${ch.length} (subset ${k})`,
      );
    const y = this.copies[k].forward(xs, k);
    if (xs !== x) xs.dispose();
    return y;
  }
}

export interface HeadOptions {
  numSubsets: number;
  inChannels: number;
  outChannels: number;
  generator?: Philox;
  seed?: number;
  negativeSlope?: number;
}

/** The per-subset 1×1×1 output conv (segmentation and deep-supervision heads). */
export class SubsetHead extends FamilyConv3d {
  constructor(o: HeadOptions) {
    super(
      'SubsetHead',
      { ...o, kernelSize: 1, role: 'head' },
      (s) => new DedicatedWeights({ ...s, numSubsets: o.numSubsets }, initGenerator(o), o.negativeSlope ?? 0),
    );
  }
}

/** Dropout with its own seeded stream; identity in eval mode. */
export class Dropout extends Layer {
  readonly kind = 'Dropout';
  constructor(
    readonly p: number,
    readonly generator: Philox,
  ) {
    super();
    if (!(p >= 0 && p < 1)) throw new RangeError(`Dropout: p must be in [0, 1), got ${p}`);
  }
  forward(x: Tensor, _k = 0): Tensor {
    if (!this.training || this.p === 0) return x;
    return dropout(x, this.p, { generator: this.generator, training: true });
  }
}

export type { SubsetLayer };
