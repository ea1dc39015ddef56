/**
 * One training step of a segmentation family (paper §3.3, Eq. 5):
 * - `largo`, `largo-tucker`, `dedicated`: sample a subset k uniformly from
 *   the 2^M − 1 (seeded Philox) and minimize L(f_k(x_k), y) + L(f_full(x_full), y);
 * - `dropout`: one shared network on the zero-filled input of a uniformly
 *   sampled subset, L(f(x_k), y);
 * - `full-only`: one shared network on the full input, L(f(x_full), y).
 * Patches come from the datasets package's PatchSampler, whose draw i is a
 * pure function of (seed, i): the data stream's state is the draw counter.
 */
import { Philox, mul, tensor, tidy, type Tensor } from '@largo/core';
import { backward } from '@largo/autograd';
import { PatchSampler, DEFAULT_AUGMENT } from '@largo/datasets';
import type { LargoConfig } from '../config.js';
import type { ModelDescriptor } from '../checkpoint.js';
import type { UNet3D } from '../nets/unet.js';
import { fullSubset, numSubsets, subsetIndex, subsetMask } from '../subsets.js';
import { makeTargets, segLoss, type SegLossKind } from './losses.js';
import { deriveSeed, generatorStates, moduleGenerators, restoreGenerators, STREAM, type PhiloxState } from './rng.js';
import type { TrainTask } from './loop.js';
import { syncSubsetInit } from './sync-init.js';
import { perSubsetParamNames } from './param-groups.js';
import { evaluateSegmentation } from '../eval/evaluate.js';
import type { SegData } from './data.js';
import { isPerSubset, type Method } from '../nets/factory.js';

export function segLossKind(cfg: LargoConfig): SegLossKind {
  if (cfg.train.loss === 'dice-ce' || cfg.train.loss === 'region-dice-bce') return cfg.train.loss;
  return cfg.data.labelMode === 'labels' ? 'dice-ce' : 'region-dice-bce';
}

export function segDescriptor(
  cfg: LargoConfig,
  method: string,
  data: Pick<SegData, 'modalities' | 'classes' | 'labelMode'>,
): ModelDescriptor {
  const m = cfg.model;
  return {
    method,
    modalities: [...data.modalities],
    classes: data.classes,
    labelMode: data.labelMode,
    network: 'unet3d',
    baseFeatures: m.baseFeatures,
    depth: m.depth,
    maxFeatures: m.maxFeatures,
    rankMultiplier: m.rankMultiplier,
    ...(m.rankRule === 'exact' ? { rankRule: 'exact' } : {}),
    deepSupervision: m.deepSupervision,
    convsPerStage: m.convsPerStage,
    patchSize: [...cfg.train.patchSize],
  };
}

export class SegTask implements TrainTask {
  readonly params;
  readonly descriptor: ModelDescriptor;
  readonly subsetParams: ReadonlySet<string>;
  private readonly sampler: PatchSampler;
  private draws = 0;
  private readonly subsetRng: Philox;
  private readonly gens;
  private readonly M: number;
  private readonly K: number;
  private readonly lossKind: SegLossKind;

  constructor(
    readonly net: UNet3D,
    readonly data: SegData,
    readonly cfg: LargoConfig,
    readonly method: string,
  ) {
    this.params = net.namedParameters();
    this.subsetParams = isPerSubset(method as Method) ? perSubsetParamNames(net) : new Set();
    this.descriptor = segDescriptor(cfg, method, data);
    this.M = data.modalities.length;
    this.K = numSubsets(this.M);
    this.lossKind = segLossKind(cfg);
    this.sampler = new PatchSampler(data.train, {
      patchSize: cfg.train.patchSize,
      seed: deriveSeed(cfg.seed, STREAM.patches),
      foregroundFraction: cfg.train.foregroundFraction,
      augment: cfg.train.augment ? DEFAULT_AUGMENT : false,
    });
    this.subsetRng = new Philox(deriveSeed(cfg.seed, STREAM.subsets));
    this.gens = moduleGenerators(net);
    if (cfg.train.syncSubsetInit && isPerSubset(method as Method)) syncSubsetInit(net, this.M);
  }

  setTraining(on: boolean): void {
    this.net.train(on);
  }

  /** The next batch, nnU-Net style: the last round(N·fg) samples are forced to contain foreground. */
  private batch(): { image: Float32Array; label: Uint8Array; labelShape: number[]; missing: boolean[][] } {
    const N = this.cfg.train.batchSize;
    const nRandom = Math.round(N * (1 - this.cfg.train.foregroundFraction));
    const ps = this.cfg.train.patchSize;
    const vox = ps[0]! * ps[1]! * ps[2]!;
    let image: Float32Array | null = null,
      label: Uint8Array | null = null,
      C = 0;
    const missing: boolean[][] = [];
    for (let b = 0; b < N; b++) {
      const p = this.sampler.draw(this.draws++, b >= nRandom);
      missing.push(p.missing);
      if (!p.label) throw new Error(`case ${p.caseId} has no label`);
      if (!image) {
        C = p.labelShape![0]!;
        image = new Float32Array(N * this.M * vox);
        label = new Uint8Array(N * C * vox);
      }
      image.set(p.image, b * this.M * vox);
      label!.set(p.label, b * C * vox);
    }
    return { image: image!, label: label!, labelShape: [N, C, ...ps], missing };
  }

  /** The subset of this step (full-only: always the full set). */
  private nextSubset(): number {
    if (this.method === 'full-only') return fullSubset(this.M);
    return this.subsetRng.int(this.K);
  }

  lossStep(_step: number): Tensor[] {
    const { image, label, labelShape, missing } = this.batch();
    const full = fullSubset(this.M);
    const N = labelShape[0]!;
    const ps = this.cfg.train.patchSize;
    const vox = ps[0]! * ps[1]! * ps[2]!;
    // one subset for the whole batch (paper), or one per sample (same objective in expectation, same compute)
    const perSample = this.cfg.train.subsetPerSample && this.method !== 'full-only';
    const drawn = perSample
      ? Array.from({ length: N }, () => this.nextSubset())
      : new Array<number>(N).fill(this.nextSubset());
    // a sample lacking a modality (data.incomplete = 'train') sees the drawn subset cut down to what it has,
    // or everything it has when nothing is left; complete data keeps the drawn subsets (and the RNG stream) as they were
    const ks = drawn.map((k, b) => {
      if (!missing[b]!.some(Boolean)) return k;
      const mask = subsetMask(k, this.M).map((on, m) => on && !missing[b]![m]);
      return subsetIndex(mask.some(Boolean) ? mask : missing[b]!.map((x) => !x));
    });
    const mixed = ks.some((k) => k !== ks[0]);
    const xk = image.slice();
    for (let b = 0; b < N; b++) {
      const mask = subsetMask(ks[b]!, this.M);
      for (let m = 0; m < this.M; m++) if (!mask[m]) xk.fill(0, (b * this.M + m) * vox, (b * this.M + m + 1) * vox);
    }
    const lossOpts = { kind: this.lossKind, batchDice: this.cfg.train.batchDice };
    const perSubsetNet = isPerSubset(this.method as Method);
    // forward groups: samples that share a subset (a shared network takes the whole zero-filled batch at once)
    const groups = new Map<number, number[]>();
    if (perSubsetNet || mixed)
      ks.forEach((k, b) => {
        const g = groups.get(k);
        if (g) g.push(b);
        else groups.set(k, [b]);
      });
    else
      groups.set(
        ks[0]!,
        ks.map((_, b) => b),
      );
    const C = labelShape[1]!;
    const pick = <T extends Float32Array | Uint8Array>(a: T, per: number, idx: number[]): T => {
      if (idx.length === N) return a;
      const out = new (a.constructor as { new (n: number): T })(idx.length * per);
      idx.forEach((b, i) => out.set(a.subarray(b * per, (b + 1) * per), i * per));
      return out;
    };
    return tidy(() => {
      const parts: Tensor[] = [];
      for (const [k, idx] of groups) {
        const n = idx.length;
        const x = tensor(pick(xk, this.M * vox, idx), [n, this.M, ...ps]);
        const outs = this.net.forward(x, k);
        const t = makeTargets(
          pick(label, C * vox, idx),
          [n, C, ...ps],
          outs.map((o) => o.shape),
          this.lossKind,
          this.data.classes,
        );
        // weight n/N: the batch loss is the mean over samples
        const loss = n === N ? segLoss(outs, t, lossOpts) : mul(segLoss(outs, t, lossOpts), n / N);
        parts.push(loss);
        backward(loss); // frees this group's graph before the next forward
      }
      if (perSubsetNet ? this.cfg.train.fullGuidance : this.cfg.train.sharedGuidance) {
        // full-modality guidance L(f_full(x_full), y)
        const xf = tensor(image, [N, this.M, ...ps]);
        const outsF = this.net.forward(xf, full);
        const loss = segLoss(
          outsF,
          makeTargets(
            label,
            labelShape,
            outsF.map((o) => o.shape),
            this.lossKind,
            this.data.classes,
          ),
          lossOpts,
        );
        parts.push(loss);
        backward(loss);
      }
      return parts;
    });
  }

  async validate(): Promise<{ score: number; metrics: Record<string, number> }> {
    const cases = this.data.val.slice(0, Math.max(1, this.cfg.train.valCases));
    const r = await evaluateSegmentation(this.net, this.method, this.data, cases, {
      patchSize: this.cfg.train.patchSize,
      step: this.cfg.eval.step,
      hd95: false,
    });
    const metrics: Record<string, number> = {};
    const R = this.data.regions.length;
    let all = 0;
    for (let g = 0; g < R; g++) {
      const v = r.records.reduce((a, rec) => a + rec.values[g]!, 0) / r.records.length;
      metrics[`dice_${this.data.regions[g]!.name}`] = v;
      all += v / R;
    }
    const fullRecs = r.records.filter((rec) => rec.subset === fullSubset(this.M));
    metrics['dice_full'] =
      fullRecs.reduce((a, rec) => a + rec.values.reduce((x, y) => x + y, 0) / R, 0) / Math.max(1, fullRecs.length);
    return { score: all, metrics };
  }

  rngState(): Record<string, unknown> {
    return { subsets: this.subsetRng.state, draws: this.draws, module: generatorStates(this.gens) };
  }

  setRngState(s: Record<string, unknown>, where: string): void {
    if (!s || typeof s['draws'] !== 'number') throw new Error(`${where}: checkpoint has no data-sampling state`);
    this.subsetRng.state = s['subsets'] as PhiloxState;
    this.draws = s['draws'] as number;
    restoreGenerators(this.gens, (s['module'] ?? {}) as Record<string, unknown>, where);
  }
}
