/**
 * Runs the cells of an experiment grid: each cell is one `largo train` run of
 * one method with one seed, in <out>/<name>/cells/<cell id>/. A cell whose
 * cell.json exists is done and skipped; a cell that was interrupted resumes
 * from its last checkpoint (bitwise on the CPU). With workers > 1 the cells
 * run in child processes (`largo experiment FILE --cell ID`), at most
 * `workers` at a time.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeFileAtomic } from '../checkpoint.js';
import { formatDuration } from '../progress.js';
import { runExperiment } from '../train/experiment.js';
import { cellConfig, cells, shardCells, type Cell, type ExperimentSpec } from './spec.js';

export interface CellRecord {
  cell: Cell;
  experiment: string;
  /** the cell's full effective config */
  config: unknown;
  /** total parameters of the network (every subset's parameters included) */
  params: number;
  steps: number;
  trainSeconds: number;
  evalSeconds: number;
  /** which checkpoint was evaluated, and the split it was selected on */
  checkpoint: string;
  splits?: { train: string[]; val: string[]; test: string[] };
  finished: string;
}

export interface GridOptions {
  out: string;
  shard?: { index: number; count: number } | null;
  workers?: number;
  /** run only these cell ids */
  only?: string[];
  log?: (s: string) => void;
  /** passed to each cell's training loop (progress bar) */
  quiet?: boolean;
}

export function experimentDir(spec: ExperimentSpec, out: string): string {
  return join(out, spec.name);
}

export function cellDir(spec: ExperimentSpec, out: string, cell: Cell): string {
  return join(experimentDir(spec, out), 'cells', cell.id);
}

export function readCellRecord(dir: string): CellRecord | null {
  const f = join(dir, 'cell.json');
  if (!existsSync(f)) return null;
  try {
    return JSON.parse(readFileSync(f, 'utf8')) as CellRecord;
  } catch (e) {
    throw new Error(`${f}: not valid JSON (${(e as Error).message}); delete it to rerun the cell`);
  }
}

/** Trains and evaluates one cell in this process (resuming it when it was interrupted). */
export async function runCell(spec: ExperimentSpec, cell: Cell, o: GridOptions): Promise<CellRecord> {
  const dir = cellDir(spec, o.out, cell);
  const done = readCellRecord(dir);
  if (done) return done;
  const cfg = cellConfig(spec, cell);
  const resume = existsSync(join(dir, 'config.json'));
  const r = await runExperiment(cfg, {
    runDir: dir,
    resume,
    tty: false,
    log: o.log,
    stream: o.quiet ? { write: () => true, isTTY: false } : undefined,
    meta: { experiment: spec.name, experimentFile: spec.file, cell: cell.id },
  });
  const tr = r.train[cell.method]!;
  const rec: CellRecord = {
    cell,
    experiment: spec.name,
    config: cfg,
    params: r.params[cell.method] ?? 0,
    steps: tr.steps,
    trainSeconds: tr.seconds,
    evalSeconds: r.seconds.eval[cell.method] ?? 0,
    checkpoint: cfg.eval.checkpoint === 'best' ? 'best on validation' : 'last',
    splits: r.splits,
    finished: new Date().toISOString(),
  };
  writeFileAtomic(join(dir, 'cell.json'), JSON.stringify(rec, null, 2) + '\n');
  return rec;
}

/** Runs every (or this shard's) cell not yet done; returns the cells of this call with their state. */
export async function runGrid(
  spec: ExperimentSpec,
  o: GridOptions,
): Promise<{ ran: Cell[]; skipped: Cell[]; failed: { cell: Cell; error: string }[] }> {
  const log = o.log ?? ((s: string) => process.stderr.write(s + '\n'));
  let todo = shardCells(cells(spec), o.shard ?? null);
  if (o.only?.length) {
    const known = new Set(cells(spec).map((c) => c.id));
    for (const id of o.only)
      if (!known.has(id)) throw new Error(`${spec.file}: no cell '${id}' (cells look like ${cells(spec)[0]!.id})`);
    todo = todo.filter((c) => o.only!.includes(c.id));
  }
  mkdirSync(join(experimentDir(spec, o.out), 'cells'), { recursive: true });
  const skipped = todo.filter((c) => readCellRecord(cellDir(spec, o.out, c)));
  const pending = todo.filter((c) => !skipped.includes(c));
  const total = cells(spec).length;
  log(
    `experiment ${spec.name}: ${total} cells in the grid${o.shard ? `, shard ${o.shard.index}/${o.shard.count} holds ${todo.length}` : ''}; ${skipped.length} done, ${pending.length} to run${(o.workers ?? 1) > 1 ? ` on ${o.workers} worker processes` : ''}`,
  );
  const failed: { cell: Cell; error: string }[] = [];
  const ran: Cell[] = [];
  const t0 = performance.now();
  let finished = 0;
  const report = (c: Cell, rec: CellRecord | null, err?: string) => {
    finished++;
    const eta = ((performance.now() - t0) / 1000 / finished) * (pending.length - finished);
    log(
      `  [${finished}/${pending.length}] ${c.id}: ${err ? `FAILED (${err})` : `${rec!.steps} steps in ${formatDuration(rec!.trainSeconds)}`}${finished < pending.length ? `; about ${formatDuration(eta)} left` : ''}`,
    );
  };
  const workers = Math.max(1, o.workers ?? 1);
  if (workers === 1) {
    for (const c of pending) {
      try {
        report(c, await runCell(spec, c, { ...o, quiet: true, log: () => {} }));
        ran.push(c);
      } catch (e) {
        const msg = e instanceof Error ? e.message : String(e);
        failed.push({ cell: c, error: msg });
        report(c, null, msg);
      }
    }
  } else {
    const cli = fileURLToPath(new URL('../cli.js', import.meta.url));
    const queue = [...pending];
    const one = async (): Promise<void> => {
      for (let c = queue.shift(); c; c = queue.shift()) {
        const cell = c;
        const res = await new Promise<{ code: number; err: string }>((resolveP) => {
          const child = spawn(
            process.execPath,
            [cli, 'experiment', spec.file, '--out', o.out, '--cell', cell.id, '--quiet'],
            { stdio: ['ignore', 'ignore', 'pipe'] },
          );
          let err = '';
          child.stderr.on('data', (b: Buffer) => {
            err = (err + b.toString()).slice(-2000);
          });
          child.on('close', (code) => resolveP({ code: code ?? 1, err }));
        });
        if (res.code === 0) {
          ran.push(cell);
          report(cell, readCellRecord(cellDir(spec, o.out, cell)));
        } else {
          const msg = res.err.trim().split('\n').filter(Boolean).pop() ?? `exit ${res.code}`;
          failed.push({ cell, error: msg });
          report(cell, null, msg);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(workers, pending.length) }, one));
  }
  return { ran, skipped, failed };
}
