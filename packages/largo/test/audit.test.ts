import t, { type Test } from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, existsSync, rmSync, mkdirSync, copyFileSync, readFileSync } from 'node:fs';
import { decodeSafetensors, encodeSafetensors, type StEntry } from '@largo/core';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { audit, AUDIT_OPS, runAudit } from '../src/audit.js';
import { PYTHON, requirement } from '@largo/test-support';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const committed = join(root, 'fixtures/audit-default');
const python = PYTHON;
const hasTorch = existsSync(python) && spawnSync(python, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;

t.test('the committed fixtures pass on the CPU backend', async (t) => {
  const rows = audit(committed, ['cpu']);
  const failures = rows.filter((r) => !r.pass);
  t.same(failures, [], 'no case outside tolerance');
  const ops = new Set(rows.map((r) => r.op));
  for (const op of AUDIT_OPS) t.ok(ops.has(op), `fixtures cover ${op}`);
  t.ok(
    rows.some((r) => r.quantity.startsWith('grad ')),
    'gradients are compared',
  );
});

t.test(
  'fixtures made by the committed script with other seeds pass',
  { skip: requirement('TORCH', !hasTorch && `${python} cannot import torch (Debian package python3-torch)`) },
  async (t) => {
    for (const seed of [7, 123]) {
      const dir = mkdtempSync(join(tmpdir(), `largo-audit-${seed}-`));
      execFileSync(python, [join(root, 'scripts/make-fixtures.py'), '--out', dir, '--seed', String(seed)], {
        stdio: 'pipe',
      });
      const rows = audit(dir, ['cpu']);
      t.same(
        rows.filter((r) => !r.pass),
        [],
        `seed ${seed}: all ${rows.length} checks pass`,
      );
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

/** A temp fixture folder: the committed tensors (optionally edited) and the given cases. */
function fixtureDir(t: Test, cases: unknown[], edit?: (tensors: Record<string, StEntry>) => void): string {
  const dir = mkdtempSync(join(tmpdir(), 'largo-audit-edit-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  if (edit) {
    const decoded = decodeSafetensors(new Uint8Array(readFileSync(join(committed, 'tensors.safetensors'))));
    edit(decoded.tensors);
    writeFileSync(join(dir, 'tensors.safetensors'), encodeSafetensors(decoded.tensors, decoded.metadata));
  } else {
    copyFileSync(join(committed, 'tensors.safetensors'), join(dir, 'tensors.safetensors'));
  }
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify({ version: 1, cases }));
  return dir;
}

const manifest = JSON.parse(readFileSync(join(committed, 'manifest.json'), 'utf8')) as {
  cases: { name: string; op: string; outputs: string[]; grads: Record<string, string>; rtol: number; atol: number }[];
};
const caseNamed = (name: string) => {
  const c = manifest.cases.find((q) => q.name === name);
  if (!c) throw new Error(`committed fixtures have no case ${name}`);
  return c;
};

t.test('a corrupted stored tensor fails exactly its own case and quantity', async (t) => {
  // One element of conv3d_b's stored output moved by 10× its tolerance, one element of
  // cp_reconstruct_a's stored grad a_in likewise, and one element of softmax_a's output moved
  // by half its tolerance (still inside it). Everything else is untouched.
  const conv = caseNamed('conv3d_b'),
    cp = caseNamed('cp_reconstruct_a'),
    sm = caseNamed('softmax_a');
  const moved: string[] = [];
  const dir = fixtureDir(t, manifest.cases, (tensors) => {
    const nudge = (name: string, at: number, c: { rtol: number; atol: number }, times: number) => {
      const d = tensors[name].data as Float32Array;
      const v = d[at];
      d[at] = v + times * (c.atol + c.rtol * Math.abs(v));
      moved.push(`${name}[${at}] ${v} → ${d[at]}`);
    };
    nudge(`${conv.name}.${conv.outputs[0]}`, 5, conv, 10);
    nudge(`${cp.name}.${cp.grads.a_in}`, 1, cp, -10);
    nudge(`${sm.name}.${sm.outputs[0]}`, 2, sm, 0.5);
  });
  t.comment(moved.join('; '));
  const rows = audit(dir, ['cpu']);
  t.equal(rows.length, audit(committed, ['cpu']).length, 'every case still ran');
  const failed = rows.filter((r) => !r.pass).map((r) => `${r.case}: ${r.quantity}`);
  t.same(failed, ['conv3d_b: y', 'cp_reconstruct_a: grad a_in'], 'exactly the two corrupted quantities fail');
  const convY = rows.find((r) => r.case === 'conv3d_b' && r.quantity === 'y')!;
  t.ok(
    convY.maxAbsErr > 5 * (conv.atol + conv.rtol),
    `the failure reports the planted error (max abs ${convY.maxAbsErr})`,
  );
  t.ok(
    rows.find((r) => r.case === 'softmax_a' && r.quantity === 'y')!.pass,
    'a value moved by half its tolerance still passes',
  );
  const log = console.log;
  console.log = () => {};
  try {
    t.equal(await runAudit(['--fixtures', dir]), 1, 'the CLI exits 1');
  } finally {
    console.log = log;
  }
});

t.test('rtol 0 and atol 0: only a bit-exact result passes, and the error is still measured', async (t) => {
  // The CPU kernels accumulate in float64, so matmul_a comes out bit-exact; softmax_a's exp
  // differs from PyTorch's float64 reference in the last bit. Zero tolerance tells the two apart.
  for (const [name, bitExact] of [
    ['matmul_a', true],
    ['softmax_a', false],
  ] as const) {
    const c = caseNamed(name);
    const loose = audit(fixtureDir(t, [c]), ['cpu']);
    t.ok(loose.length > 1 && loose.every((r) => r.pass), `${name}: with its own tolerances every quantity passes`);
    const strict = audit(fixtureDir(t, [{ ...c, rtol: 0, atol: 0 }]), ['cpu']);
    t.same(
      strict.map((r) => r.quantity),
      loose.map((r) => r.quantity),
      `${name}: the same quantities are compared`,
    );
    for (const r of strict) {
      t.equal(
        r.maxAbsErr,
        loose.find((q) => q.quantity === r.quantity)!.maxAbsErr,
        `${name} ${r.quantity}: the same error is measured (${r.maxAbsErr})`,
      );
      t.equal(r.pass, r.maxAbsErr === 0, `${name} ${r.quantity}: passes exactly when bit-exact`);
    }
    t.equal(
      strict.every((r) => r.pass),
      bitExact,
      `${name} at zero tolerance: ${bitExact ? 'passes (bit-exact)' : 'fails (last-bit differences)'}`,
    );
  }
});

t.test('an unknown op is reported, not skipped; exit codes', async (t) => {
  const first = manifest.cases[0];
  const dir = fixtureDir(t, [first, { ...first, name: `${first.name}-unknown-op`, op: 'frobnicate' }]);
  const rows = audit(dir, ['cpu']);
  t.same(
    rows.filter((r) => !r.pass).map((r) => [r.op, r.note]),
    [['frobnicate', "unknown op 'frobnicate'"]],
    'only the unknown op fails, and says so',
  );
  const log = console.log;
  console.log = () => {};
  try {
    t.equal(await runAudit(['--fixtures', dir]), 1, 'exit 1 when a case fails');
    t.equal(await runAudit(['--fixtures', committed]), 0, 'exit 0 on the committed fixtures');
  } finally {
    console.log = log;
  }
  const err = console.error;
  console.error = () => {};
  try {
    t.equal(await runAudit(['--fixtures', join(dir, 'nope')]), 2, 'exit 2 for a missing folder');
  } finally {
    console.error = err;
  }
  mkdirSync(join(dir, 'corrupt'));
  writeFileSync(join(dir, 'corrupt', 'manifest.json'), JSON.stringify({ version: 1, cases: [first] }));
  writeFileSync(join(dir, 'corrupt', 'tensors.safetensors'), Buffer.from([1, 2, 3]));
  t.throws(
    () => audit(join(dir, 'corrupt'), ['cpu']),
    /tensors\.safetensors/,
    'a truncated tensor file names the file',
  );
});
