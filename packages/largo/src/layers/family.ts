import { engine, full, tidy, type Philox, type Tensor } from '@largo/core';
import { isGradEnabled, noGrad } from '@largo/autograd';
import { Layer, checkSubsetIndex, type LayerRole } from './base.js';
import { row, type WeightFamily } from './weights.js';

export interface FamilyLayerOptions {
  /** Seeded generator for the initial weights (default: a seed-0 stream). */
  generator?: Philox;
  /** Seed of a fresh generator when none is given. */
  seed?: number;
  /** Leaky-ReLU slope for the Kaiming gain (0 = ReLU; nnU-Net uses 0.01). */
  negativeSlope?: number;
  /** With a bias (default true): [K, O] zeros per subset, [O] zeros when shared. */
  bias?: boolean;
  role?: LayerRole;
}

/**
 * A layer whose weight comes from a `WeightFamily`, plus a bias, with the
 * inference cache: in eval mode (`train(false)`) under `noGrad`, subset k's
 * reconstructed weight and bias are computed once and reused until another
 * subset is asked for, `train(true)` or `clearCache()`. Only one subset is
 * cached at a time, so cached inference holds one plain network's weights.
 */
export abstract class FamilyLayer extends Layer {
  readonly weights: WeightFamily;
  readonly bias: Tensor | null;
  private cache: { k: number; w: Tensor; b: Tensor | undefined } | null = null;

  constructor(weights: WeightFamily, bias: boolean, role: LayerRole = 'inner') {
    super();
    this.role = role;
    this.weights = this.child('', weights);
    const K = weights.numSubsets,
      O = weights.outFeatures;
    this.bias = bias ? this.param('bias', full(this.shared ? [O] : [K, O], 0), 'bias') : null;
  }

  /** Number of subsets K (1 for a plain layer, which ignores k). */
  get numSubsets(): number {
    return this.weights.numSubsets;
  }
  get shared(): boolean {
    return this.weights.kind === 'SharedWeights';
  }

  /** Applies weight w (and bias b) to x: the op of the layer. */
  protected abstract apply(x: Tensor, w: Tensor, b: Tensor | undefined): Tensor;

  private biasFor(k: number): Tensor | undefined {
    if (!this.bias) return undefined;
    return this.bias.rank === 1 ? this.bias : row(this.bias, k);
  }

  /** Subset k's effective weight (a new tensor or a parameter; differentiable). */
  weight(k: number): Tensor {
    if (!this.shared) checkSubsetIndex(this.kind, k, this.numSubsets);
    return this.weights.weight(k);
  }

  forward(x: Tensor, k: number): Tensor {
    if (this.shared) return this.apply(x, this.weights.weight(0), this.bias ?? undefined);
    checkSubsetIndex(this.kind, k, this.numSubsets);
    if (!this.training && !isGradEnabled()) {
      const c = this.cached(k);
      return this.apply(x, c.w, c.b);
    }
    return tidy(() => this.apply(x, this.weights.weight(k), this.biasFor(k)));
  }

  /** Whether subset k's kernel is currently cached. */
  isCached(k: number): boolean {
    return this.cache?.k === k;
  }

  private cached(k: number): { w: Tensor; b: Tensor | undefined } {
    if (this.cache?.k === k) return this.cache;
    this.clearOwnCache();
    const e = engine();
    const { w, b } = noGrad(() =>
      tidy(() => {
        const bb = this.biasFor(k);
        return { w: this.weights.weight(k), b: bb && bb !== this.bias ? bb : undefined };
      }),
    );
    this.cache = { k, w: e.keep(w), b: b ? e.keep(b) : undefined };
    return this.cache;
  }

  protected override cacheOwn(k: number): void {
    if (!this.shared) {
      checkSubsetIndex(this.kind, k, this.numSubsets);
      this.cached(k);
    }
  }

  protected override clearOwnCache(): void {
    if (!this.cache) return;
    this.cache.w.dispose();
    this.cache.b?.dispose();
    this.cache = null;
  }
}
