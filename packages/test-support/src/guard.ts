// The coverage guard's input from the real op schema, kernel registry and
// gradient rules, on a given run record (the guard's, scripts/coverage-guard.mjs,
// and its tests'). A subpath of its own (@largo/test-support/guard): it loads
// @largo/autograd and @largo/gpu, which the other helpers do not need.
import { BACKWARD_OPS, COMPOSITE_OPS, kernelsFor, NON_DIFFERENTIABLE_OPS, VIEW_OPS } from '@largo/core';
import { gradOps } from '@largo/autograd';
import '@largo/gpu'; // registers the WebGPU kernels (no device needed)
import { BACKENDS } from './backends.js';
import type { GuardInput } from './coverage.js';
import type { Verified } from './record.js';

/** Every backend the shared tests run on (each one's package is imported above, so its kernels are registered). */
export const BACKEND_NAMES = BACKENDS.map((b) => b.name);

export function schemaGuardInput(
  record: readonly Verified[],
  unavailable: ReadonlySet<string> = new Set(),
): GuardInput {
  return {
    kernels: new Map(BACKEND_NAMES.map((b) => [b, kernelsFor(b)])),
    unavailable,
    composites: new Map(Object.entries(COMPOSITE_OPS)),
    backwardOnly: BACKWARD_OPS,
    nonDifferentiable: NON_DIFFERENTIABLE_OPS,
    viewOps: Object.keys(VIEW_OPS),
    gradOps: gradOps(),
    record,
  };
}
