// The coverage guard's logic, keyed by (op, backend), on the run record
// (record.ts): what the test run verified, not what test titles claim.
//  - every kernel a backend registers has an oracle record on that backend;
//  - every composite op (schema COMPOSITE_OPS) has one on every backend that
//    registers all the kernels it uses;
//  - every op has a gradient story: a gradient rule with a gradient record
//    (view ops and composites included), or a declaration in the op schema as
//    backward-only (naming the op whose rule runs it) or not differentiable
//    (with its reason);
//  - the record names no op outside the schema (a typo would verify nothing).
// Kept apart from the guard so that it can be tested on planted inputs.
import type { Verified } from './record.js';

export interface GuardInput {
  /** backend → ops with a kernel registered there. */
  kernels: ReadonlyMap<string, readonly string[]>;
  /** Backends the run could not use (no adapter): their per-backend checks are left out. */
  unavailable?: ReadonlySet<string>;
  /** From the op schema: composite ops and the kernels each uses. */
  composites: ReadonlyMap<string, { readonly uses: readonly string[] }>;
  /** From the op schema: backward-only kernels → the op whose rule calls them. */
  backwardOnly: ReadonlyMap<string, string>;
  /** From the op schema: non-differentiable ops → why. */
  nonDifferentiable: ReadonlyMap<string, string>;
  /** View ops (no kernel; reshape). */
  viewOps: readonly string[];
  /** Ops with a registered gradient rule (kernel ops and view ops). */
  gradOps: readonly string[];
  /** The run record. */
  record: readonly Verified[];
}

/** op → backends with a record of `kind`. */
export function verifiedBy(record: readonly Verified[], kind: Verified['kind']): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const r of record) {
    if (r.kind !== kind) continue;
    const s = out.get(r.op) ?? new Set<string>();
    s.add(r.backend);
    out.set(r.op, s);
  }
  return out;
}

/** One line per problem, naming the op (and the backend); empty when everything is covered. */
export function coverageProblems(g: GuardInput): string[] {
  const problems: string[] = [];
  const oracle = verifiedBy(g.record, 'oracle'),
    grad = verifiedBy(g.record, 'grad');
  const rules = new Set(g.gradOps);
  const has = (m: Map<string, Set<string>>, op: string, backend?: string) =>
    backend === undefined ? (m.get(op)?.size ?? 0) > 0 : !!m.get(op)?.has(backend);
  const allKernelOps = new Set<string>();
  for (const [backend, ops] of g.kernels) {
    for (const op of ops) allKernelOps.add(op);
    if (g.unavailable?.has(backend)) continue;
    for (const op of ops) {
      if (!has(oracle, op, backend))
        problems.push(`${op} [${backend}]: a kernel is registered on ${backend} but no test verified it there`);
    }
    for (const [op, { uses }] of g.composites) {
      if (uses.every((k) => ops.includes(k)) && !has(oracle, op, backend))
        problems.push(
          `${op} [${backend}]: composite of ${uses.join(', ')}, all registered on ${backend}, but no test verified it there`,
        );
    }
  }
  for (const [op, { uses }] of g.composites) {
    for (const k of uses)
      if (!allKernelOps.has(k)) problems.push(`${op}: composite of ${k}, which no backend registers`);
  }
  for (const op of [...allKernelOps].sort()) {
    const target = g.backwardOnly.get(op),
      why = g.nonDifferentiable.get(op);
    if (target !== undefined && why !== undefined)
      problems.push(`${op}: declared both backward-only and non-differentiable`);
    else if (target !== undefined) {
      if (rules.has(op)) problems.push(`${op}: declared backward-only but has a gradient rule`);
      else if (!rules.has(target))
        problems.push(`${op}: declared backward-only for '${target}', which has no gradient rule`);
    } else if (why !== undefined) {
      if (rules.has(op)) problems.push(`${op}: declared non-differentiable but has a gradient rule`);
      else if (!why.trim()) problems.push(`${op}: declared non-differentiable without a reason`);
    } else if (!rules.has(op))
      problems.push(`${op}: no gradient rule, and not declared backward-only or non-differentiable in the op schema`);
    else if (!has(grad, op)) problems.push(`${op}: has a gradient rule but no test verified it`);
  }
  // Gradients that are not a kernel's: view ops' rules, and composites through their parts' rules.
  for (const op of [...g.viewOps, ...g.composites.keys()]) {
    if (g.viewOps.includes(op) && !rules.has(op)) problems.push(`${op}: view op without a gradient rule`);
    if (!has(grad, op))
      problems.push(`${op}: gradient (${g.viewOps.includes(op) ? 'view op' : 'composite'}) not verified by any test`);
  }
  const known = new Set([...allKernelOps, ...g.composites.keys(), ...g.viewOps]);
  for (const r of g.record)
    if (!known.has(r.op)) problems.push(`${r.op}: in the record (${r.kind}, ${r.file}) but no op of the schema`);
  return [...new Set(problems)];
}
