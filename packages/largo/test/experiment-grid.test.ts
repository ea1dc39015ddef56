import t from 'tap';
import fc from 'fast-check';
import { mkdtempSync, existsSync, readFileSync, writeFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { pairedTest, signTestP, spread, tQuantile975, wilcoxonSignedRankP } from '../src/experiments/stats.js';
import { cells, parseExperiment, parseShard, shardCells } from '../src/experiments/spec.js';
import { runGrid } from '../src/experiments/runner.js';
import { summarizeExperiment, summaryChartSvg, summaryMarkdown } from '../src/experiments/summary.js';
import { resolveConfig } from '../src/config.js';
import { loadSegData } from '../src/train/data.js';
import { SegTask } from '../src/train/seg-task.js';
import { buildSegNet } from '../src/train/experiment.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const DIST_CLI = join(here, '..', 'dist', 'cli.js');
const CLI_ARGS = existsSync(DIST_CLI) ? [DIST_CLI] : [...process.execArgv, join(here, '..', 'src', 'cli.ts')];
const TINY = JSON.parse(readFileSync(join(here, '..', 'configs', 'tiny.json'), 'utf8')) as Record<string, unknown>;

/** Brute force: the two-sided p of W+ over all 2^n sign assignments of the given mid-ranks. */
function wilcoxonBrute(d: number[]): number {
  const n = d.length;
  const abs = d.map(Math.abs);
  const ranks = abs.map((a) => {
    const less = abs.filter((b) => b < a).length,
      eq = abs.filter((b) => b === a).length;
    return less + (eq + 1) / 2;
  });
  const total = ranks.reduce((a, b) => a + b, 0);
  const w = ranks.reduce((a, r, i) => a + (d[i]! > 0 ? r : 0), 0);
  let hit = 0;
  for (let mask = 0; mask < 1 << n; mask++) {
    let s = 0;
    for (let i = 0; i < n; i++) if (mask & (1 << i)) s += ranks[i]!;
    if (Math.abs(s - total / 2) >= Math.abs(w - total / 2) - 1e-9) hit++;
  }
  return hit / 2 ** n;
}

t.test('stats: spread, t quantile, sign test and exact Wilcoxon', async (t) => {
  const s = spread([1, 2, 3, 4, 5]);
  t.equal(s.mean, 3);
  t.ok(Math.abs(s.std - Math.sqrt(2.5)) < 1e-12, 'sample std (n − 1)');
  t.ok(Math.abs(s.ci95 - (2.7764 * Math.sqrt(2.5)) / Math.sqrt(5)) < 1e-9, 't interval with df = 4');
  t.ok(Number.isNaN(spread([1]).std), 'no std from one value');
  t.ok(Math.abs(tQuantile975(60) - 2.0003) < 2e-3, 'Cornish–Fisher beyond the table');
  t.equal(signTestP(5, 0), 2 / 32);
  t.equal(signTestP(3, 3), 1);
  t.equal(wilcoxonSignedRankP([1, 2, 3, 4, 5]), 2 / 32, 'all five positive: the smallest two-sided p at n = 5');
  t.equal(wilcoxonSignedRankP([]), 1);
  fc.assert(
    fc.property(
      fc.array(
        fc.integer({ min: -4, max: 4 }).filter((x) => x !== 0),
        { minLength: 1, maxLength: 11 },
      ),
      (d) => {
        const p = wilcoxonSignedRankP(d),
          q = wilcoxonBrute(d);
        return Math.abs(p - q) < 1e-12;
      },
    ),
    { numRuns: 200, seed: 11 },
  );
  const pt = pairedTest([0.9, 0.8, 0.7, 0.6], [0.8, 0.8, 0.9, 0.5]);
  t.same([pt.wins, pt.losses, pt.ties, pt.n], [2, 1, 1, 3]);
  t.ok(Math.abs(pt.meanDiff - 0) < 1e-12);
  t.throws(() => pairedTest([1], [1, 2]), /pairs must match/);
});

function tinySpec(extra: Record<string, unknown> = {}) {
  return {
    name: 'tiny-grid',
    base: { ...TINY, data: { ...(TINY['data'] as object), seed: 5 } },
    overrides: { train: { steps: 4, valEvery: 2 }, eval: { hd95: true, figureCases: 0 } },
    seeds: [1, 2],
    variants: [
      { name: 'largo', method: 'largo' },
      { name: 'dropout+guide', method: 'dropout', overrides: { train: { sharedGuidance: true } } },
    ],
    ...extra,
  };
}

t.test('experiment files: cells, shards and errors that name the file and key', async (t) => {
  const spec = parseExperiment(
    tinySpec({ settings: [{ name: 'r1' }, { name: 'r2', overrides: { model: { rankMultiplier: 2 } } }] }),
    'x.json',
  );
  const all = cells(spec);
  t.equal(all.length, 8);
  t.equal(all[0]!.id, 'r1__largo__s1');
  const s1 = shardCells(all, parseShard('1/3')),
    s2 = shardCells(all, parseShard('2/3')),
    s3 = shardCells(all, parseShard('3/3'));
  t.same(
    [...s1, ...s2, ...s3].map((c) => c.index).sort((a, b) => a - b),
    all.map((c) => c.index),
    'shards partition the grid',
  );
  t.throws(() => parseShard('0/2'), /1\.\.n/);
  t.throws(() => parseShard('a/b'), /expected i\/n/);
  t.throws(() => parseExperiment({ ...tinySpec(), colour: 1 }, 'e.json'), /e\.json: unknown key 'colour'/);
  t.throws(() => parseExperiment(tinySpec({ seeds: [1, 1] }), 'e.json'), /seed twice/);
  t.throws(
    () => parseExperiment(tinySpec({ variants: [{ name: 'x', method: 'nope' }] }), 'e.json'),
    /unknown method 'nope'/,
  );
  t.throws(() => parseExperiment(tinySpec({ name: '../up' }), 'e.json'), /folder-safe/);
  t.throws(
    () => parseExperiment(tinySpec({ overrides: { train: { stepz: 3 } } }), 'e.json'),
    /e\.json \(cell .*\): unknown option 'train\.stepz'/,
  );
  t.throws(() => parseExperiment(tinySpec({ compare: [['largo', 'ghost']] }), 'e.json'), /unknown variant "ghost"/);
});

t.test('a grid run as two shards and merged gives the same table as one run; a finished grid is skipped', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'largo-grid-'));
  const spec = parseExperiment(tinySpec(), join(root, 'tiny.json'));
  const log = () => undefined;
  const one = await runGrid(spec, { out: join(root, 'one'), log });
  t.equal(one.ran.length, 4);
  t.equal(one.failed.length, 0);
  await runGrid(spec, { out: join(root, 'a'), shard: parseShard('1/2'), log });
  await runGrid(spec, { out: join(root, 'b'), shard: parseShard('2/2'), log });
  t.equal(readdirSync(join(root, 'a', 'tiny-grid', 'cells')).length, 2, 'shard 1 ran its half only');
  const whole = summarizeExperiment(spec, [join(root, 'one', 'tiny-grid')]);
  const merged = summarizeExperiment(spec, [join(root, 'a', 'tiny-grid'), join(root, 'b', 'tiny-grid')]);
  const halfOnly = summarizeExperiment(spec, [join(root, 'a', 'tiny-grid')]);
  t.equal(whole.missing.length, 0);
  t.equal(halfOnly.missing.length, 2, 'a lone shard reports the cells it lacks');
  t.equal(
    summaryMarkdown(merged, { timings: false }),
    summaryMarkdown(whole, { timings: false }),
    'merged shards = one run',
  );
  const md = summaryMarkdown(whole, { timings: false });
  t.match(md, /\| largo \| largo \| 2 \|/);
  t.match(md, /dropout\+guide/);
  t.match(md, /largo − dropout\+guide/);
  t.ok(
    whole.variants.every(
      (v) => v.params > 0 && Number.isFinite(v.dice['avg']!.mean) && Number.isFinite(v.dice['avg']!.std),
    ),
    'params and spreads present',
  );
  const again = await runGrid(spec, { out: join(root, 'one'), log });
  t.same([again.ran.length, again.skipped.length], [0, 4], 'rerunning skips finished cells');
});

t.test('a setting may run a subset of the variants: cells, summary rows and comparisons follow it', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'largo-grid-sv-'));
  const spec = parseExperiment(
    tinySpec({
      seeds: [1, 2],
      settings: [
        { name: 'r1', variants: ['largo', 'dropout+guide'] },
        { name: 'r2', overrides: { model: { rankMultiplier: 2 } }, variants: ['largo'] },
      ],
    }),
    join(root, 'sv.json'),
  );
  const all = cells(spec);
  t.same(
    all.map((c) => c.id),
    [
      'r1__largo__s1',
      'r1__largo__s2',
      'r1__dropout+guide__s1',
      'r1__dropout+guide__s2',
      'r2__largo__s1',
      'r2__largo__s2',
    ],
  );
  t.same(spec.compare, [['largo', 'dropout+guide']], 'the default comparison exists in r1');
  await runGrid(spec, { out: root, log: () => undefined });
  const sum = summarizeExperiment(spec, [join(root, 'tiny-grid')]);
  t.same(
    sum.variants.map((v) => `${v.setting}/${v.variant}/${v.seeds.length}`),
    ['r1/largo/2', 'r1/dropout+guide/2', 'r2/largo/2'],
    'no empty row for a variant a setting does not run',
  );
  t.same(
    sum.pairs.map((p) => p.setting),
    ['r1'],
    'compared only where both run',
  );
  const md = summaryMarkdown(sum, { timings: false });
  t.match(md, /\| setting \| variant \| seeds \|/, 'a sweep gets one overview table');
  const svg = summaryChartSvg(sum);
  t.match(svg, /^<svg [^>]*>/, 'the dot plot is an SVG document');
  t.equal((svg.match(/class="seed"/g) ?? []).length, 6, 'one dot per (row, seed)');
  t.equal((svg.match(/class="mean"/g) ?? []).length, 3, 'one mean bar per row');
  t.match(svg, /r2 · largo/, 'rows named by setting and variant');
  t.match(md, /\| r2 \| largo \| 2 \| .* \| \[-?\d+\.\d+, -?\d+\.\d+\] \|/, 'with the 95% interval');
  t.throws(
    () => parseExperiment(tinySpec({ settings: [{ name: 'a', variants: ['ghost'] }] }), 'e.json'),
    /e\.json: settings\[0\]\.variants names unknown variant "ghost"/,
  );
  t.throws(
    () =>
      parseExperiment(
        tinySpec({ settings: [{ name: 'a', variants: ['largo'] }], compare: [['largo', 'dropout+guide']] }),
        'e.json',
      ),
    /compare\[0\]: no setting runs both "largo" and "dropout\+guide"/,
  );
  t.throws(
    () => parseExperiment(tinySpec({ settings: [{ name: 'a', varaints: [] }] }), 'e.json'),
    /unknown key 'varaints'/,
  );
});

t.test('largo experiment CLI: worker processes, --summarize of shard folders, bad file exits 2', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'largo-grid-cli-'));
  const file = join(root, 'tiny.json');
  writeFileSync(file, JSON.stringify(tinySpec({ seeds: [3] })));
  const r = spawnSync(
    process.execPath,
    [...CLI_ARGS, 'experiment', file, '--out', join(root, 'out'), '--workers', '2', '--quiet'],
    { encoding: 'utf8' },
  );
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /2 of 2 cells/);
  t.ok(existsSync(join(root, 'out', 'tiny-grid', 'summary.md')));
  t.ok(existsSync(join(root, 'out', 'tiny-grid', 'summary.svg')), 'the per-seed dot plot beside it');
  const s = spawnSync(
    process.execPath,
    [...CLI_ARGS, 'experiment', file, '--out', join(root, 'elsewhere'), '--summarize', join(root, 'out', 'tiny-grid')],
    { encoding: 'utf8' },
  );
  t.equal(s.status, 0, s.stderr);
  t.match(s.stdout, /2 of 2 cells/);
  writeFileSync(join(root, 'bad.json'), '{"name": "x", "seeds": []}');
  const b = spawnSync(process.execPath, [...CLI_ARGS, 'experiment', join(root, 'bad.json')], { encoding: 'utf8' });
  t.equal(b.status, 2);
  t.match(b.stderr, /bad\.json: 'seeds' must be a non-empty list/);
});

t.test('held-out phantom test set and shared-network guidance', async (t) => {
  const cfg = resolveConfig(
    {
      ...TINY,
      data: {
        split: [0.75, 0.25, 0],
        phantom: { cases: 4, size: 8, modalities: 4 },
        testPhantom: { cases: 2, seed: 999 },
      },
    },
    {},
  );
  const data = await loadSegData(cfg);
  t.same(
    data.test.map((c) => c.id),
    ['test-phantom-0000', 'test-phantom-0001'],
  );
  const trainImg = data.train[0]!.image,
    testImg = data.test[0]!.image;
  t.not(
    Buffer.compare(Buffer.from(trainImg.buffer), Buffer.from(testImg.buffer)),
    0,
    'test cases come from another generator seed',
  );
  t.throws(
    () => resolveConfig({ ...TINY, data: { split: [0.5, 0.25, 0.25], testPhantom: { cases: 2, seed: 1 } } }, {}),
    /test fraction of 0/,
  );
  t.throws(
    () => resolveConfig({ ...TINY, data: { split: [0.75, 0.25, 0], testPhantom: { cases: 0, seed: 1 } } }, {}),
    /data\.testPhantom/,
  );
  // data.seed fixes the cases while the run seed changes
  const a = await loadSegData(resolveConfig({ ...TINY, seed: 1, data: { ...(TINY['data'] as object), seed: 3 } }, {}));
  const b = await loadSegData(resolveConfig({ ...TINY, seed: 2, data: { ...(TINY['data'] as object), seed: 3 } }, {}));
  t.same(
    a.train.map((c) => c.id),
    b.train.map((c) => c.id),
    'same split',
  );
  t.equal(
    Buffer.compare(Buffer.from(a.train[0]!.image.buffer), Buffer.from(b.train[0]!.image.buffer)),
    0,
    'same cases',
  );
  // the dropout baseline with sharedGuidance adds the full-modality term to its loss
  const loss = (guide: boolean) => {
    const c = resolveConfig(TINY, { methods: ['dropout'], 'train.sharedGuidance': guide });
    const net = buildSegNet(c, 'dropout', a);
    try {
      const parts = new SegTask(net, a, c, 'dropout').lossStep(0);
      const v = parts.reduce((s, p) => s + p.item(), 0);
      for (const p of parts) p.dispose();
      return v;
    } finally {
      net.dispose();
    }
  };
  const plain = loss(false),
    guided = loss(true);
  t.ok(guided > plain * 1.2, `guided loss ${guided} holds a second term (plain ${plain})`);
});
