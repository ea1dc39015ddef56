// The guard: every kernel registered on the CPU backend must have an oracle
// property test, and either a gradient rule with a gradient test, or be
// declared non-differentiable, or be a backward-only kernel listed below.
// Tests declare what they cover with literal oracleCase(<quoted op name>) /
// gradCase(<quoted op name>) markers (helpers/oracle.ts), which this file
// scans for; a computed name does not count.
import t from 'tap';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { kernelsFor } from '@largo/core';
import { gradOps, hasGrad, NON_DIFFERENTIABLE } from '@largo/autograd';

/**
 * Kernels that exist only to compute a gradient inside another op's rule.
 * They get no rule of their own (no second-order derivatives), but their
 * values still need an oracle test. One line each: why it is backward-only.
 */
const BACKWARD_KERNELS = new Map<string, string>([
  ['instanceNormGrad', "instanceNorm's rule: dx, dweight, dbias from saved mean/invstd"],
  ['cpReconstructGrad', "cpReconstruct's rule: cotangents of the CP factors from dW"],
  ['crossEntropyGrad', "crossEntropy's rule: softmax minus one-hot, scaled"],
  ['bceWithLogitsGrad', "bceWithLogits's rule: sigmoid(logits) minus target, scaled"],
  ['softDiceLossGrad', "softDiceLoss's rule: cotangents of probs and target"],
]);

const root = fileURLToPath(new URL('../../..', import.meta.url));

/** Every .ts file under packages/<pkg>/test (node_modules and dist excluded). */
function testSources(): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      if (name === 'node_modules' || name === 'dist') continue;
      const p = join(dir, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (name.endsWith('.ts')) out.push(p);
    }
  };
  for (const pkg of readdirSync(join(root, 'packages'))) {
    const dir = join(root, 'packages', pkg, 'test');
    try { if (statSync(dir).isDirectory()) walk(dir); } catch { /* package without tests */ }
  }
  return out;
}

const MARKER = /\b(oracleCase|gradCase)\(\s*(['"`])([A-Za-z_][A-Za-z0-9_]*)\2\s*\)/g;

function scanMarkers(): { oracle: Map<string, string[]>; grad: Map<string, string[]> } {
  const oracle = new Map<string, string[]>(), grad = new Map<string, string[]>();
  for (const file of testSources()) {
    const src = readFileSync(file, 'utf8');
    for (const m of src.matchAll(MARKER)) {
      const map = m[1] === 'oracleCase' ? oracle : grad;
      const list = map.get(m[3]) ?? [];
      list.push(relative(root, file));
      map.set(m[3], list);
    }
  }
  return { oracle, grad };
}

t.test('every CPU kernel has an oracle test and a gradient story', async (t) => {
  const kernels = kernelsFor('cpu');
  t.ok(kernels.length > 0, 'kernels are registered');
  const { oracle, grad } = scanMarkers();
  t.ok(oracle.size > 0 && grad.size > 0, `markers found (${oracle.size} oracle, ${grad.size} grad)`);

  const missing: string[] = [];
  for (const op of kernels) {
    const problems: string[] = [];
    if (!oracle.has(op)) problems.push(`no oracleCase('${op}') test`);
    const backwardOnly = BACKWARD_KERNELS.has(op), nonDiff = NON_DIFFERENTIABLE.has(op);
    if (backwardOnly) {
      if (hasGrad(op)) problems.push('listed in BACKWARD_KERNELS but has a gradient rule');
      if (nonDiff) problems.push('listed in both BACKWARD_KERNELS and NON_DIFFERENTIABLE');
    } else if (nonDiff) {
      if (hasGrad(op)) problems.push('in NON_DIFFERENTIABLE but has a gradient rule');
    } else if (!hasGrad(op)) {
      problems.push('no gradient rule (hasGrad), and not in NON_DIFFERENTIABLE or BACKWARD_KERNELS');
    } else if (!grad.has(op)) {
      problems.push(`has a gradient rule but no gradCase('${op}') test`);
    }
    if (problems.length) missing.push(`  ${op}: ${problems.join('; ')}`);
  }
  // Rules on non-kernel ops (reshape) need a gradient test too.
  for (const op of gradOps()) {
    if (!kernels.includes(op) && !grad.has(op)) missing.push(`  ${op}: gradient rule (view op) without a gradCase('${op}') test`);
  }
  // One failure per op, so the report names exactly which op lacks what.
  for (const line of missing) t.fail(line.trim());
  if (missing.length === 0) t.pass(`all ${kernels.length} kernels covered`);
  else t.comment(`ops lacking coverage (${missing.length}):\n${missing.join('\n')}`);

  const stale = [...BACKWARD_KERNELS.keys()].filter((op) => !kernels.includes(op));
  if (stale.length) t.comment(`BACKWARD_KERNELS entries with no registered kernel (yet): ${stale.join(', ')}`);
  const extra = [...new Set([...oracle.keys(), ...grad.keys()])].filter((op) => !kernels.includes(op) && !gradOps().includes(op)).sort();
  if (extra.length) t.comment(`markers for composite ops (no kernel of their own): ${extra.join(', ')}`);
});

t.test('the scanner sees literal markers only', async (t) => {
  const sample = "t.test(oracleCase('add'), ...); gradCase(\"mul\"); oracleCase(op); gradCase(`x${1}`)";
  const found = [...sample.matchAll(MARKER)].map((m) => `${m[1]}:${m[3]}`);
  t.same(found, ['oracleCase:add', 'gradCase:mul']);
});
