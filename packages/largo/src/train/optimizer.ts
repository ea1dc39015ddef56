/**
 * The optimizer, learning-rate schedule and gradient clipping as the
 * training loop uses them (@largo/autograd's SGD / Adam with PyTorch's update
 * equations, clipGradNorm, polyLr / cosineLr), wrapped so that checkpoints
 * save and restore the optimizer state exactly (float32 slots, per-parameter
 * step counts, hyper-parameters).
 */
import { SGD, Adam, clipGradNorm, polyLr, cosineLr, constantLr, type Optimizer, type OptimizerStateDict } from '@largo/autograd';
import { tensor, type Tensor } from '@largo/core';
import type { LargoConfig } from '../config.js';

export interface TrainOptimizer {
  setLr(lr: number): void;
  /** applies one update from the parameters' `.grad` */
  step(): void;
  /** slot → [parameter name, state tensor] (valid until the next step) and the scalars */
  state(): { tensors: Record<string, [string, Tensor][]>; scalars: Record<string, unknown> };
  load(tensors: Map<string, Map<string, { shape: number[]; data: Float32Array }>>, scalars: Record<string, unknown>, where: string): void;
  dispose(): void;
}

/** Learning rate of (0-based) step `step`: poly (1 − s/S)^0.9 as nnU-Net, cosine, or constant. */
export function scheduledLr(cfg: LargoConfig, step: number): number {
  const t = cfg.train;
  switch (t.schedule) {
    case 'poly': return polyLr(t.lr, step, t.steps, t.polyPower);
    case 'cosine': return cosineLr(t.lr, step, t.steps);
    default: return constantLr(t.lr, step, t.steps);
  }
}

/** Scales all gradients so that their global L2 norm is at most `max`; returns the norm before clipping. */
export function clipGradients(params: readonly [string, Tensor][], max: number): number {
  return clipGradNorm(params, max);
}

class Wrapped implements TrainOptimizer {
  constructor(private readonly opt: Optimizer) {}
  setLr(lr: number): void { this.opt.setLr(lr); }
  step(): void { this.opt.step(); }
  state(): { tensors: Record<string, [string, Tensor][]>; scalars: Record<string, unknown> } {
    const sd = this.opt.stateDict();
    const tensors: Record<string, [string, Tensor][]> = {};
    for (const [slot, m] of Object.entries(sd.slots)) tensors[slot] = Object.entries(m);
    return { tensors, scalars: { type: sd.type, options: sd.options, steps: sd.steps } };
  }
  load(tensors: Map<string, Map<string, { shape: number[]; data: Float32Array }>>, scalars: Record<string, unknown>, where: string): void {
    if (scalars['type'] !== this.opt.type) throw new Error(`${where}: optimizer state is for ${String(scalars['type'])}, this run uses ${this.opt.type}`);
    const made: Tensor[] = [];
    const slots: Record<string, Record<string, Tensor>> = {};
    for (const [slot, m] of tensors) {
      slots[slot] = {};
      for (const [n, e] of m) { const t = tensor(e.data, e.shape, 'float32'); made.push(t); slots[slot]![n] = t; }
    }
    const sd: OptimizerStateDict = {
      type: String(scalars['type']), options: (scalars['options'] ?? {}) as OptimizerStateDict['options'],
      steps: (scalars['steps'] ?? {}) as Record<string, number>, slots,
    };
    try { this.opt.loadStateDict(sd); } catch (e) { throw new Error(`${where}: ${(e as Error).message}`); } finally { for (const t of made) t.dispose(); }
  }
  dispose(): void { this.opt.dispose(); }
}

export function makeOptimizer(params: readonly [string, Tensor][], cfg: LargoConfig): TrainOptimizer {
  const t = cfg.train;
  if (t.optimizer === 'adam') return new Wrapped(new Adam(params, { lr: t.lr, weightDecay: t.weightDecay }));
  return new Wrapped(new SGD(params, { lr: t.lr, momentum: t.momentum, nesterov: t.nesterov && t.momentum > 0, weightDecay: t.weightDecay }));
}
