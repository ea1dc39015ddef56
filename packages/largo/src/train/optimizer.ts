/**
 * Optimizer, learning-rate schedule and gradient clipping as the training
 * loop uses them, with state that checkpoints save and restore exactly.
 *
 * SGD (PyTorch semantics): g = ∇ + wd·p; b = μ·b + g (b = g at the first
 * step); update = g + μ·b (Nesterov) or b; p −= lr·update.
 * Adam: m = β₁m + (1−β₁)g, v = β₂v + (1−β₂)g², p −= lr·m̂/(√v̂ + ε).
 * Poly schedule lr·(1 − s/S)^0.9 (nnU-Net), cosine, or constant.
 * Clipping: the global L2 norm of all gradients is scaled down to `max`.
 */
import { engine, tensor, type Tensor } from '@largo/core';
import type { LargoConfig } from '../config.js';

export interface TrainOptimizer {
  setLr(lr: number): void;
  /** applies one update from the parameters' `.grad` (call under noGrad) */
  step(): void;
  state(): { tensors: Record<string, [string, Float32Array][]>; scalars: Record<string, unknown> };
  load(tensors: Map<string, Map<string, { shape: number[]; data: Float32Array }>>, scalars: Record<string, unknown>, where: string): void;
}

export function scheduledLr(cfg: LargoConfig, step: number): number {
  const t = cfg.train;
  const frac = Math.min(1, step / t.steps);
  switch (t.schedule) {
    case 'poly': return t.lr * (1 - frac) ** t.polyPower;
    case 'cosine': return 0.5 * t.lr * (1 + Math.cos(Math.PI * frac));
    default: return t.lr;
  }
}

function gradOf(p: Tensor): Float32Array | null {
  if (!p.grad) return null;
  const g = p.grad.dataSync();
  return g instanceof Float32Array ? g : Float32Array.from(g as ArrayLike<number>);
}

/** Scales all gradients so that their global L2 norm is at most `max`; returns the norm before clipping. */
export function clipGradients(params: readonly [string, Tensor][], max: number): number {
  let ss = 0;
  const grads = params.map(([, p]) => gradOf(p));
  for (const g of grads) if (g) for (let i = 0; i < g.length; i++) ss += g[i]! * g[i]!;
  const norm = Math.sqrt(ss);
  if (norm > max) {
    const scale = max / (norm + 1e-6);
    params.forEach(([, p], j) => {
      const g = grads[j];
      if (!g || !p.grad) return;
      for (let i = 0; i < g.length; i++) g[i] = g[i]! * scale;
      const t = tensor(g, p.grad.shape, 'float32');
      engine().assign(p.grad, t);
      t.dispose();
    });
  }
  return norm;
}

abstract class HostOptimizer implements TrainOptimizer {
  protected lr = 0;
  protected t = 0;
  protected readonly slots: Map<string, Float32Array[]> = new Map();
  constructor(protected readonly params: readonly [string, Tensor][], slotNames: string[]) {
    for (const s of slotNames) this.slots.set(s, params.map(([, p]) => new Float32Array(p.size)));
  }
  setLr(lr: number): void { this.lr = lr; }
  protected abstract update(i: number, p: Float32Array, g: Float32Array): void;
  step(): void {
    this.t++;
    this.params.forEach(([, p], i) => {
      const g = gradOf(p);
      if (!g) return;
      const d = p.dataSync();
      const w = d instanceof Float32Array ? d : Float32Array.from(d as ArrayLike<number>);
      this.update(i, w, g);
      const nt = tensor(w, p.shape, 'float32');
      engine().assign(p, nt);
      nt.dispose();
    });
  }
  state(): { tensors: Record<string, [string, Float32Array][]>; scalars: Record<string, unknown> } {
    const tensors: Record<string, [string, Float32Array][]> = {};
    for (const [s, arrs] of this.slots) tensors[s] = this.params.map(([n], i) => [n, arrs[i]!]);
    return { tensors, scalars: { kind: this.constructor.name, t: this.t } };
  }
  load(tensors: Map<string, Map<string, { shape: number[]; data: Float32Array }>>, scalars: Record<string, unknown>, where: string): void {
    if (scalars['kind'] !== this.constructor.name) throw new Error(`${where}: optimizer state is for ${String(scalars['kind'])}, this run uses ${this.constructor.name}`);
    for (const [s, arrs] of this.slots) {
      const m = tensors.get(s);
      if (!m) throw new Error(`${where}: optimizer slot '${s}' missing`);
      this.params.forEach(([n], i) => {
        const e = m.get(n);
        if (!e || e.data.length !== arrs[i]!.length) throw new Error(`${where}: optimizer state optim/${s}/${n} missing or of the wrong size`);
        arrs[i]!.set(e.data);
      });
    }
    this.t = Number(scalars['t'] ?? 0);
  }
}

export class SgdOptimizer extends HostOptimizer {
  constructor(params: readonly [string, Tensor][], readonly momentum: number, readonly nesterov: boolean, readonly weightDecay: number) {
    super(params, ['momentum']);
  }
  protected update(i: number, p: Float32Array, g: Float32Array): void {
    const buf = this.slots.get('momentum')![i]!;
    const mu = this.momentum, wd = this.weightDecay, lr = this.lr, first = this.t === 1;
    for (let j = 0; j < p.length; j++) {
      const gj = Math.fround(g[j]! + wd * p[j]!);
      const b = mu > 0 ? (first ? gj : Math.fround(mu * buf[j]! + gj)) : gj;
      buf[j] = b;
      const u = this.nesterov && mu > 0 ? Math.fround(gj + mu * b) : b;
      p[j] = Math.fround(p[j]! - lr * u);
    }
  }
}

export class AdamOptimizer extends HostOptimizer {
  constructor(params: readonly [string, Tensor][], readonly beta1 = 0.9, readonly beta2 = 0.999, readonly eps = 1e-8, readonly weightDecay = 0) {
    super(params, ['m', 'v']);
  }
  protected update(i: number, p: Float32Array, g: Float32Array): void {
    const m = this.slots.get('m')![i]!, v = this.slots.get('v')![i]!;
    const b1 = this.beta1, b2 = this.beta2, t = this.t;
    const c1 = 1 - b1 ** t, c2 = 1 - b2 ** t;
    for (let j = 0; j < p.length; j++) {
      const gj = g[j]! + this.weightDecay * p[j]!;
      m[j] = b1 * m[j]! + (1 - b1) * gj;
      v[j] = b2 * v[j]! + (1 - b2) * gj * gj;
      p[j] = p[j]! - (this.lr * (m[j]! / c1)) / (Math.sqrt(v[j]! / c2) + this.eps);
    }
  }
}

export function makeOptimizer(params: readonly [string, Tensor][], cfg: LargoConfig): TrainOptimizer {
  const t = cfg.train;
  if (t.optimizer === 'adam') return new AdamOptimizer(params, 0.9, 0.999, 1e-8, t.weightDecay);
  return new SgdOptimizer(params, t.momentum, t.nesterov, t.weightDecay);
}
