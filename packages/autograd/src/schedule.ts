/**
 * Learning-rate schedules as pure functions of the step: the training loop
 * calls `opt.setLr(schedule(step))` before each update, so a resumed run
 * gets exactly the same rates.
 */

function checkArgs(name: string, base: number, step: number, total: number): void {
  if (!Number.isFinite(base) || base < 0) throw new Error(`${name}: invalid base lr ${base}`);
  if (!Number.isFinite(step) || step < 0) throw new Error(`${name}: invalid step ${step}`);
  if (!(total > 0) || !Number.isFinite(total)) throw new Error(`${name}: total must be positive, got ${total}`);
}

/**
 * nnU-Net's polynomial decay: base · (1 − step/total)^power, 0 from `total`
 * on (step is clamped to [0, total]).
 */
export function polyLr(base: number, step: number, total: number, power = 0.9): number {
  checkArgs('polyLr', base, step, total);
  if (!(power >= 0)) throw new Error(`polyLr: invalid power ${power}`);
  const frac = Math.min(step, total) / total;
  return base * (1 - frac) ** power;
}

/**
 * Cosine annealing from `base` to `minLr` over [warmup, total], after a
 * linear warmup over the first `warmup` steps that reaches `base` at step
 * `warmup` (step s < warmup gives base · (s + 1)/(warmup + 1)); `minLr`
 * from `total` on.
 */
export function cosineLr(base: number, step: number, total: number, minLr = 0, warmup = 0): number {
  checkArgs('cosineLr', base, step, total);
  if (!(warmup >= 0) || warmup >= total) throw new Error(`cosineLr: warmup must be in [0, total), got ${warmup}`);
  if (!(minLr >= 0) || minLr > base) throw new Error(`cosineLr: minLr must be in [0, base], got ${minLr}`);
  if (step < warmup) return (base * (step + 1)) / (warmup + 1);
  const frac = Math.min(step - warmup, total - warmup) / (total - warmup);
  return minLr + (base - minLr) * 0.5 * (1 + Math.cos(Math.PI * frac));
}

/** The same rate at every step (the signature matches the other schedules). */
export function constantLr(base: number, _step = 0, _total = 1): number {
  if (!Number.isFinite(base) || base < 0) throw new Error(`constantLr: invalid base lr ${base}`);
  return base;
}
