import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { timestamp, type LargoConfig } from '../config.js';
import { runExperiment } from '../train/experiment.js';
import { TrainingInterrupted } from '../train/loop.js';
import { formatDuration } from '../progress.js';
import {
  BACKEND_HELP,
  configFrom,
  configHelp,
  configOptions,
  InputError,
  latestRun,
  parse,
  splitOptionalValue,
  useBackend,
  UsageError,
} from './common.js';

export const TRAIN_HELP = `largo train — train methods, evaluate every modality subset, write the report

Usage: largo train [--config FILE] [options]
       largo train --resume [RUN_DIR] [options]

Trains each method of the config (default: largo and the modality-dropout
baseline on the synthetic phantom), evaluates all 2^M−1 modality subsets on
the test cases, and writes to <out>/<timestamp>/: config.json (effective
config and seed), <method>/{last,best}.{safetensors,json}, results.{md,json,csv},
results-cases.csv, figures/*.png, curves-*.svg, timing.json. Prints the table.

Options:
${configHelp()}
  --resume [RUN_DIR]       continue an interrupted run from each method's last
                           checkpoint (default: the newest run under --out);
                           bitwise identical to an uninterrupted run on the CPU
${BACKEND_HELP}
  --force                  write into an existing non-empty run folder (replacing its files)
  --no-eval                train only
  --quiet                  no progress output
  --plain                  plain progress lines even on a terminal
  -h, --help               this help

Examples:
  largo train --config packages/largo/configs/phantom.json
  largo train --dataset avmnist --data ../shared/datasets --methods largo,dedicated,dropout
  largo train --resume runs/2025-01-01T00-00-00Z`;

export async function trainCommand(argv: string[]): Promise<number> {
  const args = splitOptionalValue(argv, 'resume', 'resume-dir');
  const { values } = parse('train', args, {
    ...configOptions(),
    resume: { type: 'boolean' },
    'resume-dir': { type: 'string' },
    'no-eval': { type: 'boolean' },
    quiet: { type: 'boolean' },
    plain: { type: 'boolean' },
    force: { type: 'boolean' },
    'stop-after': { type: 'string' },
    backend: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values['help']) {
    console.log(TRAIN_HELP);
    return 0;
  }
  let runDir: string;
  let cfg: LargoConfig;
  const resume = Boolean(values['resume']);
  if (resume) {
    let dir = values['resume-dir'] as string | undefined;
    if (!dir) {
      const base = configFrom('train', values);
      dir = latestRun(base.out) ?? undefined;
      if (!dir) throw new InputError(`train --resume: no run folder with a config.json under '${base.out}'`);
    }
    const cfgPath = join(dir, 'config.json');
    if (!existsSync(cfgPath)) throw new InputError(`train --resume: ${cfgPath} does not exist (not a run folder)`);
    let saved: { config: Record<string, unknown> };
    try {
      saved = JSON.parse(readFileSync(cfgPath, 'utf8'));
    } catch (e) {
      throw new InputError(`${cfgPath}: not valid JSON (${(e as Error).message})`);
    }
    // the run's own config is the base; --config / flags may only change what resume allows (checked below)
    cfg = configFrom('train', values, saved.config);
    runDir = dir;
  } else {
    if (values['resume-dir']) throw new UsageError('train: --resume-dir needs --resume');
    cfg = configFrom('train', values);
    runDir = join(cfg.out, cfg.runName ?? timestamp());
    // a run folder is made fresh: files of another run (or anything else) are never replaced silently
    if (existsSync(join(runDir, 'config.json')) && !values['force'])
      throw new InputError(
        `train: ${runDir} already holds a run; pass --resume ${runDir} to continue it, --force to start over in it, or choose another --run-name`,
      );
    if (existsSync(runDir)) {
      if (!statSync(runDir).isDirectory())
        throw new InputError(`train: ${runDir} exists and is not a folder; choose another --run-name or --out`);
      const entries = readdirSync(runDir);
      if (entries.length && !values['force'])
        throw new InputError(
          `train: the run folder ${runDir} exists and is not empty (${entries.slice(0, 3).join(', ')}${entries.length > 3 ? ', …' : ''}); choose another --run-name, or pass --force to write into it`,
        );
    }
  }
  const stopAfter = values['stop-after'] !== undefined ? Number(values['stop-after']) : undefined;
  const quiet = Boolean(values['quiet']);
  const stream = quiet ? { write: () => true, isTTY: false } : process.stderr;
  const log = quiet ? () => undefined : (s: string) => process.stderr.write(s + '\n');
  const be = await useBackend('train', values, log);
  log(
    `run folder: ${resolve(runDir)} (seed ${cfg.seed}${resume ? ', resuming' : ''}; backend ${be.name}: ${be.adapter})`,
  );
  const t0 = performance.now();
  // SIGINT / SIGTERM: finish the current step, write a checkpoint, say how to resume, exit 130.
  // A second signal while that happens exits at once.
  let signalled: string | undefined;
  const onSignal = (sig: NodeJS.Signals) => {
    if (signalled) process.exit(130);
    signalled = sig;
    process.stderr.write(
      `\n${sig}: stopping after the current training step with a checkpoint (send it again to quit at once)\n`,
    );
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let r;
  try {
    r = await runExperiment(cfg, {
      runDir,
      resume,
      stream,
      tty: values['plain'] ? false : undefined,
      log,
      evaluate: !values['no-eval'],
      stopAfter,
      meta: {
        argv: ['train', ...argv],
        node: process.version,
        backend: { choice: be.choice, name: be.name, adapter: be.adapter },
      },
      interrupt: () => signalled,
    });
  } catch (e) {
    if (e instanceof TrainingInterrupted) {
      process.stderr.write(
        `train: interrupted by ${e.signal} at step ${e.step} of ${e.method}; checkpoint: ${resolve(e.file)}\n` +
          `resume with: largo train --resume ${resolve(runDir)}\n`,
      );
      return 130;
    }
    throw e;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  const wall = (performance.now() - t0) / 1000;
  if (r.markdown) process.stdout.write(r.markdown + '\n');
  const avg = Object.entries(r.averages)
    .map(([m, v]) => `${m} ${(100 * v).toFixed(2)}`)
    .join(', ');
  log(
    `${avg ? `average ${r.table?.metric ?? ''}: ${avg}; ` : ''}wall time ${formatDuration(wall)}; results in ${resolve(runDir)}`,
  );
  if (r.markdown && cfg.dataset === 'phantom') {
    // one seed, one split: say where the evidence that can carry a claim comes from
    log(
      'one seed on one split: for held-out selection, 5 seeds with mean ± std, the fair baselines and the ablations see docs/results.md and experiments/ (largo experiment experiments/phantom-baselines.json)',
    );
  }
  return 0;
}
