import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { cellConfig, cells, parseShard, readExperimentFile } from '../experiments/spec.js';
import { experimentDir, runCell, runGrid } from '../experiments/runner.js';
import { summarizeExperiment, summaryChartSvg, summaryMarkdown } from '../experiments/summary.js';
import { parse, UsageError } from './common.js';

export const EXPERIMENT_HELP = `largo experiment — run a grid of (setting × method variant × seed) and summarize it

Usage: largo experiment FILE [--out DIR] [--shard i/n] [--workers N] [--cell ID]...
       largo experiment FILE --summarize [DIR ...]
       largo experiment FILE --list

Each cell of the grid is one ordinary training run (one method, one seed) in
<out>/<name>/cells/<setting>__<variant>__s<seed>/, with its config, checkpoints
and results. Finished cells are skipped and interrupted ones resume, so the
same command continues a grid. After running, the summary (mean ± std over
seeds, per-subset tables, paired tests) is written to <out>/<name>/summary.md
and summary.json (and the per-seed dot plot summary.svg) and printed.

Options:
  --out DIR          parent folder of experiment folders (default runs/experiments)
  --shard i/n        run only cells i, i+n, i+2n, … (1-based), e.g. one Slurm array task
  --workers N        run cells in N child processes (default 1; at most the core count helps)
  --cell ID          run just this cell (repeatable)
  --summarize [DIR]  only summarize; cells are read from <out>/<name> and any extra
                     experiment folders given (the shards' folders from other machines)
  --list             print the cells and their configs' key settings, run nothing
  --quiet            no per-cell log lines
  -h, --help         this help

Examples:
  largo experiment experiments/phantom-baselines.json --workers 2
  largo experiment experiments/phantom-baselines.json --shard 3/8      # on machine 3 of 8
  largo experiment experiments/phantom-baselines.json --summarize /mnt/a/phantom-baselines /mnt/b/phantom-baselines`;

export async function experimentCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(
    'experiment',
    argv,
    {
      out: { type: 'string' },
      shard: { type: 'string' },
      workers: { type: 'string' },
      cell: { type: 'string', multiple: true },
      summarize: { type: 'boolean' },
      list: { type: 'boolean' },
      quiet: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    true,
  );
  if (values['help']) {
    console.log(EXPERIMENT_HELP);
    return 0;
  }
  const [file, ...extra] = positionals;
  if (!file) throw new UsageError('experiment: give an experiment file (see largo experiment --help)');
  if (extra.length && !values['summarize'])
    throw new UsageError(`experiment: unexpected argument '${extra[0]}' (extra folders go with --summarize)`);
  const spec = readExperimentFile(file);
  const out = (values['out'] as string | undefined) ?? join('runs', 'experiments');
  const log = values['quiet'] ? () => undefined : (s: string) => process.stderr.write(s + '\n');
  if (values['list']) {
    for (const c of cells(spec)) {
      const cfg = cellConfig(spec, c);
      console.log(
        `${c.id}\tmethod ${c.method}, seed ${c.seed}, steps ${cfg.train.steps}, base features ${cfg.model.baseFeatures}, rank ×${cfg.model.rankMultiplier}`,
      );
    }
    return 0;
  }
  const dir = experimentDir(spec, out);
  if (!values['summarize']) {
    const only = values['cell'] as string[] | undefined;
    const workers = values['workers'] === undefined ? 1 : Number(values['workers']);
    if (!Number.isInteger(workers) || workers < 1)
      throw new UsageError(`experiment: --workers must be a positive integer, got '${String(values['workers'])}'`);
    const shard = values['shard'] ? parseShard(values['shard'] as string) : null;
    if (only?.length === 1 && workers === 1 && !shard) {
      // one cell in this process (what worker processes run)
      const c = cells(spec).find((x) => x.id === only[0]);
      if (!c) throw new UsageError(`experiment: no cell '${only[0]}' in ${file}`);
      await runCell(spec, c, { out, quiet: Boolean(values['quiet']), log });
      return 0;
    }
    const r = await runGrid(spec, { out, shard, workers, only, log });
    if (r.failed.length) {
      console.error(
        `largo experiment: ${r.failed.length} cell(s) failed: ${r.failed.map((f) => `${f.cell.id} (${f.error})`).join('; ')}`,
      );
      return 1;
    }
    if (shard) {
      log(
        `shard ${shard.index}/${shard.count} done; merge with: largo experiment ${file} --summarize ${dir} <the other shards' folders>`,
      );
      return 0;
    }
  }
  const dirs = [...(existsSync(dir) ? [dir] : []), ...extra];
  if (!dirs.length)
    throw new UsageError(
      `experiment: ${dir} does not exist; run the grid first or name the shards' folders after --summarize`,
    );
  const s = summarizeExperiment(spec, dirs);
  mkdirSync(dir, { recursive: true });
  const cmd = `largo experiment ${relative(process.cwd(), file) || file}`;
  const md = summaryMarkdown(s, { command: cmd });
  writeFileSync(join(dir, 'summary.md'), md + '\n');
  writeFileSync(join(dir, 'summary.json'), JSON.stringify(s, null, 2) + '\n');
  writeFileSync(join(dir, 'summary.svg'), summaryChartSvg(s));
  console.log(md);
  return 0;
}
