/**
 * Experiment files: a grid of (setting × variant × seed) cells over one base
 * config. Each cell is an ordinary one-method `largo train` run in its own
 * folder, so a cell can be resumed, re-evaluated or inspected with the usual
 * commands, and cells can be spread over processes or machines (`--shard`).
 *
 * {
 *   "name": "phantom-baselines",
 *   "base": "../packages/largo/configs/phantom.json",   // relative to this file
 *   "overrides": { "train": { "steps": 600 } },           // applied to every cell
 *   "seeds": [100, 101, 102, 103, 104],                    // model seeds (init, sampling)
 *   "variants": [ { "name": "largo", "method": "largo" },
 *                 { "name": "dropout+guide", "method": "dropout", "overrides": { "train": { "sharedGuidance": true } } } ],
 *   "settings": [ { "name": "R×1" }, { "name": "R×2", "overrides": { "model": { "rankMultiplier": 2 } } } ],
 *                                                         // a setting may list "variants": [...] to run only those
 *   "compare": [["largo", "dropout+guide"]],               // paired tests (default: first variant vs each other)
 *   "notes": "what this experiment is for; shown under its table"
 * }
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { ConfigError, readConfigFile, resolveConfig, type LargoConfig } from '../config.js';
import { METHODS, type Method } from '../nets/factory.js';

export interface Variant {
  name: string;
  method: Method;
  overrides?: Record<string, unknown>;
}
export interface Setting {
  name: string;
  overrides?: Record<string, unknown>;
  /** the variants this setting runs (default: all), e.g. a CP-vs-Tucker pair at one rank of a rank sweep */
  variants?: string[];
}

export interface ExperimentSpec {
  name: string;
  /** the file it came from (for messages and relative paths) */
  file: string;
  base: Record<string, unknown>;
  overrides: Record<string, unknown>;
  seeds: number[];
  variants: Variant[];
  settings: Setting[];
  compare: [string, string][];
  notes: string;
}

export interface Cell {
  /** stable id, also the folder name: <setting>__<variant>__s<seed> */
  id: string;
  /** position in the grid (settings outermost, then variants, then seeds) */
  index: number;
  setting: string;
  variant: string;
  method: Method;
  seed: number;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._+×-]*$/;

function isObj(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

export function readExperimentFile(path: string): ExperimentSpec {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new ConfigError(
      `${path}: ${err.code ? `cannot read experiment file (${err.code})` : `not valid JSON (${err.message})`}`,
    );
  }
  return parseExperiment(json, path);
}

export function parseExperiment(json: unknown, file: string): ExperimentSpec {
  const bad = (msg: string): never => {
    throw new ConfigError(`${file}: ${msg}`);
  };
  if (!isObj(json)) bad('an experiment file must hold a JSON object');
  const j = json as Record<string, unknown>;
  const known = ['name', 'base', 'overrides', 'seeds', 'variants', 'settings', 'compare', 'notes'];
  for (const k of Object.keys(j))
    if (!known.includes(k) && !k.startsWith('$')) bad(`unknown key '${k}' (known: ${known.join(', ')})`);
  const name = j['name'];
  if (typeof name !== 'string' || !NAME.test(name))
    bad(`'name' must be a folder-safe name (letters, digits, . _ + × -), got ${JSON.stringify(name)}`);
  let base: Record<string, unknown> = {};
  if (typeof j['base'] === 'string') base = readConfigFile(resolve(dirname(file), j['base']));
  else if (isObj(j['base'])) base = j['base'];
  else if (j['base'] !== undefined) bad(`'base' must be a config file path or an inline config object`);
  const overrides = j['overrides'] === undefined ? {} : j['overrides'];
  if (!isObj(overrides)) bad(`'overrides' must be an object`);
  const seeds = j['seeds'];
  if (!Array.isArray(seeds) || seeds.length === 0 || seeds.some((s) => !Number.isSafeInteger(s) || (s as number) < 0))
    bad(`'seeds' must be a non-empty list of non-negative integers`);
  if (new Set(seeds as number[]).size !== (seeds as number[]).length) bad(`'seeds' lists a seed twice`);
  const names = (list: { name: string }[], what: string) => {
    const seen = new Set<string>();
    for (const v of list) {
      if (typeof v.name !== 'string' || !NAME.test(v.name))
        bad(`${what} name ${JSON.stringify(v.name)} is not folder-safe`);
      if (seen.has(v.name)) bad(`${what} '${v.name}' appears twice`);
      seen.add(v.name);
    }
  };
  const variantsJ = j['variants'];
  if (!Array.isArray(variantsJ) || variantsJ.length === 0) bad(`'variants' must be a non-empty list`);
  const variants: Variant[] = (variantsJ as unknown[]).map((v, i) => {
    if (!isObj(v)) bad(`variants[${i}] must be an object`);
    const o = v as Record<string, unknown>;
    for (const k of Object.keys(o))
      if (!['name', 'method', 'overrides'].includes(k) && !k.startsWith('$')) bad(`variants[${i}]: unknown key '${k}'`);
    const method = (o['method'] ?? o['name']) as Method;
    if (!METHODS.includes(method))
      bad(`variants[${i}]: unknown method '${String(method)}' (known: ${METHODS.join(', ')})`);
    if (o['overrides'] !== undefined && !isObj(o['overrides'])) bad(`variants[${i}].overrides must be an object`);
    return { name: String(o['name']), method, overrides: o['overrides'] as Record<string, unknown> | undefined };
  });
  names(variants, 'variant');
  const settingsJ = j['settings'] ?? [{ name: 'default' }];
  if (!Array.isArray(settingsJ) || settingsJ.length === 0) bad(`'settings' must be a non-empty list`);
  const settings: Setting[] = (settingsJ as unknown[]).map((s, i) => {
    if (!isObj(s)) bad(`settings[${i}] must be an object`);
    const o = s as Record<string, unknown>;
    for (const k of Object.keys(o))
      if (!['name', 'overrides', 'variants'].includes(k) && !k.startsWith('$'))
        bad(`settings[${i}]: unknown key '${k}'`);
    if (o['overrides'] !== undefined && !isObj(o['overrides'])) bad(`settings[${i}].overrides must be an object`);
    let only: string[] | undefined;
    if (o['variants'] !== undefined) {
      const vs = o['variants'];
      if (!Array.isArray(vs) || vs.length === 0)
        bad(`settings[${i}].variants must be a non-empty list of variant names`);
      for (const v of vs as unknown[])
        if (!variants.some((x) => x.name === v))
          bad(`settings[${i}].variants names unknown variant ${JSON.stringify(v)}`);
      only = (vs as unknown[]).map(String);
    }
    return {
      name: String(o['name']),
      overrides: o['overrides'] as Record<string, unknown> | undefined,
      ...(only ? { variants: only } : {}),
    };
  });
  names(settings, 'setting');
  let compare: [string, string][];
  if (j['compare'] === undefined)
    compare = variants
      .slice(1)
      .map((v) => [variants[0]!.name, v.name] as [string, string])
      .filter(([a, b]) => settings.some((s) => settingRuns(s, a) && settingRuns(s, b)));
  else {
    if (!Array.isArray(j['compare'])) bad(`'compare' must be a list of [variant, variant] pairs`);
    compare = (j['compare'] as unknown[]).map((p, i) => {
      if (!Array.isArray(p) || p.length !== 2) bad(`compare[${i}] must be a [variant, variant] pair`);
      for (const v of p as unknown[])
        if (!variants.some((x) => x.name === v)) bad(`compare[${i}] names unknown variant ${JSON.stringify(v)}`);
      const q = p as unknown[];
      if (!settings.some((s) => settingRuns(s, String(q[0])) && settingRuns(s, String(q[1]))))
        bad(`compare[${i}]: no setting runs both ${JSON.stringify(q[0])} and ${JSON.stringify(q[1])}`);
      return [String(q[0]), String(q[1])] as [string, string];
    });
  }
  const spec: ExperimentSpec = {
    name: name as string,
    file,
    base,
    overrides: overrides as Record<string, unknown>,
    seeds: seeds as number[],
    variants,
    settings,
    compare,
    notes: typeof j['notes'] === 'string' ? j['notes'] : '',
  };
  // resolve every cell's config now, so a typo in any override fails before anything runs
  for (const c of cells(spec)) cellConfig(spec, c);
  return spec;
}

/** Whether setting `s` runs variant `v` (a setting without a `variants` list runs them all). */
export function settingRuns(s: Setting, v: string): boolean {
  return !s.variants || s.variants.includes(v);
}

/** Every cell of the grid, in a fixed order. */
export function cells(spec: ExperimentSpec): Cell[] {
  const out: Cell[] = [];
  for (const s of spec.settings)
    for (const v of spec.variants.filter((x) => settingRuns(s, x.name)))
      for (const seed of spec.seeds) {
        out.push({
          id: `${s.name}__${v.name}__s${seed}`,
          index: out.length,
          setting: s.name,
          variant: v.name,
          method: v.method,
          seed,
        });
      }
  return out;
}

/** "i/n" (1-based i) → the cells of that shard: every n-th cell starting at i−1, so shards are balanced across variants. */
export function parseShard(s: string): { index: number; count: number } {
  const m = /^(\d+)\/(\d+)$/.exec(s.trim());
  if (!m) throw new ConfigError(`--shard: expected i/n (e.g. 2/4), got '${s}'`);
  const index = Number(m[1]),
    count = Number(m[2]);
  if (count < 1 || index < 1 || index > count) throw new ConfigError(`--shard: i must be in 1..n, got '${s}'`);
  return { index, count };
}

export function shardCells(all: Cell[], shard: { index: number; count: number } | null): Cell[] {
  if (!shard) return all;
  return all.filter((c) => c.index % shard.count === shard.index - 1);
}

/** The full config of one cell: base ← overrides ← setting ← variant, with the cell's seed and method. */
export function cellConfig(spec: ExperimentSpec, cell: Cell): LargoConfig {
  const setting = spec.settings.find((s) => s.name === cell.setting)!;
  const variant = spec.variants.find((v) => v.name === cell.variant)!;
  const where = `${spec.file} (cell ${cell.id})`;
  let file: Record<string, unknown> = { ...spec.base };
  for (const o of [spec.overrides, setting.overrides, variant.overrides]) if (o) file = deepMerge(file, o);
  file['seed'] = cell.seed;
  file['methods'] = [cell.method];
  return resolveConfig(file, {}, where);
}

/** Plain deep merge of JSON objects (key checking happens in resolveConfig against the defaults). */
function deepMerge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b))
    out[k] = isObj(v) && isObj(out[k]) ? deepMerge(out[k] as Record<string, unknown>, v) : v;
  return out;
}
