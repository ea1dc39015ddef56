/**
 * 3-D convolutions over a family of K subset-specific kernels.
 *
 * | class | weights | bias | parameters |
 * |---|---|---|---|
 * | `Conv3d` / `ConvTranspose3d` | one shared kernel | [O] | O·I·S + O |
 * | `DedicatedConv3d` / `DedicatedConvTranspose3d` | K copies | [K, O] | K(O·I·S + O) |
 * | `CPConv3d` / `CPConvTranspose3d` | CP factors | [K, O] | R(K+O+I+S) + K·O |
 * | `TuckerConv3d` / `TuckerConvTranspose3d` | Tucker core + factors | [K, O] | K·R_o·R_i·S + O·R_o + I·R_i + K·O |
 *
 * Every class has `forward(x [N, I, D, H, W], k)`; the plain ones ignore k.
 * A 2-D conv is the same layer with kernel [1, kh, kw] on [N, C, 1, H, W].
 */
import { conv3d, convTranspose3d, type Tensor } from '@largo/core';
import { initGenerator } from '../init.js';
import { triple } from './base.js';
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

export type Int3 = number | readonly [number, number, number] | readonly number[];

export interface Conv3dOptions extends FamilyLayerOptions {
  inChannels: number;
  outChannels: number;
  kernelSize: Int3;
  stride?: Int3;
  padding?: Int3;
  dilation?: Int3;
}

export interface ConvTranspose3dOptions extends FamilyLayerOptions {
  inChannels: number;
  outChannels: number;
  kernelSize: Int3;
  stride?: Int3;
  padding?: Int3;
  outputPadding?: Int3;
}

export interface SubsetCount {
  numSubsets: number;
}

function checkChannels(kind: string, o: { inChannels: number; outChannels: number }): void {
  for (const [n, v] of [
    ['inChannels', o.inChannels],
    ['outChannels', o.outChannels],
  ] as const) {
    if (!Number.isInteger(v) || v < 1) throw new RangeError(`${kind}: ${n} must be a positive integer, got ${v}`);
  }
}

/** A conv layer over any weight family. */
export class FamilyConv3d extends FamilyLayer {
  readonly kind: string;
  readonly inChannels: number;
  readonly outChannels: number;
  readonly kernelSize: [number, number, number];
  readonly stride: [number, number, number];
  readonly padding: [number, number, number];
  readonly dilation: [number, number, number];

  constructor(kind: string, o: Conv3dOptions, makeWeights: (s: Omit<FamilyShape, 'numSubsets'>) => WeightFamily) {
    checkChannels(kind, o);
    const kernel = triple(o.kernelSize as number | number[], 1);
    super(makeWeights({ out: o.outChannels, in: o.inChannels, kernel }), o.bias ?? true, o.role);
    this.kind = kind;
    this.inChannels = o.inChannels;
    this.outChannels = o.outChannels;
    this.kernelSize = kernel;
    this.stride = triple(o.stride as number | number[] | undefined, 1);
    this.padding = triple(o.padding as number | number[] | undefined, 0);
    this.dilation = triple(o.dilation as number | number[] | undefined, 1);
  }

  protected apply(x: Tensor, w: Tensor, b: Tensor | undefined): Tensor {
    return conv3d(x, w, b, { stride: this.stride, padding: this.padding, dilation: this.dilation });
  }
}

/** A transposed conv layer over any weight family (weight layout [I, O, kd, kh, kw]). */
export class FamilyConvTranspose3d extends FamilyLayer {
  readonly kind: string;
  readonly inChannels: number;
  readonly outChannels: number;
  readonly kernelSize: [number, number, number];
  readonly stride: [number, number, number];
  readonly padding: [number, number, number];
  readonly outputPadding: [number, number, number];

  constructor(
    kind: string,
    o: ConvTranspose3dOptions,
    makeWeights: (s: Omit<FamilyShape, 'numSubsets'>) => WeightFamily,
  ) {
    checkChannels(kind, o);
    const kernel = triple(o.kernelSize as number | number[], 1);
    super(makeWeights({ out: o.outChannels, in: o.inChannels, kernel, transposed: true }), o.bias ?? true, o.role);
    this.kind = kind;
    this.inChannels = o.inChannels;
    this.outChannels = o.outChannels;
    this.kernelSize = kernel;
    this.stride = triple(o.stride as number | number[] | undefined, 1);
    this.padding = triple(o.padding as number | number[] | undefined, 0);
    this.outputPadding = triple(o.outputPadding as number | number[] | undefined, 0);
  }

  protected apply(x: Tensor, w: Tensor, b: Tensor | undefined): Tensor {
    return convTranspose3d(x, w, b, { stride: this.stride, padding: this.padding, outputPadding: this.outputPadding });
  }
}

const slope = (o: FamilyLayerOptions): number => o.negativeSlope ?? 0;

/** Plain Conv3d: one kernel [O, I, kd, kh, kw], Kaiming-normal, bias [O] zeros. */
export class Conv3d extends FamilyConv3d {
  constructor(o: Conv3dOptions) {
    super('Conv3d', o, (s) => new SharedWeights(s, initGenerator(o), slope(o)));
  }
}

/** K independent Conv3d kernels [K, O, I, kd, kh, kw] and biases [K, O]. */
export class DedicatedConv3d extends FamilyConv3d {
  constructor(o: Conv3dOptions & SubsetCount) {
    super(
      'DedicatedConv3d',
      o,
      (s) => new DedicatedWeights({ ...s, numSubsets: o.numSubsets }, initGenerator(o), slope(o)),
    );
  }
}

/** LARGO CP-factorized conv: one factorization for the K subset kernels. */
export class CPConv3d extends FamilyConv3d {
  constructor(o: Conv3dOptions & SubsetCount & CPOptions) {
    super('CPConv3d', o, (s) => new CPWeights({ ...s, numSubsets: o.numSubsets }, initGenerator(o), o, slope(o)));
  }
  get rank(): number {
    return (this.weights as CPWeights).rank;
  }
}

/** Tucker-factorized conv (the ablation of Appendix B.2). */
export class TuckerConv3d extends FamilyConv3d {
  constructor(o: Conv3dOptions & SubsetCount & TuckerOptions) {
    super(
      'TuckerConv3d',
      o,
      (s) => new TuckerWeights({ ...s, numSubsets: o.numSubsets }, initGenerator(o), o, slope(o)),
    );
  }
  get ranks(): { out: number; in: number } {
    return (this.weights as TuckerWeights).ranks;
  }
}

export class ConvTranspose3d extends FamilyConvTranspose3d {
  constructor(o: ConvTranspose3dOptions) {
    super('ConvTranspose3d', o, (s) => new SharedWeights(s, initGenerator(o), slope(o)));
  }
}

export class DedicatedConvTranspose3d extends FamilyConvTranspose3d {
  constructor(o: ConvTranspose3dOptions & SubsetCount) {
    super(
      'DedicatedConvTranspose3d',
      o,
      (s) => new DedicatedWeights({ ...s, numSubsets: o.numSubsets }, initGenerator(o), slope(o)),
    );
  }
}

export class CPConvTranspose3d extends FamilyConvTranspose3d {
  constructor(o: ConvTranspose3dOptions & SubsetCount & CPOptions) {
    super(
      'CPConvTranspose3d',
      o,
      (s) => new CPWeights({ ...s, numSubsets: o.numSubsets }, initGenerator(o), o, slope(o)),
    );
  }
  get rank(): number {
    return (this.weights as CPWeights).rank;
  }
}

export class TuckerConvTranspose3d extends FamilyConvTranspose3d {
  constructor(o: ConvTranspose3dOptions & SubsetCount & TuckerOptions) {
    super(
      'TuckerConvTranspose3d',
      o,
      (s) => new TuckerWeights({ ...s, numSubsets: o.numSubsets }, initGenerator(o), o, slope(o)),
    );
  }
  get ranks(): { out: number; in: number } {
    return (this.weights as TuckerWeights).ranks;
  }
}
