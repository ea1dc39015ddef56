// The coverage guard, keyed by (op, backend), on the record of this test run:
// every kernel registered on a backend (cpu, webgpu, and those that come
// later) and every composite op (schema COMPOSITE_OPS) was compared with the
// float64 oracle on that backend by a test that passed, and every op has a
// gradient story (a rule whose gradient test passed, or a declaration in the
// op schema as backward-only or not differentiable, with its reason).
// The record is written by the shared test helpers (forEachBackend,
// verifiedTest; packages/test-support/src/record.ts) while the other test
// files run, so this file is none of them (outside every test folder, which
// tap would run in parallel with the rest): `npm test` (scripts/test.mjs)
// clears the record, runs every test file, then this one as a second tap run.
// The rules are in @largo/test-support (coverage.ts), tested on planted
// inputs in packages/autograd/test/op-coverage.test.ts.
import t from 'tap';
import { kernelsFor } from '@largo/core';
import { availability, BACKENDS, coverageProblems, readRecord, RECORD_VAR } from '@largo/test-support';
import { BACKEND_NAMES, schemaGuardInput } from '@largo/test-support/guard';

const dir = process.env[RECORD_VAR];
const record = dir ? readRecord(dir) : null;

t.test(
  'every kernel and composite op on every backend was verified by this run, and every op has a gradient story',
  async (t) => {
    if (!record || record.length === 0) {
      t.fail(
        `no run record (${dir ? `${dir} is ${record ? 'empty' : 'missing'}` : `${RECORD_VAR} is not set`}): ` +
          'the guard reads what a whole test run verified. Run `npm test` (node scripts/test.mjs), which clears the ' +
          `record, runs every test file with ${RECORD_VAR} set, then this guard on what they recorded`,
      );
      return;
    }
    const unavailable = new Set();
    for (const p of BACKENDS) {
      // Where the backend is required (LARGO_REQUIRE_WEBGPU=1) a missing one throws here: a failure, not a skip.
      const reason = await availability(p);
      if (reason) {
        unavailable.add(p.name);
        t.test(`${p.name}: per-backend checks`, { skip: `the backend is unavailable (${reason})` }, async () => {});
      }
    }
    const input = schemaGuardInput(record, unavailable);
    for (const b of BACKEND_NAMES) t.ok((input.kernels.get(b) ?? []).length > 0, `kernels are registered on ${b}`);
    const problems = coverageProblems(input);
    // One failure per (op, backend), so the report names exactly what lacks what.
    for (const line of problems) t.fail(line);
    if (problems.length === 0)
      t.pass(
        `all kernels and composites verified on ${BACKEND_NAMES.filter((b) => !unavailable.has(b)).join(', ')} ` +
          `(${record.length} records from ${new Set(record.map((r) => r.file)).size} files)`,
      );
    const gpu = kernelsFor('webgpu');
    t.comment(
      `cpu kernels without a webgpu kernel yet: ${
        kernelsFor('cpu')
          .filter((op) => !gpu.includes(op))
          .join(', ') || 'none'
      }`,
    );
  },
);
