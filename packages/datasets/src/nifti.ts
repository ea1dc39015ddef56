/**
 * NIfTI-1 single-file (.nii / .nii.gz) reader and writer for Node: the format
 * itself is in `nifti-format.ts` (no Node imports, also used in browsers);
 * this file adds gzip (node:zlib) and files (node:fs).
 */
import { readFileSync, statSync, writeFileSync, type Stats } from 'node:fs';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { gunzipSync, gzipSync, gunzip, gzip, constants as zlibConstants } from 'node:zlib';
import { promisify } from 'node:util';
import {
  isGzip,
  parseRawNifti,
  encodeNiftiRaw,
  maxNiftiBytes,
  niftiImpliedSize,
  type NiftiImage,
  NiftiError,
} from './nifti-format.js';

export * from './nifti-format.js';

const gunzipAsync = promisify(gunzip);
const gzipAsync = promisify(gzip);

const HEADER_BYTES = 348;

function gzipError(path: string, e: unknown): NiftiError {
  return new NiftiError(path, `corrupt or truncated gzip stream (${(e as Error).message})`);
}

function tooBig(e: unknown): boolean {
  return (e as NodeJS.ErrnoException)?.code === 'ERR_BUFFER_TOO_LARGE' || e instanceof RangeError;
}

/**
 * The first bytes of a gzip stream, decompressing growing prefixes of the
 * input only (at most ~1000x the prefix comes out), until the header is there.
 */
function gunzipHead(gz: Uint8Array, path: string): Uint8Array {
  let out: Uint8Array = new Uint8Array(0);
  for (const n of [512, 8192, 131072]) {
    const part = gz.subarray(0, Math.min(n, gz.length));
    try {
      out = gunzipSync(part, { finishFlush: zlibConstants.Z_SYNC_FLUSH });
    } catch (e) {
      if (part.length === gz.length) throw gzipError(path, e);
      continue; // a prefix can end inside a block header; try a longer one
    }
    if (out.length >= HEADER_BYTES) break;
    if (part.length === gz.length) {
      // the whole stream gave less than a header: a truncated or corrupt stream says so strictly
      try {
        gunzipSync(gz, { maxOutputLength: HEADER_BYTES });
      } catch (e) {
        if (!tooBig(e)) throw gzipError(path, e);
      }
      break;
    }
  }
  return out;
}

/** How many decompressed bytes to allow: what the header implies (checked against the limit), plus a margin to detect excess. */
function gzipBudget(gz: Uint8Array, path: string): number {
  const head = gunzipHead(gz, path);
  const size = niftiImpliedSize(head);
  if (size === null || size > maxNiftiBytes()) {
    // Throws what the same file unzipped would: the header's own error
    // (sizeof_hdr, magic, dims, datatype, bitpix, vox_offset, …) or, for a
    // valid header, the size limit, which the raw parser checks first.
    parseRawNifti(head, path);
    throw new NiftiError(path, 'the gzip stream does not start with a valid NIfTI-1 header');
  }
  return size + 1;
}

/** Parse a NIfTI-1 file already in memory (gzipped or not). `path` only names the source in errors. */
export function parseNifti(bytes: Uint8Array, path = '<buffer>'): NiftiImage {
  let buf = bytes;
  if (isGzip(buf)) {
    const budget = gzipBudget(buf, path);
    try {
      buf = gunzipSync(buf, { maxOutputLength: budget });
    } catch (e) {
      if (!tooBig(e)) throw gzipError(path, e);
      buf = gunzipPastBudget(buf, path, budget);
    }
  }
  return parseRawNifti(buf, path);
}

/** Excess past the header's size that is still inflated, so that a slightly long file gets the plain reader's error. */
const EXCESS_MARGIN = 1 << 20;

/**
 * A stream that inflates past what its header implies: up to EXCESS_MARGIN
 * more bytes are inflated and returned (the raw parser then names the exact
 * length, as for the same file unzipped); beyond that it is stopped there
 * (a gzip bomb never inflates more than the margin).
 */
function gunzipPastBudget(gz: Uint8Array, path: string, budget: number): Uint8Array {
  try {
    return gunzipSync(gz, { maxOutputLength: budget + EXCESS_MARGIN });
  } catch (e) {
    if (tooBig(e)) throw new NiftiError(path, `decompresses to more than the ${budget - 1} bytes its header implies`);
    throw gzipError(path, e);
  }
}

/** Refuses what cannot be a NIfTI file before reading it: missing paths, folders, devices, pipes, oversized files. */
function checkFile(path: string, st: Stats | null, err: unknown): void {
  if (!st) {
    const code = (err as NodeJS.ErrnoException)?.code;
    throw new NiftiError(
      path,
      code === 'ENOENT' ? 'does not exist' : `cannot be read (${code ?? (err as Error)?.message})`,
    );
  }
  if (st.isDirectory()) throw new NiftiError(path, 'is a folder, not a NIfTI file');
  if (!st.isFile())
    throw new NiftiError(path, 'is not a regular file (a device, pipe or socket?); give a .nii or .nii.gz file');
  const limit = maxNiftiBytes();
  if (st.size > limit)
    throw new NiftiError(path, `is ${st.size} bytes, more than the ${limit}-byte limit (LARGO_MAX_NIFTI_BYTES)`);
}

function readError(path: string, e: unknown): NiftiError {
  return new NiftiError(path, `cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
}

export function readNiftiSync(path: string): NiftiImage {
  let st: Stats | null = null,
    err: unknown;
  try {
    st = statSync(path);
  } catch (e) {
    err = e;
  }
  checkFile(path, st, err);
  let buf: Uint8Array;
  try {
    buf = readFileSync(path);
  } catch (e) {
    throw readError(path, e);
  }
  return parseNifti(buf, path);
}

export async function readNifti(path: string): Promise<NiftiImage> {
  let st: Stats | null = null,
    err: unknown;
  try {
    st = await stat(path);
  } catch (e) {
    err = e;
  }
  checkFile(path, st, err);
  let buf: Uint8Array;
  try {
    buf = await readFile(path);
  } catch (e) {
    throw readError(path, e);
  }
  if (isGzip(buf)) {
    const budget = gzipBudget(buf, path);
    try {
      buf = await gunzipAsync(buf, { maxOutputLength: budget });
    } catch (e) {
      // zlib's async and sync paths can name the first problem of a broken stream differently
      // (async may report the size limit where sync reports the truncation): classify it as the sync reader does
      if (!tooBig(e)) throw gzipError(path, e);
      try {
        buf = gunzipSync(buf, { maxOutputLength: budget });
      } catch (e2) {
        if (!tooBig(e2)) throw gzipError(path, e2);
        buf = gunzipPastBudget(buf, path, budget);
      }
    }
  }
  return parseRawNifti(buf, path);
}

/** Serialize to bytes (gzipped with `gzip: true`); see `encodeNiftiRaw`. */
export function encodeNifti(image: NiftiImage, options: { gzip?: boolean; littleEndian?: boolean } = {}): Uint8Array {
  const out = encodeNiftiRaw(image, options);
  return options.gzip ? gzipSync(out) : out;
}

function wantsGzip(path: string, gzip: boolean | undefined): boolean {
  return gzip ?? path.toLowerCase().endsWith('.gz');
}

/** Write a .nii (or, by extension or `gzip: true`, a gzipped .nii.gz). */
export function writeNiftiSync(
  path: string,
  image: NiftiImage,
  options: { gzip?: boolean; littleEndian?: boolean } = {},
): void {
  writeFileSync(path, encodeNifti(image, { ...options, gzip: wantsGzip(path, options.gzip) }));
}

export async function writeNifti(
  path: string,
  image: NiftiImage,
  options: { gzip?: boolean; littleEndian?: boolean } = {},
): Promise<void> {
  const raw = encodeNifti(image, { ...options, gzip: false });
  await writeFile(path, wantsGzip(path, options.gzip) ? await gzipAsync(raw) : raw);
}
