/**
 * The avMNIST classifier (paper Appendix A.2), for M = 2 modalities in the
 * order [image, audio]; subsets k = 0 {image}, 1 {audio}, 2 {image, audio}.
 *
 * - Image encoder: 4 convs 3×3, stride 2, padding 1, channels 16, 32, 64,
 *   128, ReLU (28 → 14 → 7 → 4 → 2), flatten (512), linear → 160, ReLU.
 * - Audio encoder ("similar, with adapted dimensions"): the same 4 convs on
 *   the MFCC map [1, 20, 20] (20 → 10 → 5 → 3 → 2), flatten (512),
 *   linear → 320, ReLU. (Our choice: the paper gives only the output sizes.)
 *   2-D convs are 3-D convs with a [1, 3, 3] kernel on [N, C, 1, H, W].
 * - Projection: the available features are concatenated (160, 320 or 480)
 *   and a per-subset linear layer maps them to 64, ReLU.
 * - Three residual fusion blocks h + drop(relu(LN(lin₂(drop(relu(LN(lin₁ h))))))),
 *   linear 64 → 64; a final layer norm.
 * - Head: per-subset 2-layer MLP 64 → 64 → 10 with ReLU and dropout.
 *
 * Per method: `largo` CP-factorizes the encoders and fusion linears (each
 * encoder serves only the 2^(M−1) subsets that contain its modality) with
 * per-subset LN affines, projection and heads; `largo-tucker` the same with
 * Tucker; `dedicated` keeps copies of all of them; `dropout` / `full-only`
 * share one network whose projection takes the 480-d concatenation of both
 * encoders on the zero-filled inputs.
 */
import { add, concat, OpError, Philox, relu, reshape, tensor, tidy, zeros, type Tensor } from '@largo/core';
import { Layer } from '../layers/base.js';
import { DedicatedLinear, Linear } from '../layers/linear.js';
import { Dropout, PerSubset } from '../layers/subset.js';
import { numSubsets, subsetMask, subsetsContaining } from '../subsets.js';
import { LayerFactory, type Method, type SubsetModule } from './factory.js';

export const AVMNIST_MODALITIES = ['image', 'audio'] as const;

export interface AvMnistConfig {
  method: Method;
  rankMultiplier?: number;
  /** Dropout probability in the fusion blocks and heads. */
  dropout?: number;
  seed?: number;
  imageShape?: readonly [number, number];
  audioShape?: readonly [number, number];
  encoderChannels?: readonly number[];
  imageFeatures?: number;
  audioFeatures?: number;
  hidden?: number;
  fusionBlocks?: number;
  classes?: number;
  /**
   * The paper's protocol (train/encoders.ts): no encoders in this network; its inputs are the frozen,
   * shared encoders' features ([N, 1, 1, 160] image, [N, 1, 1, 320] audio) and these vectors are the
   * features of an all-zero input, used where a shared network zero-imputes a missing modality.
   */
  frozenFeatures?: { image: Float32Array; audio: Float32Array } | null;
}

export interface AvMnistInput {
  /** [N, 1, 28, 28] */
  image?: Tensor;
  /** [N, 1, 20, 20] (MFCC × frames) */
  audio?: Tensor;
}

const convOut = (n: number): number => Math.floor((n + 2 - 3) / 2) + 1;

/** A 2-D conv encoder (3-D convs with D = 1) serving K subsets, then a linear to `features`. */
export class ConvEncoder2d extends Layer {
  readonly kind = 'ConvEncoder2d';
  readonly convs: SubsetModule[] = [];
  readonly fc: SubsetModule;
  readonly inputShape: readonly [number, number];
  constructor(
    f: LayerFactory,
    K: number,
    channels: readonly number[],
    inputShape: readonly [number, number],
    features: number,
  ) {
    super();
    this.role = 'container';
    this.inputShape = inputShape;
    let [h, w] = inputShape,
      cin = 1;
    channels.forEach((c, i) => {
      this.convs.push(
        this.child(
          `conv${i}`,
          f.conv({ in: cin, out: c, kernel: [1, 3, 3], stride: [1, 2, 2], padding: [0, 1, 1] }, K),
        ),
      );
      cin = c;
      h = convOut(h);
      w = convOut(w);
    });
    this.fc = this.child('fc', f.linear(cin * h * w, features, K));
  }
  forward(x: Tensor, k: number): Tensor {
    const [H, W] = this.inputShape;
    if (x.rank !== 4 || x.shape[1] !== 1 || x.shape[2] !== H || x.shape[3] !== W) {
      throw new OpError(this.kind, `input must be [N, 1, ${H}, ${W}], got [${x.shape.join(', ')}]`);
    }
    return tidy(() => {
      let h = reshape(x, [x.shape[0], 1, 1, H, W]);
      for (const c of this.convs) h = relu(c.forward(h, k));
      return relu(this.fc.forward(reshape(h, [x.shape[0], -1]), k));
    });
  }
}

class FusionBlock extends Layer {
  readonly kind = 'FusionBlock';
  readonly lin1: SubsetModule;
  readonly ln1: SubsetModule;
  readonly lin2: SubsetModule;
  readonly ln2: SubsetModule;
  readonly drop: Dropout;
  constructor(f: LayerFactory, K: number, d: number, p: number, gen: Philox) {
    super();
    this.role = 'container';
    this.lin1 = this.child('lin1', f.linear(d, d, K));
    this.ln1 = this.child('ln1', f.layerNorm(d, K));
    this.lin2 = this.child('lin2', f.linear(d, d, K));
    this.ln2 = this.child('ln2', f.layerNorm(d, K));
    this.drop = this.child('drop', new Dropout(p, gen));
  }
  forward(h: Tensor, k: number): Tensor {
    return tidy(() => {
      let y = this.drop.forward(relu(this.ln1.forward(this.lin1.forward(h, k), k)));
      y = this.drop.forward(relu(this.ln2.forward(this.lin2.forward(y, k), k)));
      return add(h, y);
    });
  }
}

export class AvMnistNet extends Layer {
  readonly kind = 'AvMnistNet';
  readonly method: Method;
  readonly numModalities = 2;
  readonly numSubsets = 3;
  readonly numClasses: number;
  readonly config: Required<Omit<AvMnistConfig, 'seed' | 'rankMultiplier' | 'frozenFeatures'>>;
  /** null when the network takes frozen encoders' features (AvMnistConfig.frozenFeatures) */
  readonly imageEncoder: ConvEncoder2d | null;
  readonly audioEncoder: ConvEncoder2d | null;
  private readonly imputed: { image: Float32Array; audio: Float32Array } | null;
  readonly projection: SubsetModule;
  readonly blocks: FusionBlock[] = [];
  readonly finalNorm: SubsetModule;
  readonly head1: SubsetModule;
  readonly head2: SubsetModule;
  readonly headDrop: Dropout;
  private readonly perSubset: boolean;
  /** Subset → index among the subsets containing the modality (−1 when absent). */
  private readonly localIndex: [number[], number[]];

  constructor(cfg: AvMnistConfig) {
    super();
    this.role = 'container';
    const c = (this.config = {
      method: cfg.method,
      dropout: cfg.dropout ?? 0.1,
      imageShape: cfg.imageShape ?? [28, 28],
      audioShape: cfg.audioShape ?? [20, 20],
      encoderChannels: cfg.encoderChannels ?? [16, 32, 64, 128],
      imageFeatures: cfg.imageFeatures ?? 160,
      audioFeatures: cfg.audioFeatures ?? 320,
      hidden: cfg.hidden ?? 64,
      fusionBlocks: cfg.fusionBlocks ?? 3,
      classes: cfg.classes ?? 10,
    });
    this.method = cfg.method;
    this.numClasses = c.classes;
    const gen = new Philox(cfg.seed ?? 0);
    const f = new LayerFactory({ method: cfg.method, generator: gen, rankMultiplier: cfg.rankMultiplier });
    this.perSubset = f.perSubset;
    const M = 2,
      K = numSubsets(M);
    const withImage = subsetsContaining(0, M),
      withAudio = subsetsContaining(1, M);
    this.localIndex = [0, 1].map((m) => {
      const has = m === 0 ? withImage : withAudio;
      return Array.from({ length: K }, (_, k) => (this.perSubset ? has.indexOf(k) : 0));
    }) as [number[], number[]];
    this.imputed = cfg.frozenFeatures ?? null;
    if (
      this.imputed &&
      (this.imputed.image.length !== c.imageFeatures || this.imputed.audio.length !== c.audioFeatures)
    ) {
      throw new OpError(
        'AvMnistNet',
        `frozen features must be ${c.imageFeatures} (image) and ${c.audioFeatures} (audio) long, got ${this.imputed.image.length} and ${this.imputed.audio.length}`,
      );
    }
    this.imageEncoder = this.imputed
      ? null
      : this.child('image', new ConvEncoder2d(f, withImage.length, c.encoderChannels, c.imageShape, c.imageFeatures));
    this.audioEncoder = this.imputed
      ? null
      : this.child('audio', new ConvEncoder2d(f, withAudio.length, c.encoderChannels, c.audioShape, c.audioFeatures));
    if (this.perSubset) {
      const dims = Array.from({ length: K }, (_, k) => {
        const m = subsetMask(k, M);
        return (m[0] ? c.imageFeatures : 0) + (m[1] ? c.audioFeatures : 0);
      });
      this.projection = this.child(
        'proj',
        new PerSubset(
          dims.map((d) => new Linear({ inFeatures: d, outFeatures: c.hidden, generator: gen, role: 'stem' })),
          'stem',
        ),
      );
    } else {
      this.projection = this.child(
        'proj',
        new Linear({
          inFeatures: c.imageFeatures + c.audioFeatures,
          outFeatures: c.hidden,
          generator: gen,
          role: 'stem',
        }),
      );
    }
    // The dropout stream is drawn from the same seed, after all weights.
    const dropGen = new Philox(gen.uint32(new Uint32Array(1))[0]);
    for (let b = 0; b < c.fusionBlocks; b++)
      this.blocks.push(this.child(`fusion.${b}`, new FusionBlock(f, K, c.hidden, c.dropout, dropGen)));
    this.finalNorm = this.child('norm', f.layerNorm(c.hidden, K));
    if (this.perSubset) {
      this.head1 = this.child(
        'head1',
        new DedicatedLinear({
          numSubsets: K,
          inFeatures: c.hidden,
          outFeatures: c.hidden,
          generator: gen,
          role: 'head',
        }),
      );
      this.head2 = this.child(
        'head2',
        new DedicatedLinear({
          numSubsets: K,
          inFeatures: c.hidden,
          outFeatures: c.classes,
          generator: gen,
          role: 'head',
        }),
      );
    } else {
      this.head1 = this.child(
        'head1',
        new Linear({ inFeatures: c.hidden, outFeatures: c.hidden, generator: gen, role: 'head' }),
      );
      this.head2 = this.child(
        'head2',
        new Linear({ inFeatures: c.hidden, outFeatures: c.classes, generator: gen, role: 'head' }),
      );
    }
    this.headDrop = this.child('headDrop', new Dropout(c.dropout, dropGen));
  }

  /**
   * The encoders number their subsets locally (only the subsets that contain
   * their modality), so they cache the local index; an encoder whose modality
   * subset k lacks has nothing to cache.
   */
  override cacheSubset(k: number): void {
    for (const [, c] of this.children) {
      if (c !== null && (c === this.imageEncoder || c === this.audioEncoder)) {
        const local = this.localIndex[c === this.imageEncoder ? 0 : 1][k];
        if (local >= 0) c.cacheSubset(local);
      } else c.cacheSubset(k);
    }
  }

  /** Logits [N, classes] for subset k from the available modalities. */
  forward(x: AvMnistInput, subset: number): Tensor {
    if (!Number.isInteger(subset) || subset < 0 || subset >= this.numSubsets) {
      throw new OpError('AvMnistNet', `subset index must be an integer in [0, ${this.numSubsets - 1}], got ${subset}`);
    }
    const avail = subsetMask(subset, 2);
    const N = (x.image ?? x.audio)?.shape[0];
    if (N === undefined) throw new OpError('AvMnistNet', 'needs at least one of image / audio');
    for (const [m, name] of [
      [0, 'image'],
      [1, 'audio'],
    ] as const) {
      if (avail[m] && !x[name])
        throw new OpError('AvMnistNet', `subset ${subset} includes ${name} but no ${name} tensor was given`);
    }
    return tidy(() => {
      const feats: Tensor[] = [];
      const c = this.config;
      if (this.imputed) {
        // frozen encoders' features; a shared network gets the zero input's feature for a missing modality
        const feat = (t: Tensor | undefined, F: number, zero: Float32Array) => {
          if (t) {
            if (t.size !== N * F)
              throw new OpError(
                'AvMnistNet',
                `feature input must hold [${N}, ${F}] values, got [${t.shape.join(', ')}]`,
              );
            return reshape(t, [N, F]);
          }
          const rep = new Float32Array(N * F);
          for (let i = 0; i < N; i++) rep.set(zero, i * F);
          return tensor(rep, [N, F]);
        };
        if (this.perSubset) {
          if (avail[0]) feats.push(feat(x.image, c.imageFeatures, this.imputed.image));
          if (avail[1]) feats.push(feat(x.audio, c.audioFeatures, this.imputed.audio));
        } else {
          feats.push(
            feat(avail[0] ? x.image : undefined, c.imageFeatures, this.imputed.image),
            feat(avail[1] ? x.audio : undefined, c.audioFeatures, this.imputed.audio),
          );
        }
      } else if (this.perSubset) {
        if (avail[0]) feats.push(this.imageEncoder!.forward(x.image!, this.localIndex[0][subset]));
        if (avail[1]) feats.push(this.audioEncoder!.forward(x.audio!, this.localIndex[1][subset]));
      } else {
        // One shared network: missing modalities are zero-filled inputs.
        const img = avail[0] ? x.image! : zeros([N, 1, ...c.imageShape]);
        const aud = avail[1] ? x.audio! : zeros([N, 1, ...c.audioShape]);
        feats.push(this.imageEncoder!.forward(img, 0), this.audioEncoder!.forward(aud, 0));
      }
      let h = relu(this.projection.forward(feats.length === 1 ? feats[0] : concat(feats, 1), subset));
      for (const b of this.blocks) h = b.forward(h, subset);
      h = this.finalNorm.forward(h, subset);
      h = this.headDrop.forward(relu(this.head1.forward(h, subset)));
      return this.head2.forward(h, subset);
    });
  }
}

export function buildAvMnistNet(cfg: AvMnistConfig): AvMnistNet {
  return new AvMnistNet(cfg);
}
