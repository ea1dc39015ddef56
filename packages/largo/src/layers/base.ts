import { OpError, type Tensor } from '@largo/core';
import { requireGrad } from '@largo/autograd';
import type { Module } from '../module.js';

/** What a parameter is, for reports (`params.ts`). */
export type ParamKind =
  | 'weight'
  | 'bias'
  | 'cp.model'
  | 'cp.out'
  | 'cp.in'
  | 'cp.kernel'
  | 'tucker.core'
  | 'tucker.out'
  | 'tucker.in'
  | 'norm.weight'
  | 'norm.bias';

/**
 * Where a layer sits in the LARGO accounting: `stem` and `head` layers are
 * kept as one plain copy per subset (not compressed), `inner` layers are the
 * ones LARGO factorizes, `norm` are normalization affines, `container` holds
 * other layers.
 */
export type LayerRole = 'stem' | 'inner' | 'head' | 'norm' | 'container';

export interface ParamInfo {
  /** Dotted path, e.g. "enc.1.conv1.aOut". */
  name: string;
  tensor: Tensor;
  kind: ParamKind;
  /** Path of the owning layer ("" for the root). */
  layerPath: string;
  layer: Layer;
}

/**
 * Base of every layer and network: ordered, named parameters and children,
 * a training flag and a subset-kernel cache that `train(true)` clears.
 */
export abstract class Layer implements Module {
  /** Class-like name for reports ("CPConv3d", "UNet3D", ...). */
  abstract readonly kind: string;
  role: LayerRole = 'inner';
  training = true;
  private readonly params: [string, Tensor, ParamKind][] = [];
  protected readonly children: [string, Layer][] = [];

  /** Registers a trainable leaf (kept, requiresGrad) under `name`. */
  protected param(name: string, t: Tensor, kind: ParamKind): Tensor {
    requireGrad(t);
    this.params.push([name, t, kind]);
    return t;
  }

  /** Registers a child layer under `name` (dotted paths are built from these). */
  protected child<L extends Layer>(name: string, l: L): L {
    this.children.push([name, l]);
    return l;
  }

  /** Own parameters (not the children's). */
  ownParameters(): readonly [string, Tensor, ParamKind][] {
    return this.params;
  }
  childLayers(): readonly [string, Layer][] {
    return this.children;
  }

  namedParameters(): [string, Tensor][] {
    return this.parameterInfo().map((p) => [p.name, p.tensor]);
  }

  parameters(): Tensor[] {
    return this.parameterInfo().map((p) => p.tensor);
  }

  /** Every parameter with its kind and owning layer, depth-first in registration order. */
  parameterInfo(prefix = ''): ParamInfo[] {
    const out: ParamInfo[] = [];
    // A child registered under '' is part of this layer (e.g. a conv's weight family): no path segment,
    // reported as this layer's, listed before the layer's own parameters (weights, then bias).
    for (const [n, c] of this.children) {
      if (n === '')
        out.push(...c.parameterInfo(prefix).map((p) => (p.layer === c ? { ...p, layer: this as Layer } : p)));
    }
    for (const [n, t, kind] of this.params)
      out.push({ name: prefix + n, tensor: t, kind, layerPath: prefix.replace(/\.$/, ''), layer: this });
    for (const [n, c] of this.children) if (n !== '') out.push(...c.parameterInfo(`${prefix}${n}.`));
    return out;
  }

  /** This layer and all descendants with their paths ("" for this one). */
  namedLayers(prefix = ''): [string, Layer][] {
    const out: [string, Layer][] = [[prefix.replace(/\.$/, ''), this]];
    for (const [n, c] of this.children) if (n !== '') out.push(...c.namedLayers(`${prefix}${n}.`));
    return out;
  }

  train(on: boolean): void {
    this.training = on;
    if (on) this.clearOwnCache();
    for (const [, c] of this.children) c.train(on);
  }

  /** Drops every cached reconstructed kernel (call after changing parameters outside training). */
  clearCache(): void {
    this.clearOwnCache();
    for (const [, c] of this.children) c.clearCache();
  }

  /**
   * Reconstructs and caches the kernels of subset k in every factorized
   * layer, so inference on subset k costs what one plain network costs.
   * Caches are used only in eval mode (`train(false)`) under `noGrad`.
   */
  cacheSubset(k: number): void {
    this.cacheOwn(k);
    for (const [, c] of this.children) c.cacheSubset(k);
  }

  protected clearOwnCache(): void {
    /* layers with caches override */
  }
  protected cacheOwn(_k: number): void {
    /* layers with caches override */
  }

  dispose(): void {
    this.clearOwnCache();
    for (const [, t] of this.params) t.dispose();
    for (const [, c] of this.children) c.dispose();
  }
}

/** A layer of a subset family: forward(x, k) uses subset k's weights. */
export interface SubsetLayer extends Layer {
  forward(x: Tensor, k: number): Tensor;
}

export function checkSubsetIndex(op: string, k: number, K: number): void {
  if (!Number.isInteger(k) || k < 0 || k >= K)
    throw new OpError(op, `subset index must be an integer in [0, ${K - 1}], got ${k}`);
}

/** 1, 2 or 3 ints → a 3-tuple (a number fills every axis). */
export function triple(v: number | readonly number[] | undefined, dflt: number): [number, number, number] {
  if (v === undefined) return [dflt, dflt, dflt];
  if (typeof v === 'number') return [v, v, v];
  if (v.length !== 3) throw new RangeError(`expected 3 values, got [${v.join(', ')}]`);
  return [v[0], v[1], v[2]];
}
