// The coverage guard's logic, keyed by (op, backend): every kernel a backend
// registers needs an oracle test that runs on that backend, and every op a
// gradient story (a rule with a gradient test, or a schema declaration as
// backward-only or not differentiable). Kept apart from the guard test so that
// the guard itself can be tested on planted kernels.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';

/** op → backend ('*' = every backend) → files with a marker for it. */
export type Markers = Map<string, Map<string, string[]>>;

export const ALL_BACKENDS = '*';

const MARKER = /\b(oracleCase|gradCase)\(\s*(['"`])([A-Za-z_][A-Za-z0-9_]*)\2\s*\)/g;
/** What precedes a marker that covers every backend: `forEachBackend(t, ` (a title built from the marker). */
const SHARED_BEFORE = /forEachBackend\(\s*\w+\s*,\s*$/;
/** What precedes a marker of a WebGPU-only test: `wg(`. */
const WEBGPU_BEFORE = /\bwg\(\s*$/;

/** Which backend a marker covers: all (inside forEachBackend), webgpu (`wg(` or the gpu package), else cpu. */
export function markerBackend(src: string, index: number, file: string): string {
  const before = src.slice(Math.max(0, index - 80), index);
  if (SHARED_BEFORE.test(before)) return ALL_BACKENDS;
  if (WEBGPU_BEFORE.test(before) || file.split(sep).join('/').includes('packages/gpu/test/')) return 'webgpu';
  return 'cpu';
}

/** Scans sources (path → text) for literal markers; a computed op name does not count. */
export function scanSources(sources: ReadonlyMap<string, string>): { oracle: Markers; grad: Markers } {
  const oracle: Markers = new Map(),
    grad: Markers = new Map();
  for (const [file, src] of sources) {
    for (const m of src.matchAll(MARKER)) {
      const map = m[1] === 'oracleCase' ? oracle : grad;
      const backend = markerBackend(src, m.index ?? 0, file);
      const byBackend = map.get(m[3]) ?? new Map<string, string[]>();
      byBackend.set(backend, [...(byBackend.get(backend) ?? []), file]);
      map.set(m[3], byBackend);
    }
  }
  return { oracle, grad };
}

/** Every .ts file under packages/<pkg>/test of the repository at `root` (node_modules and dist excluded). */
export function testSources(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      if (name === 'node_modules' || name === 'dist' || name === 'fixtures') continue;
      const p = join(dir, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (name.endsWith('.ts')) out.set(relative(root, p), readFileSync(p, 'utf8'));
    }
  };
  for (const pkg of readdirSync(join(root, 'packages'))) {
    const dir = join(root, 'packages', pkg, 'test');
    try {
      if (statSync(dir).isDirectory()) walk(dir);
    } catch {
      /* package without tests */
    }
  }
  return out;
}

const covers = (m: Markers, op: string, backend: string): boolean => {
  const b = m.get(op);
  return !!b && (b.has(backend) || b.has(ALL_BACKENDS));
};

export interface GuardInput {
  /** backend → ops with a kernel registered there. */
  kernels: ReadonlyMap<string, readonly string[]>;
  oracle: Markers;
  grad: Markers;
  /** From the op schema: backward-only kernels, and non-differentiable ops (with reasons). */
  backwardOnly: ReadonlyMap<string, string>;
  nonDifferentiable: ReadonlyMap<string, string> | ReadonlySet<string>;
  /** Ops with a registered gradient rule (kernel ops and view ops). */
  gradOps: readonly string[];
}

/** One line per problem, naming the op and the backend; empty when everything is covered. */
export function coverageProblems(g: GuardInput): string[] {
  const problems: string[] = [];
  const rules = new Set(g.gradOps);
  const allKernelOps = new Set<string>();
  for (const [backend, ops] of g.kernels) {
    for (const op of ops) {
      allKernelOps.add(op);
      if (!covers(g.oracle, op, backend)) {
        problems.push(
          `${op} [${backend}]: a kernel is registered on ${backend} but no oracleCase('${op}') test runs there`,
        );
      }
    }
  }
  for (const op of [...allKernelOps].sort()) {
    const backwardOnly = g.backwardOnly.has(op),
      nonDiff = g.nonDifferentiable.has(op),
      hasRule = rules.has(op);
    if (backwardOnly && nonDiff) problems.push(`${op}: declared both backward-only and non-differentiable`);
    else if (backwardOnly || nonDiff) {
      if (hasRule)
        problems.push(
          `${op}: declared ${backwardOnly ? 'backward-only' : 'non-differentiable'} but has a gradient rule`,
        );
    } else if (!hasRule)
      problems.push(`${op}: no gradient rule, and not declared backward-only or non-differentiable in the op schema`);
    else if (!g.grad.has(op)) problems.push(`${op}: has a gradient rule but no gradCase('${op}') test`);
  }
  // Rules on ops without a kernel (view ops such as reshape) need a gradient test too.
  for (const op of rules) {
    if (!allKernelOps.has(op) && !g.grad.has(op))
      problems.push(`${op}: gradient rule (view op) without a gradCase('${op}') test`);
  }
  return problems;
}
