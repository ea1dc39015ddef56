// The coverage guard, keyed by (op, backend): every kernel registered on a
// backend (cpu, webgpu, and those that come later) must have an oracle
// property test that runs on that backend, and every op a gradient story: a
// gradient rule with a gradient test, or a declaration in the op schema
// (packages/core/src/ops/schema.ts) as backward-only or not differentiable,
// with its reason. Tests declare what they cover with literal
// oracleCase(<quoted op name>) / gradCase(<quoted op name>) markers; inside
// forEachBackend(t, oracleCase('op'), …) a marker covers every backend. The
// rules live in @largo/test-support (coverage.ts), tested below on planted kernels.
import t from 'tap';
import { fileURLToPath } from 'node:url';
import { BACKWARD_OPS, kernelsFor, NON_DIFFERENTIABLE_OPS } from '@largo/core';
import { gradOps } from '@largo/autograd';
import '@largo/gpu'; // registers the WebGPU kernels (no device needed)
import {
  ALL_BACKENDS,
  BACKENDS,
  coverageProblems,
  scanSources,
  testSources,
  type GuardInput,
  type Markers,
} from '@largo/test-support';

const root = fileURLToPath(new URL('../../..', import.meta.url));
/** Every backend the shared tests run on (each one's package is imported above, so its kernels are registered). */
const BACKEND_NAMES = BACKENDS.map((b) => b.name);

function realInput(): GuardInput {
  const sources = testSources(root);
  // This file quotes markers in its samples and messages: they cover nothing.
  sources.delete('packages/autograd/test/op-coverage.test.ts');
  const { oracle, grad } = scanSources(sources);
  return {
    kernels: new Map(BACKEND_NAMES.map((b) => [b, kernelsFor(b)])),
    oracle,
    grad,
    backwardOnly: BACKWARD_OPS,
    nonDifferentiable: NON_DIFFERENTIABLE_OPS,
    gradOps: gradOps(),
  };
}

t.test('every kernel on every backend has an oracle test there, and every op a gradient story', async (t) => {
  const input = realInput();
  for (const b of BACKEND_NAMES) t.ok((input.kernels.get(b) ?? []).length > 0, `kernels are registered on ${b}`);
  t.ok(
    input.oracle.size > 0 && input.grad.size > 0,
    `markers found (${input.oracle.size} oracle, ${input.grad.size} grad)`,
  );
  const problems = coverageProblems(input);
  // One failure per (op, backend), so the report names exactly what lacks what.
  for (const line of problems) t.fail(line);
  if (problems.length === 0) t.pass(`all kernels covered on ${BACKEND_NAMES.join(', ')}`);
  const shared = [...input.oracle]
    .filter(([, b]) => b.has(ALL_BACKENDS))
    .map(([op]) => op)
    .sort();
  t.comment(`ops whose oracle tests run on every backend (forEachBackend): ${shared.join(', ') || 'none'}`);
});

t.test('the guard fails for a planted kernel without a test on its backend, for cpu and webgpu alike', async (t) => {
  const input = realInput();
  t.same(coverageProblems(input), [], 'the real registry passes');
  for (const backend of BACKEND_NAMES) {
    // A kernel of an op that some other backend tests, registered here without a test here.
    const otherOnly = [...input.oracle].find(([, b]) => !b.has(ALL_BACKENDS) && !b.has(backend))?.[0] ?? 'plantedOp';
    const planted = new Map(input.kernels);
    planted.set(backend, [...(input.kernels.get(backend) ?? []), 'plantedOp', otherOnly]);
    const problems = coverageProblems({
      ...input,
      kernels: planted,
      nonDifferentiable: new Set([...NON_DIFFERENTIABLE_OPS.keys(), 'plantedOp', otherOnly]),
    });
    t.ok(
      problems.some((p) =>
        p.startsWith(
          `plantedOp [${backend}]: a kernel is registered on ${backend} but no oracleCase('plantedOp') test`,
        ),
      ),
      `an untested kernel on ${backend} is named`,
    );
    if (otherOnly !== 'plantedOp') {
      t.ok(
        problems.some((p) => p.startsWith(`${otherOnly} [${backend}]:`)),
        `${otherOnly}, tested on another backend only, fails on ${backend}`,
      );
    }
  }
  // A rule without a gradient test, and an op with no gradient story at all.
  const noGradTest = coverageProblems({
    ...input,
    grad: new Map([...input.grad].filter(([op]) => op !== 'softmax')) as Markers,
  });
  t.ok(
    noGradTest.includes("softmax: has a gradient rule but no gradCase('softmax') test"),
    'a rule without a gradient test fails',
  );
  const noStory = coverageProblems({ ...input, gradOps: input.gradOps.filter((op) => op !== 'exp') });
  t.ok(
    noStory.includes('exp: no gradient rule, and not declared backward-only or non-differentiable in the op schema'),
    'an op without a gradient story fails',
  );
});

t.test('markers: literal only; forEachBackend covers every backend, wg() and the gpu package webgpu', async (t) => {
  const src = new Map([
    [
      'packages/core/test/a.test.ts',
      't.test(oracleCase(\'add\'), ...); gradCase("mul"); oracleCase(op); gradCase(`x${1}`)',
    ],
    ['packages/core/test/b.test.ts', "forEachBackend(t, oracleCase('softmax'), async (t, b) => {})"],
    ['packages/gpu/test/c.test.ts', "t.test(wg(oracleCase('sum')), ...); t.test(oracleCase('max'), ...)"],
  ]);
  const { oracle, grad } = scanSources(src);
  t.same([...oracle.keys()].sort(), ['add', 'max', 'softmax', 'sum']);
  t.same([...grad.keys()], ['mul']);
  t.same([...oracle.get('add')!.keys()], ['cpu']);
  t.same([...oracle.get('softmax')!.keys()], [ALL_BACKENDS]);
  t.same([...oracle.get('sum')!.keys()], ['webgpu']);
  t.same([...oracle.get('max')!.keys()], ['webgpu']);
});
