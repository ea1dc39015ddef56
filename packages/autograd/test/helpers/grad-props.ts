// Shared by the per-op gradient tests: the gradcheck verdict as an error (a
// pass counts as the value comparison of the run record, which verifiedTest
// needs before it records a gradient test), and a fast-check property that
// must leave no tensor behind.
import type { Test } from 'tap';
import fc from 'fast-check';
import { memory, tidy } from '@largo/core';
import type { gradcheck } from '@largo/autograd';
import { comparisonPassed, FC_RUNS } from '@largo/test-support';

export const RUNS = FC_RUNS;
export const seed = fc.integer({ min: 0, max: 1 << 30 });

export function expectOk(r: ReturnType<typeof gradcheck>, what: string): void {
  if (!r.ok)
    throw new Error(`gradcheck failed for ${what}: worst ${JSON.stringify(r.worst)} (max abs err ${r.maxAbsErr})`);
  comparisonPassed();
}

/** Runs a property and checks that it leaves no tensor behind. */
export function leakFreeProperty<T>(t: Test, arb: fc.Arbitrary<T>, body: (v: T) => void, numRuns = RUNS): void {
  const before = memory().tensors;
  fc.assert(
    fc.property(arb, (v) => tidy(() => body(v))),
    { numRuns },
  );
  t.equal(memory().tensors, before, 'no leaked tensors');
}
