// Issue 12, item 1: `npx largo` must work on a fresh clone. npm links workspace
// bins at install time, before dist/ exists, so the bin must be a committed file.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, statSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
const pkgDir = join(here, '..');
const root = join(pkgDir, '..', '..');

t.test('the largo bin is a committed, executable file that exists before any build', async (t) => {
  const pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')) as {
    bin: Record<string, string>;
    files: string[];
  };
  const bin = pkg.bin['largo']!;
  t.notMatch(bin, /dist\//, 'the bin does not point into dist/ (absent on a fresh clone)');
  const file = join(pkgDir, bin);
  t.ok(existsSync(file));
  t.match(readFileSync(file, 'utf8'), /^#!\/usr\/bin\/env node\n/);
  t.ok(statSync(file).mode & 0o111, 'executable');
  t.ok(pkg.files.includes('bin'), 'published with the package');
  const tracked = spawnSync('git', ['ls-files', '--stage', join('packages', 'largo', bin)], {
    cwd: root,
    encoding: 'utf8',
  });
  if (tracked.status === 0) t.match(tracked.stdout, /^100755 /, 'committed with the executable bit');
  const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, { bin?: Record<string, string> }>;
  };
  t.same(
    lock.packages['packages/largo']?.bin,
    { largo: bin.replace(/^\.\//, '') },
    'package-lock.json agrees (npm links what the lock says)',
  );
});

t.test('the shim runs the built CLI, and says what to do when dist/ is missing', async (t) => {
  const shim = join(pkgDir, 'bin', 'largo.js');
  if (existsSync(join(pkgDir, 'dist', 'cli.js'))) {
    const ok = spawnSync(process.execPath, [shim, '--help'], { encoding: 'utf8' });
    t.equal(ok.status, 0);
    t.match(ok.stdout, /^largo — /);
    const bad = spawnSync(process.execPath, [shim, 'frobnicate'], { encoding: 'utf8' });
    t.equal(bad.status, 2, 'exit codes pass through');
  }
  const fresh = mkdtempSync(join(tmpdir(), 'largo-shim-'));
  mkdirSync(join(fresh, 'bin'));
  copyFileSync(shim, join(fresh, 'bin', 'largo.js'));
  const r = spawnSync(process.execPath, [join(fresh, 'bin', 'largo.js'), '--help'], { encoding: 'utf8' });
  t.equal(r.status, 1);
  t.match(r.stderr, /dist\/cli\.js is missing; build the project first with 'npm run build'/);
});

// The whole newcomer path (clone, npm install, build, npx largo --help) takes minutes and
// needs the npm registry or a warm cache: run with LARGO_FRESH_CLONE=1 (CI does).
t.test(
  'fresh clone: npm install && npm run build && npx largo --help',
  { skip: process.env['LARGO_FRESH_CLONE'] ? false : 'set LARGO_FRESH_CLONE=1 (minutes; needs npm registry or cache)' },
  async (t) => {
    const r = spawnSync('sh', [join(root, 'scripts', 'fresh-clone-check.sh')], { encoding: 'utf8', timeout: 900_000 });
    t.equal(r.status, 0, r.stderr);
    t.match(r.stdout, /largo — LARGO/);
    t.match(r.stdout, /fresh-clone-check: ok/);
  },
);
