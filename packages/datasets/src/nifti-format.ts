/**
 * NIfTI-1 format without I/O: header parsing of bytes already in memory and
 * uncompressed, header construction, affines and encoding. No Node imports,
 * so browsers load it as is; `nifti.ts` adds gzip and files for Node, and
 * `browser.ts` adds gzip through `DecompressionStream`.
 * (Over 500 lines on purpose: the 348-byte header's fields, the reader and the
 * writer stay together so that both sides of every field are read in one place.)
 *
 * Voxel data is kept exactly as stored (the typed array of the file's
 * datatype, in file order: x fastest). `niftiToVolume` turns it into a float32
 * row-major volume of shape [..., z, y, x] (= [D, H, W] for 3D), which needs
 * no transposition because NIfTI's x-fastest order is row-major order with the
 * axes reversed.
 */

/** Error for any unreadable or inconsistent NIfTI input; the message starts with the file path. */
export class NiftiError extends Error {
  readonly path: string;
  constructor(path: string, message: string) {
    super(`${path}: ${message}`);
    this.name = 'NiftiError';
    this.path = path;
  }
}

export type NiftiDtype =
  'uint8' | 'int8' | 'int16' | 'uint16' | 'int32' | 'uint32' | 'int64' | 'uint64' | 'float32' | 'float64';

export type NiftiData =
  | Uint8Array
  | Int8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array
  | Float32Array
  | Float64Array;

interface DtypeInfo {
  code: number;
  bytes: number;
  ctor: { new (n: number): NiftiData; new (b: ArrayBuffer, o: number, n: number): NiftiData };
}

/** NIfTI-1 datatype codes (nifti1.h). */
export const NIFTI_DTYPES: Readonly<Record<NiftiDtype, DtypeInfo>> = {
  uint8: { code: 2, bytes: 1, ctor: Uint8Array },
  int16: { code: 4, bytes: 2, ctor: Int16Array },
  int32: { code: 8, bytes: 4, ctor: Int32Array },
  float32: { code: 16, bytes: 4, ctor: Float32Array },
  float64: { code: 64, bytes: 8, ctor: Float64Array },
  int8: { code: 256, bytes: 1, ctor: Int8Array },
  uint16: { code: 512, bytes: 2, ctor: Uint16Array },
  uint32: { code: 768, bytes: 4, ctor: Uint32Array },
  int64: { code: 1024, bytes: 8, ctor: BigInt64Array },
  uint64: { code: 1280, bytes: 8, ctor: BigUint64Array },
} as const;

const UNSUPPORTED_CODES: Record<number, string> = {
  1: 'binary',
  32: 'complex64',
  128: 'RGB24',
  1536: 'float128',
  1792: 'complex128',
  2048: 'complex256',
  2304: 'RGBA32',
};

function dtypeOfCode(code: number): NiftiDtype | undefined {
  for (const [name, info] of Object.entries(NIFTI_DTYPES)) if (info.code === code) return name as NiftiDtype;
  return undefined;
}

export function niftiDtypeOf(data: NiftiData): NiftiDtype {
  if (data instanceof Uint8Array) return 'uint8';
  if (data instanceof Int8Array) return 'int8';
  if (data instanceof Int16Array) return 'int16';
  if (data instanceof Uint16Array) return 'uint16';
  if (data instanceof Int32Array) return 'int32';
  if (data instanceof Uint32Array) return 'uint32';
  if (data instanceof BigInt64Array) return 'int64';
  if (data instanceof BigUint64Array) return 'uint64';
  if (data instanceof Float32Array) return 'float32';
  if (data instanceof Float64Array) return 'float64';
  throw new Error('unsupported typed array for NIfTI data');
}

/** Every NIfTI-1 header field we keep; round-trips through the writer unchanged. */
export interface NiftiHeader {
  /** dim[1..dim[0]]: sizes along x, y, z, t, ... */
  dims: number[];
  /** all 8 pixdim entries; pixdim[0] is qfac, pixdim[1..3] the voxel size along x, y, z */
  pixdim: number[];
  dtype: NiftiDtype;
  datatype: number;
  bitpix: number;
  voxOffset: number;
  sclSlope: number;
  sclInter: number;
  dimInfo: number;
  intentP1: number;
  intentP2: number;
  intentP3: number;
  intentCode: number;
  intentName: string;
  sliceStart: number;
  sliceEnd: number;
  sliceCode: number;
  sliceDuration: number;
  xyztUnits: number;
  calMax: number;
  calMin: number;
  toffset: number;
  descrip: string;
  auxFile: string;
  qformCode: number;
  sformCode: number;
  /** quatern_b, quatern_c, quatern_d */
  quatern: number[];
  /** qoffset_x, qoffset_y, qoffset_z */
  qoffset: number[];
  /** srow_x, srow_y, srow_z (3 rows of 4) */
  srow: number[][];
  littleEndian: boolean;
}

export interface NiftiImage {
  header: NiftiHeader;
  /** raw stored values in file order (x fastest); scl_slope/scl_inter not applied */
  data: NiftiData;
}

const HEADER_SIZE = 348;
const DATA_OFFSET = 352;

function hostLittleEndian(): boolean {
  return new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
}

function readString(buf: Uint8Array, at: number, len: number): string {
  let end = at;
  while (end < at + len && buf[end] !== 0) end++;
  return new TextDecoder('latin1').decode(buf.subarray(at, end));
}

function writeString(buf: Uint8Array, at: number, len: number, s: string, field: string): void {
  if (s.length > len) throw new Error(`NIfTI ${field} is longer than ${len} characters: '${s}'`);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 255) throw new Error(`NIfTI ${field} must be Latin-1 text: '${s}'`);
    buf[at + i] = c;
  }
}

/**
 * Largest NIfTI image accepted, uncompressed (header + voxel data): 2 GiB,
 * or the environment variable LARGO_MAX_NIFTI_BYTES (in Node). Checked from
 * the header before anything is decompressed, so a small gzip bomb cannot
 * fill memory.
 */
export const DEFAULT_MAX_NIFTI_BYTES = 2 * 1024 ** 3;

export function maxNiftiBytes(): number {
  const env = typeof process !== 'undefined' ? process.env?.['LARGO_MAX_NIFTI_BYTES'] : undefined;
  const v = env !== undefined ? Number(env) : NaN;
  return Number.isFinite(v) && v > 0 ? v : DEFAULT_MAX_NIFTI_BYTES;
}

export function tooLargeMessage(implied: number, limit: number): string {
  return `the header implies ${implied} bytes of image, more than the ${limit}-byte limit (LARGO_MAX_NIFTI_BYTES)`;
}

/** Bytes a header says the file holds (vox_offset + voxels), or null when `head` does not start with a valid NIfTI-1 header. */
export function niftiImpliedSize(head: Uint8Array): number | null {
  if (head.length < HEADER_SIZE) return null;
  const dv = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const le = dv.getInt32(0, true) === HEADER_SIZE ? true : dv.getInt32(0, false) === HEADER_SIZE ? false : null;
  if (le === null) return null;
  const ndim = dv.getInt16(40, le);
  if (ndim < 1 || ndim > 7) return null;
  let nvox = 1;
  for (let i = 1; i <= ndim; i++) {
    const d = dv.getInt16(40 + 2 * i, le);
    if (d < 1) return null;
    nvox *= d;
  }
  const dtype = dtypeOfCode(dv.getInt16(70, le));
  const vox = dv.getFloat32(108, le);
  if (!dtype || !Number.isInteger(vox) || vox < DATA_OFFSET) return null;
  return vox + nvox * NIFTI_DTYPES[dtype].bytes;
}

export function isGzip(buf: Uint8Array): boolean {
  return buf.length >= 2 && buf[0] === 0x1f && buf[1] === 0x8b;
}

function product(a: readonly number[]): number {
  return a.reduce((p, v) => p * v, 1);
}

/** Parse an uncompressed NIfTI-1 file in memory; `path` only names the source in errors. */
export function parseRawNifti(buf: Uint8Array, path = '<buffer>'): NiftiImage {
  if (buf.length < HEADER_SIZE) {
    throw new NiftiError(path, `truncated: ${buf.length} bytes, but a NIfTI-1 header alone is ${HEADER_SIZE} bytes`);
  }
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  // sizeof_hdr must read 348; whichever byte order gives 348 is the file's.
  let le: boolean;
  if (dv.getInt32(0, true) === HEADER_SIZE) le = true;
  else if (dv.getInt32(0, false) === HEADER_SIZE) le = false;
  else {
    const v = dv.getInt32(0, true);
    if (v === 540 || dv.getInt32(0, false) === 540)
      throw new NiftiError(path, 'NIfTI-2 files are not supported (sizeof_hdr is 540)');
    throw new NiftiError(path, `not a NIfTI-1 file: sizeof_hdr is ${v} in either byte order (expected 348)`);
  }
  const magic = readString(buf, 344, 4);
  const magicRaw = Array.from(buf.subarray(344, 348));
  if (magic === 'ni1' && buf[347] === 0) {
    throw new NiftiError(
      path,
      "header/image pair files (magic 'ni1') are not supported: convert to a single .nii file",
    );
  }
  if (!(buf[344] === 0x6e && buf[345] === 0x2b && buf[346] === 0x31 && buf[347] === 0)) {
    const shown = magicRaw
      .map((b) => (b >= 32 && b < 127 ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`))
      .join('');
    throw new NiftiError(path, `wrong magic '${shown}' (expected 'n+1\\0' for a single-file NIfTI-1)`);
  }
  const i16 = (o: number) => dv.getInt16(o, le);
  const i32 = (o: number) => dv.getInt32(o, le);
  const f32 = (o: number) => dv.getFloat32(o, le);

  const ndim = i16(40);
  if (ndim < 1 || ndim > 7) throw new NiftiError(path, `dim[0] is ${ndim}; it must be between 1 and 7`);
  const dims: number[] = [];
  for (let i = 1; i <= ndim; i++) {
    const d = i16(40 + 2 * i);
    if (d < 1) throw new NiftiError(path, `dim[${i}] is ${d}; every used dimension must be at least 1`);
    dims.push(d);
  }
  const datatype = i16(70);
  const dtype = dtypeOfCode(datatype);
  if (dtype === undefined) {
    const known = UNSUPPORTED_CODES[datatype];
    throw new NiftiError(
      path,
      known ? `datatype ${datatype} (${known}) is not supported` : `unknown datatype code ${datatype}`,
    );
  }
  const info = NIFTI_DTYPES[dtype];
  const bitpix = i16(72);
  if (bitpix !== info.bytes * 8) {
    throw new NiftiError(path, `bitpix ${bitpix} disagrees with datatype ${dtype} (${info.bytes * 8} bits)`);
  }
  const pixdim: number[] = [];
  for (let i = 0; i < 8; i++) pixdim.push(f32(76 + 4 * i));
  const voxOffset = f32(108);
  if (!Number.isInteger(voxOffset) || voxOffset < DATA_OFFSET) {
    throw new NiftiError(
      path,
      `vox_offset ${voxOffset} is invalid (a single-file NIfTI-1 needs an integer ≥ ${DATA_OFFSET})`,
    );
  }
  // The size limit before any length check, as for a gzipped file (whose data
  // is not decompressed when its header already implies too much): the same
  // file gives the same error either way.
  const implied = voxOffset + product(dims) * info.bytes;
  const limit = maxNiftiBytes();
  if (implied > limit) throw new NiftiError(path, tooLargeMessage(implied, limit));
  if (voxOffset > buf.length) {
    throw new NiftiError(path, `truncated: vox_offset is ${voxOffset} but the file has only ${buf.length} bytes`);
  }
  // Extensions (if any) must fit between the header and the voxel data.
  if (buf.length >= DATA_OFFSET && buf[348] !== 0) {
    let at = DATA_OFFSET;
    while (at + 8 <= voxOffset) {
      const esize = i32(at);
      if (esize < 16 || esize % 16 !== 0 || at + esize > voxOffset) {
        throw new NiftiError(path, `corrupt header extension at byte ${at} (esize ${esize}, vox_offset ${voxOffset})`);
      }
      at += esize;
    }
  }
  const nvox = product(dims);
  const need = nvox * info.bytes;
  const have = buf.length - voxOffset;
  if (have < need) {
    throw new NiftiError(
      path,
      `truncated: dims [${dims.join(', ')}] of ${dtype} need ${need} bytes of voxel data after vox_offset ${voxOffset}, but only ${have} bytes are present`,
    );
  }
  if (have > need) {
    throw new NiftiError(
      path,
      `dims [${dims.join(', ')}] of ${dtype} (${need} bytes) disagree with the data length: ${have} bytes follow vox_offset ${voxOffset}`,
    );
  }
  // Copy into a fresh, aligned buffer; swap bytes when the file's order differs from the host's.
  // (Buffer.slice would be a view into a shared pool, so copy explicitly.)
  const raw = new Uint8Array(need);
  raw.set(buf.subarray(voxOffset, voxOffset + need));
  if (le !== hostLittleEndian() && info.bytes > 1) swapBytes(raw, info.bytes);
  const data = new info.ctor(raw.buffer, 0, nvox);

  const srow: number[][] = [];
  for (let r = 0; r < 3; r++) {
    const row: number[] = [];
    for (let c = 0; c < 4; c++) row.push(f32(280 + 16 * r + 4 * c));
    srow.push(row);
  }
  const header: NiftiHeader = {
    dims,
    pixdim,
    dtype,
    datatype,
    bitpix,
    voxOffset,
    sclSlope: f32(112),
    sclInter: f32(116),
    dimInfo: buf[39]!,
    intentP1: f32(56),
    intentP2: f32(60),
    intentP3: f32(64),
    intentCode: i16(68),
    intentName: readString(buf, 328, 16),
    sliceStart: i16(74),
    sliceEnd: i16(120),
    sliceCode: buf[122]!,
    sliceDuration: f32(132),
    xyztUnits: buf[123]!,
    calMax: f32(124),
    calMin: f32(128),
    toffset: f32(136),
    descrip: readString(buf, 148, 80),
    auxFile: readString(buf, 228, 24),
    qformCode: i16(252),
    sformCode: i16(254),
    quatern: [f32(256), f32(260), f32(264)],
    qoffset: [f32(268), f32(272), f32(276)],
    srow,
    littleEndian: le,
  };
  return { header, data };
}

function swapBytes(b: Uint8Array, width: number): void {
  for (let i = 0; i < b.length; i += width) {
    for (let lo = i, hi = i + width - 1; lo < hi; lo++, hi--) {
      const t = b[lo]!;
      b[lo] = b[hi]!;
      b[hi] = t;
    }
  }
}

/** Options for building a header from scratch (`createNifti`). */
export interface NiftiCreateOptions {
  /** voxel size along x, y, z, ... (default 1) */
  spacing?: number[];
  /** 4x4 voxel (i,j,k) → world (mm) matrix; stored as sform (code 2) and as qform (code 2) when it is a rotation */
  affine?: number[][];
  sclSlope?: number;
  sclInter?: number;
  descrip?: string;
  /** xyzt_units (default 10: mm and seconds) */
  xyztUnits?: number;
}

/** A default header for `data` of shape `dims` (x fastest). */
export function createNifti(data: NiftiData, dims: number[], options: NiftiCreateOptions = {}): NiftiImage {
  if (dims.length < 1 || dims.length > 7) throw new Error(`createNifti: 1 to 7 dimensions, got ${dims.length}`);
  for (const d of dims) {
    if (!Number.isInteger(d) || d < 1 || d > 32767)
      throw new Error(`createNifti: each dimension must be an integer in [1, 32767], got [${dims.join(', ')}]`);
  }
  if (product(dims) !== data.length) {
    throw new Error(`createNifti: dims [${dims.join(', ')}] hold ${product(dims)} voxels but data has ${data.length}`);
  }
  const dtype = niftiDtypeOf(data);
  const info = NIFTI_DTYPES[dtype];
  const spacing = options.spacing ?? dims.map(() => 1);
  const pixdim = [1, 0, 0, 0, 0, 0, 0, 0];
  for (let i = 0; i < Math.min(7, spacing.length); i++) pixdim[i + 1] = Math.fround(spacing[i]!);
  for (let i = spacing.length; i < dims.length; i++) pixdim[i + 1] = 1;
  const header: NiftiHeader = {
    dims: [...dims],
    pixdim,
    dtype,
    datatype: info.code,
    bitpix: info.bytes * 8,
    voxOffset: DATA_OFFSET,
    sclSlope: options.sclSlope ?? 0,
    sclInter: options.sclInter ?? 0,
    dimInfo: 0,
    intentP1: 0,
    intentP2: 0,
    intentP3: 0,
    intentCode: 0,
    intentName: '',
    sliceStart: 0,
    sliceEnd: 0,
    sliceCode: 0,
    sliceDuration: 0,
    xyztUnits: options.xyztUnits ?? 10,
    calMax: 0,
    calMin: 0,
    toffset: 0,
    descrip: options.descrip ?? '',
    auxFile: '',
    qformCode: 0,
    sformCode: 0,
    quatern: [0, 0, 0],
    qoffset: [0, 0, 0],
    srow: [
      [pixdim[1]!, 0, 0, 0],
      [0, pixdim[2]!, 0, 0],
      [0, 0, pixdim[3]!, 0],
    ],
    littleEndian: true,
  };
  if (options.affine) setNiftiAffine(header, options.affine);
  return { header, data };
}

/**
 * Store `affine` in the header: sform (code 2, aligned) exactly as given
 * (rounded to float32), and the nearest qform (rotation + voxel sizes + qfac).
 * pixdim[1..3] become the column norms.
 */
export function setNiftiAffine(header: NiftiHeader, affine: number[][], code = 2): void {
  checkAffine(affine);
  header.sformCode = code;
  header.srow = [0, 1, 2].map((r) => [0, 1, 2, 3].map((c) => Math.fround(affine[r]![c]!)));
  const q = affineToQuatern(affine);
  header.qformCode = code;
  header.quatern = q.quatern.map(Math.fround);
  header.qoffset = q.qoffset.map(Math.fround);
  header.pixdim[0] = q.qfac;
  for (let i = 0; i < 3; i++) header.pixdim[i + 1] = Math.fround(q.spacing[i]!);
}

function checkAffine(a: number[][]): void {
  if (a.length < 3 || a.some((row, i) => i < 3 && (row.length !== 4 || row.some((v) => !Number.isFinite(v))))) {
    throw new Error('affine must be a 4x4 (or 3x4) matrix of finite numbers');
  }
}

/**
 * The voxel-to-world matrix the NIfTI-1 standard prescribes: sform when
 * sform_code > 0, else the quaternion qform when qform_code > 0, else
 * ("method 1") a diagonal of the voxel sizes.
 */
export function niftiAffine(h: NiftiHeader): number[][] {
  if (h.sformCode > 0) return [...h.srow.map((r) => [...r]), [0, 0, 0, 1]];
  if (h.qformCode > 0) return quaternToAffine(h.quatern, h.qoffset, h.pixdim);
  return [
    [h.pixdim[1] ?? 1, 0, 0, 0],
    [0, h.pixdim[2] ?? 1, 0, 0],
    [0, 0, h.pixdim[3] ?? 1, 0],
    [0, 0, 0, 1],
  ];
}

/** NIfTI-1 "method 2": rotation from the unit quaternion (a,b,c,d), a = sqrt(1-b²-c²-d²). */
export function quaternToAffine(quatern: number[], qoffset: number[], pixdim: number[]): number[][] {
  const [b, c, d] = quatern as [number, number, number];
  let a = 1 - (b * b + c * c + d * d);
  // Rounding of the stored float32 can push 1-b²-c²-d² slightly below 0.
  a = a < 1e-7 ? 0 : Math.sqrt(a);
  let bb = b,
    cc = c,
    dd = d;
  if (a === 0) {
    // 180° rotation: renormalise (b,c,d) as nifti1_io does.
    const n = Math.sqrt(b * b + c * c + d * d);
    if (n > 0) {
      bb = b / n;
      cc = c / n;
      dd = d / n;
    }
  }
  const qfac = pixdim[0]! < 0 ? -1 : 1;
  // nifti1_io treats non-positive voxel sizes as 1.
  const pos = (v: number | undefined) => (v !== undefined && v > 0 ? v : 1);
  const dx = pos(pixdim[1]),
    dy = pos(pixdim[2]),
    dz = pos(pixdim[3]) * qfac;
  const R = [
    [a * a + bb * bb - cc * cc - dd * dd, 2 * (bb * cc - a * dd), 2 * (bb * dd + a * cc)],
    [2 * (bb * cc + a * dd), a * a + cc * cc - bb * bb - dd * dd, 2 * (cc * dd - a * bb)],
    [2 * (bb * dd - a * cc), 2 * (cc * dd + a * bb), a * a + dd * dd - cc * cc - bb * bb],
  ];
  return [
    [R[0]![0]! * dx, R[0]![1]! * dy, R[0]![2]! * dz, qoffset[0]!],
    [R[1]![0]! * dx, R[1]![1]! * dy, R[1]![2]! * dz, qoffset[1]!],
    [R[2]![0]! * dx, R[2]![1]! * dy, R[2]![2]! * dz, qoffset[2]!],
    [0, 0, 0, 1],
  ];
}

/**
 * Decompose an affine into qform parameters. Columns are normalised to voxel
 * sizes; a negative determinant is absorbed by qfac = -1 (flipping the third
 * column). Shear cannot be expressed by a qform; the sform keeps it exactly.
 */
export function affineToQuatern(affine: number[][]): {
  quatern: number[];
  qoffset: number[];
  qfac: number;
  spacing: number[];
} {
  const col = (j: number) => [affine[0]![j]!, affine[1]![j]!, affine[2]![j]!];
  const cols = [col(0), col(1), col(2)];
  const spacing = cols.map((v) => Math.hypot(v[0]!, v[1]!, v[2]!));
  const R = cols.map((v, j) => v.map((x) => (spacing[j]! > 0 ? x / spacing[j]! : 0)));
  // R[j] is column j. Fill degenerate columns with a unit vector.
  for (let j = 0; j < 3; j++)
    if (spacing[j] === 0) {
      R[j] = [0, 0, 0];
      R[j]![j] = 1;
      spacing[j] = 1;
    }
  const det =
    R[0]![0]! * (R[1]![1]! * R[2]![2]! - R[2]![1]! * R[1]![2]!) -
    R[1]![0]! * (R[0]![1]! * R[2]![2]! - R[2]![1]! * R[0]![2]!) +
    R[2]![0]! * (R[0]![1]! * R[1]![2]! - R[1]![1]! * R[0]![2]!);
  let qfac = 1;
  if (det < 0) {
    qfac = -1;
    R[2] = R[2]!.map((x) => -x);
  }
  // m[r][c] = R[c][r] (row r, column c of the rotation)
  const m = (r: number, c: number) => R[c]![r]!;
  const tr = m(0, 0) + m(1, 1) + m(2, 2);
  let a: number, b: number, c: number, d: number;
  if (tr > 0) {
    const s = Math.sqrt(tr + 1) * 2;
    a = 0.25 * s;
    b = (m(2, 1) - m(1, 2)) / s;
    c = (m(0, 2) - m(2, 0)) / s;
    d = (m(1, 0) - m(0, 1)) / s;
  } else if (m(0, 0) > m(1, 1) && m(0, 0) > m(2, 2)) {
    const s = Math.sqrt(1 + m(0, 0) - m(1, 1) - m(2, 2)) * 2;
    a = (m(2, 1) - m(1, 2)) / s;
    b = 0.25 * s;
    c = (m(0, 1) + m(1, 0)) / s;
    d = (m(0, 2) + m(2, 0)) / s;
  } else if (m(1, 1) > m(2, 2)) {
    const s = Math.sqrt(1 + m(1, 1) - m(0, 0) - m(2, 2)) * 2;
    a = (m(0, 2) - m(2, 0)) / s;
    b = (m(0, 1) + m(1, 0)) / s;
    c = 0.25 * s;
    d = (m(1, 2) + m(2, 1)) / s;
  } else {
    const s = Math.sqrt(1 + m(2, 2) - m(0, 0) - m(1, 1)) * 2;
    a = (m(1, 0) - m(0, 1)) / s;
    b = (m(0, 2) + m(2, 0)) / s;
    c = (m(1, 2) + m(2, 1)) / s;
    d = 0.25 * s;
  }
  // The standard requires a ≥ 0; (a,b,c,d) and its negative are the same rotation.
  if (a < 0) {
    b = -b;
    c = -c;
    d = -d;
  }
  return { quatern: [b, c, d], qoffset: [affine[0]![3]!, affine[1]![3]!, affine[2]![3]!], qfac, spacing };
}

/** Serialize to uncompressed bytes: a 348-byte header, a 4-byte empty extension, data at vox_offset 352, magic "n+1\0". */
export function encodeNiftiRaw(image: NiftiImage, options: { littleEndian?: boolean } = {}): Uint8Array {
  const h = image.header;
  const dtype = niftiDtypeOf(image.data);
  if (dtype !== h.dtype) throw new Error(`encodeNifti: header dtype ${h.dtype} disagrees with data (${dtype})`);
  if (h.dims.length < 1 || h.dims.length > 7) throw new Error(`encodeNifti: 1 to 7 dimensions, got ${h.dims.length}`);
  for (const d of h.dims) {
    if (!Number.isInteger(d) || d < 1 || d > 32767)
      throw new Error(`encodeNifti: dims must be integers in [1, 32767], got [${h.dims.join(', ')}]`);
  }
  const nvox = product(h.dims);
  if (nvox !== image.data.length)
    throw new Error(`encodeNifti: dims [${h.dims.join(', ')}] hold ${nvox} voxels but data has ${image.data.length}`);
  const info = NIFTI_DTYPES[dtype];
  const le = options.littleEndian ?? h.littleEndian ?? true;
  const out = new Uint8Array(DATA_OFFSET + nvox * info.bytes);
  const dv = new DataView(out.buffer);
  const i16 = (o: number, v: number) => dv.setInt16(o, v, le);
  const f32 = (o: number, v: number) => dv.setFloat32(o, v, le);
  dv.setInt32(0, HEADER_SIZE, le);
  out[38] = 0x72; // 'regular' = 'r', as written by most tools
  out[39] = h.dimInfo;
  i16(40, h.dims.length);
  for (let i = 1; i <= 7; i++) i16(40 + 2 * i, h.dims[i - 1] ?? 1);
  f32(56, h.intentP1);
  f32(60, h.intentP2);
  f32(64, h.intentP3);
  i16(68, h.intentCode);
  i16(70, info.code);
  i16(72, info.bytes * 8);
  i16(74, h.sliceStart);
  for (let i = 0; i < 8; i++) f32(76 + 4 * i, h.pixdim[i] ?? 0);
  f32(108, DATA_OFFSET);
  f32(112, h.sclSlope);
  f32(116, h.sclInter);
  i16(120, h.sliceEnd);
  out[122] = h.sliceCode;
  out[123] = h.xyztUnits;
  f32(124, h.calMax);
  f32(128, h.calMin);
  f32(132, h.sliceDuration);
  f32(136, h.toffset);
  writeString(out, 148, 80, h.descrip, 'descrip');
  writeString(out, 228, 24, h.auxFile, 'aux_file');
  i16(252, h.qformCode);
  i16(254, h.sformCode);
  for (let i = 0; i < 3; i++) f32(256 + 4 * i, h.quatern[i] ?? 0);
  for (let i = 0; i < 3; i++) f32(268 + 4 * i, h.qoffset[i] ?? 0);
  for (let r = 0; r < 3; r++) for (let c = 0; c < 4; c++) f32(280 + 16 * r + 4 * c, h.srow[r]?.[c] ?? 0);
  writeString(out, 328, 16, h.intentName, 'intent_name');
  out.set([0x6e, 0x2b, 0x31, 0x00], 344); // "n+1\0"
  // bytes 348..351: extension flag all zero (no extensions)
  const bytes = new Uint8Array(image.data.buffer, image.data.byteOffset, image.data.byteLength);
  out.set(bytes, DATA_OFFSET);
  if (le !== hostLittleEndian() && info.bytes > 1) swapBytes(out.subarray(DATA_OFFSET), info.bytes);
  return out;
}

/** True when scl_slope asks for scaling (the standard: slope 0 or non-finite means "no scaling"). */
export function hasScaling(h: NiftiHeader): boolean {
  return (
    Number.isFinite(h.sclSlope) &&
    h.sclSlope !== 0 &&
    !(h.sclSlope === 1 && (h.sclInter === 0 || !Number.isFinite(h.sclInter)))
  );
}

/** Values after scl_slope / scl_inter, in float64 (exact for every stored type up to 2^53). */
export function niftiValues(image: NiftiImage): Float64Array {
  const { data, header } = image;
  const out = new Float64Array(data.length);
  const scale = hasScaling(header);
  const s = header.sclSlope;
  const b = Number.isFinite(header.sclInter) ? header.sclInter : 0;
  if (data instanceof BigInt64Array || data instanceof BigUint64Array) {
    for (let i = 0; i < data.length; i++) out[i] = Number(data[i]!);
  } else {
    out.set(data);
  }
  if (scale) for (let i = 0; i < out.length; i++) out[i] = out[i]! * s + b;
  return out;
}

/** Shape in row-major order: dims reversed, trailing singleton dims (t=1, ...) dropped down to 3D. */
export function niftiShape(h: NiftiHeader): number[] {
  const dims = [...h.dims];
  while (dims.length > 3 && dims[dims.length - 1] === 1) dims.pop();
  return dims.reverse();
}
