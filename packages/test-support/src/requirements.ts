// Tests that need something from outside the repository (PyTorch, the shared
// data sets, a WebGPU adapter, Chromium for the browser tests) skip without it and say why — unless the
// matching LARGO_REQUIRE_* variable is 1, as .ci/run sets it: then the missing
// requirement is an error, so a broken install step fails CI instead of
// passing as a row of skips.

export type Requirement = 'TORCH' | 'SHARED' | 'WEBGPU' | 'BROWSER';

/** The variable that turns a missing `what` from a skip into an error. */
export const requireVar = (what: Requirement): string => `LARGO_REQUIRE_${what}`;

/**
 * Tap's `skip` value for a test that needs `what`. `missing` is false when it
 * is there, else why it is not. Missing and not required: the reason
 * (printed to stderr as well, so a log shows it next to the file). Missing
 * and required: throws an Error naming the variable and the reason.
 */
export function requirement(what: Requirement, missing: string | false): string | false {
  if (missing === false) return false;
  const env = requireVar(what);
  if (process.env[env] === '1') throw new Error(`${env}=1 but ${missing}`);
  const reason = `${missing} (${env}=1 makes this a failure)`;
  process.stderr.write(`# skip: ${reason}\n`);
  return reason;
}

/** The Python that has PyTorch (Debian's python3-torch); LARGO_PYTHON overrides it (the requirement test points it at nothing). */
export const PYTHON = process.env.LARGO_PYTHON || '/usr/bin/python3';
