// The run record: what each test process actually verified, read by the
// coverage guard after every other test file has run (scripts/test.mjs).
// An entry {op, backend, kind, file} is written when a subtest titled by
// oracleCase(op) / gradCase(op) (forEachBackend, verifiedTest) finished
// passing with at least one passing value comparison inside it: a title
// alone, a skipped subtest or a failing one records nothing.
// Entries go to one append-only JSONL file per process in the folder named by
// LARGO_TEST_RECORD (scripts/test.mjs clears it and sets it for every test
// process); without that variable nothing is recorded.
import { appendFileSync, existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { engine } from '@largo/core';

export type VerifiedKind = 'oracle' | 'grad';

export interface Verified {
  op: string;
  backend: string;
  kind: VerifiedKind;
  /** The test file that verified it, relative to the repository root. */
  file: string;
}

/** The variable naming the record folder. */
export const RECORD_VAR = 'LARGO_TEST_RECORD';

/**
 * Marks a test as the oracle property test of `op`: under forEachBackend or
 * verifiedTest, a passing run of it is recorded for the backend it ran on.
 */
export const oracleCase = (op: string): string => `oracle: ${op}`;
/** Marks a test as the gradient test of `op` (recorded the same way). */
export const gradCase = (op: string): string => `grad: ${op}`;

/** The kind and op a title made by oracleCase / gradCase starts with; null for any other title. */
export function caseOf(title: string): { kind: VerifiedKind; op: string } | null {
  const m = /^(oracle|grad): ([A-Za-z_][A-Za-z0-9_]*)/.exec(title);
  return m ? { kind: m[1] as VerifiedKind, op: m[2] } : null;
}

let passes = 0;
/** Counts one value comparison that passed (the oracle comparison, a gradcheck verdict). */
export function comparisonPassed(): void {
  passes++;
}
/** How many value comparisons have passed in this process so far. */
export const passedComparisons = (): number => passes;

const root = fileURLToPath(new URL('../../..', import.meta.url));
const testFile = (): string => (process.argv[1] ? relative(root, process.argv[1]) : '?');
const recordFile = `${process.pid}-${Math.random().toString(36).slice(2, 10)}.jsonl`;

/** Appends one entry to this process's record file (nothing without LARGO_TEST_RECORD). */
export function recordVerified(v: Omit<Verified, 'file'>, file = testFile()): void {
  const dir = process.env[RECORD_VAR];
  if (!dir) return;
  appendFileSync(join(dir, recordFile), JSON.stringify({ ...v, file }) + '\n');
}

/** Every entry in the record folder `dir` (null when the folder does not exist). */
export function readRecord(dir: string): Verified[] | null {
  if (!existsSync(dir)) return null;
  const out: Verified[] = [];
  for (const name of readdirSync(dir).sort()) {
    if (!name.endsWith('.jsonl')) continue;
    for (const line of readFileSync(join(dir, name), 'utf8').split('\n')) {
      if (line.trim()) out.push(JSON.parse(line) as Verified);
    }
  }
  return out;
}

/** What a subtest needs: tap's `passing()` (no failed assertion so far). */
export interface PassingTest {
  passing(): boolean;
}

/**
 * Runs `body` as the body of a subtest and records (kind, op, backend) when
 * `title` is a case title, the body returned, at least one comparison passed
 * during it, and the subtest has no failure.
 */
export async function runRecorded<T extends PassingTest>(
  st: T,
  title: string,
  backend: string,
  body: () => Promise<void> | void,
): Promise<void> {
  const before = passes;
  await body();
  const c = caseOf(title);
  if (c && passes > before && st.passing()) recordVerified({ ...c, backend });
}

interface TapTest {
  test(name: string, opts: { skip?: string | false }, fn: (t: any) => Promise<void>): unknown;
  passing(): boolean;
}

/**
 * `t.test(title, body)` for a test that runs on the active backend only (the
 * gradient tests, which compute in float64 on the CPU): recorded for that
 * backend like a forEachBackend case.
 */
export function verifiedTest<T extends TapTest>(
  t: T,
  title: string,
  body: (t: T) => Promise<void> | void,
  opts: { skip?: string | false } = {},
): unknown {
  if (!caseOf(title)) throw new Error(`verifiedTest: '${title}' is not an oracleCase / gradCase title`);
  return t.test(title, opts, (st: T) => runRecorded(st, title, engine().backend.name, () => body(st)));
}
