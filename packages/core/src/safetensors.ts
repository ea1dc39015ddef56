/**
 * safetensors reader and writer, on plain typed arrays (no dependency on `Tensor`).
 * (Over 500 lines on purpose: one file format, its reader and writer side by
 * side, so that the byte layout they agree on is read in one place.)
 *
 * File layout:
 *   bytes [0, 8)        N, the header length, an unsigned 64-bit little-endian integer
 *   bytes [8, 8+N)      the header: UTF-8 JSON object
 *                         { "<name>": { "dtype": "F32", "shape": [..], "data_offsets": [begin, end] },
 *                           ...,
 *                           "__metadata__": { "<key>": "<string value>" } }   (optional)
 *   bytes [8+N, end)    the data buffer; `data_offsets` are relative to its start.
 *
 * Element data is little-endian, row-major (C order). The writer follows the reference
 * implementation byte for byte: tensors sorted by descending dtype alignment (the order of
 * its `Dtype` enum) then by name (UTF-8 byte order), laid out back to back from offset 0,
 * `__metadata__` first in the header, compact JSON, header padded with spaces to a multiple
 * of 8 bytes so that every tensor's data starts 8-byte aligned in the file.
 *
 * The reader checks everything the reference checks (and says where): the file must be at
 * least 8 bytes, the header must fit in the file, be UTF-8 JSON of the right form, the dtype
 * must be known, shape × element size must equal the byte range, and the byte ranges, sorted,
 * must tile the data buffer exactly (start at 0, no gap, no overlap, end at the end of file).
 *
 * File helpers load `node:fs` lazily, so importing this module is safe in a browser.
 */

/** Every dtype this module reads and writes. */
export type StDtype =
  'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U64' | 'U32' | 'U16' | 'U8' | 'BOOL';

/** The typed arrays that may carry an entry's elements. */
export type StData =
  | Float64Array
  | Float32Array
  | BigInt64Array
  | BigUint64Array
  | Int32Array
  | Uint32Array
  | Int16Array
  | Uint16Array
  | Int8Array
  | Uint8Array;

/**
 * One tensor: dtype, shape and its elements in row-major order.
 *
 * Which array goes with which dtype (for `encodeSafetensors`):
 *   F64 → Float64Array; F32 → Float32Array;
 *   F16, BF16 → Float32Array or Float64Array (rounded to nearest even), or Uint16Array holding raw bits;
 *   I64 → BigInt64Array, or Int32Array (widened); U64 → BigUint64Array;
 *   I32 → Int32Array; U32 → Uint32Array; I16 → Int16Array; U16 → Uint16Array;
 *   I8 → Int8Array; U8 → Uint8Array; BOOL → Uint8Array of 0/1.
 *
 * `decodeSafetensors` returns the array named first above, except F16/BF16, which come back as
 * a Float32Array (exact: every half and bfloat16 value is a float32 value) with
 * `widened: true`, or as a Uint16Array of raw bits when asked with `{ halfAsBits: true }`.
 */
export interface StEntry {
  dtype: StDtype;
  shape: number[];
  data: StData;
  /** Set by the decoder when F16/BF16 elements were widened to a Float32Array. */
  widened?: boolean;
}

export interface StDecoded {
  tensors: Record<string, StEntry>;
  /** The `__metadata__` map; an empty object when the file has none. */
  metadata: Record<string, string>;
}

/** A tensor's entry as it appears in the header. */
export interface StHeaderEntry {
  dtype: StDtype;
  shape: number[];
  dataOffsets: [number, number];
}

export interface StHeader {
  /** Header length N as stored in the first 8 bytes. */
  headerLength: number;
  /** Offset in the file where the data buffer starts (8 + N). */
  dataStart: number;
  tensors: Record<string, StHeaderEntry>;
  metadata: Record<string, string>;
}

export type SafetensorsErrorCode =
  | 'TRUNCATED'
  | 'HEADER_TOO_LARGE'
  | 'HEADER_LENGTH'
  | 'HEADER_UTF8'
  | 'HEADER_JSON'
  | 'HEADER_SCHEMA'
  | 'DTYPE'
  | 'SHAPE'
  | 'OFFSETS'
  | 'SIZE_MISMATCH'
  | 'ENCODE'
  | 'RANGE';

/** Every failure of this module; `source` names the file (or '<buffer>'). */
export class SafetensorsError extends Error {
  readonly code: SafetensorsErrorCode;
  readonly source: string;
  constructor(code: SafetensorsErrorCode, source: string, message: string) {
    super(`safetensors: ${source}: ${message}`);
    this.name = 'SafetensorsError';
    this.code = code;
    this.source = source;
  }
}

/** The reference reader refuses headers above 100 MB; so do we. */
export const ST_MAX_HEADER_BYTES = 100_000_000;

interface DtypeInfo {
  size: number;
  /** Position in the reference `Dtype` enum, which is ordered by alignment. */
  rank: number;
}

// Ranks follow the reference enum: BOOL, U8, I8, F8_E5M2, F8_E4M3, I16, U16, F16, BF16,
// I32, U32, F32, F64, I64, U64.
const DTYPES: Record<StDtype, DtypeInfo> = {
  BOOL: { size: 1, rank: 0 },
  U8: { size: 1, rank: 1 },
  I8: { size: 1, rank: 2 },
  I16: { size: 2, rank: 5 },
  U16: { size: 2, rank: 6 },
  F16: { size: 2, rank: 7 },
  BF16: { size: 2, rank: 8 },
  I32: { size: 4, rank: 9 },
  U32: { size: 4, rank: 10 },
  F32: { size: 4, rank: 11 },
  F64: { size: 8, rank: 12 },
  I64: { size: 8, rank: 13 },
  U64: { size: 8, rank: 14 },
};

/** Dtypes of the format that this module knows of but does not decode. */
const UNSUPPORTED_DTYPES = new Set(['F8_E5M2', 'F8_E4M3', 'F8_E8M0', 'F4', 'F6_E2M3', 'F6_E3M2', 'C64']);

export const ST_DTYPES: readonly StDtype[] = Object.freeze(Object.keys(DTYPES) as StDtype[]);

/** Bytes per element of a dtype. */
export function stDtypeSize(dtype: StDtype): number {
  return DTYPES[dtype].size;
}

export function isStDtype(s: unknown): s is StDtype {
  return typeof s === 'string' && Object.prototype.hasOwnProperty.call(DTYPES, s);
}

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function swapBytesInPlace(bytes: Uint8Array, size: number): void {
  if (size === 1) return;
  for (let i = 0; i + size <= bytes.length; i += size) {
    for (let a = i, b = i + size - 1; a < b; a++, b--) {
      const t = bytes[a]!;
      bytes[a] = bytes[b]!;
      bytes[b] = t;
    }
  }
}

function errorShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

function nelements(shape: readonly number[], what: string, source: string, code: SafetensorsErrorCode): number {
  let n = 1;
  for (const d of shape) {
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) {
      throw new SafetensorsError(
        code,
        source,
        `${what}: shape ${JSON.stringify(shape)} must hold non-negative integers`,
      );
    }
    n *= d;
    if (!Number.isSafeInteger(n)) {
      throw new SafetensorsError(code, source, `${what}: shape ${errorShape(shape)} has too many elements`);
    }
  }
  return n;
}

// ---------------------------------------------------------------- half precision

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** IEEE binary16 bits → number (exact). */
export function f16BitsToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const man = h & 0x3ff;
  if (exp === 0) return sign * man * 2 ** -24;
  if (exp === 0x1f) return man === 0 ? sign * Infinity : NaN;
  return sign * (1024 + man) * 2 ** (exp - 25);
}

/** bfloat16 bits → number (exact). */
export function bf16BitsToNumber(h: number): number {
  u32Scratch[0] = (h & 0xffff) << 16;
  return f32Scratch[0]!;
}

function roundHalfEven(x: number): number {
  // x ≥ 0 and exactly representable fractions only (x is an exact scaling of a double)
  const f = Math.floor(x);
  const d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/**
 * Rounds a number to a binary float with `manBits` stored mantissa bits and exponent `bias`
 * (round to nearest, ties to even; overflow to infinity) and returns its bits. Works directly
 * from the double, so float64 input is rounded once, not twice.
 */
function numberToSmallFloatBits(x: number, manBits: number, bias: number, expBits: number): number {
  const signBit = 1 << (manBits + expBits);
  const expMax = (1 << expBits) - 1; // all ones: inf / NaN
  const quietNaN = (expMax << manBits) | (1 << (manBits - 1));
  if (Number.isNaN(x)) return quietNaN;
  const sign = x < 0 || Object.is(x, -0) ? signBit : 0;
  const a = Math.abs(x);
  if (a === Infinity) return sign | (expMax << manBits);
  if (a === 0) return sign;
  const minNormalExp = 1 - bias;
  let e = Math.floor(Math.log2(a));
  while (2 ** e > a) e--;
  while (2 ** (e + 1) <= a) e++;
  if (e < minNormalExp) {
    // subnormal: units of 2^(minNormalExp - manBits)
    const m = roundHalfEven(a * 2 ** (manBits - minNormalExp));
    // m may reach 2^manBits, which is exactly the smallest normal: the bit pattern carries over
    return sign | m;
  }
  let m = roundHalfEven(a * 2 ** (manBits - e)); // in [2^manBits, 2^(manBits+1)]
  if (m === 2 ** (manBits + 1)) {
    m /= 2;
    e++;
  }
  const field = e + bias;
  if (field >= expMax) return sign | (expMax << manBits);
  return sign | (field << manBits) | (m - 2 ** manBits);
}

/** number → IEEE binary16 bits, round to nearest even. */
export function numberToF16Bits(x: number): number {
  return numberToSmallFloatBits(x, 10, 15, 5);
}

/** number → bfloat16 bits, round to nearest even. */
export function numberToBf16Bits(x: number): number {
  return numberToSmallFloatBits(x, 7, 127, 8);
}

// ---------------------------------------------------------------- encoding

interface Prepared {
  name: string;
  nameBytes: Uint8Array;
  dtype: StDtype;
  shape: number[];
  bytes: Uint8Array;
}

function bytesOf(a: StData): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    if (a[i] !== b[i]) return a[i]! - b[i]!;
  }
  return a.length - b.length;
}

function expectArray(name: string, dtype: StDtype, data: StData, ...kinds: string[]): never {
  throw new SafetensorsError(
    'ENCODE',
    '<buffer>',
    `tensor '${name}': dtype ${dtype} takes ${kinds.join(' or ')}, got ${data?.constructor?.name ?? typeof data}`,
  );
}

/** The little-endian element bytes of an entry, converted where the dtype asks for it. */
function entryBytes(name: string, e: StEntry, n: number): Uint8Array {
  const { dtype, data } = e;
  if (!ArrayBuffer.isView(data)) expectArray(name, dtype, data, 'a typed array');
  if (data.length !== n) {
    throw new SafetensorsError(
      'ENCODE',
      '<buffer>',
      `tensor '${name}': shape ${errorShape(e.shape)} has ${n} elements but data has ${data.length}`,
    );
  }
  let out: Uint8Array;
  let copied = false;
  switch (dtype) {
    case 'F64':
      if (!(data instanceof Float64Array)) expectArray(name, dtype, data, 'Float64Array');
      out = bytesOf(data);
      break;
    case 'F32':
      if (!(data instanceof Float32Array)) expectArray(name, dtype, data, 'Float32Array');
      out = bytesOf(data);
      break;
    case 'F16':
    case 'BF16':
      if (data instanceof Uint16Array) {
        out = bytesOf(data);
      } else if (data instanceof Float32Array || data instanceof Float64Array) {
        const bits = new Uint16Array(n);
        const conv = dtype === 'F16' ? numberToF16Bits : numberToBf16Bits;
        for (let i = 0; i < n; i++) bits[i] = conv(data[i]!);
        out = bytesOf(bits);
        copied = true;
      } else {
        expectArray(name, dtype, data, 'Float32Array', 'Float64Array', 'Uint16Array (raw bits)');
      }
      break;
    case 'I64':
      if (data instanceof BigInt64Array) {
        out = bytesOf(data);
      } else if (data instanceof Int32Array) {
        const wide = new BigInt64Array(n);
        for (let i = 0; i < n; i++) wide[i] = BigInt(data[i]!);
        out = bytesOf(wide);
        copied = true;
      } else {
        expectArray(name, dtype, data, 'BigInt64Array', 'Int32Array');
      }
      break;
    case 'U64':
      if (!(data instanceof BigUint64Array)) expectArray(name, dtype, data, 'BigUint64Array');
      out = bytesOf(data);
      break;
    case 'I32':
      if (!(data instanceof Int32Array)) expectArray(name, dtype, data, 'Int32Array');
      out = bytesOf(data);
      break;
    case 'U32':
      if (!(data instanceof Uint32Array)) expectArray(name, dtype, data, 'Uint32Array');
      out = bytesOf(data);
      break;
    case 'I16':
      if (!(data instanceof Int16Array)) expectArray(name, dtype, data, 'Int16Array');
      out = bytesOf(data);
      break;
    case 'U16':
      if (!(data instanceof Uint16Array)) expectArray(name, dtype, data, 'Uint16Array');
      out = bytesOf(data);
      break;
    case 'I8':
      if (!(data instanceof Int8Array)) expectArray(name, dtype, data, 'Int8Array');
      out = bytesOf(data);
      break;
    case 'U8':
      if (!(data instanceof Uint8Array)) expectArray(name, dtype, data, 'Uint8Array');
      out = bytesOf(data);
      break;
    case 'BOOL':
      if (!(data instanceof Uint8Array)) expectArray(name, dtype, data, 'Uint8Array (0/1)');
      for (let i = 0; i < n; i++) {
        if (data[i]! > 1) {
          throw new SafetensorsError(
            'ENCODE',
            '<buffer>',
            `tensor '${name}': BOOL element ${i} is ${data[i]}, not 0 or 1`,
          );
        }
      }
      out = bytesOf(data);
      break;
    default:
      throw new SafetensorsError('DTYPE', '<buffer>', `tensor '${name}': unknown dtype ${JSON.stringify(dtype)}`);
  }
  if (!LITTLE_ENDIAN_HOST && DTYPES[dtype].size > 1) {
    if (!copied) out = out.slice();
    swapBytesInPlace(out, DTYPES[dtype].size);
  }
  return out;
}

/**
 * Serializes tensors (and optional string metadata) to safetensors bytes, laid out exactly as
 * the reference writer lays them out.
 */
export function encodeSafetensors(entries: Record<string, StEntry>, metadata?: Record<string, string>): Uint8Array {
  const enc = new TextEncoder();
  const prepared: Prepared[] = [];
  for (const [name, e] of Object.entries(entries)) {
    if (name === '__metadata__') {
      throw new SafetensorsError('ENCODE', '<buffer>', `'__metadata__' is reserved and cannot name a tensor`);
    }
    if (e === null || typeof e !== 'object') {
      throw new SafetensorsError('ENCODE', '<buffer>', `tensor '${name}': entry must be an object`);
    }
    if (!isStDtype(e.dtype)) {
      throw new SafetensorsError('DTYPE', '<buffer>', `tensor '${name}': unknown dtype ${JSON.stringify(e.dtype)}`);
    }
    if (!Array.isArray(e.shape)) {
      throw new SafetensorsError('ENCODE', '<buffer>', `tensor '${name}': shape must be an array`);
    }
    const n = nelements(e.shape, `tensor '${name}'`, '<buffer>', 'ENCODE');
    prepared.push({
      name,
      nameBytes: enc.encode(name),
      dtype: e.dtype,
      shape: [...e.shape],
      bytes: entryBytes(name, e, n),
    });
  }
  prepared.sort((a, b) => DTYPES[b.dtype].rank - DTYPES[a.dtype].rank || compareBytes(a.nameBytes, b.nameBytes));

  const header: Record<string, unknown> = {};
  if (metadata !== undefined) {
    const meta: Record<string, string> = {};
    const keys = Object.keys(metadata).map((k) => ({ k, b: enc.encode(k) }));
    keys.sort((x, y) => compareBytes(x.b, y.b)); // UTF-8 byte order, like the names
    for (const { k } of keys) {
      const v = metadata[k];
      if (typeof v !== 'string') {
        throw new SafetensorsError('ENCODE', '<buffer>', `metadata '${k}' must be a string, got ${typeof v}`);
      }
      Object.defineProperty(meta, k, { value: v, enumerable: true, writable: true, configurable: true });
    }
    header['__metadata__'] = meta;
  }
  let offset = 0;
  for (const p of prepared) {
    const end = offset + p.bytes.length;
    Object.defineProperty(header, p.name, {
      value: { dtype: p.dtype, shape: p.shape, data_offsets: [offset, end] },
      enumerable: true,
      writable: true,
      configurable: true,
    });
    offset = end;
  }
  const json = enc.encode(JSON.stringify(header));
  const headerLength = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + headerLength + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLength), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + headerLength);
  let pos = 8 + headerLength;
  for (const p of prepared) {
    out.set(p.bytes, pos);
    pos += p.bytes.length;
  }
  return out;
}

// ---------------------------------------------------------------- decoding

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Parses and validates the header of safetensors bytes without decoding tensor data.
 * Every error names `source`.
 */
export function parseSafetensorsHeader(bytes: Uint8Array, source = '<buffer>'): StHeader {
  if (bytes.length < 8) {
    throw new SafetensorsError(
      'TRUNCATED',
      source,
      `file is truncated: ${bytes.length} bytes, fewer than the 8 of the header length`,
    );
  }
  const n64 = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (n64 > BigInt(ST_MAX_HEADER_BYTES)) {
    if (n64 > BigInt(bytes.length - 8)) {
      throw new SafetensorsError(
        'HEADER_LENGTH',
        source,
        `header length ${n64} goes beyond the end of the file (${bytes.length} bytes): truncated or not a safetensors file`,
      );
    }
    throw new SafetensorsError(
      'HEADER_TOO_LARGE',
      source,
      `header length ${n64} is above the limit of ${ST_MAX_HEADER_BYTES} bytes`,
    );
  }
  const n = Number(n64);
  if (8 + n > bytes.length) {
    throw new SafetensorsError(
      'HEADER_LENGTH',
      source,
      `header length ${n} goes beyond the end of the file (${bytes.length} bytes): truncated or not a safetensors file`,
    );
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + n));
  } catch {
    throw new SafetensorsError('HEADER_UTF8', source, `header is not valid UTF-8`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new SafetensorsError('HEADER_JSON', source, `header is not valid JSON (${(err as Error).message})`);
  }
  if (!isPlainObject(parsed)) {
    throw new SafetensorsError('HEADER_SCHEMA', source, `header must be a JSON object`);
  }
  const metadata: Record<string, string> = Object.create(null) as Record<string, string>;
  const tensors: Record<string, StHeaderEntry> = Object.create(null) as Record<string, StHeaderEntry>;
  const order: { name: string; begin: number; end: number }[] = [];
  for (const [name, raw] of Object.entries(parsed)) {
    if (name === '__metadata__') {
      if (!isPlainObject(raw)) {
        throw new SafetensorsError('HEADER_SCHEMA', source, `__metadata__ must be an object of strings`);
      }
      for (const [k, v] of Object.entries(raw)) {
        if (typeof v !== 'string') {
          throw new SafetensorsError(
            'HEADER_SCHEMA',
            source,
            `__metadata__ '${k}' must be a string, got ${JSON.stringify(v)}`,
          );
        }
        metadata[k] = v;
      }
      continue;
    }
    if (!isPlainObject(raw)) {
      throw new SafetensorsError('HEADER_SCHEMA', source, `tensor '${name}': entry must be an object`);
    }
    const { dtype, shape, data_offsets: offs } = raw;
    if (!isStDtype(dtype)) {
      const why = typeof dtype === 'string' && UNSUPPORTED_DTYPES.has(dtype) ? 'unsupported' : 'unknown';
      throw new SafetensorsError('DTYPE', source, `tensor '${name}': ${why} dtype ${JSON.stringify(dtype)}`);
    }
    if (!Array.isArray(shape)) {
      throw new SafetensorsError(
        'HEADER_SCHEMA',
        source,
        `tensor '${name}': shape must be an array, got ${JSON.stringify(shape)}`,
      );
    }
    const count = nelements(shape as number[], `tensor '${name}'`, source, 'SHAPE');
    if (
      !Array.isArray(offs) ||
      offs.length !== 2 ||
      !offs.every((o) => typeof o === 'number' && Number.isSafeInteger(o) && o >= 0)
    ) {
      throw new SafetensorsError(
        'HEADER_SCHEMA',
        source,
        `tensor '${name}': data_offsets must be [begin, end] with non-negative integers, got ${JSON.stringify(offs)}`,
      );
    }
    const begin = offs[0] as number;
    const end = offs[1] as number;
    if (end < begin) {
      throw new SafetensorsError(
        'OFFSETS',
        source,
        `tensor '${name}': data_offsets [${begin}, ${end}] end before they begin`,
      );
    }
    const dataLength = bytes.length - 8 - n;
    if (end > dataLength) {
      throw new SafetensorsError(
        'OFFSETS',
        source,
        `tensor '${name}': data_offsets [${begin}, ${end}] go beyond the data buffer (${dataLength} bytes)`,
      );
    }
    const want = count * DTYPES[dtype].size;
    if (end - begin !== want) {
      throw new SafetensorsError(
        'SIZE_MISMATCH',
        source,
        `tensor '${name}': shape ${errorShape(shape as number[])} × ${dtype} (${DTYPES[dtype].size} bytes) is ${want} bytes but data_offsets [${begin}, ${end}] hold ${end - begin}`,
      );
    }
    tensors[name] = { dtype, shape: [...(shape as number[])], dataOffsets: [begin, end] };
    order.push({ name, begin, end });
  }
  order.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let pos = 0;
  let prev = '';
  for (const o of order) {
    if (o.begin < pos) {
      throw new SafetensorsError(
        'OFFSETS',
        source,
        `tensor '${o.name}': data_offsets [${o.begin}, ${o.end}] overlap tensor '${prev}' (which ends at ${pos})`,
      );
    }
    if (o.begin > pos) {
      throw new SafetensorsError(
        'OFFSETS',
        source,
        `data_offsets do not cover the data buffer: bytes [${pos}, ${o.begin}) before tensor '${o.name}' belong to no tensor`,
      );
    }
    pos = o.end;
    prev = o.name;
  }
  const dataLength = bytes.length - 8 - n;
  if (pos !== dataLength) {
    throw new SafetensorsError(
      'OFFSETS',
      source,
      `data_offsets do not cover the data buffer: tensors end at ${pos} but the buffer holds ${dataLength} bytes`,
    );
  }
  return { headerLength: n, dataStart: 8 + n, tensors, metadata };
}

export interface StDecodeOptions {
  /** Return F16/BF16 as a Uint16Array of raw bits instead of a widened Float32Array. */
  halfAsBits?: boolean;
}

function viewAs(dtype: StDtype, buf: ArrayBuffer, halfAsBits: boolean): { data: StData; widened?: boolean } {
  switch (dtype) {
    case 'F64':
      return { data: new Float64Array(buf) };
    case 'F32':
      return { data: new Float32Array(buf) };
    case 'F16':
    case 'BF16': {
      const bits = new Uint16Array(buf);
      if (halfAsBits) return { data: bits };
      const out = new Float32Array(bits.length);
      if (dtype === 'BF16') {
        const u = new Uint32Array(out.buffer);
        for (let i = 0; i < bits.length; i++) u[i] = bits[i]! << 16;
      } else {
        for (let i = 0; i < bits.length; i++) out[i] = f16BitsToNumber(bits[i]!);
      }
      return { data: out, widened: true };
    }
    case 'I64':
      return { data: new BigInt64Array(buf) };
    case 'U64':
      return { data: new BigUint64Array(buf) };
    case 'I32':
      return { data: new Int32Array(buf) };
    case 'U32':
      return { data: new Uint32Array(buf) };
    case 'I16':
      return { data: new Int16Array(buf) };
    case 'U16':
      return { data: new Uint16Array(buf) };
    case 'I8':
      return { data: new Int8Array(buf) };
    case 'U8':
    case 'BOOL':
      return { data: new Uint8Array(buf) };
  }
}

/**
 * Decodes safetensors bytes. Each tensor's data is copied into its own (aligned) typed array.
 * Errors are `SafetensorsError`s naming `source`.
 */
export function decodeSafetensors(bytes: Uint8Array, source = '<buffer>', options: StDecodeOptions = {}): StDecoded {
  const header = parseSafetensorsHeader(bytes, source);
  const tensors: Record<string, StEntry> = Object.create(null) as Record<string, StEntry>;
  for (const [name, h] of Object.entries(header.tensors)) {
    const [begin, end] = h.dataOffsets;
    // A fresh copy (not `bytes.slice`, which for a Node Buffer is a view into a shared pool).
    const raw = new Uint8Array(end - begin);
    raw.set(bytes.subarray(header.dataStart + begin, header.dataStart + end));
    const size = DTYPES[h.dtype].size;
    if (!LITTLE_ENDIAN_HOST) swapBytesInPlace(raw, size);
    const { data, widened } = viewAs(h.dtype, raw.buffer, options.halfAsBits === true);
    const entry: StEntry = { dtype: h.dtype, shape: h.shape, data };
    if (widened) entry.widened = true;
    tensors[name] = entry;
  }
  const metadata: Record<string, string> = Object.create(null) as Record<string, string>;
  Object.assign(metadata, header.metadata);
  return { tensors, metadata };
}

/**
 * Narrows int64 elements (BigInt64Array, e.g. PyTorch labels) to an Int32Array, with a range
 * check that names the tensor, the element index and the value.
 */
export function int64ToInt32(data: BigInt64Array | BigUint64Array, what = 'tensor'): Int32Array {
  const out = new Int32Array(data.length);
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    if (v > 2147483647n || v < -2147483648n) {
      throw new SafetensorsError('RANGE', what, `element ${i} is ${v}, outside the int32 range`);
    }
    out[i] = Number(v);
  }
  return out;
}

/**
 * Returns an entry's elements as numbers in a Float64Array (any dtype; int64 values beyond
 * ±2^53 are refused).
 */
export function stEntryToFloat64(entry: StEntry, what = 'tensor'): Float64Array {
  const { data } = entry;
  const out = new Float64Array(data.length);
  if (data instanceof BigInt64Array || data instanceof BigUint64Array) {
    for (let i = 0; i < data.length; i++) {
      const v = data[i]!;
      if (v > 9007199254740991n || v < -9007199254740991n) {
        throw new SafetensorsError('RANGE', what, `element ${i} is ${v}, beyond the exactly representable ±2^53`);
      }
      out[i] = Number(v);
    }
  } else if ((entry.dtype === 'F16' || entry.dtype === 'BF16') && data instanceof Uint16Array) {
    const conv = entry.dtype === 'F16' ? f16BitsToNumber : bf16BitsToNumber;
    for (let i = 0; i < data.length; i++) out[i] = conv(data[i]!);
  } else {
    for (let i = 0; i < data.length; i++) out[i] = (data as Float64Array)[i]!;
  }
  return out;
}
