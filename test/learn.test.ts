/**
 * Keeps docs/learn.md true to examples/ (issue 13):
 * - every ```ts block follows a `<!-- code: examples/FILE.ts#REGION -->` marker and
 *   equals that region of the file (between `// #region REGION` and `// #endregion REGION`);
 * - every ```text block follows a `<!-- output: examples/FILE.ts ARGS -->` marker; the
 *   test runs that command (`node --import tsx`, from the repository root, in document
 *   order) and every quoted line must appear in its output, in order. Numbers in
 *   exponent notation below 1e-5 (float-precision noise) match each other; all else
 *   matches exactly. Paths under runs/ and the figure folder go to a temporary folder.
 * - `<!-- output-full: … -->` blocks quote default-size runs of the slow examples (up to
 *   a minute each) and are checked only with LARGO_LEARN_FULL=1; every example must have
 *   an ordinary output block, checked in every run. The full run takes about ten
 *   minutes on two busy cores: `LARGO_LEARN_FULL=1 npx tap --timeout=0 test/learn.test.ts`;
 * - every figure the page shows exists in docs/figures and is written by an example;
 *   a default-size run must regenerate the committed SVGs byte for byte;
 * - the examples type-check against the built packages, and example 09 fails with a
 *   clear error naming a missing checkpoint.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(fileURLToPath(new URL('..', import.meta.url)));
const docPath = join(root, 'docs', 'learn.md');
const doc = readFileSync(docPath, 'utf8');
const full = process.env['LARGO_LEARN_FULL'] === '1';
const tmp = mkdtempSync(join(tmpdir(), 'largo-learn-'));
if (full) t.setTimeout(3_600_000);   // default-size runs: well past tap's per-file limit on a busy machine
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));

interface Block { kind: 'code' | 'output' | 'output-full'; spec: string; lang: string; body: string; line: number }

/** Marked blocks, and the line numbers of fenced blocks without a marker. */
function parse(md: string): { blocks: Block[]; unmarked: number[] } {
  const lines = md.split('\n');
  const blocks: Block[] = [], unmarked: number[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\w*)\s*$/.exec(lines[i]!);
    if (!open) continue;
    let end = i + 1;
    while (end < lines.length && lines[end] !== '```') end++;
    const body = lines.slice(i + 1, end).join('\n');
    let m = i - 1;
    while (m >= 0 && lines[m]!.trim() === '') m--;   // a marker may be separated from its block by blank lines
    const marker = /^<!-- (code|output|output-full): (.+?) -->$/.exec(lines[m] ?? '');
    if (marker) blocks.push({ kind: marker[1] as Block['kind'], spec: marker[2]!.trim(), lang: open[1]!, body, line: i + 1 });
    else if (open[1] !== 'sh') unmarked.push(i + 1);   // shell commands to type are the only free blocks
    i = end;
  }
  return { blocks, unmarked };
}

function region(source: string, name: string, file: string): string {
  const lines = source.split('\n');
  const a = lines.findIndex((l) => l.trim() === `// #region ${name}`);
  const b = lines.findIndex((l, i) => i > a && l.trim() === `// #endregion ${name}`);
  if (a < 0 || b < 0) throw new Error(`${file}: no region '${name}'`);
  return lines.slice(a + 1, b).join('\n');
}

/** Exponent-notation numbers below 1e-5 in magnitude are float noise: compare them as "≈0". */
const normalize = (line: string) => line.replace(/-?\d+(?:\.\d+)?e[-+]?\d+/g, (m) => (Math.abs(Number(m)) < 1e-5 ? '≈0' : m)).trimEnd();

/** null when every quoted line occurs in the output in order; else the first line that does not. */
function firstMissing(quoted: string, output: string): string | null {
  const act = output.split('\n').map(normalize);
  let j = 0;
  for (const line of quoted.split('\n')) {
    const want = normalize(line);
    while (j < act.length && act[j] !== want) j++;
    if (j === act.length) return line;
    j++;
  }
  return null;
}

const slug = (spec: string) => spec.replace(/[^A-Za-z0-9]+/g, '_');

/** Runs an example command as the page shows it, with runs/ and the figures redirected to the temporary folder. */
function runExample(spec: string): { status: number | null; stdout: string; stderr: string; figures: string } {
  const [file, ...args] = spec.split(/\s+/);
  const figures = join(tmp, 'figures', slug(spec));
  const argv = args.map((a) => (a.startsWith('runs/') ? join(tmp, a) : a));
  const extra: [string, string][] = [
    ['--figures', figures], ['--run', join(tmp, 'runs/example-07')],
    ['--checkpoint', join(tmp, 'runs/example-07/largo/last.safetensors')], ['--out', join(tmp, 'plain.safetensors')],
  ];
  for (const [flag, value] of extra) if (!argv.includes(flag)) argv.push(flag, value);
  const r = spawnSync(process.execPath, ['--import', 'tsx', file!, ...argv], { cwd: root, encoding: 'utf8', timeout: full ? undefined : 300_000 });
  // paths the example prints under the temporary folder read as the page's (runs/…)
  return { status: r.status, stdout: r.stdout.split(`${tmp}/`).join(''), stderr: r.stderr, figures };
}

const { blocks, unmarked } = parse(doc);

t.test('docs/learn.md: every code and output block is tied to an example', async (t) => {
  t.same(unmarked, [], 'fenced blocks without a <!-- code/output/output-full --> marker (line numbers)');
  for (const b of blocks) t.equal(b.lang, b.kind === 'code' ? 'ts' : 'text', `learn.md:${b.line}: ${b.kind} block language`);
  t.ok(blocks.filter((b) => b.kind === 'code').length >= 9, 'code blocks');
  const examples = readdirSync(join(root, 'examples')).filter((f) => /^\d\d-.*\.ts$/.test(f)).map((f) => `examples/${f}`);
  t.ok(examples.length >= 9, 'examples found');
  for (const ex of examples) {
    t.ok(blocks.some((b) => b.kind === 'output' && b.spec.split(/\s+/)[0] === ex), `${ex} has an output block that every test run checks`);
    t.ok(blocks.some((b) => b.kind === 'code' && b.spec.startsWith(`${ex}#`)), `${ex} is quoted in the walkthrough`);
  }
});

t.test('code blocks equal their region of the example', async (t) => {
  for (const b of blocks.filter((x) => x.kind === 'code')) {
    const [file, name] = b.spec.split('#') as [string, string];
    t.equal(b.body, region(readFileSync(join(root, file), 'utf8'), name, file), `learn.md:${b.line} = ${b.spec}`);
  }
});

t.test('quoted outputs are what the examples print', async (t) => {
  const seen = new Map<string, ReturnType<typeof runExample>>();
  for (const b of blocks.filter((x) => x.kind !== 'code')) {
    if (b.kind === 'output-full' && !full) {
      t.skip(`learn.md:${b.line} ${b.spec}: default size, checked with LARGO_LEARN_FULL=1`);
      continue;
    }
    let r = seen.get(b.spec);
    if (!r) {
      r = runExample(b.spec);
      seen.set(b.spec, r);
      t.equal(r.status, 0, `${b.spec} exits 0${r.status ? `\n${r.stderr}` : ''}`);
      if (!b.spec.includes('--small') && existsSync(r.figures)) {
        // A default-size run regenerates the committed figures exactly.
        for (const f of readdirSync(r.figures)) {
          t.equal(readFileSync(join(r.figures, f), 'utf8'), readFileSync(join(root, 'docs', 'figures', f), 'utf8'), `${b.spec} regenerates docs/figures/${f}`);
        }
      }
    }
    const missing = firstMissing(b.body, r.stdout);
    t.equal(missing, null, `learn.md:${b.line} (${b.spec}) quoted line found in the output in order`);
  }
});

t.test('figures shown by the page exist and are written by an example', async (t) => {
  const figs = [...doc.matchAll(/!\[[^\]]*\]\((figures\/[^)]+)\)/g)].map((m) => m[1]!);
  t.ok(figs.length >= 3, 'at least the three figures of the issue');
  const sources = readdirSync(join(root, 'examples')).filter((f) => f.endsWith('.ts')).map((f) => readFileSync(join(root, 'examples', f), 'utf8')).join('\n');
  for (const f of figs) {
    t.ok(existsSync(join(root, 'docs', f)), `docs/${f} exists`);
    t.ok(sources.includes(`'${f.replace('figures/', '')}'`), `an example writes ${f}`);
  }
});

t.test('the examples type-check against the built packages', async (t) => {
  const r = spawnSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'examples'], { cwd: root, encoding: 'utf8' });
  t.equal(r.status, 0, r.stdout + r.stderr);
});

t.test('example 09 names a missing checkpoint and writes nothing', async (t) => {
  const missing = join(tmp, 'nowhere', 'last.safetensors'), out = join(tmp, 'never.safetensors');
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'examples/09-export.ts', '--checkpoint', missing, '--out', out], { cwd: root, encoding: 'utf8' });
  t.equal(r.status, 1);
  t.match(r.stderr, missing);
  t.match(r.stderr, /examples\/07-train-largo\.ts/);
  t.notOk(existsSync(out), 'no output file');
});

t.test('the matcher: order, exact text, float noise', async (t) => {
  t.equal(firstMissing('a 1\nc 3', 'a 1\nb 2\nc 3'), null);
  t.equal(firstMissing('c 3\na 1', 'a 1\nb 2\nc 3'), 'a 1', 'order matters');
  t.equal(firstMissing('a 1.5', 'a 1.50'), 'a 1.5', 'numbers are text');
  t.equal(firstMissing('err 3e-8', 'err 0.0e+0'), null, 'tiny values match');
  t.equal(firstMissing('err 2e-3', 'err 2.1e-3'), 'err 2e-3', 'values above 1e-5 do not');
  t.equal(firstMissing('err 3e-8', 'err 2e-3'), 'err 3e-8', 'tiny does not match large');
});
