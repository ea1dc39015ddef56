import t from 'tap';
import { mkdtempSync, existsSync, writeFileSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { main } from '../src/cli.js';
import { resolveConfig, configDiff, defaultConfig, ConfigError, parseValue } from '../src/config.js';
import { overridesFrom, splitOptionalValue, exitCodeFor } from '../src/cli/common.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const DIST_CLI = join(here, '..', 'dist', 'cli.js');
const CLI_ARGS = existsSync(DIST_CLI) ? [DIST_CLI] : [...process.execArgv, join(here, '..', 'src', 'cli.ts')];
const cli = (...args: string[]) => spawnSync(process.execPath, [...CLI_ARGS, ...args], { encoding: 'utf8' });
const SAMPLE = join(here, '..', '..', '..', '..', 'shared', 'datasets', 'brats-sample');

/** Runs main() in-process with console output captured. */
async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [],
    err: string[] = [];
  const log = console.log,
    error = console.error;
  console.log = (...a: unknown[]) => {
    out.push(a.join(' '));
  };
  console.error = (...a: unknown[]) => {
    err.push(a.join(' '));
  };
  try {
    return { code: await main(argv), out: out.join('\n'), err: err.join('\n') };
  } finally {
    console.log = log;
    console.error = error;
  }
}

t.test('--help for every command', async (t) => {
  for (const cmd of ['train', 'eval', 'predict', 'export', 'params', 'inspect']) {
    const r = await run(cmd, '--help');
    t.equal(r.code, 0, `${cmd} --help exits 0`);
    t.match(r.out, new RegExp(`^largo ${cmd} — `), `${cmd} --help describes the command`);
    t.match(r.out, /Usage: largo /);
  }
  const top = await run('--help');
  t.equal(top.code, 0);
  for (const cmd of ['train', 'eval', 'predict', 'export', 'params', 'inspect', 'audit'])
    t.match(top.out, new RegExp(`\\n  ${cmd} `));
  const audit = await run('audit', '--help');
  t.equal(audit.code, 0, 'audit is dispatched to runAudit');
  t.match(audit.out, /fixtures/);
  t.equal((await run('help', 'train')).code, 0);
});

t.test('the built binary runs (shebang, exit codes)', async (t) => {
  const r = cli('--help');
  t.equal(r.status, 0);
  t.match(r.stdout, /Commands:/);
  if (existsSync(DIST_CLI)) t.match(readFileSync(DIST_CLI, 'utf8'), /^#!\/usr\/bin\/env node\n/);
  const bad = cli('frobnicate');
  t.equal(bad.status, 2);
  t.match(bad.stderr, /unknown command 'frobnicate'/);
});

t.test('usage and config errors exit with 2 and name the culprit', async (t) => {
  let r = await run('train', '--bogus');
  t.equal(r.code, 2);
  t.match(r.err, /Unknown option '--bogus'/);
  r = await run('train', '--config', '/nonexistent/cfg.json');
  t.equal(r.code, 2);
  t.match(r.err, /\/nonexistent\/cfg\.json: cannot read config file/);
  const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
  writeFileSync(join(dir, 'bad.json'), '{ "train": { "stpes": 3 } }');
  r = await run('train', '--config', join(dir, 'bad.json'));
  t.equal(r.code, 2);
  t.match(r.err, /bad\.json: unknown option 'train\.stpes'/);
  writeFileSync(join(dir, 'broken.json'), '{ "train": ');
  r = await run('train', '--config', join(dir, 'broken.json'));
  t.equal(r.code, 2);
  t.match(r.err, /broken\.json: not valid JSON/);
  r = await run('train', '--steps', 'many');
  t.equal(r.code, 2);
  t.match(r.err, /--steps must be a number/);
  r = await run('train', '--methods', 'largo,magic');
  t.equal(r.code, 2);
  t.match(r.err, /unknown method 'magic'/);
  r = await run('train', '--dataset', 'brats');
  t.equal(r.code, 2);
  t.match(r.err, /data\.path' is required/);
  r = await run('train', '--patch-size', '10', '--depth', '3');
  t.equal(r.code, 2);
  t.match(r.err, /divisible by 2\^\(depth-1\) = 4/);
  r = await run('eval');
  t.equal(r.code, 2);
  t.match(r.err, /--run RUN_DIR is required/);
  r = await run('eval', '--run', dir);
  t.equal(r.code, 2);
  t.match(r.err, /config\.json does not exist/);
  r = await run('train', '--resume', dir);
  t.equal(r.code, 2);
  t.match(r.err, /config\.json does not exist \(not a run folder\)/);
  r = await run('inspect');
  t.equal(r.code, 2);
  r = await run(
    'export',
    '--checkpoint',
    join(dir, 'none.safetensors'),
    '--subset',
    '0',
    '--out',
    join(dir, 'o.safetensors'),
  );
  t.equal(r.code, 2);
  t.match(r.err, /none\.safetensors: does not exist/);
  t.same(readdirSync(dir).sort(), ['bad.json', 'broken.json'], 'nothing written by failed commands');
});

t.test('config: defaults ← file ← flags, flags win; --set; diff names keys', async (t) => {
  const file = { seed: 3, train: { steps: 10, lr: 0.5 }, model: { baseFeatures: 6 } };
  const c = resolveConfig(file, { 'train.lr': 0.25, seed: 4 });
  t.equal(c.train.steps, 10, 'from the file');
  t.equal(c.train.lr, 0.25, 'flag wins');
  t.equal(c.seed, 4);
  t.equal(c.model.depth, defaultConfig().model.depth, 'default kept');
  t.same(
    overridesFrom('x', {
      steps: '7',
      methods: 'largo, dropout',
      'patch-size': '8',
      set: ['train.momentum=0.9', 'eval.mirror=true', 'methods=["largo"]'],
    }),
    { 'train.steps': 7, methods: ['largo'], 'train.patchSize': [8, 8, 8], 'train.momentum': 0.9, 'eval.mirror': true },
  );
  t.same(parseValue('1,2,3'), [1, 2, 3]);
  t.equal(parseValue('abc'), 'abc');
  t.throws(() => resolveConfig({ model: { baseFeatures: 'x' } }, {}), ConfigError);
  const d = configDiff(defaultConfig(), {
    ...defaultConfig(),
    seed: 9,
    train: { ...defaultConfig().train, valEvery: 1, lr: 2 },
  });
  t.same(
    d.map((x) => x.key),
    ['seed', 'train.lr'],
    'valEvery may change on resume',
  );
  t.same(splitOptionalValue(['--resume', 'runs/a', '--quiet'], 'resume', 'resume-dir'), [
    '--resume',
    '--resume-dir',
    'runs/a',
    '--quiet',
  ]);
  t.same(splitOptionalValue(['--resume', '--quiet'], 'resume', 'resume-dir'), ['--resume', '--quiet']);
  t.equal(exitCodeFor(new Error('boom')), 1);
  t.equal(exitCodeFor(new ConfigError('x')), 2);
});

t.test('params and inspect', async (t) => {
  const r = await run('params', '--base-features', '4', '--methods', 'largo,dedicated,dropout');
  t.equal(r.code, 0, r.err);
  t.match(r.out, /\| largo \| \d+ \| \d+ \|/);
  t.match(r.out, /\| dedicated \|/);
  if (existsSync(SAMPLE)) {
    const i = await run('inspect', join(SAMPLE, 'BraTS19_2013_10_1_flair.nii.gz'));
    t.equal(i.code, 0, i.err);
    t.match(i.out, /30 × 30 × 30/);
  }
});
