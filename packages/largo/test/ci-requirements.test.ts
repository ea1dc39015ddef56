// .ci/run sets LARGO_REQUIRE_TORCH, LARGO_REQUIRE_SHARED, LARGO_REQUIRE_WEBGPU
// and LARGO_REQUIRE_BROWSER to 1, so a test file whose requirement is missing
// fails instead of skipping. Checked here on the real test files, each run
// in a child process with its requirement pointed at nothing.
import t from 'tap';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PYTHON, requirement, requireVar } from '@largo/test-support';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs one test file the way tap does (same loaders) with extra environment; tap's own variables are dropped so the child reports on its own. */
function runTestFile(file: string, env: Record<string, string>): Promise<Run> {
  const base = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith('TAP') && !k.startsWith('LARGO_REQUIRE_')),
  );
  return new Promise((done) => {
    const child = spawn(process.execPath, [...process.execArgv, join(root, file)], {
      cwd: root,
      env: { ...base, ...env },
      timeout: 240_000,
    });
    let stdout = '',
      stderr = '';
    child.stdout.on('data', (b) => {
      stdout += b;
    });
    child.stderr.on('data', (b) => {
      stderr += b;
    });
    child.on('close', (status) => done({ status, stdout, stderr }));
  });
}

t.test(
  'requirement(): false when present; the reason when missing; an error naming the variable when required',
  async (t) => {
    const saved = process.env.LARGO_REQUIRE_SHARED;
    t.teardown(() => {
      if (saved === undefined) delete process.env.LARGO_REQUIRE_SHARED;
      else process.env.LARGO_REQUIRE_SHARED = saved;
    });
    delete process.env.LARGO_REQUIRE_SHARED;
    t.equal(requirement('SHARED', false), false, 'present: no skip');
    const reason = requirement('SHARED', 'no data at /x');
    t.match(
      reason,
      /^no data at \/x \(LARGO_REQUIRE_SHARED=1 makes this a failure\)$/,
      'missing: skips with the reason and the switch',
    );
    process.env.LARGO_REQUIRE_SHARED = '0';
    t.type(requirement('SHARED', 'no data at /x'), 'string', 'only the value 1 requires');
    process.env.LARGO_REQUIRE_SHARED = '1';
    t.equal(requirement('SHARED', false), false, 'required and present: runs');
    t.throws(() => requirement('SHARED', 'no data at /x'), { message: 'LARGO_REQUIRE_SHARED=1 but no data at /x' });
    t.equal(requireVar('TORCH'), 'LARGO_REQUIRE_TORCH');
  },
);

t.test('.ci/run sets every LARGO_REQUIRE_* unconditionally, before the tests run', async (t) => {
  const ci = readFileSync(join(root, '.ci/run'), 'utf8');
  const testAt = /^npm test/m.exec(ci)?.index ?? -1;
  for (const v of ['TORCH', 'SHARED', 'WEBGPU', 'BROWSER'] as const) {
    const m = new RegExp(`^export ${requireVar(v)}=1$`, 'm').exec(ci);
    t.ok(m && m.index < testAt, `${requireVar(v)}=1 exported at top level before npm test`);
  }
});

// Each case: a real test file and an environment in which its requirement is missing.
const CASES: { what: string; file: string; env: Record<string, string>; reason: RegExp }[] = [
  {
    what: 'TORCH',
    file: 'packages/core/test/safetensors.test.ts',
    env: { LARGO_PYTHON: '/nonexistent/python3' },
    reason: /\/nonexistent\/python3 cannot import torch/,
  },
  {
    what: 'SHARED',
    file: 'packages/datasets/test/inspect.test.ts',
    env: { LARGO_SHARED_DATASETS: '/nonexistent/datasets' },
    reason: /shared data sets not found at \/nonexistent\/datasets/,
  },
  {
    what: 'WEBGPU',
    file: 'packages/gpu/test/backend.test.ts',
    env: { LARGO_WEBGPU: 'off' },
    reason: /no WebGPU adapter: disabled by LARGO_WEBGPU=off/,
  },
  {
    what: 'WEBGPU',
    file: 'packages/gpu/test/move.test.ts',
    env: { LARGO_WEBGPU: 'off' },
    reason: /no WebGPU adapter: disabled by LARGO_WEBGPU=off/,
  },
  // forEachBackend (@largo/test-support): the same op test on every backend.
  {
    what: 'WEBGPU',
    file: 'packages/core/test/cp-reconstruct.test.ts',
    env: { LARGO_WEBGPU: 'off' },
    reason: /no WebGPU adapter: disabled by LARGO_WEBGPU=off/,
  },
  {
    what: 'BROWSER',
    file: 'packages/web/test/browser-ops.test.ts',
    env: { LARGO_CHROMIUM: '/nonexistent/chromium' },
    reason: /no Chromium at \/nonexistent\/chromium/,
  },
];

// The children start together (each mostly waits on loading its modules).
const runs = CASES.map((c) => runTestFile(c.file, { ...c.env, [`LARGO_REQUIRE_${c.what}`]: '1' }));
const unrequired = runTestFile('packages/gpu/test/move.test.ts', { LARGO_WEBGPU: 'off' });

CASES.forEach((c, i) => {
  t.test(`${c.file} without its requirement: fails under LARGO_REQUIRE_${c.what}=1`, async (t) => {
    const r = await runs[i];
    t.not(r.status, 0, `exit status ${r.status}, not 0`);
    t.match(
      `${r.stdout}\n${r.stderr}`,
      new RegExp(`LARGO_REQUIRE_${c.what}=1 but ${c.reason.source}`),
      'the error names the variable and what is missing',
    );
  });
});

t.test('without the switch the same file skips and says why', async (t) => {
  const r = await unrequired;
  if (r.status !== 0) t.comment(r.stderr.slice(-600));
  t.equal(r.status, 0, 'exit 0');
  t.match(
    r.stdout,
    /# SKIP no WebGPU adapter: disabled by LARGO_WEBGPU=off \(LARGO_REQUIRE_WEBGPU=1 makes this a failure\)/,
    'each skipped test names the reason',
  );
  t.notMatch(r.stdout, /^\s*not ok/m, 'nothing failed');
});

t.test("PYTHON defaults to Debian's /usr/bin/python3", async (t) => {
  t.equal(PYTHON, process.env.LARGO_PYTHON || '/usr/bin/python3');
});
