import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { runExperiment } from '../train/experiment.js';
import { BACKEND_HELP, configFrom, InputError, parse, useBackend, UsageError } from './common.js';

export const EVAL_HELP = `largo eval — evaluate the trained methods of a run on every modality subset

Usage: largo eval --run RUN_DIR [options]

Loads each method's checkpoint from RUN_DIR, predicts every test case for
every modality subset (sliding window, Gaussian weighting, optional
mirroring), computes Dice and HD95 per region (accuracy for avMNIST) and
rewrites RUN_DIR/results.{md,json,csv}, results-cases.csv, figures and curves.

Options:
  --run RUN_DIR            the run folder (holds config.json)
  --checkpoint last|best   which checkpoint of each method (default: the run's eval.checkpoint, last)
  --methods a,b            evaluate only these methods
  --mirror                 test-time mirroring over all axes
  --no-hd95                skip HD95
  --step X                 sliding-window step as a fraction of the patch (default 0.5)
${BACKEND_HELP}
  --quiet                  no log lines
  -h, --help               this help`;

export async function evalCommand(argv: string[]): Promise<number> {
  const { values } = parse('eval', argv, {
    run: { type: 'string' },
    checkpoint: { type: 'string' },
    methods: { type: 'string' },
    mirror: { type: 'boolean' },
    'no-hd95': { type: 'boolean' },
    step: { type: 'string' },
    quiet: { type: 'boolean' },
    backend: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values['help']) {
    console.log(EVAL_HELP);
    return 0;
  }
  const run = values['run'] as string | undefined;
  if (!run) throw new UsageError(`eval: --run RUN_DIR is required (see 'largo eval --help')`);
  const cfgPath = join(run, 'config.json');
  if (!existsSync(cfgPath)) throw new InputError(`eval: ${cfgPath} does not exist (not a run folder)`);
  let saved: { config: Record<string, unknown> };
  try {
    saved = JSON.parse(readFileSync(cfgPath, 'utf8'));
  } catch (e) {
    throw new InputError(`${cfgPath}: not valid JSON (${(e as Error).message})`);
  }
  const set: string[] = [];
  if (values['checkpoint']) set.push(`eval.checkpoint=${String(values['checkpoint'])}`);
  if (values['mirror']) set.push('eval.mirror=true');
  if (values['no-hd95']) set.push('eval.hd95=false');
  if (values['step'] !== undefined) {
    const st = Number(values['step']);
    if (!(String(values['step']).trim() !== '' && st > 0 && st <= 1))
      throw new UsageError(`eval: --step must be in (0, 1], got '${String(values['step'])}'`);
    set.push(`eval.step=${st}`);
  }
  const cfg = configFrom('eval', { set }, saved.config);
  if (values['methods']) {
    const ms = String(values['methods'])
      .split(',')
      .map((s) => s.trim());
    for (const m of ms)
      if (!cfg.methods.includes(m as never))
        throw new InputError(`eval: method '${m}' is not part of this run (${cfg.methods.join(', ')})`);
    cfg.methods = ms as typeof cfg.methods;
  }
  const log = values['quiet'] ? () => undefined : (s: string) => process.stderr.write(s + '\n');
  const be = await useBackend('eval', values, log);
  log(`evaluating ${resolve(run)} (backend ${be.name}: ${be.adapter})`);
  const r = await runExperiment(cfg, {
    runDir: run,
    resume: true,
    evalOnly: true,
    log,
    meta: {
      argv: ['eval', ...argv],
      node: process.version,
      backend: { choice: be.choice, name: be.name, adapter: be.adapter },
    },
  });
  if (r.markdown) process.stdout.write(r.markdown + '\n');
  log(`results in ${resolve(run)}`);
  return 0;
}
