import t from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, existsSync, rmSync, mkdirSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { audit, AUDIT_OPS, runAudit } from '../src/audit.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const committed = join(root, 'fixtures/audit-default');
const python = '/usr/bin/python3';
const hasTorch = existsSync(python) && spawnSync(python, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;

t.test('the committed fixtures pass on the CPU backend', async (t) => {
  const rows = audit(committed, ['cpu']);
  const failures = rows.filter((r) => !r.pass);
  t.same(failures, [], 'no case outside tolerance');
  const ops = new Set(rows.map((r) => r.op));
  for (const op of AUDIT_OPS) t.ok(ops.has(op), `fixtures cover ${op}`);
  t.ok(rows.some((r) => r.quantity.startsWith('grad ')), 'gradients are compared');
});

t.test('fixtures made by the committed script with other seeds pass', { skip: hasTorch ? false : 'python3-torch not installed' }, async (t) => {
  for (const seed of [7, 123]) {
    const dir = mkdtempSync(join(tmpdir(), `largo-audit-${seed}-`));
    execFileSync(python, [join(root, 'scripts/make-fixtures.py'), '--out', dir, '--seed', String(seed)], { stdio: 'pipe' });
    const rows = audit(dir, ['cpu']);
    t.same(rows.filter((r) => !r.pass), [], `seed ${seed}: all ${rows.length} checks pass`);
    rmSync(dir, { recursive: true, force: true });
  }
});

t.test('a wrong stored value fails, an unknown op is reported, exit codes', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'largo-audit-bad-'));
  copyFileSync(join(committed, 'tensors.safetensors'), join(dir, 'tensors.safetensors'));
  const manifest = JSON.parse((await import('node:fs')).readFileSync(join(committed, 'manifest.json'), 'utf8'));
  const first = manifest.cases[0];
  manifest.cases = [first, { ...first, name: `${first.name}-unknown-op`, op: 'frobnicate' }, { ...first, name: `${first.name}-exact`, rtol: 0, atol: 0, params: { ...first.params } }];
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest));
  const rows = audit(dir, ['cpu']);
  t.ok(rows.some((r) => r.op === 'frobnicate' && !r.pass && /unknown op/.test(r.note ?? '')), 'unknown op reported, not skipped');
  const log = console.log;
  console.log = () => {};
  try {
    t.equal(await runAudit(['--fixtures', dir]), 1, 'exit 1 when a case fails');
    t.equal(await runAudit(['--fixtures', committed]), 0, 'exit 0 on the committed fixtures');
  } finally { console.log = log; }
  const err = console.error;
  console.error = () => {};
  try {
    t.equal(await runAudit(['--fixtures', join(dir, 'nope')]), 2, 'exit 2 for a missing folder');
  } finally { console.error = err; }
  mkdirSync(join(dir, 'corrupt'));
  writeFileSync(join(dir, 'corrupt', 'manifest.json'), JSON.stringify({ version: 1, cases: [first] }));
  writeFileSync(join(dir, 'corrupt', 'tensors.safetensors'), Buffer.from([1, 2, 3]));
  t.throws(() => audit(join(dir, 'corrupt'), ['cpu']), /tensors\.safetensors/, 'a truncated tensor file names the file');
  rmSync(dir, { recursive: true, force: true });
});
