/**
 * Normalization layers. Instance norm normalizes each (sample, channel)
 * over the spatial axes (eps 1e-5, as nnU-Net); layer norm normalizes the
 * last axis. The affine weight/bias are either shared ([C]) or one set per
 * subset ([K, C], LARGO's choice: paper §3.2 / docs/design.md "LARGO defaults").
 */
import { add, div, full, instanceNorm, mean, mul, sqrt, sub, tidy, type Tensor } from '@largo/core';
import { Layer, checkSubsetIndex } from './base.js';
import { row } from './weights.js';

export const INSTANCE_NORM_EPS = 1e-5;
export const LAYER_NORM_EPS = 1e-5;

abstract class AffineNorm extends Layer {
  readonly numChannels: number;
  readonly numSubsets: number;
  readonly eps: number;
  readonly weight: Tensor;
  readonly bias: Tensor;

  constructor(C: number, K: number | null, eps: number) {
    super();
    if (!Number.isInteger(C) || C < 1) throw new RangeError(`norm: channel count must be a positive integer, got ${C}`);
    this.role = 'norm';
    this.numChannels = C;
    this.numSubsets = K ?? 1;
    this.eps = eps;
    const shape = K === null ? [C] : [K, C];
    this.weight = this.param('weight', full(shape, 1), 'norm.weight');
    this.bias = this.param('bias', full(shape, 0), 'norm.bias');
  }

  protected affine(k: number): [Tensor, Tensor] {
    if (this.weight.rank === 1) return [this.weight, this.bias];
    checkSubsetIndex(this.kind, k, this.numSubsets);
    return [row(this.weight, k), row(this.bias, k)];
  }
}

/** Instance norm with one shared affine [C] (plain networks). */
export class InstanceNorm3d extends AffineNorm {
  readonly kind: string = 'InstanceNorm3d';
  constructor(C: number, opts: { eps?: number } = {}) {
    super(C, null, opts.eps ?? INSTANCE_NORM_EPS);
  }
  forward(x: Tensor, _k = 0): Tensor {
    return instanceNorm(x, this.weight, this.bias, this.eps);
  }
}

/** Instance norm with one affine set per subset: weight/bias [K, C]. */
export class SubsetInstanceNorm extends AffineNorm {
  readonly kind: string = 'SubsetInstanceNorm';
  constructor(K: number, C: number, opts: { eps?: number } = {}) {
    super(C, K, opts.eps ?? INSTANCE_NORM_EPS);
  }
  forward(x: Tensor, k: number): Tensor {
    return tidy(() => {
      const [w, b] = this.affine(k);
      return instanceNorm(x, w, b, this.eps);
    });
  }
}

/** (x − mean) / sqrt(var + eps) over the last axis (two-pass variance). */
export function layerNorm(
  x: Tensor,
  weight: Tensor | undefined,
  bias: Tensor | undefined,
  eps = LAYER_NORM_EPS,
): Tensor {
  return tidy(() => {
    const d = sub(x, mean(x, -1, true));
    const v = mean(mul(d, d), -1, true);
    let y = div(d, sqrt(add(v, eps)));
    if (weight) y = mul(y, weight);
    if (bias) y = add(y, bias);
    return y;
  });
}

/** Layer norm over the last axis with a shared affine [C]. */
export class LayerNorm extends AffineNorm {
  readonly kind: string = 'LayerNorm';
  constructor(C: number, opts: { eps?: number } = {}) {
    super(C, null, opts.eps ?? LAYER_NORM_EPS);
  }
  forward(x: Tensor, _k = 0): Tensor {
    return layerNorm(x, this.weight, this.bias, this.eps);
  }
}

/** Layer norm with one affine set per subset: weight/bias [K, C]. */
export class SubsetLayerNorm extends AffineNorm {
  readonly kind: string = 'SubsetLayerNorm';
  constructor(K: number, C: number, opts: { eps?: number } = {}) {
    super(C, K, opts.eps ?? LAYER_NORM_EPS);
  }
  forward(x: Tensor, k: number): Tensor {
    return tidy(() => {
      const [w, b] = this.affine(k);
      return layerNorm(x, w, b, this.eps);
    });
  }
}
