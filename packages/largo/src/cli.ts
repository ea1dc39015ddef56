#!/usr/bin/env node
/**
 * The `largo` command line: train, eval, predict, export, params, inspect, audit.
 * Exit codes: 0 success, 1 internal error, 2 bad input (usage, config, data,
 * checkpoint, unwritable output) — the message names the file or option at
 * fault — 3 training diverged, 130 interrupted (SIGINT / SIGTERM).
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { exitCodeFor } from './cli/common.js';

export const MAIN_HELP = `largo — LARGO low-rank hypernetwork for missing modalities

Usage: largo <command> [options]      (largo <command> --help for details)

Commands:
  train     train methods (LARGO, baselines), evaluate every modality subset, write tables/figures
  eval      re-evaluate the checkpoints of a run
  predict   segment a case from whatever modalities it has (NIfTI in, NIfTI out)
  export    write the plain network of one modality subset as safetensors
  params    parameter counts per method, role and layer
  inspect   describe a NIfTI file or a BraTS / ISLES folder
  audit     replay reference fixtures on the backends (numerical audit)
  experiment  run a grid of methods × seeds × settings and summarize it (mean ± std, paired tests)

Examples:
  largo train --config packages/largo/configs/phantom.json
  largo predict --checkpoint runs/<run>/largo/last.safetensors --flair f.nii.gz --t1ce t.nii.gz --out seg.nii.gz`;

type Command = (argv: string[]) => Promise<number>;

const COMMANDS: Record<string, () => Promise<Command>> = {
  train: async () => (await import('./cli/train.js')).trainCommand,
  eval: async () => (await import('./cli/eval.js')).evalCommand,
  predict: async () => (await import('./cli/predict.js')).predictCommand,
  export: async () => (await import('./cli/export.js')).exportCommand,
  params: async () => (await import('./cli/params.js')).paramsCommand,
  inspect: async () => (await import('./cli/inspect.js')).inspectCommand,
  experiment: async () => (await import('./cli/experiment.js')).experimentCommand,
  audit: async () => {
    const mod = (await import('./audit.js' as string)) as { runAudit: Command };
    return mod.runAudit;
  },
};

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    if (cmd === 'help' && rest[0] && COMMANDS[rest[0]]) return main([rest[0], '--help']);
    console.log(MAIN_HELP);
    return cmd ? 0 : 2;
  }
  if (cmd === '--version' || cmd === '-v') {
    console.log('largo 0.1.0');
    return 0;
  }
  const load = COMMANDS[cmd];
  if (!load) {
    console.error(
      `largo: unknown command '${cmd}' (commands: ${Object.keys(COMMANDS).join(', ')}; see 'largo --help')`,
    );
    return 2;
  }
  try {
    const run = await load();
    return await run(rest);
  } catch (e) {
    return reportError(cmd, e);
  }
}

/** Prints a failed command's error (the one error policy) and returns its exit code. */
export function reportError(cmd: string, e: unknown): number {
  const code = exitCodeFor(e);
  let msg = e instanceof Error ? e.message : String(e);
  if (msg.startsWith(`${cmd}: `)) msg = msg.slice(cmd.length + 2);
  if (code === 1) {
    console.error(
      `largo ${cmd}: internal error: ${msg}\nThis is a bug in largo, please report it with the command line${process.env['LARGO_DEBUG'] ? ' and the stack below' : ' and the output of the same command with LARGO_DEBUG=1'}.`,
    );
    if (process.env['LARGO_DEBUG'] && e instanceof Error) console.error(e.stack);
  } else console.error(`largo ${cmd}: ${msg}`);
  return code;
}

const isMain = (() => {
  try {
    const argv1 = process.argv[1];
    if (!argv1) return false;
    return realpathSync(argv1) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
})();

if (isMain) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      console.error(e);
      process.exitCode = 1;
    },
  );
}
