// Error assertions shared by the op tests: every error names the op and the
// offending thing (tensor, shape, value), and is an OpError.
import { OpError } from '@largo/core';

interface Asserter {
  ok(v: unknown, m?: string): unknown;
  fail(m?: string): unknown;
}

/** `fn` throws an OpError whose message starts with `op:` and contains every fragment. */
export function opThrows(t: Asserter, fn: () => unknown, op: string, ...fragments: string[]): void {
  try {
    fn();
    t.fail(`${op}: expected an error`);
  } catch (e) {
    const m = e instanceof Error ? e.message : String(e);
    t.ok(e instanceof OpError && m.startsWith(op + ':') && fragments.every((f) => m.includes(f)), m);
  }
}

/** Throws `what: msg` when a comparison returned a message (inside fast-check properties). */
export function check(msg: string | null, what: string): void {
  if (msg !== null) throw new Error(`${what}: ${msg}`);
}
