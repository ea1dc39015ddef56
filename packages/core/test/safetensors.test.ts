import t, { type Test } from 'tap';
import fc from 'fast-check';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PYTHON, requirement } from '@largo/test-support';
import {
  ST_DTYPES,
  SafetensorsError,
  bf16BitsToNumber,
  decodeSafetensors,
  encodeSafetensors,
  f16BitsToNumber,
  int64ToInt32,
  numberToBf16Bits,
  numberToF16Bits,
  parseSafetensorsHeader,
  stDtypeSize,
  stEntryToFloat64,
  type StData,
  type StDtype,
  type StEntry,
} from '../src/safetensors.js';
import { readSafetensorsFile, writeSafetensorsFileAtomic } from '../src/safetensors-file.js';

const FC_RUNS = Number(process.env.LARGO_FC_RUNS ?? 60);
const here = dirname(fileURLToPath(import.meta.url));
const FIXTURE = join(here, 'fixtures', 'torch-written.safetensors');
const SCRIPT = join(here, '..', '..', '..', 'scripts', 'make-fixtures.py');

const td = new TextDecoder();
const te = new TextEncoder();

function arrayFromBytes(dtype: StDtype, bytes: Uint8Array): StData {
  const buf = bytes.slice().buffer;
  switch (dtype) {
    case 'F64':
      return new Float64Array(buf);
    case 'F32':
      return new Float32Array(buf);
    case 'F16':
    case 'BF16':
    case 'U16':
      return new Uint16Array(buf);
    case 'I64':
      return new BigInt64Array(buf);
    case 'U64':
      return new BigUint64Array(buf);
    case 'I32':
      return new Int32Array(buf);
    case 'U32':
      return new Uint32Array(buf);
    case 'I16':
      return new Int16Array(buf);
    case 'I8':
      return new Int8Array(buf);
    case 'U8':
      return new Uint8Array(buf);
    case 'BOOL':
      return new Uint8Array(bytes.map((b) => b & 1));
  }
}

function rawBytes(a: StData): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

function headerText(file: Uint8Array): string {
  const n = Number(new DataView(file.buffer, file.byteOffset).getBigUint64(0, true));
  return td.decode(file.subarray(8, 8 + n));
}

/** A file from an arbitrary header (object or raw string) and data buffer. */
function craft(header: unknown, data: Uint8Array | number = 0, pad = true): Uint8Array {
  let h = te.encode(typeof header === 'string' ? header : JSON.stringify(header));
  if (pad && h.length % 8) {
    const p = new Uint8Array(h.length + (8 - (h.length % 8))).fill(0x20);
    p.set(h);
    h = p;
  }
  const d = typeof data === 'number' ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + h.length + d.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  out.set(d, 8 + h.length);
  return out;
}

function throwsSt(t: Test, fn: () => unknown, code: string, re: RegExp, source = '<buffer>'): void {
  try {
    fn();
    t.fail(`expected a ${code} error`);
  } catch (err) {
    t.ok(err instanceof SafetensorsError, `SafetensorsError (${(err as Error).message})`);
    const e = err as SafetensorsError;
    t.equal(e.code, code, `code ${code}: ${e.message}`);
    t.match(e.message, re);
    t.ok(e.message.includes(source), `names the source ${source}`);
  }
}

// ------------------------------------------------------------------- generators

const arbDtype = fc.constantFrom<StDtype>(...ST_DTYPES);
const arbShape = fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 0, maxLength: 4 });
const arbEntry = fc.tuple(arbDtype, arbShape).chain(([dtype, shape]) => {
  const n = shape.reduce((a, b) => a * b, 1);
  return fc
    .uint8Array({ minLength: n * stDtypeSize(dtype), maxLength: n * stDtypeSize(dtype) })
    .map((bytes): StEntry => ({ dtype, shape, data: arrayFromBytes(dtype, bytes) }));
});
const arbName = fc.string({ unit: 'binary', minLength: 0, maxLength: 12 }).filter((s) => s !== '__metadata__');
const arbEntries = fc.dictionary(arbName, arbEntry, { maxKeys: 6 });
const arbMeta = fc.option(
  fc.dictionary(fc.string({ unit: 'binary', maxLength: 8 }), fc.string({ unit: 'binary', maxLength: 8 }), {
    maxKeys: 3,
  }),
  { nil: undefined },
);

// ------------------------------------------------------------------- round trip

t.test('round trip over random names, shapes, dtypes and bytes', async (t) => {
  fc.assert(
    fc.property(arbEntries, arbMeta, (entries, meta) => {
      const bytes = encodeSafetensors(entries, meta);
      const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
      if (n % 8 !== 0) return false; // header padded to 8, so data is 8-byte aligned
      const { tensors, metadata } = decodeSafetensors(bytes, 'rt', { halfAsBits: true });
      if (Object.keys(tensors).length !== Object.keys(entries).length) return false;
      for (const [name, e] of Object.entries(entries)) {
        const got = tensors[name];
        if (!got || got.dtype !== e.dtype) return false;
        if (JSON.stringify(got.shape) !== JSON.stringify(e.shape)) return false;
        if (Buffer.compare(rawBytes(got.data), rawBytes(e.data)) !== 0) return false;
        if (got.data.constructor !== e.data.constructor) return false;
      }
      if (JSON.stringify(Object.entries(metadata).sort()) !== JSON.stringify(Object.entries(meta ?? {}).sort()))
        return false;
      // decode then encode gives the very same bytes
      if (Buffer.compare(encodeSafetensors(tensors, meta), bytes) !== 0) return false;
      // the widened decode agrees value by value, and re-encodes identically unless NaN
      const wide = decodeSafetensors(bytes, 'rt').tensors;
      for (const [name, e] of Object.entries(entries)) {
        const w = wide[name]!;
        if (e.dtype !== 'F16' && e.dtype !== 'BF16') continue;
        if (!(w.data instanceof Float32Array) || w.widened !== true) return false;
        const conv = e.dtype === 'F16' ? f16BitsToNumber : bf16BitsToNumber;
        const bits = e.data as Uint16Array;
        for (let i = 0; i < bits.length; i++) {
          const want = conv(bits[i]!);
          if (!Object.is(w.data[i], want)) return false;
        }
        const re = encodeSafetensors({ x: w });
        const reBits = new Uint16Array(re.slice(re.length - bits.byteLength).buffer);
        for (let i = 0; i < bits.length; i++) {
          if (!Number.isNaN(conv(bits[i]!)) && reBits[i] !== bits[i]) return false;
        }
      }
      return true;
    }),
    { numRuns: FC_RUNS * 4 },
  );
  t.pass('round trip holds');
});

t.test('layout matches the reference writer', async (t) => {
  const f = new Float32Array([0, 1, 2, 3, 4, 5]);
  // one tensor, header exactly 64 bytes: no padding
  const a = encodeSafetensors({ 'attn.0': { dtype: 'F32', shape: [1, 2, 3], data: f } });
  t.equal(headerText(a), '{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}');
  t.equal(a.length, 8 + 64 + 24);
  t.same([...new Float32Array(a.slice(72).buffer)], [0, 1, 2, 3, 4, 5]);
  // header of 65 bytes padded with 7 spaces to 72
  const b = encodeSafetensors({ attn0: { dtype: 'F32', shape: [1, 1, 2, 3], data: f } });
  t.equal(headerText(b), '{"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}}       ');
  // empty file, with and without metadata
  t.same([...encodeSafetensors({})], [8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32]);
  t.equal(headerText(encodeSafetensors({}, { framework: 'pt' })), '{"__metadata__":{"framework":"pt"}}     ');
  // sorted by descending alignment (enum order), then by name bytes; metadata first
  const c = encodeSafetensors(
    {
      z8: { dtype: 'U8', shape: [1], data: new Uint8Array([1]) },
      a32: { dtype: 'F32', shape: [1], data: new Float32Array([1]) },
      b64: { dtype: 'I64', shape: [1], data: new BigInt64Array([1n]) },
      a64: { dtype: 'F64', shape: [1], data: new Float64Array([1]) },
      é: { dtype: 'F32', shape: [1], data: new Float32Array([2]) },
      '\u{1F600}': { dtype: 'F32', shape: [1], data: new Float32Array([3]) },
      '\uFF21': { dtype: 'F32', shape: [1], data: new Float32Array([4]) },
      h: { dtype: 'BF16', shape: [1], data: new Uint16Array([1]) },
      g: { dtype: 'F16', shape: [1], data: new Uint16Array([1]) },
      m: { dtype: 'BOOL', shape: [1], data: new Uint8Array([1]) },
    },
    { b: '2', a: '1' },
  );
  const names = Object.keys(JSON.parse(headerText(c)));
  // UTF-8 byte order puts U+FF21 (EF BC A1) before U+1F600 (F0 9F 98 80), unlike UTF-16 order
  t.same(names, ['__metadata__', 'b64', 'a64', 'a32', 'é', '\uFF21', '\u{1F600}', 'h', 'g', 'z8', 'm']);
  t.same(Object.keys(JSON.parse(headerText(c)).__metadata__), ['a', 'b']);
  // names that are special to JavaScript objects are plain names here
  const special = encodeSafetensors({
    ['__proto__']: { dtype: 'U8' as const, shape: [1], data: new Uint8Array([1]) },
    constructor: { dtype: 'U8' as const, shape: [1], data: new Uint8Array([2]) },
  });
  const sp = decodeSafetensors(special).tensors;
  t.same(Object.keys(sp).sort(), ['__proto__', 'constructor']);
  t.same([...(sp['__proto__']!.data as Uint8Array)], [1]);
  t.same([...(sp['constructor']!.data as Uint8Array)], [2]);
});

// ------------------------------------------------------------------- half precision

t.test('f16 / bf16 conversions', async (t) => {
  // every non-NaN bit pattern survives bits -> number -> bits
  let bad = 0;
  for (let h = 0; h < 65536; h++) {
    const v = f16BitsToNumber(h);
    if (!Number.isNaN(v) && numberToF16Bits(v) !== h) bad++;
    const w = bf16BitsToNumber(h);
    if (!Number.isNaN(w) && numberToBf16Bits(w) !== h) bad++;
    if (Number.isNaN(v) !== ((h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0)) bad++;
  }
  t.equal(bad, 0, 'all 65536 patterns');
  t.equal(f16BitsToNumber(0x3c00), 1);
  t.equal(f16BitsToNumber(0x7bff), 65504);
  t.equal(f16BitsToNumber(0x0001), 2 ** -24);
  t.equal(numberToF16Bits(65520), 0x7c00, 'rounds to infinity past the largest half');
  t.equal(numberToF16Bits(65519.99), 0x7bff);
  t.equal(numberToF16Bits(2 ** -25), 0, 'tie to even: 0');
  t.equal(numberToF16Bits(3 * 2 ** -25), 2, 'tie to even: 2');
  t.equal(numberToF16Bits(-0), 0x8000);
  t.equal(numberToF16Bits(NaN), 0x7e00);
  t.equal(numberToBf16Bits(NaN), 0x7fc0);

  // bf16 from float32: the usual bit formula is an independent oracle
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 0xffffffff }), (bits) => {
      u[0] = bits;
      const x = f[0]!;
      if (Number.isNaN(x)) return true;
      const want = ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
      return numberToBf16Bits(x) === want;
    }),
    { numRuns: 20000 },
  );
  // f16 from any double: the result is a nearest half, ties to even mantissa
  fc.assert(
    fc.property(fc.double({ min: -70000, max: 70000, noNaN: true }), (x) => {
      const h = numberToF16Bits(x);
      const v = f16BitsToNumber(h);
      if (Math.abs(x) >= 65520) return v === Math.sign(x) * Infinity;
      const mag = h & 0x7fff;
      const sign = h & 0x8000;
      const err = Math.abs(v - x);
      for (const nb of [mag - 1, mag + 1]) {
        if (nb < 0 || nb > 0x7bff) continue;
        const e2 = Math.abs(f16BitsToNumber(sign | nb) - x);
        if (e2 < err) return false;
        if (e2 === err && (mag & 1) === 1) return false;
      }
      return true;
    }),
    { numRuns: 20000 },
  );
  // Float32Array / Float64Array input is converted; Uint16Array is taken as raw bits
  const e = encodeSafetensors({
    a: { dtype: 'F16', shape: [3], data: new Float64Array([1, 1 / 3, -2]) },
    b: { dtype: 'BF16', shape: [2], data: new Float32Array([1, -3.140625]) },
  });
  const d = decodeSafetensors(e, 'x', { halfAsBits: true }).tensors;
  t.same([...(d.a!.data as Uint16Array)], [0x3c00, 0x3555, 0xc000]);
  t.same([...(d.b!.data as Uint16Array)], [0x3f80, 0xc049]);
});

// ------------------------------------------------------------------- interop: PyTorch -> us

t.test('reads the file written by PyTorch (scripts/make-fixtures.py)', async (t) => {
  const file = new Uint8Array(readFileSync(FIXTURE));
  const { tensors, metadata } = await readSafetensorsFile(FIXTURE);
  t.same({ ...metadata }, { format: 'pt', written_by: 'scripts/make-fixtures.py' });
  const T = (n: string): StEntry => {
    const e = tensors[n];
    if (!e) throw new Error(`missing ${n}`);
    return e;
  };
  t.same(Object.keys(tensors).sort(), [
    'bf16',
    'büro.été',
    'conv.weight',
    'empty',
    'f16',
    'f32',
    'f64',
    'i16',
    'i32',
    'i64',
    'i8',
    'labels',
    'mask',
    'scalar',
    'u8',
  ]);
  const f64 = T('f64');
  t.equal(f64.dtype, 'F64');
  t.same(f64.shape, [2, 3]);
  t.ok(f64.data instanceof Float64Array);
  const f64v = [...(f64.data as Float64Array)];
  t.same(f64v.slice(0, 4), [-1.5, 0, 2 ** -1074, 1e300]);
  t.ok(Object.is(f64v[4], -0), '-0 kept');
  t.equal(f64v[5], Math.PI);
  const f32 = T('f32');
  t.same(f32.shape, [2, 3, 4]);
  t.same(
    [...(f32.data as Float32Array)],
    Array.from({ length: 24 }, (_, i) => i / 4 - 3),
  );
  const f16 = T('f16');
  t.equal(f16.dtype, 'F16');
  t.equal(f16.widened, true);
  t.ok(f16.data instanceof Float32Array);
  t.same([...(f16.data as Float32Array)], [0, -2.5, 65504, 2 ** -24, 0.333251953125]);
  const bf16 = T('bf16');
  t.same([...(bf16.data as Float32Array)], [1, -3.140625, 2 ** 100, -(2 ** -130)]);
  const i64 = T('i64');
  t.ok(i64.data instanceof BigInt64Array);
  t.same([...(i64.data as BigInt64Array)], [-(2n ** 40n), 0n, 2n ** 53n + 1n]);
  t.throws(
    () => int64ToInt32(i64.data as BigInt64Array, 'i64'),
    /i64: element 0 is -1099511627776, outside the int32 range/,
  );
  const labels = T('labels');
  t.same(labels.shape, [2, 2]);
  const l32 = int64ToInt32(labels.data as BigInt64Array, 'labels');
  t.ok(l32 instanceof Int32Array);
  t.same([...l32], [0, 1, 2, 3]);
  t.same([...(T('i32').data as Int32Array)], [-(2 ** 31), 7, 2 ** 31 - 1]);
  t.same([...(T('i16').data as Int16Array)], [-32768, 32767]);
  t.same([...(T('i8').data as Int8Array)], [-128, 0, 127]);
  t.same([...(T('u8').data as Uint8Array)], [0, 1, 200, 255]);
  t.equal(T('mask').dtype, 'BOOL');
  t.same([...(T('mask').data as Uint8Array)], [1, 0, 1]);
  t.same(T('scalar').shape, []);
  t.same([...(T('scalar').data as Float32Array)], [42.5]);
  t.same(T('empty').shape, [0, 3]);
  t.equal(T('empty').data.length, 0);
  t.same([...(T('büro.été').data as Float32Array)], [1]);
  t.same([...stEntryToFloat64(T('labels'))], [0, 1, 2, 3]);
  t.same([...stEntryToFloat64(T('u8'))], [0, 1, 200, 255]);
  // our writer reproduces the PyTorch-side file byte for byte, from either decode
  t.equal(Buffer.compare(encodeSafetensors(tensors, metadata), file), 0, 'widened decode re-encodes identically');
  const bits = decodeSafetensors(file, FIXTURE, { halfAsBits: true });
  t.equal(Buffer.compare(encodeSafetensors(bits.tensors, bits.metadata), file), 0, 'bit decode re-encodes identically');
  const h = parseSafetensorsHeader(file, FIXTURE);
  t.equal(h.dataStart % 8, 0);
  t.same(h.tensors['i64']!.dataOffsets, [0, 24]);
});

// ------------------------------------------------------------------- interop: us -> PyTorch

function pythonHasTorch(): boolean {
  if (!existsSync(PYTHON)) return false;
  const r = spawnSync(PYTHON, ['-c', 'import torch'], { stdio: 'ignore', timeout: 120_000 });
  return r.status === 0;
}

t.test(
  'a file we write is read by PyTorch',
  { skip: requirement('TORCH', !pythonHasTorch() && `${PYTHON} cannot import torch`) },
  async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'largo-st-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const path = join(dir, 'ours.safetensors');
    const entries: Record<string, StEntry> = {
      'layer.0.weight': { dtype: 'F32', shape: [2, 3], data: new Float32Array([0.5, -1, 2.25, 3e-8, 1e30, -0]) },
      f64: { dtype: 'F64', shape: [2], data: new Float64Array([Math.E, -1e-300]) },
      half: { dtype: 'F16', shape: [3], data: new Float32Array([1, -0.5, 1 / 3]) },
      brain: { dtype: 'BF16', shape: [2], data: new Float32Array([1.5, -(2 ** 100)]) },
      labels: { dtype: 'I64', shape: [2, 2], data: new Int32Array([0, 3, 1, 2]) },
      big: { dtype: 'I64', shape: [2], data: new BigInt64Array([-(2n ** 62n), 2n ** 53n + 1n]) },
      i32: { dtype: 'I32', shape: [2], data: new Int32Array([-5, 2 ** 31 - 1]) },
      i16: { dtype: 'I16', shape: [1], data: new Int16Array([-300]) },
      i8: { dtype: 'I8', shape: [2], data: new Int8Array([-7, 8]) },
      u8: { dtype: 'U8', shape: [1, 1, 2], data: new Uint8Array([9, 250]) },
      mask: { dtype: 'BOOL', shape: [2], data: new Uint8Array([0, 1]) },
      scalar: { dtype: 'F32', shape: [], data: new Float32Array([7]) },
      empty: { dtype: 'F32', shape: [3, 0], data: new Float32Array(0) },
      ünï: { dtype: 'F32', shape: [1], data: new Float32Array([4]) },
    };
    await writeSafetensorsFileAtomic(path, entries, { framework: 'largo', note: 'é' });
    const r = spawnSync(PYTHON, [SCRIPT, '--dump', path], { encoding: 'utf8', timeout: 300_000 });
    t.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as {
      reader: string;
      metadata: Record<string, string>;
      tensors: Record<string, { dtype: string; shape: number[]; values: string[] }>;
    };
    t.comment(`read by ${out.reader}`);
    t.same(out.metadata, { framework: 'largo', note: 'é' });
    t.same(Object.keys(out.tensors).sort(), Object.keys(entries).sort());
    const num = (s: string): number =>
      s === 'nan' ? NaN : s === 'inf' ? Infinity : s === '-inf' ? -Infinity : Number(s);
    for (const [name, e] of Object.entries(entries)) {
      const p = out.tensors[name]!;
      t.equal(p.dtype, e.dtype, `${name} dtype`);
      t.same(p.shape, e.shape, `${name} shape`);
      if (e.dtype === 'I64') {
        const want = e.data instanceof BigInt64Array ? [...e.data].map(String) : [...e.data].map(String);
        t.same(p.values, want, `${name} values`);
      } else if (e.dtype === 'F16' || e.dtype === 'BF16') {
        const conv = e.dtype === 'F16' ? numberToF16Bits : numberToBf16Bits;
        const back = e.dtype === 'F16' ? f16BitsToNumber : bf16BitsToNumber;
        t.same(
          p.values.map(num),
          [...(e.data as Float32Array)].map((v) => back(conv(v))),
          `${name} values`,
        );
      } else {
        const got = p.values.map(num);
        const want = [...(e.data as Float64Array)];
        t.ok(got.length === want.length && got.every((g, i) => Object.is(g, want[i])), `${name} values`);
      }
    }
  },
);

// ------------------------------------------------------------------- corrupt files

t.test('each corruption gives its own clear error naming the file', async (t) => {
  const good = encodeSafetensors({
    a: { dtype: 'F32', shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) },
    b: { dtype: 'I32', shape: [3], data: new Int32Array([1, 2, 3]) },
  });
  const src = 'model.safetensors';
  t.same(Object.keys(decodeSafetensors(good, src).tensors).sort(), ['a', 'b']);

  throwsSt(t, () => decodeSafetensors(good.subarray(0, 5), src), 'TRUNCATED', /truncated: 5 bytes/, src);
  throwsSt(t, () => decodeSafetensors(new Uint8Array(0), src), 'TRUNCATED', /truncated/, src);
  throwsSt(
    t,
    () => decodeSafetensors(good.subarray(0, 30), src),
    'HEADER_LENGTH',
    /header length \d+ goes beyond the end of the file \(30 bytes\)/,
    src,
  );
  const huge = good.slice();
  new DataView(huge.buffer).setBigUint64(0, 2n ** 63n, true);
  throwsSt(t, () => decodeSafetensors(huge, src), 'HEADER_LENGTH', /beyond the end of the file/, src);
  // data cut short: the last tensor's offsets run past the buffer
  throwsSt(
    t,
    () => decodeSafetensors(good.subarray(0, good.length - 4), src),
    'OFFSETS',
    /tensor 'b': data_offsets \[16, 28\] go beyond the data buffer \(24 bytes\)/,
    src,
  );
  // trailing garbage: offsets don't cover the buffer
  const longer = new Uint8Array(good.length + 3);
  longer.set(good);
  throwsSt(
    t,
    () => decodeSafetensors(longer, src),
    'OFFSETS',
    /do not cover the data buffer: tensors end at 28 but the buffer holds 31/,
    src,
  );

  const badUtf8 = craft('{}');
  badUtf8[9] = 0xff;
  throwsSt(t, () => decodeSafetensors(badUtf8, src), 'HEADER_UTF8', /not valid UTF-8/, src);
  throwsSt(t, () => decodeSafetensors(craft('{"a": {"dtype": "F32",'), src), 'HEADER_JSON', /not valid JSON/, src);
  throwsSt(t, () => decodeSafetensors(craft('[1, 2]'), src), 'HEADER_SCHEMA', /must be a JSON object/, src);
  throwsSt(
    t,
    () => decodeSafetensors(craft({ a: 3 }), src),
    'HEADER_SCHEMA',
    /tensor 'a': entry must be an object/,
    src,
  );
  throwsSt(
    t,
    () => decodeSafetensors(craft({ __metadata__: { k: 1 } }), src),
    'HEADER_SCHEMA',
    /__metadata__ 'k' must be a string/,
    src,
  );
  throwsSt(
    t,
    () => decodeSafetensors(craft({ a: { dtype: 'F32', shape: [1], data_offsets: [0] } }, 4), src),
    'HEADER_SCHEMA',
    /data_offsets must be \[begin, end\]/,
    src,
  );
  throwsSt(
    t,
    () => decodeSafetensors(craft({ a: { dtype: 'F32', shape: 1, data_offsets: [0, 4] } }, 4), src),
    'HEADER_SCHEMA',
    /shape must be an array/,
    src,
  );
  throwsSt(
    t,
    () => decodeSafetensors(craft({ a: { dtype: 'F128', shape: [1], data_offsets: [0, 16] } }, 16), src),
    'DTYPE',
    /tensor 'a': unknown dtype "F128"/,
    src,
  );
  throwsSt(
    t,
    () => decodeSafetensors(craft({ a: { dtype: 'F8_E4M3', shape: [1], data_offsets: [0, 1] } }, 1), src),
    'DTYPE',
    /unsupported dtype "F8_E4M3"/,
    src,
  );
  throwsSt(
    t,
    () => decodeSafetensors(craft({ a: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, 4), src),
    'SHAPE',
    /non-negative integers/,
    src,
  );
  throwsSt(
    t,
    () => decodeSafetensors(craft({ a: { dtype: 'F32', shape: [1.5], data_offsets: [0, 4] } }, 4), src),
    'SHAPE',
    /non-negative integers/,
    src,
  );
  throwsSt(
    t,
    () => decodeSafetensors(craft({ a: { dtype: 'F32', shape: [2, 3], data_offsets: [0, 20] } }, 20), src),
    'SIZE_MISMATCH',
    /tensor 'a': shape \[2, 3\] × F32 \(4 bytes\) is 24 bytes but data_offsets \[0, 20\] hold 20/,
    src,
  );
  throwsSt(
    t,
    () => decodeSafetensors(craft({ a: { dtype: 'F32', shape: [1], data_offsets: [8, 4] } }, 8), src),
    'OFFSETS',
    /end before they begin/,
    src,
  );
  throwsSt(
    t,
    () => decodeSafetensors(craft({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, 4), src),
    'OFFSETS',
    /go beyond the data buffer \(4 bytes\)/,
    src,
  );
  throwsSt(
    t,
    () =>
      decodeSafetensors(
        craft(
          {
            a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
            b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] },
          },
          12,
        ),
        src,
      ),
    'OFFSETS',
    /tensor 'b'.*overlap tensor 'a'/,
    src,
  );
  throwsSt(
    t,
    () =>
      decodeSafetensors(
        craft(
          {
            a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] },
            b: { dtype: 'F32', shape: [1], data_offsets: [8, 12] },
          },
          12,
        ),
        src,
      ),
    'OFFSETS',
    /bytes \[4, 8\) before tensor 'b' belong to no tensor/,
    src,
  );
  throwsSt(
    t,
    () => decodeSafetensors(craft({ a: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, 8), src),
    'OFFSETS',
    /bytes \[0, 4\) before tensor 'a'/,
    src,
  );
  // offsets in any order are fine as long as they tile the buffer (not only the writer's order)
  const anyOrder = decodeSafetensors(
    craft(
      { b: { dtype: 'U8', shape: [1], data_offsets: [4, 5] }, a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } },
      new Uint8Array([0, 0, 128, 63, 7]),
    ),
    src,
  );
  t.same([...(anyOrder.tensors.a!.data as Float32Array)], [1]);
  t.same([...(anyOrder.tensors.b!.data as Uint8Array)], [7]);
  // headers without padding are accepted
  t.same(Object.keys(decodeSafetensors(craft({}, 0, false), src).tensors), []);
  // the file reader names the path
  const dir = mkdtempSync(join(tmpdir(), 'largo-st-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const p = join(dir, 'broken.safetensors');
  writeFileSync(p, good.subarray(0, good.length - 1));
  await t.rejects(readSafetensorsFile(p), {
    code: 'OFFSETS',
    source: p,
    message: new RegExp(`${p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`),
  });
});

t.test('encode refuses bad input with clear errors', async (t) => {
  throwsSt(
    t,
    () => encodeSafetensors({ __metadata__: { dtype: 'F32', shape: [], data: new Float32Array(1) } }),
    'ENCODE',
    /reserved/,
  );
  throwsSt(
    t,
    () => encodeSafetensors({ a: { dtype: 'F32', shape: [2], data: new Float32Array(3) } }),
    'ENCODE',
    /tensor 'a': shape \[2\] has 2 elements but data has 3/,
  );
  throwsSt(
    t,
    () => encodeSafetensors({ a: { dtype: 'F32', shape: [2], data: new Float64Array(2) } }),
    'ENCODE',
    /dtype F32 takes Float32Array, got Float64Array/,
  );
  throwsSt(
    t,
    () => encodeSafetensors({ a: { dtype: 'I64', shape: [2], data: new Float64Array(2) } }),
    'ENCODE',
    /BigInt64Array or Int32Array/,
  );
  throwsSt(
    t,
    () => encodeSafetensors({ a: { dtype: 'X' as StDtype, shape: [1], data: new Uint8Array(1) } }),
    'DTYPE',
    /unknown dtype "X"/,
  );
  throwsSt(
    t,
    () => encodeSafetensors({ a: { dtype: 'BOOL', shape: [2], data: new Uint8Array([1, 2]) } }),
    'ENCODE',
    /BOOL element 1 is 2/,
  );
  throwsSt(
    t,
    () => encodeSafetensors({ a: { dtype: 'U8', shape: [-1], data: new Uint8Array(0) } }),
    'ENCODE',
    /non-negative integers/,
  );
  throwsSt(t, () => encodeSafetensors({}, { k: 3 as unknown as string }), 'ENCODE', /metadata 'k' must be a string/);
  // I64 from Int32Array widens
  const d = decodeSafetensors(
    encodeSafetensors({ l: { dtype: 'I64', shape: [2], data: new Int32Array([-1, 5]) } }),
  ).tensors;
  t.same([...(d.l!.data as BigInt64Array)], [-1n, 5n]);
  // int64ToInt32 range check at both ends
  t.same([...int64ToInt32(new BigInt64Array([-(2n ** 31n), 2n ** 31n - 1n]))], [-(2 ** 31), 2 ** 31 - 1]);
  t.throws(() => int64ToInt32(new BigInt64Array([0n, 2n ** 31n]), 'labels'), {
    code: 'RANGE',
    message: /labels: element 1 is 2147483648/,
  });
  // a typed array that is a view into a larger buffer is written from its own range only
  const big = new Float32Array([9, 1, 2, 9]);
  const sub = decodeSafetensors(
    encodeSafetensors({ v: { dtype: 'F32', shape: [2], data: big.subarray(1, 3) } }),
  ).tensors;
  t.same([...(sub.v!.data as Float32Array)], [1, 2]);
  // a Node Buffer (pooled, non-zero byteOffset) decodes into independent arrays
  const buf = Buffer.from(encodeSafetensors({ v: { dtype: 'F64', shape: [1], data: new Float64Array([3.5]) } }));
  const fromBuf = decodeSafetensors(buf).tensors.v!.data as Float64Array;
  t.equal(fromBuf.byteOffset, 0);
  t.equal(fromBuf.buffer.byteLength, 8);
  t.same([...fromBuf], [3.5]);
});

// ------------------------------------------------------------------- atomic writes

t.test('writeSafetensorsFileAtomic', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'largo-st-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'ckpt.safetensors');
  const v1 = { w: { dtype: 'F32', shape: [2], data: new Float32Array([1, 2]) } } satisfies Record<string, StEntry>;
  const v2 = { w: { dtype: 'F32', shape: [3], data: new Float32Array([3, 4, 5]) } } satisfies Record<string, StEntry>;
  await writeSafetensorsFileAtomic(path, v1, { step: '1' });
  t.same([...((await readSafetensorsFile(path)).tensors.w!.data as Float32Array)], [1, 2]);
  await writeSafetensorsFileAtomic(path, v2, { step: '2' });
  const r2 = await readSafetensorsFile(path);
  t.same([...(r2.tensors.w!.data as Float32Array)], [3, 4, 5]);
  t.same({ ...r2.metadata }, { step: '2' });
  t.same(readdirSync(dir), ['ckpt.safetensors'], 'no temporary file left behind');
  // a failed write leaves the previous file intact and no temporary file
  await t.rejects(writeSafetensorsFileAtomic(path, { w: { dtype: 'F32', shape: [4], data: new Float32Array(1) } }), {
    code: 'ENCODE',
  });
  t.same([...((await readSafetensorsFile(path)).tensors.w!.data as Float32Array)], [3, 4, 5]);
  t.same(readdirSync(dir), ['ckpt.safetensors']);
  // a crash between writing the temporary file and the rename: the old file is still whole
  writeFileSync(`${path}.tmp-${process.pid}`, 'half-written');
  t.same([...((await readSafetensorsFile(path)).tensors.w!.data as Float32Array)], [3, 4, 5]);
  await writeSafetensorsFileAtomic(path, v1);
  t.same(readdirSync(dir), ['ckpt.safetensors'], 'stale temporary file replaced and renamed');
  // unwritable target: error, nothing created
  await t.rejects(writeSafetensorsFileAtomic(join(dir, 'missing', 'x.safetensors'), v1));
  t.same(readdirSync(dir), ['ckpt.safetensors']);
});

// ------------------------------------------------------------------- the committed audit fixture

interface AuditCase {
  name: string;
  op: string;
  params: Record<string, unknown>;
  inputs: string[];
  outputs: string[];
  upstream?: Record<string, string>;
  grads: Record<string, string>;
  rtol: number;
  atol: number;
}

t.test('fixtures/audit-default: manifest and tensors agree, and several ops recompute', async (t) => {
  const root = join(here, '..', '..', '..', 'fixtures', 'audit-default');
  const manifest = JSON.parse(readFileSync(join(root, 'manifest.json'), 'utf8')) as {
    version: number;
    cases: AuditCase[];
  };
  t.equal(manifest.version, 1);
  t.same(Object.keys(manifest), ['version', 'cases']);
  const { tensors, metadata } = await readSafetensorsFile(join(root, 'tensors.safetensors'));
  t.equal(metadata['generator'], 'scripts/make-fixtures.py');
  const used = new Set<string>();
  const get = (c: AuditCase, local: string): StEntry => {
    const e = tensors[`${c.name}.${local}`];
    if (!e) throw new Error(`${c.name}.${local} missing`);
    used.add(`${c.name}.${local}`);
    return e;
  };
  const f64 = (e: StEntry): Float64Array => stEntryToFloat64(e);
  let recomputed = 0;
  const close = (c: AuditCase, what: string, got: ArrayLike<number>, want: ArrayLike<number>): void => {
    let worst = 0;
    for (let i = 0; i < want.length; i++) {
      worst = Math.max(worst, Math.abs(got[i]! - want[i]!) / (c.atol + c.rtol * Math.abs(want[i]!)));
    }
    t.ok(got.length === want.length && worst <= 0.1, `${c.name} ${what}: ${worst.toExponential(2)} of the tolerance`);
    recomputed++;
  };
  const ops = new Set<string>();
  for (const c of manifest.cases) {
    ops.add(c.op);
    t.ok(c.rtol > 0 && c.rtol <= 1e-3 && c.atol > 0 && c.atol <= 1e-3, `${c.name} tolerances`);
    for (const n of [...c.inputs, ...c.outputs, ...Object.values(c.upstream ?? {}), ...Object.values(c.grads)]) {
      const e = get(c, n);
      t.ok(e.dtype === 'F32' || (e.dtype === 'I64' && n === 'target'), `${c.name}.${n} dtype ${e.dtype}`);
    }
    for (const [inp, g] of Object.entries(c.grads))
      t.same(get(c, g).shape, get(c, inp).shape, `${c.name}: grad of ${inp} has its shape`);
    for (const [out, u] of Object.entries(c.upstream ?? {}))
      t.same(get(c, u).shape, get(c, out).shape, `${c.name}: upstream of ${out}`);
    for (const out of c.outputs)
      if (!c.upstream?.[out]) t.same(get(c, out).shape, [], `${c.name}: output without upstream is a scalar`);

    const x = (n: string) => f64(get(c, n));
    const shape = (n: string) => get(c, n).shape;
    switch (c.op) {
      case 'matmul': {
        const [sa, sb] = [shape('a'), shape('b')];
        const [M, K] = sa.slice(-2) as [number, number];
        const N = sb[sb.length - 1]!;
        const B = sa.length === 3 ? sa[0]! : 1;
        const a = x('a'),
          b = x('b');
        const y = new Float64Array(B * M * N);
        for (let p = 0; p < B; p++)
          for (let i = 0; i < M; i++)
            for (let j = 0; j < N; j++) {
              let s = 0;
              for (let k = 0; k < K; k++)
                s += a[p * M * K + i * K + k]! * b[(sb.length === 3 ? p * K * N : 0) + k * N + j]!;
              y[p * M * N + i * N + j] = s;
            }
        close(c, 'y', x('y'), y);
        break;
      }
      case 'cp_reconstruct': {
        const w = x('weights'),
          A = x('a_out'),
          Bm = x('a_in'),
          C = x('a_kernel'),
          gW = x('gW');
        const R = w.length,
          O = shape('a_out')[0]!,
          I = shape('a_in')[0]!,
          S = shape('a_kernel')[0]!;
        t.same(shape('W'), [O, I, S]);
        const W = new Float64Array(O * I * S);
        const gw = new Float64Array(R);
        for (let o = 0; o < O; o++)
          for (let i = 0; i < I; i++)
            for (let s = 0; s < S; s++) {
              let acc = 0;
              for (let r = 0; r < R; r++) {
                const term = A[o * R + r]! * Bm[i * R + r]! * C[s * R + r]!;
                acc += w[r]! * term;
                gw[r] = gw[r]! + gW[(o * I + i) * S + s]! * term;
              }
              W[(o * I + i) * S + s] = acc;
            }
        close(c, 'W', x('W'), W);
        close(c, 'gweights', x('gweights'), gw);
        break;
      }
      case 'leaky_relu': {
        const s = c.params['negative_slope'] as number;
        const xs = x('x'),
          gy = x('gy');
        close(
          c,
          'y',
          x('y'),
          xs.map((v) => (v > 0 ? v : s * v)),
        );
        close(
          c,
          'gx',
          x('gx'),
          xs.map((v, i) => gy[i]! * (v > 0 ? 1 : s)),
        );
        break;
      }
      case 'sum':
      case 'mean': {
        const sh = shape('x');
        const dims = (Array.isArray(c.params['dim']) ? (c.params['dim'] as number[]) : [c.params['dim'] as number]).map(
          (d) => (d + sh.length) % sh.length,
        );
        const keep = c.params['keepdim'] as boolean;
        const outShape = sh.map((d, i) => (dims.includes(i) ? 1 : d));
        t.same(shape('y'), keep ? outShape : sh.filter((_, i) => !dims.includes(i)), `${c.name} output shape`);
        const xs = x('x');
        const out = new Float64Array(outShape.reduce((p, q) => p * q, 1));
        const count = dims.reduce((p, d) => p * sh[d]!, 1);
        const idx = new Array<number>(sh.length).fill(0);
        for (let flat = 0; flat < xs.length; flat++) {
          let r = flat;
          for (let a = sh.length - 1; a >= 0; a--) {
            idx[a] = r % sh[a]!;
            r = Math.floor(r / sh[a]!);
          }
          let o = 0;
          for (let a = 0; a < sh.length; a++) o = o * outShape[a]! + (dims.includes(a) ? 0 : idx[a]!);
          out[o] = out[o]! + xs[flat]! / (c.op === 'mean' ? count : 1);
        }
        close(c, 'y', x('y'), out);
        break;
      }
      case 'bce_with_logits': {
        const z = x('logits'),
          y = x('target');
        let s = 0;
        for (let i = 0; i < z.length; i++)
          s += Math.max(z[i]!, 0) - z[i]! * y[i]! + Math.log1p(Math.exp(-Math.abs(z[i]!)));
        close(c, 'loss', x('loss'), [s / z.length]);
        break;
      }
      case 'cross_entropy': {
        const sh = shape('logits');
        const [N, C] = sh as [number, number];
        const P = sh.slice(2).reduce((p, q) => p * q, 1);
        const z = x('logits'),
          tgt = int64ToInt32(get(c, 'target').data as BigInt64Array);
        let s = 0;
        for (let n = 0; n < N; n++)
          for (let p = 0; p < P; p++) {
            let m = -Infinity;
            for (let k = 0; k < C; k++) m = Math.max(m, z[(n * C + k) * P + p]!);
            let e = 0;
            for (let k = 0; k < C; k++) e += Math.exp(z[(n * C + k) * P + p]! - m);
            s += m + Math.log(e) - z[(n * C + tgt[n * P + p]!) * P + p]!;
          }
        close(c, 'loss', x('loss'), [s / (N * P)]);
        break;
      }
      case 'soft_dice_loss': {
        const sh = shape('probs');
        const [N, C] = sh as [number, number];
        const P = sh.slice(2).reduce((p, q) => p * q, 1);
        const pr = x('probs'),
          tg = x('target');
        const batch = c.params['batch_dice'] as boolean,
          smooth = c.params['smooth'] as number;
        const G = batch ? 1 : N;
        const tp = new Float64Array(G * C),
          sp = new Float64Array(G * C),
          st = new Float64Array(G * C);
        for (let n = 0; n < N; n++)
          for (let k = 0; k < C; k++)
            for (let p = 0; p < P; p++) {
              const g = (batch ? 0 : n) * C + k,
                i = (n * C + k) * P + p;
              tp[g] = tp[g]! + pr[i]! * tg[i]!;
              sp[g] = sp[g]! + pr[i]!;
              st[g] = st[g]! + tg[i]!;
            }
        let dc = 0;
        for (let g = 0; g < G * C; g++) dc += (2 * tp[g]! + smooth) / (sp[g]! + st[g]! + smooth);
        close(c, 'loss', x('loss'), [1 - dc / (G * C)]);
        break;
      }
    }
  }
  t.same([...ops].sort(), [
    'bce_with_logits',
    'conv2d',
    'conv3d',
    'conv_transpose3d',
    'cp_reconstruct',
    'cross_entropy',
    'instance_norm',
    'leaky_relu',
    'log_softmax',
    'matmul',
    'mean',
    'soft_dice_loss',
    'softmax',
    'sum',
  ]);
  t.equal(used.size, Object.keys(tensors).length, 'every stored tensor belongs to a case');
  t.ok(recomputed >= 25, `${recomputed} comparisons recomputed here`);
});
