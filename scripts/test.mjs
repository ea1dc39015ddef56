// `npm test`: one test run with a fresh run record, then the coverage guard
// on that record (docs/design.md, "The coverage guard").
//  1. clears the record folder (LARGO_TEST_RECORD, default .tap/largo-record),
//     so records of an earlier run never count;
//  2. runs tap with the given arguments (every *.test.ts file when no path is
//     given), LARGO_TEST_RECORD set: the shared test helpers append what each
//     test process verified, one JSONL file per process;
//  3. runs scripts/coverage-guard.mjs as a second tap run
//     (with the options among the arguments, e.g. --reporter=tap), after every
//     other file has finished: it fails for each (op, backend) not verified.
// Exits non-zero when either run failed. Paths among the arguments narrow
// step 2 (.ci/run's core+autograd reruns); the guard then checks that subset.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const GUARD = 'scripts/coverage-guard.mjs';
const tap = join(root, 'node_modules', '.bin', 'tap');

const args = process.argv.slice(2);
// Options (and the value of a bare -R / --reporter) go to the guard's run too; paths do not.
const options = [];
for (let i = 0; i < args.length; i++) {
  if (!args[i].startsWith('-')) continue;
  options.push(args[i]);
  if ((args[i] === '-R' || args[i] === '--reporter') && i + 1 < args.length) options.push(args[++i]);
}

const record = resolve(root, process.env.LARGO_TEST_RECORD || join('.tap', 'largo-record'));
mkdirSync(record, { recursive: true });
// Only the record's own files go (the folder may be one the caller named).
for (const f of readdirSync(record)) if (f.endsWith('.jsonl')) rmSync(join(record, f));
const env = { ...process.env, LARGO_TEST_RECORD: record };

const run = (a) => spawnSync(tap, a, { cwd: root, env, stdio: 'inherit' }).status ?? 1;
const main = run(args);
const guard = run([...options, GUARD]);
process.exit(main !== 0 ? main : guard);
