/**
 * nnU-Net-style 3-D U-Net (paper Appendix A.1, docs/design.md "Backbone"), built
 * from a layer factory so the same topology is made of plain, CP (LARGO),
 * Tucker or dedicated layers.
 *
 * - Encoder stage s (s = 0 … depth−1) has F_s = min(base·2^s, max) features
 *   and two blocks conv 3×3×3 → instance norm (eps 1e-5) → leaky ReLU 0.01;
 *   the first conv of every stage but the first has stride 2 (downsampling).
 * - Decoder stage s (s = depth−2 … 0): transposed conv F_{s+1} → F_s
 *   (k = 2, s = 2), concatenation [upsampled, skip] (2·F_s channels), two
 *   blocks as above, and a 1×1×1 head F_s → classes.
 * - Outputs: logits at full resolution first, then (deep supervision) the
 *   heads of decoder stages 1 … depth−2 at decreasing resolution; weights
 *   1/2^i normalized (`deepSupervisionWeights`).
 * - The first conv (enc.0.conv1) is the stem: for per-subset methods one
 *   plain copy per subset over the subset's |S_k| channels. Heads are one
 *   plain copy per subset. Norm affines are [K, C]. Everything else is an
 *   inner layer, factorized by the method.
 *
 * Spatial sizes must be divisible by 2^(depth−1).
 */
import { concat, leakyRelu, OpError, Philox, tidy, type Tensor } from '@largo/core';
import type { SegmentationFamily } from '../module.js';
import { Layer } from '../layers/base.js';
import { Conv3d } from '../layers/conv.js';
import { SubsetHead, SubsetStem } from '../layers/subset.js';
import {
  cpParams,
  cpRank,
  dedicatedParams,
  plainParams,
  tuckerParams,
  tuckerRanks,
  type RankRule,
} from '../layers/rank.js';
import { numSubsets } from '../subsets.js';
import { LayerFactory, factorizationOf, type Method, type SubsetModule } from './factory.js';

export interface UNetConfig {
  /** M, number of input modalities (channels of the zero-filled input). */
  modalities: number;
  /** Output channels (classes or regions). */
  classes: number;
  /** Features of the first stage (nnU-Net: 32). */
  baseFeatures?: number;
  /** Cap on the features per stage (nnU-Net: 320). */
  maxFeatures?: number;
  /** Number of resolution stages (depth−1 downsamplings). */
  depth?: number;
  deepSupervision?: boolean;
  /** Conv blocks per stage (nnU-Net: 2). */
  convsPerStage?: number;
  /** Leaky ReLU slope (also the Kaiming gain's slope). */
  negativeSlope?: number;
}

export type ResolvedUNetConfig = Required<UNetConfig>;

export function resolveUNetConfig(c: UNetConfig): ResolvedUNetConfig {
  const r: ResolvedUNetConfig = {
    modalities: c.modalities,
    classes: c.classes,
    baseFeatures: c.baseFeatures ?? 32,
    maxFeatures: c.maxFeatures ?? 320,
    depth: c.depth ?? 5,
    deepSupervision: c.deepSupervision ?? true,
    convsPerStage: c.convsPerStage ?? 2,
    negativeSlope: c.negativeSlope ?? 0.01,
  };
  const ints: [string, number, number][] = [
    ['modalities', r.modalities, 1],
    ['classes', r.classes, 1],
    ['baseFeatures', r.baseFeatures, 1],
    ['maxFeatures', r.maxFeatures, 1],
    ['depth', r.depth, 2],
    ['convsPerStage', r.convsPerStage, 1],
  ];
  for (const [n, v, lo] of ints)
    if (!Number.isInteger(v) || v < lo) throw new RangeError(`UNet3D: ${n} must be an integer >= ${lo}, got ${v}`);
  return r;
}

/** Features per stage: min(base·2^s, max). */
export function unetFeatures(c: UNetConfig): number[] {
  const r = resolveUNetConfig(c);
  return Array.from({ length: r.depth }, (_, s) => Math.min(r.baseFeatures * 2 ** s, r.maxFeatures));
}

export interface UNetLayerSpec {
  /** Dotted path of the layer in the network. */
  name: string;
  role: 'stem' | 'inner' | 'head' | 'norm';
  op: 'conv' | 'convT' | 'norm';
  in: number;
  out: number;
  kernel: number;
  stride: number;
  padding: number;
}

/** Every layer of the U-Net in construction (= forward) order. */
export function unetPlan(c: UNetConfig): UNetLayerSpec[] {
  const r = resolveUNetConfig(c);
  const F = unetFeatures(r);
  const out: UNetLayerSpec[] = [];
  const block = (prefix: string, j: number, cin: number, cout: number, stride: number, stem: boolean): void => {
    out.push({
      name: `${prefix}.conv${j}`,
      role: stem ? 'stem' : 'inner',
      op: 'conv',
      in: cin,
      out: cout,
      kernel: 3,
      stride,
      padding: 1,
    });
    out.push({
      name: `${prefix}.norm${j}`,
      role: 'norm',
      op: 'norm',
      in: cout,
      out: cout,
      kernel: 1,
      stride: 1,
      padding: 0,
    });
  };
  for (let s = 0; s < r.depth; s++) {
    for (let j = 1; j <= r.convsPerStage; j++) {
      block(
        `enc.${s}`,
        j,
        j === 1 ? (s === 0 ? r.modalities : F[s - 1]) : F[s],
        F[s],
        j === 1 && s > 0 ? 2 : 1,
        s === 0 && j === 1,
      );
    }
  }
  for (let s = r.depth - 2; s >= 0; s--) {
    out.push({
      name: `dec.${s}.up`,
      role: 'inner',
      op: 'convT',
      in: F[s + 1],
      out: F[s],
      kernel: 2,
      stride: 2,
      padding: 0,
    });
    for (let j = 1; j <= r.convsPerStage; j++) block(`dec.${s}`, j, j === 1 ? 2 * F[s] : F[s], F[s], 1, false);
    if (s === 0 || r.deepSupervision)
      out.push({
        name: `dec.${s}.head`,
        role: 'head',
        op: 'conv',
        in: F[s],
        out: r.classes,
        kernel: 1,
        stride: 1,
        padding: 0,
      });
  }
  return out;
}

/** Loss weights of the outputs (full resolution first): 1/2^i, normalized to sum 1. */
export function deepSupervisionWeights(n: number): number[] {
  const w = Array.from({ length: n }, (_, i) => 1 / 2 ** i);
  const s = w.reduce((a, b) => a + b, 0);
  return w.map((v) => v / s);
}

export interface UNetParamCounts {
  stem: number;
  /** Inner conv / transposed-conv layers, biases included. */
  inner: number;
  /** Inner layers without their biases (the factor entries / kernels only). */
  innerWeights: number;
  head: number;
  norm: number;
  total: number;
}

/**
 * Parameter counts from the formulas alone (nothing is allocated), for any
 * method and size — e.g. a BraTS-sized dedicated family that would not fit
 * in memory. Tests check that they equal the counts of built networks.
 */
export function unetParamCounts(c: UNetConfig, method: Method, rankMultiplier = 1): UNetParamCounts {
  const r = resolveUNetConfig(c);
  const fz = factorizationOf(method);
  const M = r.modalities,
    K = fz === 'shared' ? 1 : numSubsets(M);
  const res: UNetParamCounts = { stem: 0, inner: 0, innerWeights: 0, head: 0, norm: 0, total: 0 };
  for (const l of unetPlan(r)) {
    const S = l.kernel ** 3;
    if (l.role === 'stem') {
      // Σ_k |S_k| = M·2^(M−1) input channels over all per-subset copies.
      res.stem += fz === 'shared' ? plainParams(l.out, M, S) : l.out * S * M * 2 ** (M - 1) + K * l.out;
    } else if (l.role === 'norm') {
      res.norm += 2 * K * l.out;
    } else if (l.role === 'head') {
      res.head += K * plainParams(l.out, l.in, S);
    } else {
      let n: number, nb: number;
      switch (fz) {
        case 'cp':
          n = cpParams(K, l.out, l.in, S, cpRank(K, l.out, l.in, S, rankMultiplier));
          nb = K * l.out;
          break;
        case 'tucker':
          n = tuckerParams(K, l.out, l.in, S, tuckerRanks(K, l.out, l.in, S, rankMultiplier));
          nb = K * l.out;
          break;
        case 'dedicated':
          n = dedicatedParams(K, l.out, l.in, S);
          nb = K * l.out;
          break;
        default:
          n = plainParams(l.out, l.in, S);
          nb = l.out;
      }
      res.inner += n;
      res.innerWeights += n - nb;
    }
  }
  res.total = res.stem + res.inner + res.head + res.norm;
  return res;
}

/** The U-Net over a family of subsets: forward(x [N, M, D, H, W], k) → [logits, ...deep supervision]. */
export class UNet3D extends Layer implements SegmentationFamily {
  readonly kind = 'UNet3D';
  readonly config: ResolvedUNetConfig;
  readonly method: Method;
  readonly numModalities: number;
  readonly numClasses: number;
  /** K = 2^M − 1 (every method accepts every subset index). */
  readonly numSubsets: number;
  readonly features: readonly number[];
  private readonly layers = new Map<string, SubsetModule>();

  constructor(factory: LayerFactory, config: UNetConfig) {
    super();
    this.role = 'container';
    this.config = resolveUNetConfig(config);
    this.method = factory.method;
    this.numModalities = this.config.modalities;
    this.numClasses = this.config.classes;
    this.numSubsets = numSubsets(this.numModalities);
    this.features = unetFeatures(this.config);
    const K = this.numSubsets,
      M = this.numModalities,
      gen = factory.generator;
    for (const l of unetPlan(this.config)) {
      let m: SubsetModule;
      if (l.role === 'stem') {
        m = factory.perSubset
          ? new SubsetStem({
              modalities: M,
              outChannels: l.out,
              kernelSize: l.kernel,
              stride: l.stride,
              padding: l.padding,
              generator: gen,
              negativeSlope: factory.negativeSlope,
            })
          : new Conv3d({
              inChannels: M,
              outChannels: l.out,
              kernelSize: l.kernel,
              stride: l.stride,
              padding: l.padding,
              generator: gen,
              negativeSlope: factory.negativeSlope,
              role: 'stem',
            });
      } else if (l.role === 'head') {
        m = factory.perSubset
          ? new SubsetHead({
              numSubsets: K,
              inChannels: l.in,
              outChannels: l.out,
              generator: gen,
              negativeSlope: factory.negativeSlope,
            })
          : new Conv3d({
              inChannels: l.in,
              outChannels: l.out,
              kernelSize: 1,
              generator: gen,
              negativeSlope: factory.negativeSlope,
              role: 'head',
            });
      } else if (l.op === 'norm') {
        m = factory.instanceNorm(l.out, K);
      } else if (l.op === 'convT') {
        m = factory.convTranspose({ in: l.in, out: l.out, kernel: l.kernel, stride: l.stride, padding: l.padding }, K);
      } else {
        m = factory.conv({ in: l.in, out: l.out, kernel: l.kernel, stride: l.stride, padding: l.padding }, K);
      }
      this.layers.set(l.name, this.child(l.name, m));
    }
  }

  /** The layer at a plan path ("enc.1.conv2", "dec.0.up", ...). */
  layer(name: string): SubsetModule {
    const m = this.layers.get(name);
    if (!m) throw new RangeError(`UNet3D: no layer '${name}'`);
    return m;
  }

  /** Number of outputs forward returns. */
  get numOutputs(): number {
    return this.config.deepSupervision ? this.config.depth - 1 : 1;
  }

  /** Loss weights of the outputs, full resolution first. */
  deepSupervisionWeights(): number[] {
    return deepSupervisionWeights(this.numOutputs);
  }

  forward(x: Tensor, subset: number): Tensor[] {
    const c = this.config;
    if (!Number.isInteger(subset) || subset < 0 || subset >= this.numSubsets) {
      throw new OpError('UNet3D', `subset index must be an integer in [0, ${this.numSubsets - 1}], got ${subset}`);
    }
    if (x.rank !== 5 || x.shape[1] !== this.numModalities) {
      throw new OpError(
        'UNet3D',
        `input must be [N, ${this.numModalities}, D, H, W] (all modalities, missing ones zero-filled), got [${x.shape.join(', ')}]`,
      );
    }
    const f = 2 ** (c.depth - 1);
    if (x.shape.slice(2).some((d) => d % f !== 0)) {
      throw new OpError(
        'UNet3D',
        `spatial size [${x.shape.slice(2).join(', ')}] must be divisible by 2^(depth−1) = ${f}`,
      );
    }
    const k = subset;
    const slope = c.negativeSlope;
    const block = (prefix: string, h: Tensor): Tensor =>
      tidy(() => {
        for (let j = 1; j <= c.convsPerStage; j++) {
          h = leakyRelu(
            this.layer(`${prefix}.norm${j}`).forward(this.layer(`${prefix}.conv${j}`).forward(h, k), k),
            slope,
          );
        }
        return h;
      });
    return tidy(() => {
      const skips: Tensor[] = [];
      let h = x;
      for (let s = 0; s < c.depth; s++) {
        h = block(`enc.${s}`, h);
        skips.push(h);
      }
      const outs: Tensor[] = [];
      for (let s = c.depth - 2; s >= 0; s--) {
        const up = this.layer(`dec.${s}.up`).forward(h, k);
        h = block(`dec.${s}`, concat([up, skips[s]], 1));
        if (s === 0 || c.deepSupervision) outs.push(this.layer(`dec.${s}.head`).forward(h, k));
      }
      return outs.reverse();
    });
  }
}

export interface SegmentationFamilyOptions {
  method: Method;
  /** M, number of modalities. */
  modalities: number;
  classes: number;
  baseFeatures?: number;
  maxFeatures?: number;
  depth?: number;
  /** CP / Tucker rank multiplier (paper ablation: ¼, ½, 1, 2, 4). */
  rankMultiplier?: number;
  /** 'exact': the exact-representation rank instead of the budget rule (ablation) */
  rankRule?: RankRule;
  deepSupervision?: boolean;
  /** One seed fixes every initial weight. */
  seed?: number;
  convsPerStage?: number;
  negativeSlope?: number;
}

/**
 * The segmentation family of a method: for `largo`, `largo-tucker` and
 * `dedicated` per-subset stems, heads and norm affines around factorized /
 * copied inner layers; for `dropout` and `full-only` one shared plain
 * network on the zero-filled M-channel input (the subset index is accepted
 * and ignored).
 */
export function buildSegmentationFamily(o: SegmentationFamilyOptions): UNet3D {
  const cfg: UNetConfig = {
    modalities: o.modalities,
    classes: o.classes,
    baseFeatures: o.baseFeatures,
    maxFeatures: o.maxFeatures,
    depth: o.depth,
    deepSupervision: o.deepSupervision,
    convsPerStage: o.convsPerStage,
    negativeSlope: o.negativeSlope,
  };
  const r = resolveUNetConfig(cfg);
  const factory = new LayerFactory({
    method: o.method,
    generator: new Philox(o.seed ?? 0),
    rankMultiplier: o.rankMultiplier,
    rankRule: o.rankRule,
    negativeSlope: r.negativeSlope,
  });
  return new UNet3D(factory, r);
}
