/**
 * Run configuration: defaults ← dataset defaults ← JSON config file ←
 * command-line flags (flags win). The effective config is saved beside
 * every result and inside every checkpoint.
 * (Over 500 lines on purpose: the config's types, its defaults and the
 * validation of every key are one schema, read side by side.)
 */
import { readFileSync, statSync } from './node-fs.js';

import { METHODS, type Method } from './nets/factory.js';
export const DATASETS = ['phantom', 'brats', 'isles', 'avmnist'] as const;
export type DatasetKind = (typeof DATASETS)[number];

export interface PhantomConfig {
  cases: number;
  size: number | number[];
  modalities: number;
  noise?: number;
  bias?: number;
}

export interface DataConfig {
  /** folder (BraTS/ISLES root, or the folder holding mnist/ and fsdd/ for avMNIST) */
  path: string | null;
  /** train / val / test fractions of the case list */
  split: [number, number, number];
  /** optional split file (JSON {train, val, test} or nnU-Net splits_final.json) */
  splitFile: string | null;
  /** 'regions' (sigmoid WT/TC/ET, Dice + BCE) or 'labels' (softmax over the label map, Dice + CE) */
  labelMode: 'regions' | 'labels';
  /** resample to this spacing in mm [D, H, W] (null: native) */
  targetSpacing: number[] | null;
  /** out-of-set label values: 'error' (default) or an explicit mapping policy */
  labelPolicy: 'error' | 'nearest-valid' | 'background';
  /**
   * cases lacking a modality or the label: 'skip' them with a warning that lists them (default),
   * 'error', or 'train': labelled cases lacking a modality join the training split with the
   * modality marked missing (each step's subset is cut down to what the sample has)
   */
  incomplete: 'skip' | 'error' | 'train';
  /** modalities on different voxel grids: 'error' (default) or 'resample' into the first modality's grid */
  gridMismatch: 'error' | 'resample';
  phantom: PhantomConfig;
  /**
   * seed of the data (phantom generation and the case split); null: the run seed. Experiments fix it
   * while `seed` varies, so seeds differ in initialization and sampling only, on the same cases.
   */
  seed: number | null;
  /**
   * phantom only: a separately generated test set ({cases, seed}); the split then holds train and val
   * only (its test fraction must be 0). Lets the test cases come from a seed no tuning ever saw.
   */
  testPhantom: { cases: number; seed: number } | null;
}

export interface ModelConfig {
  baseFeatures: number;
  depth: number;
  maxFeatures: number;
  rankMultiplier: number;
  /** 'budget' (paper Eq. 3, × rankMultiplier) or 'exact' (the rank that holds any K kernels exactly; ablation) */
  rankRule: 'budget' | 'exact';
  deepSupervision: boolean;
  /** conv blocks per U-Net stage (nnU-Net: 2) */
  convsPerStage: number;
  /** avMNIST fusion width */
  hidden: number;
  /** avMNIST dropout */
  dropout: number;
}

export interface TrainConfig {
  steps: number;
  batchSize: number;
  patchSize: number[];
  optimizer: 'sgd' | 'adam';
  lr: number;
  momentum: number;
  nesterov: boolean;
  weightDecay: number;
  schedule: 'poly' | 'cosine' | 'constant';
  polyPower: number;
  /** gradient-norm clipping (nnU-Net: 12); 0 = off */
  clipGradNorm: number;
  /** validation every N steps (0 = only at the end) */
  valEvery: number;
  /** number of validation cases (or samples for avMNIST) used each time */
  valCases: number;
  /** checkpoint `last` every N steps (0 = at validation steps and at the end) */
  checkpointEvery: number;
  foregroundFraction: number;
  augment: boolean;
  /** add the full-modality term L(f_full(x_full), y) (LARGO, Tucker, dedicated) */
  fullGuidance: boolean;
  /**
   * sample the modality subset per training sample instead of once per batch: the same
   * objective in expectation and the same compute, but every subset is visited batchSize
   * times as often (matters when the step budget is small)
   */
  subsetPerSample: boolean;
  /** start every subset's stem / head copy from the full set's (see train/sync-init.ts) */
  syncSubsetInit: boolean;
  /**
   * parameters a step does not use (the stems of the other subsets): 'skip' them in the
   * optimizer (PyTorch's set_to_none) or give them their exact gradient 'zero', so that
   * momentum and weight decay keep acting on them as on the unused rows of [K, ...] tensors
   */
  unusedGrads: 'skip' | 'zero';
  /**
   * also add the full-modality term L(f(x_full), y) to methods with one shared network (dropout,
   * full-only), so a baseline gets the same loss terms as LARGO (off: the plain baseline)
   */
  sharedGuidance: boolean;
  /**
   * avMNIST: 'joint' trains each method's own (factorized) encoders end to end; 'pretrained' is the
   * paper's protocol: both encoders pretrained once, frozen, shared by every method, features cached
   * (see train/encoders.ts), and each method trains its fusion network only
   */
  encoders: 'joint' | 'pretrained';
  /** avMNIST 'pretrained': encoder pretraining epochs (paper: 100) */
  encoderEpochs: number;
  /** learning-rate multiplier of the per-subset parameters (see train/param-groups.ts); 1 = one group */
  subsetLrScale: number;
  /** loss: 'auto' (from labelMode), 'dice-ce', 'region-dice-bce', 'ce' */
  loss: 'auto' | 'dice-ce' | 'region-dice-bce' | 'ce';
  batchDice: boolean;
}

export interface EvalConfig {
  /** sliding-window step as a fraction of the patch */
  step: number;
  mirror: boolean;
  hd95: boolean;
  /** cases shown in the figure */
  figureCases: number;
  /** subsets shown as figure rows: 'single' (single modalities + full) or 'all' */
  figureRows: 'single' | 'all';
  /** region index used for the TP/FP/FN overlay */
  figureRegion: number;
  /** number of tiles per forward pass */
  batchSize: number;
  /** which checkpoint of each method is evaluated: the final one (nnU-Net's choice) or the best validation score */
  checkpoint: 'last' | 'best';
}

export interface LargoConfig {
  dataset: DatasetKind;
  seed: number;
  methods: Method[];
  /** parent folder of the run folders */
  out: string;
  /** run folder name (default: a UTC timestamp) */
  runName: string | null;
  data: DataConfig;
  model: ModelConfig;
  train: TrainConfig;
  eval: EvalConfig;
}

export function defaultConfig(dataset: DatasetKind = 'phantom'): LargoConfig {
  const seg = dataset !== 'avmnist';
  return {
    dataset,
    seed: 0,
    methods: ['largo', 'dropout'],
    out: 'runs',
    runName: null,
    data: {
      path: null,
      split: [0.6, 0.1, 0.3],
      splitFile: null,
      labelMode: 'regions',
      targetSpacing: null,
      labelPolicy: 'error',
      incomplete: 'skip',
      gridMismatch: 'error',
      phantom: { cases: 12, size: 24, modalities: 4 },
      seed: null,
      testPhantom: null,
    },
    model: {
      baseFeatures: 8,
      depth: 3,
      maxFeatures: 320,
      rankMultiplier: 1,
      rankRule: 'budget',
      deepSupervision: true,
      convsPerStage: 2,
      hidden: 64,
      dropout: 0.1,
    },
    train: {
      steps: seg ? 250 : 1000,
      batchSize: seg ? 2 : 64,
      patchSize: [24, 24, 24],
      optimizer: seg ? 'sgd' : 'adam',
      lr: seg ? 1e-2 : 1e-3,
      momentum: 0.99,
      nesterov: true,
      weightDecay: seg ? 3e-5 : 0,
      schedule: seg ? 'poly' : 'constant',
      polyPower: 0.9,
      clipGradNorm: seg ? 12 : 0,
      valEvery: 50,
      valCases: 2,
      checkpointEvery: 0,
      foregroundFraction: 1 / 3,
      augment: false,
      fullGuidance: true,
      subsetPerSample: false,
      syncSubsetInit: false,
      unusedGrads: 'skip',
      sharedGuidance: false,
      encoders: 'joint',
      encoderEpochs: 100,
      subsetLrScale: 1,
      loss: 'auto',
      batchDice: false,
    },
    eval: {
      step: 0.5,
      mirror: false,
      hd95: true,
      figureCases: 2,
      figureRows: 'single',
      figureRegion: 0,
      batchSize: 1,
      checkpoint: 'last',
    },
  };
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

function isObj(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/**
 * Deep-merges `over` into `base`, rejecting keys `base` does not have (typos
 * are errors, named with their path) and values of the wrong JSON type.
 */
export function mergeConfig<T>(base: T, over: unknown, where: string, path = ''): T {
  if (over === undefined) return base;
  if (!isObj(base) || !isObj(over)) return over as T;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const p = path ? `${path}.${k}` : k;
    if (k.startsWith('$') || k === 'comment' || k === '//') continue;
    if (!(k in out)) throw new ConfigError(`${where}: unknown option '${p}' (known: ${Object.keys(out).join(', ')})`);
    const cur = out[k];
    if (isObj(cur)) {
      if (!isObj(v)) throw new ConfigError(`${where}: '${p}' must be an object`);
      out[k] = mergeConfig(cur, v, where, p);
    } else {
      if (cur !== null && v !== null && typeof cur !== typeof v && !(Array.isArray(cur) && Array.isArray(v))) {
        // allow number | number[] (phantom size, patch size)
        if (!(typeof cur === 'number' && Array.isArray(v)) && !(Array.isArray(cur) && typeof v === 'number')) {
          throw new ConfigError(
            `${where}: '${p}' must be ${Array.isArray(cur) ? 'a list' : `a ${typeof cur}`}, got ${JSON.stringify(v)}`,
          );
        }
      }
      out[k] = v;
    }
  }
  return out as T;
}

/** Reads a JSON config file (errors name the file). */
/** Largest config file read: 1 MiB. */
export const MAX_CONFIG_BYTES = 1024 * 1024;

export function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  // a device such as /dev/zero would be read forever: only regular files of sane size
  let st;
  try {
    st = statSync(path);
  } catch (e) {
    throw new ConfigError(
      `${path}: cannot read config file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
    );
  }
  if (!st.isFile())
    throw new ConfigError(
      `${path}: cannot read config file (${st.isDirectory() ? 'it is a folder' : 'not a regular file'})`,
    );
  if (st.size > MAX_CONFIG_BYTES)
    throw new ConfigError(`${path}: config file is ${st.size} bytes, more than the ${MAX_CONFIG_BYTES}-byte limit`);
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError(
      `${path}: cannot read config file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`${path}: not valid JSON (${(e as Error).message})`);
  }
  if (!isObj(json)) throw new ConfigError(`${path}: a config file must hold a JSON object`);
  return json;
}

/** Sets `a.b.c` = value in a nested plain object (creating objects on the way). */
export function setPath(obj: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split('.');
  let cur: Record<string, unknown> = obj;
  for (const k of keys.slice(0, -1)) {
    if (!isObj(cur[k])) cur[k] = {};
    cur = cur[k] as Record<string, unknown>;
  }
  cur[keys[keys.length - 1]!] = value;
}

export function getPath(obj: unknown, path: string): unknown {
  let cur: unknown = obj;
  for (const k of path.split('.')) {
    if (!isObj(cur)) return undefined;
    cur = cur[k];
  }
  return cur;
}

/** Parses a flag value as JSON when it looks like JSON, else keeps the string. */
export function parseValue(s: string): unknown {
  if (/^(true|false|null)$/.test(s) || /^-?\d/.test(s) || /^[[{"]/.test(s)) {
    try {
      return JSON.parse(s);
    } catch {
      /* fall through */
    }
  }
  if (s.includes(',') && s.split(',').every((p) => /^-?\d+(\.\d+)?(e-?\d+)?$/.test(p))) return s.split(',').map(Number);
  return s;
}

/**
 * Builds the effective config: defaults for the dataset (from the file's or
 * the flags' `dataset`), then the file, then the overrides (dotted paths).
 */
export function resolveConfig(
  file: Record<string, unknown> | null,
  overrides: Record<string, unknown>,
  where = 'config',
): LargoConfig {
  const dataset = (overrides['dataset'] ?? file?.['dataset'] ?? 'phantom') as DatasetKind;
  if (!DATASETS.includes(dataset))
    throw new ConfigError(`${where}: unknown dataset '${String(dataset)}' (known: ${DATASETS.join(', ')})`);
  let cfg = defaultConfig(dataset);
  if (file) cfg = mergeConfig(cfg, file, where);
  const nested: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(overrides)) setPath(nested, k, v);
  cfg = mergeConfig(cfg, nested, 'command line');
  validateConfig(cfg);
  return cfg;
}

/** The rank multipliers the method is defined for (paper: ¼ … 4). */
export const RANK_MULTIPLIER_RANGE = [0.25, 4] as const;

export function validateConfig(c: LargoConfig): void {
  const bad = (p: string, msg: string): never => {
    throw new ConfigError(`config: '${p}' ${msg}`);
  };
  if (!Array.isArray(c.methods) || c.methods.length === 0) bad('methods', 'must list at least one method');
  for (const m of c.methods)
    if (!METHODS.includes(m)) bad('methods', `has unknown method '${m}' (known: ${METHODS.join(', ')})`);
  if (new Set(c.methods).size !== c.methods.length) bad('methods', 'lists a method twice');
  if (!Number.isSafeInteger(c.seed) || c.seed < 0) bad('seed', `must be a non-negative integer, got ${c.seed}`);
  const t = c.train;
  const posInt = (p: string, v: number) => {
    if (!Number.isInteger(v) || v < 1) bad(p, `must be a positive integer, got ${JSON.stringify(v)}`);
  };
  posInt('train.steps', t.steps);
  posInt('train.batchSize', t.batchSize);
  if (!Number.isInteger(t.valEvery) || t.valEvery < 0) bad('train.valEvery', 'must be an integer ≥ 0');
  if (!Number.isInteger(t.checkpointEvery) || t.checkpointEvery < 0)
    bad('train.checkpointEvery', 'must be an integer ≥ 0');
  if (!(t.lr > 0)) bad('train.lr', `must be > 0, got ${t.lr}`);
  if (!['sgd', 'adam'].includes(t.optimizer)) bad('train.optimizer', `must be sgd or adam, got ${t.optimizer}`);
  if (!['poly', 'cosine', 'constant'].includes(t.schedule))
    bad('train.schedule', `must be poly, cosine or constant, got ${t.schedule}`);
  if (!['auto', 'dice-ce', 'region-dice-bce', 'ce'].includes(t.loss)) bad('train.loss', `unknown loss '${t.loss}'`);
  if (c.dataset !== 'avmnist') {
    const ps = typeof t.patchSize === 'number' ? [t.patchSize, t.patchSize, t.patchSize] : t.patchSize;
    if (!Array.isArray(ps) || ps.length !== 3 || ps.some((v) => !Number.isInteger(v) || v < 1))
      bad('train.patchSize', `must be 3 positive integers, got ${JSON.stringify(t.patchSize)}`);
    const div = 2 ** (c.model.depth - 1);
    if (ps.some((v) => v % div !== 0))
      bad('train.patchSize', `must be divisible by 2^(depth-1) = ${div} on every axis, got [${ps.join(', ')}]`);
    c.train.patchSize = ps;
  }
  posInt('model.baseFeatures', c.model.baseFeatures);
  posInt('model.depth', c.model.depth);
  if (c.model.depth < 2 || c.model.depth > 8)
    bad('model.depth', `must be between 2 and 8 (resolution stages of the U-Net), got ${c.model.depth}`);
  if (!(c.model.rankMultiplier >= RANK_MULTIPLIER_RANGE[0] && c.model.rankMultiplier <= RANK_MULTIPLIER_RANGE[1]))
    bad(
      'model.rankMultiplier',
      `must be between ${RANK_MULTIPLIER_RANGE[0]} and ${RANK_MULTIPLIER_RANGE[1]} (the paper's ¼ … 4), got ${c.model.rankMultiplier}`,
    );
  if (c.runName !== null) {
    // one path component: the run folder must stay inside --out
    if (
      typeof c.runName !== 'string' ||
      c.runName === '' ||
      c.runName === '.' ||
      c.runName === '..' ||
      /[\/\\\0]/.test(c.runName)
    )
      bad('runName', `must be a single folder name (no '/', '\\', '..'), got ${JSON.stringify(c.runName)}`);
  }
  if (!['budget', 'exact'].includes(c.model.rankRule))
    bad('model.rankRule', `must be budget or exact, got ${JSON.stringify(c.model.rankRule)}`);
  const s = c.data.split;
  if (!Array.isArray(s) || s.length !== 3 || s.some((v) => !(v >= 0)) || Math.abs(s[0] + s[1] + s[2] - 1) > 1e-9)
    bad('data.split', `must be 3 fractions summing to 1, got ${JSON.stringify(s)}`);
  if (!(c.eval.step > 0 && c.eval.step <= 1)) bad('eval.step', `must be in (0, 1], got ${c.eval.step}`);
  if (!['last', 'best'].includes(c.eval.checkpoint))
    bad('eval.checkpoint', `must be last or best, got ${c.eval.checkpoint}`);
  if (!['regions', 'labels'].includes(c.data.labelMode)) bad('data.labelMode', `must be regions or labels`);
  if (!['skip', 'error', 'train'].includes(c.data.incomplete))
    bad('data.incomplete', `must be skip, error or train, got ${JSON.stringify(c.data.incomplete)}`);
  if (!['error', 'resample'].includes(c.data.gridMismatch))
    bad('data.gridMismatch', `must be error or resample, got ${JSON.stringify(c.data.gridMismatch)}`);
  if (!['joint', 'pretrained'].includes(t.encoders))
    bad('train.encoders', `must be joint or pretrained, got ${JSON.stringify(t.encoders)}`);
  posInt('train.encoderEpochs', t.encoderEpochs);
  if (c.data.seed !== null && (!Number.isSafeInteger(c.data.seed) || c.data.seed < 0))
    bad('data.seed', `must be null or a non-negative integer, got ${JSON.stringify(c.data.seed)}`);
  const tp = c.data.testPhantom;
  if (tp !== null) {
    if (c.dataset !== 'phantom') bad('data.testPhantom', 'applies to the phantom dataset only');
    if (
      typeof tp !== 'object' ||
      !Number.isInteger(tp.cases) ||
      tp.cases < 1 ||
      !Number.isSafeInteger(tp.seed) ||
      tp.seed < 0
    )
      bad('data.testPhantom', `must be null or {"cases": n ≥ 1, "seed": integer ≥ 0}, got ${JSON.stringify(tp)}`);
    for (const k of Object.keys(tp))
      if (k !== 'cases' && k !== 'seed') bad(`data.testPhantom.${k}`, 'is not an option (known: cases, seed)');
    if (s[2] !== 0)
      bad(
        'data.split',
        `must have a test fraction of 0 when data.testPhantom gives the test set, got ${JSON.stringify(s)}`,
      );
  }
  if ((c.dataset === 'brats' || c.dataset === 'isles' || c.dataset === 'avmnist') && !c.data.path)
    bad('data.path', `is required for dataset '${c.dataset}' (pass --data <folder>)`);
}

/**
 * Keys that may differ between a checkpoint's config and the one resuming
 * it: where results go and how often to report. Everything else defines the
 * model or the training trajectory and must match.
 */
// data.incomplete / data.gridMismatch only decide whether odd data is refused; runs from before they existed still resume
export const RESUME_FREE_KEYS = [
  'out',
  'runName',
  'train.valEvery',
  'train.checkpointEvery',
  'eval',
  'methods',
  'data.path',
  'data.incomplete',
  'data.gridMismatch',
];

/** Flattens a config into dotted paths → JSON values (arrays kept whole). */
export function flatten(obj: unknown, prefix = ''): Map<string, string> {
  const out = new Map<string, string>();
  if (isObj(obj)) {
    for (const [k, v] of Object.entries(obj))
      for (const [kk, vv] of flatten(v, prefix ? `${prefix}.${k}` : k)) out.set(kk, vv);
  } else out.set(prefix, JSON.stringify(obj as Json));
  return out;
}

/** The dotted keys whose values differ (ignoring `free` prefixes), each with both values. */
export function configDiff(
  a: unknown,
  b: unknown,
  free: readonly string[] = RESUME_FREE_KEYS,
): { key: string; a: string | undefined; b: string | undefined }[] {
  const fa = flatten(a),
    fb = flatten(b);
  const keys = new Set([...fa.keys(), ...fb.keys()]);
  const isFree = (k: string) => free.some((f) => k === f || k.startsWith(f + '.'));
  const out: { key: string; a: string | undefined; b: string | undefined }[] = [];
  // an option added after a run was written is absent from it: absent equals that option's default
  const isConfig = (x: unknown) => isObj(x) && isObj(x['train']);
  const ds = (isObj(a) && a['dataset']) || (isObj(b) && b['dataset']) || 'phantom';
  const dflt =
    isConfig(a) && isConfig(b) && DATASETS.includes(ds as DatasetKind)
      ? flatten(defaultConfig(ds as DatasetKind))
      : new Map<string, string>();
  for (const k of [...keys].sort()) {
    if (isFree(k)) continue;
    const va = fa.get(k) ?? dflt.get(k),
      vb = fb.get(k) ?? dflt.get(k);
    if (va !== vb) out.push({ key: k, a: fa.get(k), b: fb.get(k) });
  }
  return out;
}

/** A UTC timestamp usable as a folder name: 2025-01-31T12-34-56Z. */
export function timestamp(d = new Date()): string {
  return d
    .toISOString()
    .replace(/\.\d+Z$/, 'Z')
    .replace(/:/g, '-');
}
