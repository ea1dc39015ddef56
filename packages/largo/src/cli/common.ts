/**
 * Shared CLI plumbing: option parsing with node:util parseArgs, the mapping
 * from flags to config keys, and the error → exit-code policy (2 for bad
 * input: usage, config, data, checkpoints; 1 for internal errors).
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, parseValue, readConfigFile, resolveConfig, type LargoConfig } from '../config.js';
import { CheckpointError } from '../checkpoint.js';
import { parseBackendChoice, selectBackend, type BackendChoice, type SelectedBackend } from '../backend-select.js';

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** A bad input the user can fix (exit code 2). */
export class InputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InputError';
  }
}

const INPUT_ERRORS = new Set([
  'UsageError',
  'InputError',
  'BackendError',
  'ConfigError',
  'CheckpointError',
  'NiftiError',
  'LabelError',
  'SafetensorsError',
  'WavError',
  'IdxError',
  'DataError',
  'FileWriteError',
  'AuditInputError',
  'SlidingWindowError',
]);

/** Exit codes (docs/cli.md): success, internal error, bad input, training diverged, interrupted. */
export const EXIT = { ok: 0, internal: 1, input: 2, diverged: 3, interrupted: 130 } as const;

/** Exit code for an error: 2 for bad input, 3 for a diverged training run, 1 otherwise. */
export function exitCodeFor(e: unknown): number {
  if (e instanceof Error && e.name === 'DivergenceError') return EXIT.diverged;
  if (e instanceof Error && e.name === 'TrainingInterrupted') return EXIT.interrupted;
  if (e instanceof UsageError || e instanceof InputError || e instanceof ConfigError || e instanceof CheckpointError)
    return EXIT.input;
  if (e instanceof Error && (INPUT_ERRORS.has(e.name) || INPUT_ERRORS.has(e.constructor.name))) return EXIT.input;
  const code = (e as NodeJS.ErrnoException | null)?.code;
  if (code && USER_ERRNO.has(code)) return EXIT.input;
  if (
    code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' ||
    code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' ||
    code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL'
  )
    return EXIT.input;
  return EXIT.internal;
}

/** errno codes that describe the user's files or machine, not a bug. */
const USER_ERRNO = new Set([
  'ENOENT',
  'EACCES',
  'EPERM',
  'EISDIR',
  'ENOTDIR',
  'ENOSPC',
  'EDQUOT',
  'EROFS',
  'ENAMETOOLONG',
  'ELOOP',
  'EEXIST',
  'EMFILE',
  'ENFILE',
]);

export type Options = NonNullable<ParseArgsConfig['options']>;

/** parseArgs, turning its errors into UsageErrors that carry the command's help hint. */
export function parse(
  cmd: string,
  argv: string[],
  options: Options,
  allowPositionals = false,
): { values: Record<string, unknown>; positionals: string[] } {
  let r;
  try {
    r = parseArgs({ args: argv, options, allowPositionals, strict: true, tokens: true });
  } catch (e) {
    throw new UsageError(`${cmd}: ${(e as Error).message.split('\n')[0]} (see 'largo ${cmd} --help')`);
  }
  const seen = new Map<string, string>();
  for (const tok of r.tokens ?? []) {
    if (tok.kind !== 'option') continue;
    const o = options[tok.name];
    if (!o || o.multiple || o.type === 'boolean') continue;
    const prev = seen.get(tok.name);
    if (prev !== undefined)
      throw new UsageError(`${cmd}: --${tok.name} given twice ('${prev}' and '${tok.value ?? ''}'); give it once`);
    seen.set(tok.name, tok.value ?? '');
  }
  return { values: r.values as Record<string, unknown>, positionals: r.positionals };
}

/** Options every config-driven command accepts, with the config key each one sets. */
export const CONFIG_FLAGS: Record<
  string,
  { key: string; help: string; kind: 'string' | 'number' | 'list' | 'numbers' | 'boolean' }
> = {
  dataset: { key: 'dataset', help: 'phantom | brats | isles | avmnist', kind: 'string' },
  data: {
    key: 'data.path',
    help: 'data folder (BraTS/ISLES root, or the folder with mnist/ and fsdd/)',
    kind: 'string',
  },
  out: { key: 'out', help: 'parent folder of run folders (default runs)', kind: 'string' },
  'run-name': { key: 'runName', help: 'run folder name (default: a UTC timestamp)', kind: 'string' },
  seed: { key: 'seed', help: 'the one seed (weights, data order, subsets, dropout)', kind: 'number' },
  methods: { key: 'methods', help: 'comma list: largo, largo-tucker, dedicated, dropout, full-only', kind: 'list' },
  steps: { key: 'train.steps', help: 'optimizer steps per method', kind: 'number' },
  'batch-size': { key: 'train.batchSize', help: 'samples per step', kind: 'number' },
  'patch-size': { key: 'train.patchSize', help: 'training patch D,H,W', kind: 'numbers' },
  lr: { key: 'train.lr', help: 'initial learning rate', kind: 'number' },
  optimizer: { key: 'train.optimizer', help: 'sgd | adam', kind: 'string' },
  'val-every': { key: 'train.valEvery', help: 'validate every N steps', kind: 'number' },
  'checkpoint-every': { key: 'train.checkpointEvery', help: 'write the last checkpoint every N steps', kind: 'number' },
  'base-features': { key: 'model.baseFeatures', help: 'U-Net features of the first stage', kind: 'number' },
  depth: { key: 'model.depth', help: 'U-Net resolution stages', kind: 'number' },
  'rank-multiplier': { key: 'model.rankMultiplier', help: 'CP/Tucker rank multiplier (¼ … 4)', kind: 'number' },
  mirror: { key: 'eval.mirror', help: 'test-time mirroring', kind: 'boolean' },
};

export function configOptions(): Options {
  const o: Options = { config: { type: 'string' }, set: { type: 'string', multiple: true } };
  for (const [name, f] of Object.entries(CONFIG_FLAGS)) o[name] = { type: f.kind === 'boolean' ? 'boolean' : 'string' };
  return o;
}

export function configHelp(): string {
  const lines = [
    '  --config FILE            JSON config (flags win over it)',
    '  --set KEY=VALUE          any config key by dotted path, e.g. --set train.lr=0.005 (repeatable)',
  ];
  for (const [name, f] of Object.entries(CONFIG_FLAGS))
    lines.push(`  --${(name + (f.kind === 'boolean' ? '' : ' V')).padEnd(23)}${f.help}`);
  return lines.join('\n');
}

/** Dotted-path overrides from the flags. */
export function overridesFrom(cmd: string, values: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, f] of Object.entries(CONFIG_FLAGS)) {
    const v = values[name];
    if (v === undefined) continue;
    if (f.kind === 'boolean') out[f.key] = v;
    else if (f.kind === 'number') {
      const n = Number(v);
      if (!Number.isFinite(n) || String(v).trim() === '')
        throw new UsageError(`${cmd}: --${name} must be a number, got '${String(v)}'`);
      out[f.key] = n;
    } else if (f.kind === 'list')
      out[f.key] = String(v)
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
    else if (f.kind === 'numbers') {
      const ns = String(v).split(',').map(Number);
      if (ns.some((n) => !Number.isFinite(n)))
        throw new UsageError(`${cmd}: --${name} must be comma-separated numbers, got '${String(v)}'`);
      out[f.key] = ns.length === 1 ? [ns[0], ns[0], ns[0]] : ns;
    } else out[f.key] = v;
  }
  for (const s of (values['set'] as string[] | undefined) ?? []) {
    const i = s.indexOf('=');
    if (i <= 0) throw new UsageError(`${cmd}: --set expects KEY=VALUE, got '${s}'`);
    out[s.slice(0, i)] = parseValue(s.slice(i + 1));
  }
  return out;
}

/** The effective config from --config and flags. */
export function configFrom(
  cmd: string,
  values: Record<string, unknown>,
  base: Record<string, unknown> | null = null,
): LargoConfig {
  const file = values['config'] ? readConfigFile(String(values['config'])) : base;
  return resolveConfig(file, overridesFrom(cmd, values), values['config'] ? String(values['config']) : 'config');
}

/** The newest run folder (by name: timestamps sort) under `out` that has a config.json. */
export function latestRun(out: string): string | null {
  if (!existsSync(out)) return null;
  const runs = readdirSync(out)
    .filter((d) => existsSync(join(out, d, 'config.json')) && statSync(join(out, d)).isDirectory())
    .sort();
  return runs.length ? join(out, runs[runs.length - 1]!) : null;
}

/**
 * Moves a value-taking form of an optional-value flag into another flag:
 * `--resume DIR` → `--resume --resume-dir DIR` (parseArgs has no optional values).
 */
export function splitOptionalValue(argv: string[], flag: string, into: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === `--${flag}` && i + 1 < argv.length && !argv[i + 1]!.startsWith('-')) {
      out.push(a, `--${into}`, argv[i + 1]!);
      i++;
    } else if (a.startsWith(`--${flag}=`)) out.push(`--${flag}`, `--${into}`, a.slice(flag.length + 3));
    else out.push(a);
  }
  return out;
}

/** `--backend` help line shared by the commands that run the network. */
export const BACKEND_HELP = `  --backend B              cpu | webgpu | auto (default: $LARGO_BACKEND, else cpu); auto takes a
                           real GPU and never a software adapter such as llvmpipe`;

/** Parses `--backend` (or LARGO_BACKEND), makes that backend active and logs which one and which adapter. */
export async function useBackend(
  cmd: string,
  values: Record<string, unknown>,
  log: (s: string) => void,
): Promise<SelectedBackend & { choice: BackendChoice }> {
  let choice: BackendChoice;
  try {
    choice = parseBackendChoice(values['backend']);
  } catch (e) {
    throw new UsageError(`${cmd}: ${(e as Error).message}`);
  }
  const sel = await selectBackend(choice, { log });
  return { ...sel, choice };
}

export { ConfigError };
