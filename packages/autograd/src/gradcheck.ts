import { engine, mul, sum, tensor, Philox, type Tensor, add } from '@largo/core';
import { backward, noGrad, requireGrad } from './tape.js';

export interface GradcheckOptions {
  /** Central-difference step. */
  eps?: number;
  atol?: number;
  rtol?: number;
  /** Seed of the random cotangent that projects vector outputs to a scalar. */
  seed?: number;
  /** Which inputs to check (default: every float input). */
  wrt?: readonly boolean[];
}

export interface GradcheckResult {
  ok: boolean;
  maxAbsErr: number;
  maxRelErr: number;
  /** Worst element: input index, flat index, analytic and numeric values. */
  worst: { input: number; index: number; analytic: number; numeric: number } | null;
  checked: number;
}

/**
 * Compares autograd's vector-Jacobian product with central finite
 * differences of ⟨fn(x), u⟩ for a fixed random cotangent u. Use float64
 * inputs: differences in float32 are too noisy to say anything.
 */
export function gradcheck(
  fn: (...xs: Tensor[]) => Tensor | readonly Tensor[],
  inputs: readonly Tensor[],
  opts: GradcheckOptions = {},
): GradcheckResult {
  const eps = opts.eps ?? 1e-6,
    atol = opts.atol ?? 1e-6,
    rtol = opts.rtol ?? 1e-4;
  const e = engine();
  const values = inputs.map((t) => t.dataSync());
  const wrt = inputs.map((t, i) => (opts.wrt ? opts.wrt[i] : t.dtype === 'float64' || t.dtype === 'float32'));
  const gen = new Philox(opts.seed ?? 1234);
  let cot: Tensor[] | null = null;

  const scalarOf = (xs: Tensor[]): Tensor => {
    const out = fn(...xs);
    const outs = Array.isArray(out) ? (out as Tensor[]) : [out as Tensor];
    if (!cot) {
      cot = outs.map((o) => e.keep(tensor(Float64Array.from(gen.normal(o.size)), o.shape, o.dtype)));
    }
    let acc: Tensor | null = null;
    outs.forEach((o, k) => {
      const term = sum(mul(o, cot![k]));
      acc = acc ? add(acc, term) : term;
    });
    return acc!;
  };

  // Analytic.
  const leaves = inputs.map((t, i) => {
    const c = e.keep(tensor(values[i].slice(), t.shape, t.dtype));
    if (wrt[i]) requireGrad(c);
    return c;
  });
  e.tidy(() => backward(scalarOf(leaves)));
  const analytic = leaves.map((l, i) => (wrt[i] ? (l.grad ? l.grad.dataSync() : new Float64Array(l.size)) : null));
  leaves.forEach((l) => l.dispose());

  // Numeric.
  let maxAbs = 0,
    maxRel = 0,
    checked = 0;
  let worst: GradcheckResult['worst'] = null,
    worstScore = -1;
  let ok = true;
  const evalAt = (i: number, j: number, v: number): number => {
    const xs = values.map((vals, k) => {
      const copy = vals.slice();
      if (k === i) copy[j] = v;
      return tensor(copy, inputs[k].shape, inputs[k].dtype);
    });
    const r = noGrad(() => e.tidy(() => scalarOf(xs).item()));
    xs.forEach((x) => x.dispose());
    return r;
  };
  for (let i = 0; i < inputs.length; i++) {
    if (!wrt[i]) continue;
    for (let j = 0; j < values[i].length; j++) {
      const x0 = values[i][j];
      const num = (evalAt(i, j, x0 + eps) - evalAt(i, j, x0 - eps)) / (2 * eps);
      const an = analytic[i]![j];
      const abs = Math.abs(an - num);
      const rel = abs / Math.max(Math.abs(num), 1e-12);
      checked++;
      if (!(abs <= atol + rtol * Math.abs(num))) ok = false;
      const score = abs / (atol + rtol * Math.abs(num));
      if (score > worstScore || Number.isNaN(score)) {
        worstScore = score;
        worst = { input: i, index: j, analytic: an, numeric: num };
      }
      maxAbs = Math.max(maxAbs, abs);
      if (Math.abs(num) > atol) maxRel = Math.max(maxRel, rel);
    }
  }
  for (const c of (cot as Tensor[] | null) ?? []) c.dispose();
  return { ok, maxAbsErr: maxAbs, maxRelErr: maxRel, worst, checked };
}
