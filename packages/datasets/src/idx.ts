/**
 * IDX files (the MNIST distribution format), gzipped or not.
 * Layout: 2 zero bytes, a type byte, a dimension-count byte, then one
 * big-endian uint32 per dimension, then the values (big-endian).
 */
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';

export class IdxError extends Error {
  readonly path: string;
  constructor(path: string, message: string) {
    super(`${path}: ${message}`);
    this.name = 'IdxError';
    this.path = path;
  }
}

export type IdxData = Uint8Array | Int8Array | Int16Array | Int32Array | Float32Array | Float64Array;

export interface IdxArray {
  /** the 4 magic bytes as a number, e.g. 0x803 for MNIST images */
  magic: number;
  shape: number[];
  data: IdxData;
}

const TYPES: Record<
  number,
  { bytes: number; read: (dv: DataView, o: number) => number; ctor: new (n: number) => IdxData }
> = {
  0x08: { bytes: 1, read: (dv, o) => dv.getUint8(o), ctor: Uint8Array },
  0x09: { bytes: 1, read: (dv, o) => dv.getInt8(o), ctor: Int8Array },
  0x0b: { bytes: 2, read: (dv, o) => dv.getInt16(o, false), ctor: Int16Array },
  0x0c: { bytes: 4, read: (dv, o) => dv.getInt32(o, false), ctor: Int32Array },
  0x0d: { bytes: 4, read: (dv, o) => dv.getFloat32(o, false), ctor: Float32Array },
  0x0e: { bytes: 8, read: (dv, o) => dv.getFloat64(o, false), ctor: Float64Array },
};

/** Parse IDX bytes (gzip detected by its magic). `path` names the source in errors. */
export function parseIdx(bytes: Uint8Array, path = '<buffer>'): IdxArray {
  let buf = bytes;
  if (buf.length >= 2 && buf[0] === 0x1f && buf[1] === 0x8b) {
    try {
      buf = gunzipSync(buf);
    } catch (e) {
      throw new IdxError(path, `corrupt or truncated gzip stream (${(e as Error).message})`);
    }
  }
  if (buf.length < 4) throw new IdxError(path, `truncated: ${buf.length} bytes, too short for an IDX header`);
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const magic = dv.getUint32(0, false);
  const type = buf[2]!;
  const ndim = buf[3]!;
  const t = TYPES[type];
  if (buf[0] !== 0 || buf[1] !== 0 || !t || ndim === 0) {
    throw new IdxError(path, `not an IDX file: magic 0x${magic.toString(16).padStart(8, '0')}`);
  }
  if (buf.length < 4 + 4 * ndim)
    throw new IdxError(path, `truncated: header declares ${ndim} dimensions but the file has ${buf.length} bytes`);
  const shape: number[] = [];
  for (let i = 0; i < ndim; i++) shape.push(dv.getUint32(4 + 4 * i, false));
  const n = shape.reduce((p, v) => p * v, 1);
  const start = 4 + 4 * ndim;
  const need = n * t.bytes;
  const have = buf.length - start;
  if (have !== need) {
    throw new IdxError(
      path,
      `${have < need ? 'truncated' : 'size mismatch'}: shape [${shape.join(', ')}] needs ${need} data bytes, found ${have}`,
    );
  }
  let data: IdxData;
  if (type === 0x08) {
    data = new Uint8Array(need); // a plain copy, not a view into the decompression buffer
    data.set(buf.subarray(start, start + need));
  } else {
    data = new t.ctor(n);
    for (let i = 0; i < n; i++) data[i] = t.read(dv, start + i * t.bytes);
  }
  return { magic, shape, data };
}

export function readIdx(path: string): IdxArray {
  return parseIdx(readFileSync(path), path);
}

/** MNIST images: magic 0x00000803, [N, rows, cols] uint8. */
export function readMnistImages(path: string): { count: number; rows: number; cols: number; pixels: Uint8Array } {
  const a = readIdx(path);
  if (a.magic !== 0x803)
    throw new IdxError(
      path,
      `wrong magic 0x${a.magic.toString(16).padStart(8, '0')} for MNIST images (expected 0x00000803)`,
    );
  const [count, rows, cols] = a.shape as [number, number, number];
  return { count, rows, cols, pixels: a.data as Uint8Array };
}

/** MNIST labels: magic 0x00000801, [N] uint8 in 0..9. */
export function readMnistLabels(path: string): Uint8Array {
  const a = readIdx(path);
  if (a.magic !== 0x801)
    throw new IdxError(
      path,
      `wrong magic 0x${a.magic.toString(16).padStart(8, '0')} for MNIST labels (expected 0x00000801)`,
    );
  const labels = a.data as Uint8Array;
  for (let i = 0; i < labels.length; i++) {
    if (labels[i]! > 9) throw new IdxError(path, `label ${labels[i]} at index ${i} is not a digit`);
  }
  return labels;
}
