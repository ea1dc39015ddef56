/**
 * avMNIST training step: a mini-batch of (image, MFCC) pairs in a seeded
 * per-epoch order, a uniformly sampled subset k of {image, audio}, and
 * CE(f_k(x_k), y) + CE(f_full(x_full), y) for the per-subset methods
 * (LARGO, Tucker, dedicated); the dropout baseline uses CE(f(x_k), y) on one
 * shared network that zero-fills the missing modality; full-only trains on both.
 * The data order of sample i of the run is a pure function of (seed, epoch),
 * so the data stream's state is the step counter.
 */
import { Philox, crossEntropy, mul, tensor, tidy, type Tensor } from '@largo/core';
import { backward } from '@largo/autograd';
import type { AvMnistSplit } from '@largo/datasets';
import type { LargoConfig } from '../config.js';
import type { ModelDescriptor } from '../checkpoint.js';
import type { AvMnistNet } from '../nets/avmnist.js';
import { isPerSubset, type Method } from '../nets/factory.js';
import { fullSubset, subsetMask } from '../subsets.js';
import { deriveSeed, generatorStates, moduleGenerators, restoreGenerators, STREAM, type PhiloxState } from './rng.js';
import { permutation, type AvData } from './data.js';
import type { TrainTask } from './loop.js';
import { syncSubsetInit } from './sync-init.js';
import { perSubsetParamNames } from './param-groups.js';
import { evaluateAvMnist } from '../eval/evaluate.js';

export function avDescriptor(cfg: LargoConfig, method: string): ModelDescriptor {
  const network = cfg.train.encoders === 'pretrained' ? 'avmnist-fusion (frozen pretrained encoders)' : 'avmnist';
  return {
    method,
    modalities: ['image', 'audio'],
    classes: 10,
    network,
    rankMultiplier: cfg.model.rankMultiplier,
    hidden: cfg.model.hidden,
    dropout: cfg.model.dropout,
  };
}

export class AvTask implements TrainTask {
  readonly params;
  readonly descriptor: ModelDescriptor;
  readonly subsetParams: ReadonlySet<string>;
  private readonly subsetRng: Philox;
  private readonly gens;
  private permEpoch = -1;
  private perm: number[] = [];

  constructor(
    readonly net: AvMnistNet,
    readonly data: AvData,
    readonly cfg: LargoConfig,
    readonly method: string,
  ) {
    this.params = net.namedParameters();
    this.subsetParams = isPerSubset(method as Method) ? perSubsetParamNames(net) : new Set();
    this.descriptor = avDescriptor(cfg, method);
    this.subsetRng = new Philox(deriveSeed(cfg.seed, STREAM.subsets));
    this.gens = moduleGenerators(net);
    if (cfg.train.syncSubsetInit && isPerSubset(method as Method)) syncSubsetInit(net, 2);
  }

  setTraining(on: boolean): void {
    this.net.train(on);
  }

  private sampleIndex(i: number): number {
    const n = this.data.train.count;
    const epoch = Math.floor(i / n);
    if (epoch !== this.permEpoch) {
      this.perm = permutation(n, deriveSeed(this.cfg.seed, STREAM.order, epoch));
      this.permEpoch = epoch;
    }
    return this.perm[i % n]!;
  }

  private batch(step: number): { image: Float32Array; audio: Float32Array; labels: Int32Array; n: number } {
    const s: AvMnistSplit = this.data.train;
    const N = this.cfg.train.batchSize;
    const pix = s.imageShape[1]! * s.imageShape[2]!,
      au = s.audioShape[1]! * s.audioShape[2]!;
    const image = new Float32Array(N * pix),
      audio = new Float32Array(N * au),
      labels = new Int32Array(N);
    for (let b = 0; b < N; b++) {
      const j = this.sampleIndex(step * N + b);
      image.set(s.images.subarray(j * pix, (j + 1) * pix), b * pix);
      audio.set(s.audio.subarray(j * au, (j + 1) * au), b * au);
      labels[b] = s.labels[j]!;
    }
    return { image, audio, labels, n: N };
  }

  lossStep(step: number): Tensor[] {
    const { image, audio, labels, n } = this.batch(step);
    const s = this.data.train;
    const [ih, iw] = [s.imageShape[1]!, s.imageShape[2]!],
      [ak, at] = [s.audioShape[1]!, s.audioShape[2]!];
    const full = this.method === 'full-only';
    const perSample = this.cfg.train.subsetPerSample && !full;
    const ks = full
      ? new Array<number>(n).fill(fullSubset(2))
      : perSample
        ? Array.from({ length: n }, () => this.subsetRng.int(3))
        : new Array<number>(n).fill(this.subsetRng.int(3));
    const groups = new Map<number, number[]>();
    ks.forEach((k, b) => {
      const g = groups.get(k);
      if (g) g.push(b);
      else groups.set(k, [b]);
    });
    const take = <T extends Float32Array | Int32Array>(a: T, per: number, idx: number[]): T => {
      if (idx.length === n) return a;
      const out = new (a.constructor as { new (m: number): T })(idx.length * per);
      idx.forEach((b, i) => out.set(a.subarray(b * per, (b + 1) * per), i * per));
      return out;
    };
    const input = (k: number, idx: number[]): { image?: Tensor; audio?: Tensor } => {
      const m = subsetMask(k, 2);
      return {
        image: m[0] ? tensor(take(image, ih * iw, idx), [idx.length, 1, ih, iw]) : undefined,
        audio: m[1] ? tensor(take(audio, ak * at, idx), [idx.length, 1, ak, at]) : undefined,
      };
    };
    return tidy(() => {
      const parts: Tensor[] = [];
      for (const [k, idx] of groups) {
        const y = tensor(take(labels, 1, idx), [idx.length], 'int32');
        let loss = crossEntropy(this.net.forward(input(k, idx), k), y);
        if (idx.length !== n) loss = mul(loss, idx.length / n);
        parts.push(loss);
        backward(loss);
      }
      if (isPerSubset(this.method as Method) ? this.cfg.train.fullGuidance : this.cfg.train.sharedGuidance) {
        const all = ks.map((_, b) => b);
        const loss = crossEntropy(this.net.forward(input(2, all), 2), tensor(labels, [n], 'int32'));
        parts.push(loss);
        backward(loss);
      }
      return parts;
    });
  }

  async validate(): Promise<{ score: number; metrics: Record<string, number> }> {
    const recs = await evaluateAvMnist(this.net, this.method, this.data.val, 'val');
    const metrics: Record<string, number> = {};
    for (const r of recs) metrics[`acc_${['image', 'audio', 'both'][r.subset]}`] = r.values[0]!;
    return { score: recs.reduce((a, r) => a + r.values[0]!, 0) / recs.length, metrics };
  }

  rngState(): Record<string, unknown> {
    return { subsets: this.subsetRng.state, module: generatorStates(this.gens) };
  }

  setRngState(s: Record<string, unknown>, where: string): void {
    if (!s || !s['subsets']) throw new Error(`${where}: checkpoint has no subset-sampling state`);
    this.subsetRng.state = s['subsets'] as PhiloxState;
    restoreGenerators(this.gens, (s['module'] ?? {}) as Record<string, unknown>, where);
  }
}
