// Tests of the coverage guard (scripts/coverage-guard.mjs, run by `npm test` after
// every other test file): its rules (@largo/test-support coverage.ts) on the
// real schema with planted records and kernels, the run record itself
// (record.ts) on planted subtests in a child process, the composites'
// declared kernels, and the guard run without a record.
import t from 'tap';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as C from '@largo/core';
import { COMPOSITE_OPS, engine, NON_DIFFERENTIABLE_OPS, Philox, setBackend, tidy } from '@largo/core';
import { caseOf, coverageProblems, readRecord, RECORD_VAR, type GuardInput, type Verified } from '@largo/test-support';
import { BACKEND_NAMES, schemaGuardInput } from '@largo/test-support/guard';

const root = fileURLToPath(new URL('../../..', import.meta.url));

/** A record that verifies everything the real schema and registry ask for. */
function completeRecord(): Verified[] {
  const g = schemaGuardInput([]);
  const out: Verified[] = [];
  const file = 'planted.test.ts';
  for (const [backend, ops] of g.kernels) {
    for (const op of ops) out.push({ op, backend, kind: 'oracle', file });
    for (const [op, { uses }] of g.composites)
      if (uses.every((k) => ops.includes(k))) out.push({ op, backend, kind: 'oracle', file });
  }
  for (const op of [...g.gradOps, ...g.composites.keys()]) out.push({ op, backend: 'cpu', kind: 'grad', file });
  return out;
}
const without = (r: Verified[], op: string, backend?: string, kind: Verified['kind'] = 'oracle') =>
  r.filter((e) => !(e.op === op && e.kind === kind && (backend === undefined || e.backend === backend)));
const problems = (over: Partial<GuardInput>) => coverageProblems({ ...schemaGuardInput(completeRecord()), ...over });

t.test('the real schema, registry and rules pass with a complete record; declarations are consistent', async (t) => {
  for (const b of BACKEND_NAMES) t.ok(schemaGuardInput([]).kernels.get(b)!.length > 0, `kernels registered on ${b}`);
  t.same(problems({}), [], 'no problem');
  t.ok(COMPOSITE_OPS.conv2d && COMPOSITE_OPS.dropout && COMPOSITE_OPS.mean, 'composites are declared in the schema');
  const missing = coverageProblems(schemaGuardInput([]));
  for (const op of ['conv2d', 'convTranspose3d', 'mean', 'variance', 'dropout', 'stack'])
    for (const b of BACKEND_NAMES)
      t.ok(
        missing.some((p) => p.startsWith(`${op} [${b}]: composite of `)),
        `${op} [${b}] is required (an empty record fails it)`,
      );
});

t.test('a planted kernel without a record fails the guard, for cpu and webgpu alike', async (t) => {
  const real = schemaGuardInput([]);
  for (const backend of BACKEND_NAMES) {
    const planted = new Map(real.kernels);
    planted.set(backend, [...real.kernels.get(backend)!, 'plantedOp']);
    const p = problems({
      kernels: planted,
      nonDifferentiable: new Map([...NON_DIFFERENTIABLE_OPS, ['plantedOp', 'planted']]),
    });
    t.same(
      p,
      [`plantedOp [${backend}]: a kernel is registered on ${backend} but no test verified it there`],
      `an unverified kernel on ${backend} is named, and nothing else`,
    );
    // A real kernel verified on the other backends only.
    const r = without(completeRecord(), 'softmax', backend);
    t.same(
      problems({ record: r }),
      [`softmax [${backend}]: a kernel is registered on ${backend} but no test verified it there`],
      `softmax verified elsewhere but not on ${backend} fails on ${backend}`,
    );
    t.same(
      problems({ record: without(completeRecord(), 'conv2d', backend) }),
      [`conv2d [${backend}]: composite of conv3d, all registered on ${backend}, but no test verified it there`],
      `a composite not verified on ${backend} fails`,
    );
  }
  // An unavailable backend's per-backend checks are left out (the guard says so as a skip).
  t.same(
    problems({ record: completeRecord().filter((e) => e.backend !== 'webgpu'), unavailable: new Set(['webgpu']) }),
    [],
  );
});

t.test('gradient stories: rules need a gradient record; declarations need reasons and targets', async (t) => {
  t.same(
    problems({ record: without(completeRecord(), 'softmax', undefined, 'grad') }),
    ['softmax: has a gradient rule but no test verified it'],
    'a rule without a passing gradient test',
  );
  t.same(problems({ record: without(completeRecord(), 'reshape', undefined, 'grad') }), [
    'reshape: gradient (view op) not verified by any test',
  ]);
  t.same(problems({ record: without(completeRecord(), 'dropout', undefined, 'grad') }), [
    'dropout: gradient (composite) not verified by any test',
  ]);
  const g = schemaGuardInput(completeRecord());
  t.same(
    problems({ gradOps: g.gradOps.filter((op) => op !== 'exp') }),
    ['exp: no gradient rule, and not declared backward-only or non-differentiable in the op schema'],
    'an op without a gradient story',
  );
  // Moving a kernel into the backward-only or non-differentiable lists does not silently drop its requirement.
  t.same(problems({ backwardOnly: new Map([...g.backwardOnly, ['exp', 'log']]) }), [
    'exp: declared backward-only but has a gradient rule',
  ]);
  t.same(
    problems({
      backwardOnly: new Map([...g.backwardOnly, ['exp', 'argmax']]),
      gradOps: g.gradOps.filter((op) => op !== 'exp'),
    }),
    ["exp: declared backward-only for 'argmax', which has no gradient rule"],
  );
  t.same(problems({ nonDifferentiable: new Map([...g.nonDifferentiable, ['exp', 'x']]) }), [
    'exp: declared non-differentiable but has a gradient rule',
  ]);
  t.same(
    problems({
      nonDifferentiable: new Map([...g.nonDifferentiable, ['exp', ' ']]),
      gradOps: g.gradOps.filter((op) => op !== 'exp'),
    }),
    ['exp: declared non-differentiable without a reason'],
  );
  t.same(
    problems({ record: [...completeRecord(), { op: 'softmx', backend: 'cpu', kind: 'oracle', file: 'x.test.ts' }] }),
    ['softmx: in the record (oracle, x.test.ts) but no op of the schema'],
    'a typo in a case title is caught',
  );
});

t.test('caseOf reads the titles oracleCase and gradCase make, and nothing else', async (t) => {
  t.same(caseOf('oracle: softmax'), { kind: 'oracle', op: 'softmax' });
  t.same(caseOf('grad: variance (correction 1)'), { kind: 'grad', op: 'variance' });
  t.same(caseOf('oracle: crossEntropy: f32 partial sums [webgpu]'), { kind: 'oracle', op: 'crossEntropy' });
  t.equal(caseOf('softmax edge cases'), null);
  t.equal(caseOf('a test about oracle: softmax'), null);
});

/** Runs a file the way tap does (same loaders), without tap's or the LARGO_REQUIRE_* variables. */
function runFile(file: string, env: Record<string, string>): Promise<{ status: number | null; out: string }> {
  const base = Object.fromEntries(
    Object.entries(process.env).filter(
      ([k]) => !k.startsWith('TAP') && !k.startsWith('LARGO_REQUIRE_') && k !== RECORD_VAR,
    ),
  );
  return new Promise((done) => {
    const child = spawn(process.execPath, [...process.execArgv, join(root, file)], {
      cwd: root,
      env: { ...base, ...env },
      timeout: 240_000,
    });
    let out = '';
    child.stdout.on('data', (b) => (out += b));
    child.stderr.on('data', (b) => (out += b));
    child.on('close', (status) => done({ status, out }));
  });
}

t.test('the record holds only subtests that passed with a passing comparison (planted cases)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'largo-record-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const r = await runFile('packages/autograd/test/fixtures/record-cases.ts', {
    [RECORD_VAR]: dir,
    LARGO_WEBGPU: 'off',
  });
  t.not(r.status, 0, 'the planted failures fail the child');
  t.match(r.out, /# SKIP planted: a skipped subtest/, 'the planted skip ran as a skip');
  const got = (readRecord(dir) ?? []).map((e) => `${e.kind} ${e.op} [${e.backend}] ${e.file}`).sort();
  t.same(
    got,
    [
      'grad mul [cpu] packages/autograd/test/fixtures/record-cases.ts',
      'oracle add [cpu] packages/autograd/test/fixtures/record-cases.ts',
    ],
    'exactly the two passing cases, each with its backend and file',
  );
});

t.test('the guard run without a record fails and says how to produce one', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'largo-record-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const [unset, empty] = await Promise.all([
    runFile('scripts/coverage-guard.mjs', {}),
    runFile('scripts/coverage-guard.mjs', { [RECORD_VAR]: dir }),
  ]);
  for (const [what, r] of [
    ['LARGO_TEST_RECORD unset', unset],
    ['an empty record', empty],
  ] as const) {
    t.not(r.status, 0, `${what}: fails`);
    t.match(r.out, /not ok \d+ - no run record .*Run `npm test` \(node scripts\/test\.mjs\)/, `${what}: says how`);
  }
});

t.test('each composite op runs exactly the kernels the schema says it uses', async (t) => {
  const e = engine();
  const prevBackend = e.backend.name;
  setBackend('cpu');
  const prev = e.recorder;
  const seen = new Set<string>();
  e.recorder = { record: (op) => void seen.add(op) };
  t.teardown(() => {
    e.recorder = prev;
    setBackend(prevBackend);
  });
  const run: Record<keyof typeof COMPOSITE_OPS, () => unknown> = {
    conv2d: () => C.conv2d(C.ones([1, 2, 4, 4]), C.ones([3, 2, 2, 2]), C.ones([3])),
    convTranspose3d: () => C.convTranspose3d(C.ones([1, 2, 3, 3, 3]), C.ones([2, 3, 2, 2, 2]), C.ones([3])),
    mean: () => C.mean(C.ones([2, 3]), 1),
    variance: () => C.variance(C.ones([2, 3]), 1, false, 1),
    dropout: () => C.dropout(C.ones([4, 4]), 0.5, { generator: new Philox(1) }),
    stack: () => C.stack([C.ones([2]), C.ones([2])], 1),
  };
  for (const [op, f] of Object.entries(run)) {
    seen.clear();
    tidy(() => void f());
    const kernels = [...seen].filter((k) => k !== 'reshape').sort();
    t.same(
      kernels,
      [...COMPOSITE_OPS[op as keyof typeof COMPOSITE_OPS].uses].sort(),
      `${op} runs ${kernels.join(', ')}`,
    );
  }
});
