/**
 * The optimizer, learning-rate schedule and gradient clipping as the
 * training loop uses them (@largo/autograd's SGD / Adam with PyTorch's update
 * equations, clipGradNorm, polyLr / cosineLr), wrapped so that checkpoints
 * save and restore the optimizer state exactly (float32 slots, per-parameter
 * step counts, hyper-parameters).
 */
import {
  SGD,
  Adam,
  clipGradNorm,
  noGrad,
  polyLr,
  cosineLr,
  constantLr,
  type Optimizer,
  type OptimizerStateDict,
} from '@largo/autograd';
import { add, div, engine, minimum, mul, sqrt, sum, tensor, tidy, type Tensor } from '@largo/core';
import type { LargoConfig } from '../config.js';

export interface TrainOptimizer {
  setLr(lr: number): void;
  /** applies one update from the parameters' `.grad` */
  step(): void;
  /** slot → [parameter name, state tensor] (valid until the next step) and the scalars */
  state(): { tensors: Record<string, [string, Tensor][]>; scalars: Record<string, unknown> };
  load(
    tensors: Map<string, Map<string, { shape: number[]; data: Float32Array }>>,
    scalars: Record<string, unknown>,
    where: string,
  ): void;
  dispose(): void;
}

/** Learning rate of (0-based) step `step`: poly (1 − s/S)^0.9 as nnU-Net, cosine, or constant. */
export function scheduledLr(cfg: LargoConfig, step: number): number {
  const t = cfg.train;
  switch (t.schedule) {
    case 'poly':
      return polyLr(t.lr, step, t.steps, t.polyPower);
    case 'cosine':
      return cosineLr(t.lr, step, t.steps);
    default:
      return constantLr(t.lr, step, t.steps);
  }
}

/**
 * Scales all gradients so that their global L2 norm is at most `max`. On the
 * CPU this is autograd's clipGradNorm (the norm is read, bitwise as before);
 * on a device the norm never leaves it: coef = min(1, max / (norm + 1e-6))
 * is computed and applied there, so clipping does not stall the queue.
 */
export function clipGradients(params: readonly [string, Tensor][], max: number): void {
  const grads = params.map(([, p]) => p.grad).filter((g): g is Tensor => g !== null && g.size > 0);
  if (grads.length === 0) return;
  if (grads[0]!.backend.name === 'cpu') {
    clipGradNorm(params, max);
    return;
  }
  const e = engine();
  noGrad(() =>
    tidy(() => {
      let total: Tensor | null = null;
      for (const g of grads) {
        const s = sum(mul(g, g));
        total = total ? add(total, s) : s;
      }
      const coef = minimum(div(max, add(sqrt(total!), 1e-6)), 1);
      for (const g of grads) e.assign(g, mul(g, coef));
    }),
  );
}

/** One or more autograd optimizers (parameter groups with learning-rate multipliers) behind one interface. */
class Grouped implements TrainOptimizer {
  constructor(private readonly groups: { opt: Optimizer; scale: number }[]) {}
  setLr(lr: number): void {
    for (const g of this.groups) g.opt.setLr(lr * g.scale);
  }
  step(): void {
    for (const g of this.groups) g.opt.step();
  }
  state(): { tensors: Record<string, [string, Tensor][]>; scalars: Record<string, unknown> } {
    const tensors: Record<string, [string, Tensor][]> = {};
    const groups: unknown[] = [];
    for (const g of this.groups) {
      const sd = g.opt.stateDict();
      for (const [slot, m] of Object.entries(sd.slots)) (tensors[slot] ??= []).push(...Object.entries(m));
      groups.push({ options: sd.options, steps: sd.steps, scale: g.scale });
    }
    return { tensors, scalars: { type: this.groups[0]!.opt.type, groups } };
  }
  load(
    tensors: Map<string, Map<string, { shape: number[]; data: Float32Array }>>,
    scalars: Record<string, unknown>,
    where: string,
  ): void {
    const type = this.groups[0]!.opt.type;
    if (scalars['type'] !== type)
      throw new Error(`${where}: optimizer state is for ${String(scalars['type'])}, this run uses ${type}`);
    const saved = scalars['groups'] as
      { options: OptimizerStateDict['options']; steps: Record<string, number>; scale: number }[] | undefined;
    if (!Array.isArray(saved) || saved.length !== this.groups.length)
      throw new Error(
        `${where}: optimizer state has ${Array.isArray(saved) ? saved.length : 0} parameter group(s), this run has ${this.groups.length}`,
      );
    this.groups.forEach((g, gi) => {
      const names = new Set(g.opt.names);
      const made: Tensor[] = [];
      const slots: Record<string, Record<string, Tensor>> = {};
      for (const [slot, m] of tensors) {
        for (const [n, e] of m) {
          if (!names.has(n)) continue;
          const t = tensor(e.data, e.shape, 'float32');
          made.push(t);
          (slots[slot] ??= {})[n] = t;
        }
      }
      const sd: OptimizerStateDict = { type, options: saved[gi]!.options ?? {}, steps: saved[gi]!.steps ?? {}, slots };
      try {
        g.opt.loadStateDict(sd);
      } catch (e) {
        throw new Error(`${where}: ${(e as Error).message}`);
      } finally {
        for (const t of made) t.dispose();
      }
    });
  }
  dispose(): void {
    for (const g of this.groups) g.opt.dispose();
  }
}

/**
 * The configured optimizer; with `train.subsetLrScale` ≠ 1 the parameters
 * named in `subsetParams` form a second group whose learning rate is scaled.
 */
export function makeOptimizer(
  params: readonly [string, Tensor][],
  cfg: LargoConfig,
  subsetParams?: ReadonlySet<string>,
): TrainOptimizer {
  const t = cfg.train;
  const make = (ps: readonly [string, Tensor][]): Optimizer =>
    t.optimizer === 'adam'
      ? new Adam(ps, { lr: t.lr, weightDecay: t.weightDecay })
      : new SGD(ps, {
          lr: t.lr,
          momentum: t.momentum,
          nesterov: t.nesterov && t.momentum > 0,
          weightDecay: t.weightDecay,
        });
  const scale = t.subsetLrScale;
  if (scale === 1 || !subsetParams || subsetParams.size === 0) return new Grouped([{ opt: make(params), scale: 1 }]);
  const shared = params.filter(([n]) => !subsetParams.has(n)),
    own = params.filter(([n]) => subsetParams.has(n));
  const groups = [{ opt: make(shared), scale: 1 }];
  if (own.length) groups.push({ opt: make(own), scale });
  return new Grouped(groups);
}
