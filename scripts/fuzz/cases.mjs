// Case generators and targets of scripts/fuzz/fuzz.mjs (runs in the child process).
import { mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

const dist = (p) => new URL(`../../packages/${p}`, import.meta.url).href;
const core = await import(dist('core/dist/index.js'));
const ds = await import(dist('datasets/dist/index.js'));
const largo = await import(dist('largo/dist/index.js'));
const { main } = await import(dist('largo/dist/cli.js'));
const { exitCodeFor } = await import(dist('largo/dist/cli/common.js'));

/** Errors that are the clear, named refusals the CLI turns into exit code 2. */
const CLEAR = new Set([
  'NiftiError',
  'SafetensorsError',
  'CheckpointError',
  'ConfigError',
  'UsageError',
  'InputError',
  'DataError',
  'FileWriteError',
  'LabelError',
  'SlidingWindowError',
]);

// ------------------------------------------------------------------ seeded randomness

function mulberry32(a) {
  return () => {
    a |= 0;
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
function hash(...xs) {
  let h = 2166136261;
  for (const x of xs)
    for (const c of String(x)) {
      h ^= c.charCodeAt(0);
      h = Math.imul(h, 16777619);
    }
  return h >>> 0;
}
class Rng {
  constructor(...key) {
    this.f = mulberry32(hash(...key));
  }
  next() {
    return this.f();
  }
  int(lo, hi) {
    return lo + Math.floor(this.f() * (hi - lo + 1));
  }
  bool(p = 0.5) {
    return this.f() < p;
  }
  pick(a) {
    return a[Math.floor(this.f() * a.length)];
  }
}

const INTS = [
  0,
  1,
  -1,
  2,
  3,
  7,
  255,
  256,
  347,
  348,
  349,
  351,
  352,
  353,
  540,
  32767,
  -32768,
  65535,
  2 ** 31 - 1,
  -(2 ** 31),
  1e6,
];
const FLOATS = [
  0,
  -0,
  1,
  -1,
  0.5,
  1e-30,
  1e30,
  3.4e38,
  -3.4e38,
  NaN,
  Infinity,
  -Infinity,
  352,
  353,
  352.5,
  1e9,
  2 ** 31,
];

// ------------------------------------------------------------------ NIfTI

const NIFTI_DTYPES = ['uint8', 'int16', 'int32', 'float32', 'float64', 'int8', 'uint16', 'uint32', 'int64', 'uint64'];
const CTORS = {
  uint8: Uint8Array,
  int16: Int16Array,
  int32: Int32Array,
  float32: Float32Array,
  float64: Float64Array,
  int8: Int8Array,
  uint16: Uint16Array,
  uint32: Uint32Array,
  int64: BigInt64Array,
  uint64: BigUint64Array,
};
// header fields (offset, kind): sizeof_hdr, dims, datatype, bitpix, pixdim, vox_offset, scl, slice, qform/sform, quatern, srow, magic, extension flag
const FIELDS = [
  [0, 'i32'],
  [40, 'i16'],
  [42, 'i16'],
  [44, 'i16'],
  [46, 'i16'],
  [48, 'i16'],
  [54, 'i16'],
  [70, 'i16'],
  [72, 'i16'],
  [76, 'f32'],
  [80, 'f32'],
  [84, 'f32'],
  [88, 'f32'],
  [108, 'f32'],
  [112, 'f32'],
  [116, 'f32'],
  [120, 'i16'],
  [252, 'i16'],
  [254, 'i16'],
  [256, 'f32'],
  [268, 'f32'],
  [280, 'f32'],
  [296, 'f32'],
  [312, 'f32'],
  [344, 'u8'],
  [345, 'u8'],
  [347, 'u8'],
  [348, 'u8'],
  [352, 'i32'],
];

function niftiCase(r) {
  const ndim = r.int(1, 5);
  const dims = Array.from({ length: ndim }, () => r.int(1, ndim > 3 ? 2 : 6));
  const dtype = r.pick(NIFTI_DTYPES);
  const n = dims.reduce((a, b) => a * b, 1);
  const data = new CTORS[dtype](n);
  for (let i = 0; i < n; i++)
    data[i] =
      dtype.endsWith('64') && dtype !== 'float64'
        ? BigInt(r.int(0, 100))
        : r.int(0, 100) / (dtype.startsWith('float') ? 7 : 1);
  const img = ds.createNifti(data, dims);
  let bytes = ds.encodeNifti(img, { littleEndian: r.bool(0.8) });
  const le = new DataView(bytes.buffer, bytes.byteOffset).getInt32(0, true) === 348;
  let mutated = false;
  const nm = r.pick([0, 0, 1, 1, 2, 3, 5]);
  for (let k = 0; k < nm; k++) {
    mutated = true;
    const what = r.int(0, 9);
    if (what <= 4) {
      const [off, kind] = r.pick(FIELDS);
      if (off + 4 > bytes.length) continue;
      const dv = new DataView(bytes.buffer, bytes.byteOffset);
      if (kind === 'i32') dv.setInt32(off, r.pick(INTS) | 0, le);
      else if (kind === 'i16') dv.setInt16(off, r.pick(INTS), le);
      else if (kind === 'f32') dv.setFloat32(off, r.pick(FLOATS), le);
      else bytes[off] = r.int(0, 255);
    } else if (what === 5) bytes[r.int(0, bytes.length - 1)] ^= 1 << r.int(0, 7);
    else if (what === 6) bytes = bytes.slice(0, r.int(0, bytes.length));
    else if (what === 7) {
      const extra = new Uint8Array(r.int(1, 64)).map(() => r.int(0, 255));
      const b = new Uint8Array(bytes.length + extra.length);
      b.set(bytes);
      b.set(extra, bytes.length);
      bytes = b;
    } else if (what === 8 && bytes.length > 356) {
      bytes[348] = 1;
      new DataView(bytes.buffer, bytes.byteOffset).setInt32(352, r.pick([0, 8, 16, 32, -16, 1e6]), le);
    } else bytes = bytes.slice(0, Math.min(bytes.length, r.pick([0, 1, 2, 100, 347, 348, 351, 352])));
  }
  let gz = false;
  if (r.bool(0.5)) {
    gz = true;
    bytes = new Uint8Array(gzipSync(bytes, { level: r.pick([0, 1, 9]) }));
    const fr = r.int(0, 7);
    if (fr === 1) {
      bytes = bytes.slice(0, r.int(0, bytes.length));
      mutated = true;
    } // truncated stream
    else if (fr === 2) {
      bytes[r.int(10, bytes.length - 1)] ^= 1 << r.int(0, 7);
      mutated = true;
    } // corrupt block or CRC
    else if (fr === 3) {
      const b = new Uint8Array(bytes.length * 2);
      b.set(bytes);
      b.set(bytes, bytes.length);
      bytes = b;
      mutated = true;
    } // two members
    else if (fr === 4) {
      bytes[3] = r.int(0, 255);
      mutated = true;
    } // header flags
    else if (fr === 5) {
      const b = new Uint8Array(bytes.length + 8);
      b.set(bytes);
      bytes = b;
      mutated = true;
    } // trailing zeros
    else if (fr === 6) {
      bytes = new Uint8Array(
        gzipSync(Buffer.concat([Buffer.from(bytes.slice(0, 0)), Buffer.alloc(r.pick([10, 400, 100000]))])),
      );
      mutated = true;
    } // zeros only
  }
  return {
    run: () => {
      const out = ds.parseNifti(bytes, gz ? 'fuzz.nii.gz' : 'fuzz.nii');
      if (out.data.length !== out.header.dims.reduce((a, b) => a * b, 1))
        throw new Error(
          `accepted a file whose data length ${out.data.length} disagrees with dims [${out.header.dims}]`,
        );
      if (!mutated) {
        for (let i = 0; i < n; i++) if (out.data[i] !== data[i]) throw new Error(`round trip changed voxel ${i}`);
      }
      if (out.header.dims.length === 3) ds.niftiToVolume(out, 'fuzz');
      ds.niftiValues(out);
    },
    mustAccept: !mutated,
  };
}

// ------------------------------------------------------------------ safetensors

const ST_DTYPES = ['F64', 'F32', 'F16', 'BF16', 'I64', 'I32', 'I16', 'I8', 'U8', 'U16', 'U32', 'U64', 'BOOL'];
const ST_SIZE = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  U16: 2,
  U32: 4,
  U64: 8,
  BOOL: 1,
};
const JSON_JUNK = [
  null,
  true,
  -1,
  0,
  1.5,
  2 ** 53,
  1e300,
  '',
  'F32',
  'x',
  [],
  [1],
  [-1, 2],
  [3, 1],
  [0, 1e20],
  {},
  { a: 1 },
  '[]',
];

function stBytes(header, data, r) {
  let text = JSON.stringify(header);
  if (r.bool(0.05)) text += ' '.repeat(r.int(0, 9));
  if (r.bool(0.03)) text = text.slice(0, r.int(0, text.length));
  if (r.bool(0.03))
    text = text.replace(r.pick(['{', '"', ':', ',', ']']), r.pick(['', '\u0000', '\\', '\uffff', '}}']));
  const h = new TextEncoder().encode(text);
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

const checkpoints = new Map();
function baseCheckpoint(k) {
  let b = checkpoints.get(k);
  if (b) return b;
  const r = new Rng('checkpoint', k);
  const params = [];
  for (let j = r.int(1, 3); j > 0; j--) {
    const shape = Array.from({ length: r.int(1, 3) }, () => r.int(1, 4));
    params.push([
      `w${j}`,
      core.tensor(
        Float32Array.from({ length: shape.reduce((a, c) => a * c, 1) }, () => r.next() - 0.5),
        shape,
        'float32',
      ),
    ]);
  }
  b = largo.encodeCheckpoint({
    step: r.int(0, 100),
    method: 'largo',
    config: {},
    model: { method: 'largo', modalities: ['a'], classes: 1 },
    params,
  });
  for (const [, p] of params) p.dispose();
  checkpoints.set(k, b);
  return b;
}

function safetensorsCase(r) {
  let bytes;
  let mutated = r.bool(0.8);
  if (r.bool(0.5)) {
    // a real checkpoint (one of 32 made once, with their own seeded shapes), then mutations
    bytes = baseCheckpoint(r.int(0, 31)).slice();
    if (mutated) {
      const dv = new DataView(bytes.buffer, bytes.byteOffset);
      const hl = Number(dv.getBigUint64(0, true));
      const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + hl)));
      const data = bytes.subarray(8 + hl);
      const keys = Object.keys(header);
      const op = r.int(0, 7);
      const key = r.pick(keys);
      if (op === 0) bytes = bytes.slice(0, r.int(0, bytes.length));
      else if (op === 1) bytes[r.int(0, bytes.length - 1)] ^= 1 << r.int(0, 7);
      else if (op === 2) dv.setBigUint64(0, BigInt(r.pick([0, 1, hl - 1, hl + 1, 2 ** 40, bytes.length])), true);
      else if (op === 3 && key === '__metadata__')
        header[key][r.pick(Object.keys(header[key]))] = r.pick(['', '{', 'null', '[]', '"x"', '-1', '1e400', 'NaN']);
      else if (op === 4 && key !== '__metadata__') header[key].dtype = r.pick([...ST_DTYPES, 'F8', '', 7]);
      else if (op === 5 && key !== '__metadata__')
        header[key].shape = r.pick([[], [0], [-1], [2 ** 40], [1.5], ['2'], [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]]);
      else if (op === 6 && key !== '__metadata__')
        header[key].data_offsets = r.pick([[0, 0], [4, 0], [0, 1e12], [-4, 0], [0, data.length + 4], [1, 5], null]);
      else if (op === 7) {
        for (let i = 0; i < data.length; i += 4)
          if (r.bool(0.1)) new DataView(data.buffer, data.byteOffset + i).setFloat32(0, r.pick(FLOATS), true);
      }
      if (op >= 3 && op <= 6) bytes = stBytes(header, data, r);
    }
  } else {
    // a hand-made file of any dtype, mutated at the JSON level
    const header = {};
    let off = 0;
    const parts = [];
    for (let k = r.int(0, 4); k > 0; k--) {
      const dtype = r.pick(ST_DTYPES);
      const shape = Array.from({ length: r.int(0, 3) }, () => r.int(0, 4));
      const nbytes = shape.reduce((a, b) => a * b, 1) * ST_SIZE[dtype];
      const buf = new Uint8Array(nbytes).map(() => r.int(0, 255));
      if (dtype === 'BOOL')
        buf.forEach((_, i) => {
          buf[i] &= 1;
        });
      header[`t${k}`] = { dtype, shape, data_offsets: [off, off + nbytes] };
      parts.push(buf);
      off += nbytes;
    }
    if (r.bool(0.5)) header.__metadata__ = { a: 'b' };
    const data = new Uint8Array(off);
    let at = 0;
    for (const p of parts) {
      data.set(p, at);
      at += p.length;
    }
    if (mutated) {
      const keys = Object.keys(header);
      for (let m = r.int(1, 3); m > 0; m--) {
        const key = keys.length ? r.pick(keys) : 'x';
        const field = r.pick(['dtype', 'shape', 'data_offsets', 'extra', 'whole']);
        if (field === 'whole') header[key] = structuredClone(r.pick(JSON_JUNK));
        else if (header[key] && typeof header[key] === 'object')
          header[key][field] = structuredClone(r.pick(JSON_JUNK));
      }
    }
    bytes = stBytes(header, data, r);
    if (r.bool(0.1)) {
      bytes = bytes.slice(0, r.int(0, bytes.length));
      mutated = true;
    }
  }
  return {
    run: () => {
      let decoded = null;
      try {
        decoded = core.decodeSafetensors(bytes, 'fuzz.safetensors');
      } catch (e) {
        if (e?.name !== 'SafetensorsError') throw e;
      }
      if (decoded)
        for (const [name, e] of Object.entries(decoded.tensors)) {
          const n = e.shape.reduce((a, b) => a * b, 1);
          if (e.data.length !== n)
            throw new Error(`accepted tensor ${name} with ${e.data.length} values for shape [${e.shape}]`);
        }
      largo.decodeCheckpoint(bytes, 'fuzz.safetensors');
    },
    mustAccept: false,
  };
}

// ------------------------------------------------------------------ config JSON

const CONFIG_VALUES = [
  null,
  true,
  false,
  0,
  -1,
  1,
  2,
  0.25,
  4,
  5,
  1e9,
  -1e9,
  1e308,
  0.1,
  1.5,
  '',
  'x',
  '..',
  'a/b',
  'sgd',
  'adam',
  'phantom',
  'brats',
  'largo',
  'regions',
  'labels',
  'skip',
  'error',
  [],
  [1],
  [8, 8, 8],
  [16, 16, 16],
  [0.5, 0.25, 0.25],
  [1, 0, 0],
  [-1, 1, 1],
  ['largo'],
  ['largo', 'largo'],
  ['magic'],
  {},
  { a: 1 },
  [[1]],
  'NaN',
];

function leaves(o, prefix = '') {
  const out = [];
  for (const [k, v] of Object.entries(o)) {
    const p = prefix ? `${prefix}.${k}` : k;
    if (v && typeof v === 'object' && !Array.isArray(v)) out.push(p, ...leaves(v, p));
    else out.push(p);
  }
  return out;
}
function setPath(o, path, v) {
  const ks = path.split('.');
  let cur = o;
  for (const k of ks.slice(0, -1)) {
    if (!cur[k] || typeof cur[k] !== 'object') cur[k] = {};
    cur = cur[k];
  }
  cur[ks[ks.length - 1]] = v;
}

let tmpRoot = null;
function tmpDir() {
  if (!tmpRoot) {
    tmpRoot = mkdtempSync(join(tmpdir(), 'largo-fuzz-'));
    process.on('exit', () => rmSync(tmpRoot, { recursive: true, force: true }));
  }
  return tmpRoot;
}

const defaults = Object.fromEntries(['phantom', 'brats', 'isles', 'avmnist'].map((d) => [d, largo.defaultConfig(d)]));

function configCase(r) {
  const cfg = structuredClone(defaults[r.pick(['phantom', 'brats', 'isles', 'avmnist'])]);
  const paths = leaves(cfg);
  const nm = r.int(0, 4);
  for (let k = 0; k < nm; k++) {
    const op = r.int(0, 5);
    if (op <= 2) setPath(cfg, r.pick(paths), structuredClone(r.pick(CONFIG_VALUES)));
    else if (op === 3)
      setPath(cfg, `${r.pick(paths)}${r.bool() ? '.x' : 'x'}`, structuredClone(r.pick(CONFIG_VALUES))); // unknown key
    else if (op === 4) {
      const p = r.pick(paths).split('.');
      let cur = cfg;
      for (const k of p.slice(0, -1)) cur = cur?.[k];
      if (cur && typeof cur === 'object') delete cur[p[p.length - 1]];
    } else setPath(cfg, r.pick(paths), structuredClone(r.pick(CONFIG_VALUES)));
  }
  let text = JSON.stringify(cfg);
  const tx = r.int(0, 9);
  // the file path (read + JSON parse) for the text mutations and some intact files; the object itself otherwise
  const viaFile = tx <= 2 || tx === 9;
  if (tx === 0) text = text.slice(0, r.int(0, text.length));
  else if (tx === 1) text = r.pick(['[]', 'null', '1', '"x"', '', '{"a":', '\uFEFF{}', '{"seed": 1e999}']);
  else if (tx === 2) {
    const i = r.int(0, text.length);
    text = text.slice(0, i) + r.pick(['}', ',', '"', 'NaN', '\\u0000', ':']) + text.slice(i);
  }
  const overrides = {};
  for (let k = r.int(0, 2); k > 0; k--)
    overrides[r.bool(0.8) ? r.pick(paths) : 'no.such.key'] = structuredClone(r.pick(CONFIG_VALUES));
  const file = join(tmpDir(), 'config.json');
  return {
    run: () => {
      let obj = cfg;
      if (viaFile) {
        writeFileSync(file, text);
        obj = largo.readConfigFile(file);
      }
      const c = largo.resolveConfig(obj, overrides, file);
      largo.validateConfig(c);
    },
    mustAccept: false,
  };
}

// ------------------------------------------------------------------ CLI argument vectors

let pool = null;
function argvPool() {
  if (pool) return pool;
  const d = tmpDir();
  mkdirSync(join(d, 'folder'), { recursive: true });
  writeFileSync(join(d, 'junk.nii.gz'), 'not a nifti');
  writeFileSync(join(d, 'junk.safetensors'), new Uint8Array([8, 0, 0, 0, 0, 0, 0, 0, 123, 125]));
  writeFileSync(join(d, 'small.nii'), ds.encodeNifti(ds.createNifti(new Float32Array(8).fill(1), [2, 2, 2])));
  writeFileSync(join(d, 'cfg.json'), '{"seed": 3}');
  writeFileSync(join(d, 'bad.json'), '{"train": {"stpes": 3}}');
  mkdirSync(join(d, 'run'), { recursive: true });
  writeFileSync(join(d, 'run', 'config.json'), '{"config": {"seed": 1, "train": {"steps": 1}}}');
  mkdirSync(join(d, 'fx'), { recursive: true });
  writeFileSync(
    join(d, 'fx', 'manifest.json'),
    '{"version": 1, "cases": [{"name": "a", "op": "nope", "inputs": [], "outputs": ["y"]}]}',
  );
  writeFileSync(join(d, 'fx', 'tensors.safetensors'), new Uint8Array([2, 0, 0, 0, 0, 0, 0, 0, 123, 125]));
  const paths = [
    '',
    '.',
    '..',
    '/',
    '/dev/null',
    '/dev/zero',
    '/proc/self',
    '/proc/largo-fuzz/x',
    '/nonexistent',
    'a/../..',
    join(d, 'folder'),
    join(d, 'junk.nii.gz'),
    join(d, 'junk.safetensors'),
    join(d, 'small.nii'),
    join(d, 'cfg.json'),
    join(d, 'bad.json'),
    join(d, 'run'),
    join(d, 'fx'),
    join(d, 'out', 'o.nii.gz'),
    join(d, 'out', 'o.safetensors'),
    join(d, 'nope.nii.gz'),
  ];
  const words = [
    '0',
    '-1',
    '1',
    '0.5',
    '1e-9',
    '1e9',
    'NaN',
    'Infinity',
    '',
    ' ',
    '..',
    'a/b',
    'largo',
    'largo,magic',
    'dropout',
    'flair',
    't1+t2',
    'flair,t1ce',
    'x=1',
    '=',
    'train.lr=0.1',
    'train.steps=[1]',
    'seed={"a":1}',
    'model.depth=1',
    'sgd',
    'brats',
    'avmnist',
    'last',
    'best',
    '8,8,8',
    '8',
    'cpu',
    'webgpu',
    'all',
  ];
  const flags = [
    '--config',
    '--set',
    '--dataset',
    '--data',
    '--out',
    '--run-name',
    '--seed',
    '--methods',
    '--steps',
    '--batch-size',
    '--patch-size',
    '--lr',
    '--optimizer',
    '--val-every',
    '--checkpoint-every',
    '--base-features',
    '--depth',
    '--rank-multiplier',
    '--mirror',
    '--resume',
    '--no-eval',
    '--quiet',
    '--plain',
    '--force',
    '--run',
    '--checkpoint',
    '--methods',
    '--no-hd95',
    '--step',
    '--subset',
    '--flair',
    '--t1',
    '--t1ce',
    '--t2',
    '--t1post',
    '--input',
    '--case',
    '--per-layer',
    '--per-parameter',
    '--json',
    '--fixtures',
    '--backend',
    '--bogus',
    '-h',
    '-x',
    '--',
    '--help',
  ];
  pool = { paths, words, flags, d };
  return pool;
}

function argvCase(r) {
  const p = argvPool();
  const cmd = r.pick([
    'train',
    'train',
    'eval',
    'predict',
    'predict',
    'export',
    'params',
    'inspect',
    'inspect',
    'audit',
    'help',
    'frobnicate',
    '--version',
    '',
  ]);
  const argv = cmd ? [cmd] : [];
  for (let k = r.int(0, 6); k > 0; k--) {
    const f = r.pick(p.flags);
    const form = r.int(0, 5);
    const v = r.bool(0.5) ? r.pick(p.paths) : r.pick(p.words);
    if (form === 0) argv.push(f);
    else if (form === 1 && f.startsWith('--')) argv.push(`${f}=${v}`);
    else if (form === 2) argv.push(v);
    else argv.push(f, v);
  }
  // never start real work: training always gets an invalid step count (repeatable --set, so no repeat error),
  // evaluation, prediction and audits only ever see broken runs, checkpoints and fixtures
  if (cmd === 'train') argv.push('--set', 'train.steps=0');
  if (cmd === 'params' && r.bool(0.9)) argv.push('--set', 'model.depth=0');
  return {
    run: async () => {
      const code = await main(argv);
      if (code === 2) throw Object.assign(new Error('exit 2'), { name: 'UsageError' });
      if (code === 1)
        throw new Error(`exit code 1 (internal error) for: largo ${argv.map((a) => JSON.stringify(a)).join(' ')}`);
      if (![0, 2].includes(code)) throw new Error(`unexpected exit code ${code} for: largo ${argv.join(' ')}`);
    },
    describe: () => `largo ${argv.map((a) => JSON.stringify(a)).join(' ')}`,
    mustAccept: false,
  };
}

// ------------------------------------------------------------------ runner

const GENERATORS = { nifti: niftiCase, safetensors: safetensorsCase, config: configCase, argv: argvCase };

function quietConsole() {
  const saved = { log: console.log, error: console.error, warn: console.warn, write: process.stderr.write };
  console.log = console.error = console.warn = () => undefined;
  process.stderr.write = () => true;
  return () => {
    console.log = saved.log;
    console.error = saved.error;
    console.warn = saved.warn;
    process.stderr.write = saved.write;
  };
}

/**
 * Runs cases [from, from+count). Before each case its index goes to the
 * heartbeat file (the parent reads it to name a case that hangs or crashes);
 * counts go to stdout every 250 cases, failures at once.
 */
export async function runCases(format, seed, from, count, o) {
  const gen = GENERATORS[format];
  const out = (m) => process.stdout.write(JSON.stringify(m) + '\n');
  const beat = o.heartbeat ? openSync(o.heartbeat, 'w') : -1;
  let batch = { t: 'batch', n: 0, ok: 0, refused: {}, maxMs: 0, rss: 0, upTo: from - 1 };
  const flush = () => {
    if (batch.n) out(batch);
    batch = { t: 'batch', n: 0, ok: 0, refused: {}, maxMs: 0, rss: 0, upTo: batch.upTo };
  };
  for (let i = from; i < from + count; i++) {
    if (o.skip?.has(i)) continue;
    if (beat >= 0) writeSync(beat, String(i).padEnd(16), 0);
    const r = new Rng(seed, format, i);
    const t0 = performance.now();
    let outcome = 'ok',
      error,
      detail;
    let c;
    const restore = quietConsole();
    try {
      c = gen(r);
      if (o.verbose && c.describe) writeSync(2, `case ${i}: running ${c.describe()}\n`);
      await c.run();
    } catch (e) {
      const name = e?.name ?? typeof e;
      if (CLEAR.has(name) || (format === 'argv' && exitCodeFor(e) === 2)) {
        outcome = 'refused';
        error = name;
      } else {
        outcome = 'uncaught';
        detail = `${name}: ${String(e?.message ?? e).slice(0, 300)}${c?.describe ? ` — ${c.describe()}` : ''}`;
      }
      if (outcome === 'refused' && c?.mustAccept) {
        outcome = 'wrong';
        detail = `a valid input was refused: ${e.message}`;
      }
    } finally {
      restore();
    }
    const ms = performance.now() - t0;
    const rss = process.memoryUsage().rss / 1048576;
    if (rss > o.maxRssMb) {
      outcome = 'memory';
      detail = `RSS ${rss.toFixed(0)} MiB after this case (limit ${o.maxRssMb})`;
    }
    batch.n++;
    batch.upTo = i;
    batch.maxMs = Math.max(batch.maxMs, ms);
    batch.rss = Math.max(batch.rss, rss);
    if (outcome === 'ok') batch.ok++;
    else if (outcome === 'refused') batch.refused[error] = (batch.refused[error] ?? 0) + 1;
    else {
      flush();
      out({ t: 'fail', i, outcome, detail });
    }
    if (batch.n >= 250) flush();
    if (o.verbose)
      process.stderr.write(
        `case ${i}: ${outcome} ${error ?? ''} ${detail ?? ''} ${c?.describe ? c.describe() : ''} (${ms.toFixed(0)} ms)\n`,
      );
  }
  flush();
}
