/**
 * Training checkpoints: one safetensors file holding the weights, the
 * optimizer state, the RNG states and the step (small JSON values in the
 * `__metadata__` map), plus a JSON sidecar with the effective config for
 * people and tools. Both are written atomically (temporary file, fsync,
 * rename, directory fsync): a crash at any point leaves the previous
 * checkpoint readable.
 *
 * Tensor names: `param/<parameter name>`, `optim/<slot>/<parameter name>`.
 * Metadata: `largo.format`, `largo.step`, `largo.method`, `largo.config`,
 * `largo.model` (what defines the architecture), `largo.rng`, `largo.optim`
 * (optimizer scalars), `largo.extra` (history, best score).
 */
import { readFileSync, statSync } from './node-fs.js';
import { writeFileAtomic, type FaultHooks } from './files.js';
import {
  decodeSafetensors,
  encodeSafetensors,
  SafetensorsError,
  engine,
  tensor,
  type StEntry,
  type Tensor,
} from '@largo/core';
import { configDiff } from './config.js';

export const CHECKPOINT_FORMAT = 'largo-checkpoint/1';

export class CheckpointError extends Error {
  constructor(
    readonly file: string,
    message: string,
    readonly keys: string[] = [],
  ) {
    super(`checkpoint ${file}: ${message}`);
    this.name = 'CheckpointError';
  }
}

export { writeFileAtomic, type FaultHooks } from './files.js';

/** What defines the architecture; a checkpoint only loads into a model with the same description. */
export interface ModelDescriptor {
  method: string;
  modalities: string[];
  classes: number;
  [k: string]: unknown;
}

export interface CheckpointData {
  step: number;
  method: string;
  config: unknown;
  model: ModelDescriptor;
  /** parameter name → values (float32) and shape */
  params: Map<string, { shape: number[]; data: Float32Array }>;
  /** optimizer tensors: slot → parameter name → values */
  optim: Map<string, Map<string, { shape: number[]; data: Float32Array }>>;
  optimScalars: Record<string, unknown>;
  rng: Record<string, unknown>;
  extra: Record<string, unknown>;
}

export interface SaveInput {
  step: number;
  method: string;
  config: unknown;
  model: ModelDescriptor;
  params: readonly [string, Tensor | HostTensor][];
  /** optimizer state: slot → [parameter name, tensor or array][] */
  optim?: Record<string, readonly [string, Tensor | Float32Array | HostTensor][]>;
  optimScalars?: Record<string, unknown>;
  rng?: Record<string, unknown>;
  extra?: Record<string, unknown>;
}

/** Values already read back from a device. */
export interface HostTensor {
  readonly shape: number[];
  readonly data: Float32Array;
}

function isHost(x: unknown): x is HostTensor {
  return (
    typeof x === 'object' &&
    x !== null &&
    (x as HostTensor).data instanceof Float32Array &&
    Array.isArray((x as HostTensor).shape)
  );
}

function f32(x: Tensor | Float32Array | HostTensor): { data: Float32Array; shape: number[] } {
  if (x instanceof Float32Array) return { data: x, shape: [x.length] };
  if (isHost(x)) return { data: x.data, shape: [...x.shape] };
  const d = x.dataSync();
  return { data: d instanceof Float32Array ? d : Float32Array.from(d as ArrayLike<number>), shape: [...x.shape] };
}

/** Where and what the non-finite values of `data` are, or null when all are finite. */
export function nonFiniteSummary(data: ArrayLike<number>): string | null {
  let count = 0,
    first = -1;
  for (let i = 0; i < data.length; i++)
    if (!Number.isFinite(data[i]!)) {
      count++;
      if (first < 0) first = i;
    }
  return count ? `${count} non-finite value(s) of ${data.length} (first: ${data[first]} at index ${first})` : null;
}

/** A checkpoint whose weights or optimizer state hold NaN or ±Inf (written or read). */
export class NonFiniteCheckpointError extends CheckpointError {
  constructor(
    file: string,
    readonly tensorName: string,
    message: string,
  ) {
    super(file, message, [tensorName]);
    this.name = 'CheckpointError';
  }
}

/** Encodes a checkpoint to safetensors bytes; refuses tensors with NaN or ±Inf (`file` names the target in the error). */
export function encodeCheckpoint(s: SaveInput, file = '(checkpoint)'): Uint8Array {
  const entries: Record<string, StEntry> = {};
  const add = (key: string, t: Tensor | Float32Array | HostTensor) => {
    const { data, shape } = f32(t);
    const bad = nonFiniteSummary(data);
    if (bad)
      throw new NonFiniteCheckpointError(
        file,
        key,
        `refusing to write tensor '${key}' at step ${s.step}: it holds ${bad}`,
      );
    entries[key] = { dtype: 'F32', shape, data };
  };
  for (const [name, t] of s.params) add(`param/${name}`, t);
  for (const [slot, list] of Object.entries(s.optim ?? {})) {
    for (const [name, t] of list) add(`optim/${slot}/${name}`, t);
  }
  const meta: Record<string, string> = {
    'largo.format': CHECKPOINT_FORMAT,
    'largo.step': String(s.step),
    'largo.method': s.method,
    'largo.config': JSON.stringify(s.config),
    'largo.model': JSON.stringify(s.model),
    'largo.rng': JSON.stringify(s.rng ?? {}),
    'largo.optim': JSON.stringify(s.optimScalars ?? {}),
    'largo.extra': JSON.stringify(s.extra ?? {}),
  };
  return encodeSafetensors(entries, meta);
}

/** Writes `<base>.safetensors` then `<base>.json` (config + summary), each atomically. */
export function saveCheckpoint(base: string, s: SaveInput, hooks: FaultHooks = {}): void {
  writeFileAtomic(`${base}.safetensors`, encodeCheckpoint(s, `${base}.safetensors`), hooks);
  const sidecar = {
    format: CHECKPOINT_FORMAT,
    step: s.step,
    method: s.method,
    model: s.model,
    config: s.config,
    extra: s.extra ?? {},
  };
  writeFileAtomic(`${base}.json`, JSON.stringify(sidecar, null, 2) + '\n');
}

async function toHost(x: Tensor | Float32Array | HostTensor): Promise<Tensor | Float32Array | HostTensor> {
  if (x instanceof Float32Array || isHost(x) || x.backend.name === 'cpu') return x;
  const d = await x.data();
  return { shape: [...x.shape], data: d instanceof Float32Array ? d : Float32Array.from(d as ArrayLike<number>) };
}

/**
 * `saveCheckpoint` for tensors on any backend: device tensors are read back
 * (asynchronously) first, then the files are written as on the CPU. A failed
 * read (a lost device) writes nothing, so the previous checkpoint stays.
 */
export async function saveCheckpointAsync(base: string, s: SaveInput, hooks: FaultHooks = {}): Promise<void> {
  // all reads in flight at once: one round trip to the device instead of one per tensor
  const params = await Promise.all(
    s.params.map(async ([n, t]) => [n, (await toHost(t)) as Tensor | HostTensor] as [string, Tensor | HostTensor]),
  );
  const optim: Record<string, [string, Tensor | Float32Array | HostTensor][]> = {};
  for (const [slot, list] of Object.entries(s.optim ?? {})) {
    optim[slot] = await Promise.all(
      list.map(async ([n, t]) => [n, await toHost(t)] as [string, Tensor | Float32Array | HostTensor]),
    );
  }
  saveCheckpoint(base, { ...s, params, optim }, hooks);
}

function parseMeta(file: string, meta: Record<string, string>, key: string): unknown {
  const v = meta[key];
  if (v === undefined) throw new CheckpointError(file, `missing metadata '${key}' (not a LARGO checkpoint?)`, [key]);
  try {
    return JSON.parse(v);
  } catch {
    throw new CheckpointError(file, `metadata '${key}' is not valid JSON`, [key]);
  }
}

/** Decodes checkpoint bytes; `file` names the source in errors. */
export function decodeCheckpoint(bytes: Uint8Array, file: string): CheckpointData {
  let dec;
  try {
    dec = decodeSafetensors(bytes, file);
  } catch (e) {
    if (e instanceof SafetensorsError) {
      const what =
        e.code === 'TRUNCATED' || e.code === 'SIZE_MISMATCH' || e.code === 'OFFSETS' || e.code === 'HEADER_LENGTH'
          ? 'is truncated or corrupt'
          : 'is not a valid safetensors file';
      throw new CheckpointError(
        file,
        `${what} (${bytes.length} bytes): ${e.message.replace(/^safetensors: [^:]*: /, '')}`,
      );
    }
    throw e;
  }
  const meta = dec.metadata;
  if (meta['largo.format'] !== CHECKPOINT_FORMAT) {
    throw new CheckpointError(
      file,
      `unknown format '${meta['largo.format'] ?? '(none)'}', expected '${CHECKPOINT_FORMAT}'`,
      ['largo.format'],
    );
  }
  const step = Number(meta['largo.step']);
  if (!Number.isInteger(step) || step < 0)
    throw new CheckpointError(file, `bad step '${meta['largo.step']}'`, ['largo.step']);
  const params = new Map<string, { shape: number[]; data: Float32Array }>();
  const optim = new Map<string, Map<string, { shape: number[]; data: Float32Array }>>();
  for (const [name, e] of Object.entries(dec.tensors)) {
    if (e.dtype !== 'F32' || !(e.data instanceof Float32Array))
      throw new CheckpointError(file, `tensor '${name}' has dtype ${e.dtype}, expected F32`, [name]);
    const bad = nonFiniteSummary(e.data);
    if (bad)
      throw new NonFiniteCheckpointError(
        file,
        name,
        `tensor '${name}' holds ${bad}; the weights are unusable (saved from a diverged run?)`,
      );
    if (name.startsWith('param/')) params.set(name.slice(6), { shape: e.shape, data: e.data });
    else if (name.startsWith('optim/')) {
      const rest = name.slice(6);
      const i = rest.indexOf('/');
      const slot = rest.slice(0, i),
        pname = rest.slice(i + 1);
      let m = optim.get(slot);
      if (!m) optim.set(slot, (m = new Map()));
      m.set(pname, { shape: e.shape, data: e.data });
    } else throw new CheckpointError(file, `unexpected tensor '${name}'`, [name]);
  }
  return {
    step,
    method: meta['largo.method'] ?? '',
    config: parseMeta(file, meta, 'largo.config'),
    model: parseMeta(file, meta, 'largo.model') as ModelDescriptor,
    params,
    optim,
    optimScalars: parseMeta(file, meta, 'largo.optim') as Record<string, unknown>,
    rng: parseMeta(file, meta, 'largo.rng') as Record<string, unknown>,
    extra: parseMeta(file, meta, 'largo.extra') as Record<string, unknown>,
  };
}

/** Largest checkpoint file read (bigger ones are refused before reading): 4 GiB. */
export const MAX_CHECKPOINT_BYTES = 4 * 1024 ** 3;

function statOrNull(p: string) {
  try {
    return statSync(p);
  } catch {
    return null;
  }
}

/** Reads `<path>` (a .safetensors file, or a base name without the extension). */
export function loadCheckpoint(path: string): CheckpointData {
  // the path as given when it exists; a base name gets .safetensors; errors name what the user typed
  const st = statOrNull(path);
  const file = st || path.endsWith('.safetensors') ? path : `${path}.safetensors`;
  const fst = st ?? statOrNull(file);
  if (!fst)
    throw new CheckpointError(
      path,
      path === file || /\.[A-Za-z0-9]+$/.test(path) ? 'does not exist' : `does not exist (nor does ${file})`,
    );
  if (fst.isDirectory()) throw new CheckpointError(file, 'is a folder, not a .safetensors checkpoint');
  if (!fst.isFile()) throw new CheckpointError(file, 'is not a regular file');
  if (fst.size > MAX_CHECKPOINT_BYTES)
    throw new CheckpointError(
      file,
      `is ${fst.size} bytes, more than the ${MAX_CHECKPOINT_BYTES}-byte limit for checkpoints`,
    );
  let buf: Buffer;
  try {
    buf = readFileSync(file);
  } catch (e) {
    throw new CheckpointError(file, `cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  return decodeCheckpoint(new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength), file);
}

/**
 * Checks that a checkpoint fits the model being built and the config being
 * run: same model descriptor, same parameter names and shapes, and the same
 * config except for keys that may change on resume. Errors list every
 * mismatching key with both values.
 */
export function checkCompatible(
  file: string,
  ck: CheckpointData,
  model: ModelDescriptor,
  params: readonly [string, Tensor][],
  config?: unknown,
): void {
  const problems: string[] = [];
  const keys: string[] = [];
  for (const d of configDiff(ck.model, model, [])) {
    keys.push(`model.${d.key}`);
    problems.push(`model.${d.key}: checkpoint ${d.a ?? '(absent)'}, current ${d.b ?? '(absent)'}`);
  }
  if (config !== undefined) {
    for (const d of configDiff(ck.config, config)) {
      keys.push(d.key);
      problems.push(`${d.key}: checkpoint ${d.a ?? '(absent)'}, current ${d.b ?? '(absent)'}`);
    }
  }
  const have = new Set(ck.params.keys());
  for (const [name, t] of params) {
    const e = ck.params.get(name);
    if (!e) {
      keys.push(`param/${name}`);
      problems.push(`param/${name}: missing from the checkpoint`);
      continue;
    }
    have.delete(name);
    if (e.shape.join(',') !== t.shape.join(',')) {
      keys.push(`param/${name}`);
      problems.push(`param/${name}: checkpoint shape [${e.shape.join(', ')}], model [${t.shape.join(', ')}]`);
    }
  }
  for (const name of have) {
    keys.push(`param/${name}`);
    problems.push(`param/${name}: in the checkpoint but not in the model`);
  }
  if (problems.length) {
    const shown = problems.slice(0, 20).join('; ') + (problems.length > 20 ? `; and ${problems.length - 20} more` : '');
    throw new CheckpointError(
      file,
      `does not match the current configuration (${problems.length} mismatching key(s)): ${shown}`,
      keys,
    );
  }
}

/** Copies the checkpoint's parameter values into the model's tensors (shapes must already match). */
export function restoreParams(ck: CheckpointData, params: readonly [string, Tensor][]): void {
  const e = engine();
  for (const [name, t] of params) {
    const src = ck.params.get(name)!;
    const tmp = tensor(src.data, t.shape, 'float32');
    e.assign(t, tmp);
    tmp.dispose();
  }
}
