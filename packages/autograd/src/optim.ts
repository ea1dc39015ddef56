/**
 * Optimizers with PyTorch's update equations (torch.optim.SGD / Adam,
 * single-tensor path), and global-norm gradient clipping.
 *
 * Updates are computed with core ops under `noGrad` inside `tidy`, so they
 * run on whichever backend holds the parameters, and are written back in
 * place with `engine().assign`: views of a parameter see the new values and
 * no parameter handle changes. Optimizer state tensors are kept (`keep`) and
 * released by `dispose()`.
 */
import {
  abs,
  add,
  clone,
  div,
  engine,
  isFloat,
  keep,
  max as reduceMax,
  maximum,
  mul,
  newArray,
  OpError,
  sqrt,
  sub,
  sum,
  type Tensor,
} from '@largo/core';
import { noGrad } from './tape.js';

/** Parameters as a list, or as [name, tensor] pairs (names key the state dict). */
export type ParamsInput = readonly Tensor[] | readonly (readonly [string, Tensor])[];

/**
 * Serializable optimizer state. `slots` uses PyTorch's state names
 * (momentum_buffer, exp_avg, exp_avg_sq, max_exp_avg_sq), then parameter
 * names (or indices as strings when parameters were given unnamed). The
 * tensors are the optimizer's own: copy them before disposing the optimizer.
 */
export interface OptimizerStateDict {
  type: string;
  options: Record<string, number | boolean | readonly number[]>;
  /** Number of updates applied to each parameter. */
  steps: Record<string, number>;
  slots: Record<string, Record<string, Tensor>>;
}

interface ParamState {
  step: number;
  slots: Map<string, Tensor>;
}

export abstract class Optimizer {
  readonly params: readonly Tensor[];
  readonly names: readonly string[];
  protected lrValue: number;
  protected readonly state = new Map<Tensor, ParamState>();
  private disposed = false;

  protected constructor(
    readonly type: string,
    params: ParamsInput,
    lr: number,
  ) {
    const list = [...params] as (Tensor | readonly [string, Tensor])[];
    const named = list.map((p, i): [string, Tensor] =>
      Array.isArray(p) ? [String(p[0]), p[1] as Tensor] : [String(i), p as Tensor],
    );
    const seenT = new Set<Tensor>(),
      seenN = new Set<string>();
    for (const [n, p] of named) {
      if (!p || typeof p !== 'object' || !('dtype' in p)) throw new OpError(type, `parameter '${n}' is not a Tensor`);
      p.assertAlive(type);
      if (!isFloat(p.dtype)) throw new OpError(type, `parameter '${n}' must be float32 or float64, got ${p.dtype}`);
      if (seenT.has(p)) throw new OpError(type, `parameter '${n}' appears twice`);
      if (seenN.has(n)) throw new OpError(type, `parameter name '${n}' appears twice`);
      seenT.add(p);
      seenN.add(n);
    }
    this.params = named.map((q) => q[1]);
    this.names = named.map((q) => q[0]);
    checkNonNegative(type, 'lr', lr);
    this.lrValue = lr;
  }

  get lr(): number {
    return this.lrValue;
  }
  /** Sets the learning rate used by the next `step()` (schedules call this every step). */
  setLr(lr: number): void {
    checkNonNegative(this.type, 'lr', lr);
    this.lrValue = lr;
  }

  /** Drops every parameter's gradient (PyTorch's zero_grad(set_to_none=True)). */
  zeroGrad(): void {
    for (const p of this.params)
      if (p.grad) {
        p.grad.dispose();
        p.grad = null;
      }
  }

  /** Applies one update to every parameter that has a gradient. */
  step(): void {
    if (this.disposed) throw new OpError(this.type, 'step() after dispose()');
    const e = engine();
    noGrad(() => {
      for (const p of this.params) {
        const g = p.grad;
        if (!g) continue;
        p.assertAlive(`${this.type}.step`);
        if (g.size !== p.size || g.dtype !== p.dtype) {
          throw new OpError(
            this.type,
            `gradient ${g.dtype} [${g.shape.join(', ')}] does not match parameter ${p.dtype} [${p.shape.join(', ')}]`,
          );
        }
        let st = this.state.get(p);
        if (!st) {
          st = { step: 0, slots: new Map() };
          this.state.set(p, st);
        }
        st.step++;
        const s = st;
        e.tidy(() => {
          this.update(p, g, s);
        });
      }
    });
  }

  /** One parameter's update; runs inside tidy and noGrad. */
  protected abstract update(p: Tensor, g: Tensor, st: ParamState): void;
  protected abstract options(): Record<string, number | boolean | readonly number[]>;
  protected abstract setOptions(o: Record<string, unknown>): void;

  /** A state slot: created (kept) from `init` on first use, then updated in place. */
  protected slot(st: ParamState, name: string, init: () => Tensor): { t: Tensor; fresh: boolean } {
    const have = st.slots.get(name);
    if (have) return { t: have, fresh: false };
    const t = keep(init());
    st.slots.set(name, t);
    return { t, fresh: true };
  }

  stateDict(): OptimizerStateDict {
    const steps: Record<string, number> = {};
    const slots: Record<string, Record<string, Tensor>> = {};
    this.params.forEach((p, i) => {
      const st = this.state.get(p);
      if (!st) return;
      steps[this.names[i]] = st.step;
      for (const [k, t] of st.slots) (slots[k] ??= {})[this.names[i]] = t;
    });
    return { type: this.type, options: this.options(), steps, slots };
  }

  /** Restores hyper-parameters and state; tensors are copied, so the source may be disposed afterwards. */
  loadStateDict(sd: OptimizerStateDict): void {
    if (sd.type !== this.type)
      throw new OpError(`${this.type}.loadStateDict`, `state is for ${sd.type}, not ${this.type}`);
    const index = new Map(this.names.map((n, i) => [n, i]));
    for (const n of [...Object.keys(sd.steps), ...Object.values(sd.slots).flatMap((m) => Object.keys(m))]) {
      if (!index.has(n)) throw new OpError(`${this.type}.loadStateDict`, `unknown parameter '${n}'`);
    }
    for (const [slot, m] of Object.entries(sd.slots)) {
      for (const [n, t] of Object.entries(m)) {
        const p = this.params[index.get(n)!];
        t.assertAlive(`${this.type}.loadStateDict`);
        if (t.size !== p.size || t.dtype !== p.dtype) {
          throw new OpError(
            `${this.type}.loadStateDict`,
            `${slot} of '${n}' is ${t.dtype} [${t.shape.join(', ')}], parameter is ${p.dtype} [${p.shape.join(', ')}]`,
          );
        }
      }
    }
    this.setOptions(sd.options);
    this.clearState();
    const e = engine();
    this.params.forEach((p, i) => {
      const n = this.names[i];
      if (!(n in sd.steps)) return;
      const st: ParamState = { step: sd.steps[n], slots: new Map() };
      for (const [slot, m] of Object.entries(sd.slots)) {
        const src = m[n];
        if (src) st.slots.set(slot, keep(e.tidy(() => clone(src))));
      }
      this.state.set(p, st);
    });
  }

  private clearState(): void {
    for (const st of this.state.values()) for (const t of st.slots.values()) t.dispose();
    this.state.clear();
  }

  /** Frees the optimizer's state tensors (not the parameters). */
  dispose(): void {
    this.clearState();
    this.disposed = true;
  }
}

function checkNonNegative(op: string, name: string, v: number): void {
  if (!(typeof v === 'number' && Number.isFinite(v) && v >= 0)) throw new OpError(op, `invalid ${name}: ${v}`);
}

export interface SGDOptions {
  lr: number;
  momentum?: number;
  nesterov?: boolean;
  weightDecay?: number;
  dampening?: number;
}

/**
 * torch.optim.SGD:
 *   g ← ∇ + wd·p
 *   b ← g (first step), else μ·b + (1 − dampening)·g
 *   g ← g + μ·b (Nesterov) or b
 *   p ← p − lr·g
 */
export class SGD extends Optimizer {
  momentum: number;
  nesterov: boolean;
  weightDecay: number;
  dampening: number;

  constructor(params: ParamsInput, opts: SGDOptions) {
    super('SGD', params, opts.lr);
    this.momentum = opts.momentum ?? 0;
    this.nesterov = opts.nesterov ?? false;
    this.weightDecay = opts.weightDecay ?? 0;
    this.dampening = opts.dampening ?? 0;
    this.validate();
  }

  private validate(): void {
    checkNonNegative('SGD', 'momentum', this.momentum);
    checkNonNegative('SGD', 'weightDecay', this.weightDecay);
    if (!Number.isFinite(this.dampening)) throw new OpError('SGD', `invalid dampening: ${this.dampening}`);
    if (this.nesterov && (this.momentum <= 0 || this.dampening !== 0)) {
      throw new OpError('SGD', 'Nesterov momentum requires a momentum and zero dampening');
    }
  }

  protected update(p: Tensor, grad: Tensor, st: ParamState): void {
    let g = grad;
    if (this.weightDecay !== 0) g = add(g, mul(p, this.weightDecay));
    if (this.momentum !== 0) {
      const d = g;
      const { t: buf, fresh } = this.slot(st, 'momentum_buffer', () => clone(d));
      if (!fresh) {
        const scaled = this.dampening === 0 ? d : mul(d, 1 - this.dampening);
        engine().assign(buf, add(mul(buf, this.momentum), scaled));
      }
      g = this.nesterov ? add(g, mul(buf, this.momentum)) : buf;
    }
    engine().assign(p, sub(p, mul(g, this.lrValue)));
  }

  protected options() {
    return {
      lr: this.lrValue,
      momentum: this.momentum,
      nesterov: this.nesterov,
      weightDecay: this.weightDecay,
      dampening: this.dampening,
    };
  }

  protected setOptions(o: Record<string, unknown>): void {
    if (typeof o.lr === 'number') this.setLr(o.lr);
    if (typeof o.momentum === 'number') this.momentum = o.momentum;
    if (typeof o.nesterov === 'boolean') this.nesterov = o.nesterov;
    if (typeof o.weightDecay === 'number') this.weightDecay = o.weightDecay;
    if (typeof o.dampening === 'number') this.dampening = o.dampening;
    this.validate();
  }
}

export interface AdamOptions {
  lr?: number;
  betas?: readonly [number, number];
  eps?: number;
  weightDecay?: number;
  amsgrad?: boolean;
}

/**
 * torch.optim.Adam (weight decay as L2 added to the gradient, not AdamW):
 *   g ← ∇ + wd·p
 *   m ← m + (1 − β₁)(g − m)            (lerp, as PyTorch)
 *   v ← β₂·v + (1 − β₂)·g²
 *   v̂ ← max(v̂, v)                      (amsgrad)
 *   p ← p − lr/(1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + ε)
 */
export class Adam extends Optimizer {
  betas: [number, number];
  eps: number;
  weightDecay: number;
  amsgrad: boolean;

  constructor(params: ParamsInput, opts: AdamOptions = {}) {
    super('Adam', params, opts.lr ?? 1e-3);
    this.betas = [...(opts.betas ?? [0.9, 0.999])] as [number, number];
    this.eps = opts.eps ?? 1e-8;
    this.weightDecay = opts.weightDecay ?? 0;
    this.amsgrad = opts.amsgrad ?? false;
    this.validate();
  }

  private validate(): void {
    for (const b of this.betas)
      if (!(b >= 0 && b < 1)) throw new OpError('Adam', `invalid beta: ${b} (must be in [0, 1))`);
    checkNonNegative('Adam', 'eps', this.eps);
    checkNonNegative('Adam', 'weightDecay', this.weightDecay);
  }

  protected update(p: Tensor, grad: Tensor, st: ParamState): void {
    const [b1, b2] = this.betas;
    const e = engine();
    let g = grad;
    if (this.weightDecay !== 0) g = add(g, mul(p, this.weightDecay));
    const zeros = () => e.fromValues(newArray(p.dtype, p.size), p.shape, p.dtype, p.backend);
    const m = this.slot(st, 'exp_avg', zeros).t;
    const v = this.slot(st, 'exp_avg_sq', zeros).t;
    e.assign(m, add(m, mul(sub(g, m), 1 - b1)));
    e.assign(v, add(mul(v, b2), mul(mul(g, g), 1 - b2)));
    const bc1 = 1 - b1 ** st.step,
      bc2 = 1 - b2 ** st.step;
    const stepSize = this.lrValue / bc1;
    let second = v;
    if (this.amsgrad) {
      const vmax = this.slot(st, 'max_exp_avg_sq', zeros).t;
      e.assign(vmax, maximum(vmax, v));
      second = vmax;
    }
    const denom = add(div(sqrt(second), Math.sqrt(bc2)), this.eps);
    e.assign(p, sub(p, mul(div(m, denom), stepSize)));
  }

  protected options() {
    return {
      lr: this.lrValue,
      betas: [...this.betas],
      eps: this.eps,
      weightDecay: this.weightDecay,
      amsgrad: this.amsgrad,
    };
  }

  protected setOptions(o: Record<string, unknown>): void {
    if (typeof o.lr === 'number') this.setLr(o.lr);
    if (Array.isArray(o.betas) && o.betas.length === 2) this.betas = [Number(o.betas[0]), Number(o.betas[1])];
    if (typeof o.eps === 'number') this.eps = o.eps;
    if (typeof o.weightDecay === 'number') this.weightDecay = o.weightDecay;
    if (typeof o.amsgrad === 'boolean') this.amsgrad = o.amsgrad;
    this.validate();
  }
}

export interface ClipOptions {
  /** 2 (default) or Infinity. */
  normType?: number;
  /** Throw instead of scaling by NaN when the norm is NaN or infinite. */
  errorIfNonfinite?: boolean;
}

/**
 * Scales all gradients in place so that their global norm (the norm of the
 * concatenation of every gradient, as torch.nn.utils.clip_grad_norm_) is at
 * most `maxNorm`; returns the norm before clipping. Scaling uses
 * maxNorm / (norm + 1e-6), and only happens when that factor is below 1.
 */
export function clipGradNorm(
  params: readonly Tensor[] | readonly (readonly [string, Tensor])[],
  maxNorm: number,
  opts: ClipOptions = {},
): number {
  const normType = opts.normType ?? 2;
  if (normType !== 2 && normType !== Infinity)
    throw new OpError('clipGradNorm', `normType must be 2 or Infinity, got ${normType}`);
  if (!(maxNorm >= 0)) throw new OpError('clipGradNorm', `invalid maxNorm: ${maxNorm}`);
  const grads: Tensor[] = [];
  for (const q of params as readonly (Tensor | readonly [string, Tensor])[]) {
    const p = (Array.isArray(q) ? q[1] : q) as Tensor;
    if (p.grad) grads.push(p.grad);
  }
  if (grads.length === 0) return 0;
  const e = engine();
  return noGrad(() => {
    let total = 0;
    for (const g of grads) {
      if (g.size === 0) continue;
      const r = e.tidy(() => (normType === 2 ? sum(mul(g, g)) : reduceMax(abs(g))));
      const v = r.item();
      r.dispose();
      total = Number.isNaN(v) || Number.isNaN(total) ? NaN : normType === 2 ? total + v : Math.max(total, v);
    }
    const norm = normType === 2 ? Math.sqrt(total) : total;
    if (!Number.isFinite(norm) && opts.errorIfNonfinite) {
      throw new OpError('clipGradNorm', `the total norm of the gradients is ${norm}`);
    }
    const coef = maxNorm / (norm + 1e-6);
    if (!(coef >= 1)) {
      for (const g of grads)
        e.tidy(() => {
          e.assign(g, mul(g, coef));
        });
    }
    return norm;
  });
}
