// The packages as people install them: `npm pack` every workspace package,
// install the tarballs into fresh projects outside the repository (no
// workspace links), and use them there — the CLI without the GPU package,
// the engine alone, then the CLI with @largo/gpu added. Prints each
// package's packed and installed size; the CPU-only install of `largo` has a
// size budget.
import t from 'tap';
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  lstatSync,
  writeFileSync,
  mkdirSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(fileURLToPath(new URL('../../..', import.meta.url)));
interface Manifest {
  name: string;
  private?: boolean;
  license?: string;
  engines?: { node?: string };
  sideEffects?: unknown;
  exports: Record<string, string | Record<string, string>>;
  bin?: Record<string, string>;
  dependencies?: Record<string, string>;
}
/** Every workspace package that is not private: what would be published. */
const PUBLISHED = new Map<string, { dir: string; manifest: Manifest }>();
for (const dir of JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).workspaces as string[]) {
  const manifest = JSON.parse(readFileSync(join(ROOT, dir, 'package.json'), 'utf8')) as Manifest;
  if (!manifest.private) PUBLISHED.set(manifest.name, { dir, manifest });
}
/** A package and its runtime dependencies, recursively: the names a plain `npm install NAME` brings. */
function closure(name: string, into = new Set<string>()): Set<string> {
  if (into.has(name)) return into;
  into.add(name);
  for (const dep of Object.keys(PUBLISHED.get(name)?.manifest.dependencies ?? {})) closure(dep, into);
  return into;
}
const CLI_SET = [...closure('largo')].sort();
/** Installed size of `largo` and its dependencies without the GPU package (README "Use it in your own project"). */
const CPU_INSTALL_BUDGET = 2 * 1024 * 1024;
const SAMPLE = process.env['LARGO_SHARED_DATASETS']
  ? join(process.env['LARGO_SHARED_DATASETS'], 'brats-sample')
  : join(ROOT, '..', 'shared', 'datasets', 'brats-sample');
const FIXTURES = join(ROOT, 'fixtures', 'audit-default');

// `npm test` exports npm_* variables (workspace, package, lifecycle) that would
// leak into the inner npm; keep only the ones that say how to reach the registry.
const KEEP_NPM =
  /^npm_config_(cache|registry|userconfig|globalconfig|proxy|https_proxy|noproxy|strict_ssl|cafile|prefer_offline|offline)$/i;
const env: NodeJS.ProcessEnv = Object.fromEntries(
  Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k) || KEEP_NPM.test(k)),
);
// The fresh projects must not see the repository's node_modules/.bin either.
env['PATH'] = (process.env['PATH'] ?? '')
  .split(':')
  .filter((p) => !p.startsWith(ROOT))
  .join(':');

function run(cmd: string, args: string[], cwd: string, timeoutMs = 300_000): SpawnSyncReturns<string> {
  return spawnSync(cmd, args, { cwd, env, encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 << 20 });
}
const show = (r: SpawnSyncReturns<string>) =>
  `exit ${r.status}${r.error ? ` (${r.error.message})` : ''}\n${r.stdout.slice(-2000)}\n${r.stderr.slice(-2000)}`;
const npm = (args: string[], cwd: string) => run('npm', [...args, '--no-audit', '--no-fund', '--loglevel=error'], cwd);
const largo = (args: string[], cwd: string) => run('npx', ['--no', '--', 'largo', ...args], cwd);

/** Apparent size of a folder (bytes of the files it holds, links not followed). */
function folderBytes(dir: string): number {
  let n = 0;
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    const s = lstatSync(p);
    n += s.isDirectory() ? folderBytes(p) : s.isFile() ? s.size : 0;
  }
  return n;
}
const kB = (b: number) => `${(b / 1024).toFixed(0)} kB`;

/** The installed packages of a project: ['@largo/core', 'largo', ...]. */
function installed(project: string): string[] {
  const nm = join(project, 'node_modules');
  return readdirSync(nm)
    .filter((n) => !n.startsWith('.'))
    .flatMap((n) => (n.startsWith('@') ? readdirSync(join(nm, n)).map((m) => `${n}/${m}`) : [n]))
    .sort();
}

function freshProject(name: string): string {
  const dir = join(work, name);
  mkdirSync(dir);
  writeFileSync(
    join(dir, 'package.json'),
    JSON.stringify({ name: `largo-packaging-${name}`, private: true, type: 'module' }, null, 2),
  );
  return dir;
}

const work = mkdtempSync(join(tmpdir(), 'largo-packaging-'));
t.teardown(() => rmSync(work, { recursive: true, force: true }));

interface Packed {
  name: string;
  filename: string;
  size: number;
  unpackedSize: number;
  files: { path: string }[];
}
let packed: Packed[] = [];
const tarball = (name: string) => join(work, 'tarballs', packed.find((p) => p.name === name)!.filename);

t.test('npm pack: every package has its README, LICENSE, exports targets and no sources or source maps', async (t) => {
  t.equal(relative(ROOT, work).split(/[\\/]/)[0], '..', 'the fresh projects are outside the repository');
  t.ok(
    ['@largo/core', '@largo/autograd', '@largo/datasets', '@largo/gpu', 'largo'].every((n) => PUBLISHED.has(n)),
    'the five packages are published',
  );
  for (const { dir } of PUBLISHED.values())
    t.ok(existsSync(join(ROOT, dir, 'dist', 'index.js')), `${dir} is built (npm run build)`);
  t.same(
    CLI_SET,
    ['@largo/autograd', '@largo/core', '@largo/datasets', 'largo'],
    'largo depends on workspace packages only, and not on @largo/gpu',
  );
  t.same([...closure('@largo/core')], ['@largo/core'], '@largo/core has no runtime dependency');
  mkdirSync(join(work, 'tarballs'));
  const r = npm(
    [
      'pack',
      '--json',
      '--pack-destination',
      join(work, 'tarballs'),
      ...[...PUBLISHED.values()].flatMap((p) => ['-w', p.dir]),
    ],
    ROOT,
  );
  t.equal(r.status, 0, show(r));
  packed = JSON.parse(r.stdout) as Packed[];
  t.same(packed.map((p) => p.name).sort(), [...PUBLISHED.keys()].sort());
  t.comment('package            packed   unpacked');
  for (const p of packed) {
    t.comment(`${p.name.padEnd(18)} ${kB(p.size).padStart(7)} ${kB(p.unpackedSize).padStart(9)}`);
    const files = new Set(p.files.map((f) => f.path));
    const manifest = PUBLISHED.get(p.name)!.manifest;
    for (const f of ['package.json', 'README.md', 'LICENSE', 'dist/index.js', 'dist/index.d.ts'])
      t.ok(files.has(f), `${p.name} ships ${f}`);
    t.same(
      [...files].filter((f) => f.endsWith('.map') || f.startsWith('src/') || f.startsWith('test/')),
      [],
      `${p.name}: no source maps, sources or tests`,
    );
    t.equal(manifest.license, 'MIT', `${p.name}: license`);
    t.equal(manifest.engines?.node, '>=20', `${p.name}: engines`);
    t.ok(manifest.sideEffects !== undefined, `${p.name}: sideEffects is set`);
    for (const [sub, target] of Object.entries(manifest.exports)) {
      for (const file of typeof target === 'string' ? [target] : Object.values(target)) {
        if (!file.includes('*'))
          t.ok(files.has(file.replace(/^\.\//, '')), `${p.name} exports '${sub}' → ${file} is in the tarball`);
      }
    }
    for (const bin of Object.values(manifest.bin ?? {}))
      t.ok(files.has(bin.replace(/^\.\//, '')), `${p.name}: bin ${bin} is in the tarball`);
  }
});

let app = '';

t.test(
  'largo without the GPU package: install, --help, a 2-step phantom train, predict on the BraTS sample',
  async (t) => {
    if (!packed.length) return t.fail('npm pack failed');
    app = freshProject('cli');
    // --offline: no registry needed, since nothing but @largo/gpu has a third-party dependency.
    const r = npm(['install', '--offline', ...CLI_SET.map(tarball)], app);
    t.equal(r.status, 0, show(r));
    t.same(installed(app), CLI_SET, 'no @largo/gpu, no webgpu');
    const sizes = Object.fromEntries(installed(app).map((n) => [n, folderBytes(join(app, 'node_modules', n))]));
    const total = folderBytes(join(app, 'node_modules'));
    for (const [n, b] of Object.entries(sizes)) t.comment(`installed ${n.padEnd(16)} ${kB(b).padStart(7)}`);
    t.comment(`installed largo without @largo/gpu: ${kB(total)} (budget ${kB(CPU_INSTALL_BUDGET)})`);
    t.ok(total < CPU_INSTALL_BUDGET, `largo without the GPU installs in ${kB(total)} < ${kB(CPU_INSTALL_BUDGET)}`);

    // no package reaches into another's internals
    for (const n of installed(app)) {
      const bad = jsFiles(join(app, 'node_modules', n)).filter((f) =>
        /(?:from\s+|import\s*\(\s*)['"](?:(?:@largo\/[a-z-]+|largo)\/(?:src|dist)\/|(?:\.\.\/)+(?:core|autograd|datasets|gpu|largo)\/)/.test(
          readFileSync(f, 'utf8'),
        ),
      );
      t.same(bad, [], `${n} imports other packages only through their exports`);
    }

    let c = largo(['--help'], app);
    t.equal(c.status, 0, show(c));
    t.match(c.stdout, /Usage: largo <command>/);

    c = largo(
      [
        'train',
        '--config',
        'node_modules/largo/configs/tiny.json',
        '--steps',
        '2',
        '--methods',
        'largo',
        '--out',
        'runs',
        '--run-name',
        'tiny',
        '--quiet',
      ],
      app,
    );
    t.equal(c.status, 0, show(c));
    t.match(c.stdout, /Average/, 'the results table');
    const ck = join(app, 'runs', 'tiny', 'largo', 'last.safetensors');
    t.ok(existsSync(ck), 'a checkpoint');
    t.ok(existsSync(join(app, 'runs', 'tiny', 'results.md')), 'the report');

    let s = readmeSnippet(app, '@largo/datasets');
    t.equal(s.status, 0, `@largo/datasets README snippet: ${show(s)}`);
    t.match(s.stdout, /phantom-0000 \[ 'flair', 't1', 't1ce', 't2' \] \[ 4, 16, 16, 16 \]\n\[ 16, 16, 16 \] uint8/);
    s = readmeSnippet(app, 'largo');
    t.equal(s.status, 0, `largo README snippet: ${show(s)}`);
    t.match(s.stdout, /^15 \d+\n\[ 1, 3, 8, 8, 8 \]/);

    const tc = typecheck(
      app,
      'types-cpu.ts',
      `import { conv3d, randn, type Tensor } from '@largo/core';
import { refConv3d, type RefTensor } from '@largo/core/reference';
import { backward, requireGrad } from '@largo/autograd';
import { generatePhantomCase, type PhantomCase } from '@largo/datasets';
import { buildSegmentationFamily, type LargoConfig } from 'largo';
import { selectBackend, type BackendChoice } from 'largo/backend';
import { main } from 'largo/cli';
const y: Tensor = conv3d(randn([1, 1, 3, 3, 3]), requireGrad(randn([1, 1, 1, 1, 1])));
backward(y);
const r: RefTensor = refConv3d({ shape: [1, 1, 1, 1, 1], data: new Float64Array(1) }, { shape: [1, 1, 1, 1, 1], data: new Float64Array(1) }, null);
const p: PhantomCase = generatePhantomCase(0);
const choice: BackendChoice = 'auto';
const picked: Promise<{ name: 'cpu' | 'webgpu'; adapter: string }> = selectBackend(choice);
const code: Promise<number> = main(['--help']);
void [r, p, picked, code, buildSegmentationFamily, null as LargoConfig | null];
`,
    );
    t.equal(tc.status, 0, `TypeScript resolves every export's types without @largo/gpu: ${show(tc)}`);

    c = largo(['audit', '--backend', 'webgpu', '--fixtures', FIXTURES], app);
    t.equal(c.status, 2, 'asking for the GPU without its package is a usage error');
    t.match(
      c.stderr,
      /--backend webgpu needs the package @largo\/gpu, which is not installed: npm install @largo\/gpu/,
    );

    if (!existsSync(SAMPLE)) return t.skip(`predict: no BraTS sample at ${SAMPLE}`);
    const f = (m: string) => join(SAMPLE, `BraTS19_2013_10_1_${m}.nii.gz`);
    c = largo(
      ['predict', '--checkpoint', ck, '--flair', f('flair'), '--t1post', f('t1post'), '--out', 'seg.nii.gz'],
      app,
    );
    t.equal(c.status, 0, show(c));
    t.match(c.stderr, /subset flair\+t1ce/);
    t.ok(
      existsSync(join(app, 'seg.nii.gz')) && existsSync(join(app, 'seg.nii.gz.json')),
      'the segmentation and its sidecar',
    );
  },
);

/** Runs the first ```js block of an installed package's README in `project`. */
function readmeSnippet(project: string, pkg: string): SpawnSyncReturns<string> & { file: string } {
  const readme = readFileSync(join(project, 'node_modules', pkg, 'README.md'), 'utf8');
  const m = /```js\n([\s\S]*?)```/.exec(readme);
  if (!m) throw new Error(`${pkg}/README.md has no js snippet`);
  const file = `readme-${pkg.replace(/\W/g, '-')}.mjs`;
  writeFileSync(join(project, file), m[1]!);
  return { ...run(process.execPath, [file], project), file };
}

/** Type-checks `code` in `project` against the installed packages' `types` exports (no @types/node: types: []). */
function typecheck(project: string, name: string, code: string): SpawnSyncReturns<string> {
  writeFileSync(join(project, name), code);
  const tsconfig = {
    compilerOptions: {
      strict: true,
      module: 'nodenext',
      moduleResolution: 'nodenext',
      target: 'es2022',
      noEmit: true,
      skipLibCheck: true,
      types: [],
    },
    files: [name],
  };
  writeFileSync(join(project, `tsconfig.${name}.json`), JSON.stringify(tsconfig));
  return run(
    process.execPath,
    [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', `tsconfig.${name}.json`],
    project,
  );
}

/** Bundles `entry` of `project` with esbuild (which honours each package's `sideEffects`); returns the bundle's path. */
async function bundle(project: string, entry: string): Promise<string> {
  const esbuild = await import('esbuild');
  const outfile = join(project, `bundle-${entry}`);
  await esbuild.build({
    entryPoints: [join(project, entry)],
    absWorkingDir: project,
    bundle: true,
    platform: 'node',
    format: 'esm',
    outfile,
    logLevel: 'error',
  });
  return outfile;
}

function jsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    if (n === 'node_modules') return [];
    return lstatSync(p).isDirectory() ? jsFiles(p) : p.endsWith('.js') ? [p] : [];
  });
}

// conv3d against the float64 oracle (through the `reference` subpath), then
// the same with a gradient through @largo/autograd against the oracle's
// adjoint kernels.
const CONV_SCRIPT = `import { conv3d, randn } from '@largo/core';
import { refConv3d, refTensor } from '@largo/core/reference';
const opts = { padding: [1, 0, 1], stride: [1, 2, 1] };
const x = randn([2, 3, 5, 6, 4], { seed: 1 }), w = randn([4, 3, 3, 2, 3], { seed: 2 }), b = randn([4], { seed: 3 });
const y = conv3d(x, w, b, opts);
const ref = refConv3d(refTensor(x.shape, x.dataSync()), refTensor(w.shape, w.dataSync()), refTensor(b.shape, b.dataSync()), opts);
const got = y.dataSync();
let err = 0;
for (let i = 0; i < ref.data.length; i++) err = Math.max(err, Math.abs(got[i] - ref.data[i]) / (1 + Math.abs(ref.data[i])));
console.log(JSON.stringify({ shape: y.shape, refShape: ref.shape, err }));
`;
const GRAD_SCRIPT = `import { conv3d, randn, mul, sum } from '@largo/core';
import { refConv3dGradInput, refConv3dGradWeight, refTensor } from '@largo/core/reference';
import { backward, requireGrad } from '@largo/autograd';
const opts = { padding: [1, 1, 0], dilation: [1, 2, 1] };
const x = requireGrad(randn([1, 2, 5, 6, 4], { seed: 4 })), w = requireGrad(randn([3, 2, 3, 2, 2], { seed: 5 }));
const y = conv3d(x, w, null, opts);
const g = randn(y.shape, { seed: 6 });
backward(sum(mul(y, g)));
const r = (t) => refTensor(t.shape, t.dataSync());
const gx = refConv3dGradInput(r(g), r(w), x.shape, opts), gw = refConv3dGradWeight(r(x), r(g), w.shape, opts);
const maxErr = (a, ref) => { let e = 0; for (let i = 0; i < ref.length; i++) e = Math.max(e, Math.abs(a[i] - ref[i]) / (1 + Math.abs(ref[i]))); return e; };
console.log(JSON.stringify({ gxShape: x.grad.shape, gwShape: w.grad.shape, errX: maxErr(x.grad.dataSync(), gx.data), errW: maxErr(w.grad.dataSync(), gw.data) }));
`;

t.test('@largo/core alone pulls nothing else and runs a conv3d; with @largo/autograd, its gradient', async (t) => {
  if (!packed.length) return t.fail('npm pack failed');
  const dir = freshProject('engine');
  let r = npm(['install', '--offline', tarball('@largo/core')], dir);
  t.equal(r.status, 0, show(r));
  t.same(installed(dir), ['@largo/core'], 'no other runtime dependency');
  t.comment(`installed @largo/core alone: ${kB(folderBytes(join(dir, 'node_modules')))}`);
  writeFileSync(join(dir, 'conv.mjs'), CONV_SCRIPT);
  let c = run(process.execPath, ['conv.mjs'], dir);
  t.equal(c.status, 0, show(c));
  const conv = JSON.parse(c.stdout);
  t.same(conv.shape, [2, 4, 5, 3, 4]);
  t.same(conv.refShape, conv.shape);
  t.ok(conv.err < 1e-5, `conv3d matches the float64 oracle (max rel err ${conv.err})`);
  let s = readmeSnippet(dir, '@largo/core');
  t.equal(s.status, 0, `@largo/core README snippet: ${show(s)}`);
  t.equal(s.stdout, '[ 1, 4, 6, 6, 6 ]\ntrue\nFloat32Array(2) [ 3, 7 ]\n0\n');

  r = npm(['install', '--offline', tarball('@largo/autograd')], dir);
  t.equal(r.status, 0, show(r));
  t.same(installed(dir), ['@largo/autograd', '@largo/core']);
  writeFileSync(join(dir, 'grad.mjs'), GRAD_SCRIPT);
  c = run(process.execPath, ['grad.mjs'], dir);
  t.equal(c.status, 0, show(c));
  const grad = JSON.parse(c.stdout);
  t.same(grad.gxShape, [1, 2, 5, 6, 4]);
  t.same(grad.gwShape, [3, 2, 3, 2, 2]);
  t.ok(
    grad.errX < 1e-5 && grad.errW < 1e-5,
    `gradients match the oracle's adjoints (input ${grad.errX}, weight ${grad.errW})`,
  );
  // a bundler honours `sideEffects`: the bundle must keep the kernel and gradient registrations
  const b = await bundle(dir, 'grad.mjs');
  c = run(process.execPath, [b], dir);
  t.equal(c.status, 0, `the esbuild bundle of grad.mjs runs: ${show(c)}`);
  const bundled = JSON.parse(c.stdout || '{}');
  t.ok(bundled.errX < 1e-5 && bundled.errW < 1e-5, 'and gives the same gradients');
  s = readmeSnippet(dir, '@largo/autograd');
  t.equal(s.status, 0, `@largo/autograd README snippet: ${show(s)}`);
  const losses = [...s.stdout.matchAll(/^\d+ (\d+\.\d+)$/gm)].map((m) => Number(m[1]));
  t.ok(losses.length === 6 && losses[5]! < losses[0]! / 100, `SGD fits the convolution: ${losses.join(' → ')}`);
  t.match(s.stdout, /\ntrue\n$/, 'gradcheck passes');
});

t.test('adding @largo/gpu makes --backend webgpu available', async (t) => {
  if (!app || !existsSync(join(app, 'node_modules', 'largo'))) return t.fail('the CPU-only project was not installed');
  // webgpu (Dawn) comes from the registry, or from npm's cache after `npm ci`.
  let r = npm(['install', '--prefer-offline', '--omit=optional', tarball('@largo/gpu')], app);
  if (r.status !== 0) {
    if (process.env['LARGO_REQUIRE_WEBGPU'] === '1') return t.fail(`npm install @largo/gpu failed: ${show(r)}`);
    return t.skip(
      `npm install @largo/gpu failed (no registry or npm cache?): ${r.stderr.split('\n').slice(0, 3).join(' ')}`,
    );
  }
  // without its optional webgpu (a browser build, or a platform without a Dawn prebuild)
  t.notOk(installed(app).includes('webgpu'), '--omit=optional leaves webgpu out');
  let c = largo(['audit', '--backend', 'webgpu', '--fixtures', FIXTURES], app);
  t.equal(c.status, 2, show(c));
  t.match(c.stderr, /--backend webgpu: the 'webgpu' package \(Dawn for Node\) is not installed: npm install webgpu/);

  r = npm(['install', '--prefer-offline'], app);
  if (r.status !== 0) {
    if (process.env['LARGO_REQUIRE_WEBGPU'] === '1') return t.fail(`npm install (webgpu) failed: ${show(r)}`);
    return t.skip(
      `npm install of webgpu failed (no registry or cache for it?): ${r.stderr.split('\n').slice(0, 3).join(' ')}`,
    );
  }
  const names = installed(app);
  t.ok(names.includes('@largo/gpu') && names.includes('webgpu'), '@largo/gpu and its optional webgpu');
  t.comment(
    `installed @largo/gpu ${kB(folderBytes(join(app, 'node_modules', '@largo', 'gpu')))}, webgpu ${kB(folderBytes(join(app, 'node_modules', 'webgpu')))}; everything ${kB(folderBytes(join(app, 'node_modules')))}`,
  );
  c = largo(['audit', '--backend', 'webgpu', '--fixtures', FIXTURES], app);
  if (c.status === 2 && /no WebGPU adapter/.test(c.stderr) && process.env['LARGO_REQUIRE_WEBGPU'] !== '1') {
    return t.skip(`the package loads, but this machine has no adapter: ${c.stderr.trim()}`);
  }
  t.equal(c.status, 0, show(c));
  t.match(c.stdout, /(\d+) of \1 checks pass on webgpu/, 'every audit case passes on the WebGPU backend');
  const s = readmeSnippet(app, '@largo/gpu');
  t.equal(s.status, 0, `@largo/gpu README snippet: ${show(s)}`);
  t.match(s.stdout, /Float32Array\(2\) \[ 3, 7 \]/);
  const tc = typecheck(
    app,
    'types-gpu.ts',
    `import { setBackend } from '@largo/core';
import { initWebGpu, type WebGpuBackend } from '@largo/gpu';
const gpu: WebGpuBackend | null = await initWebGpu();
const device: GPUDevice | undefined = gpu?.device;
if (gpu) setBackend('webgpu');
void device;
`,
  );
  t.equal(tc.status, 0, `TypeScript resolves @largo/gpu's types (GPUDevice from @webgpu/types): ${show(tc)}`);
  // bundled, the WGSL kernel registrations survive tree shaking (webgpu stays a runtime import)
  c = run(process.execPath, [await bundle(app, s.file)], app);
  t.equal(c.status, 0, `the esbuild bundle of the @largo/gpu snippet runs: ${show(c)}`);
  t.match(c.stdout, /Float32Array\(2\) \[ 3, 7 \]/);
});
