/**
 * NIfTI-1 single-file (.nii / .nii.gz) reader and writer for Node: the format
 * itself is in `nifti-format.ts` (no Node imports, also used in browsers);
 * this file adds gzip (node:zlib) and files (node:fs).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { gunzipSync, gzipSync, gunzip, gzip } from 'node:zlib';
import { promisify } from 'node:util';
import { isGzip, parseRawNifti, encodeNiftiRaw, type NiftiImage, NiftiError } from './nifti-format.js';

export * from './nifti-format.js';

const gunzipAsync = promisify(gunzip);
const gzipAsync = promisify(gzip);

/** Parse a NIfTI-1 file already in memory (gzipped or not). `path` only names the source in errors. */
export function parseNifti(bytes: Uint8Array, path = '<buffer>'): NiftiImage {
  let buf = bytes;
  if (isGzip(buf)) {
    try {
      buf = gunzipSync(buf);
    } catch (e) {
      throw new NiftiError(path, `corrupt or truncated gzip stream (${(e as Error).message})`);
    }
  }
  return parseRawNifti(buf, path);
}

export function readNiftiSync(path: string): NiftiImage {
  return parseNifti(readFileSync(path), path);
}

export async function readNifti(path: string): Promise<NiftiImage> {
  let buf: Uint8Array = await readFile(path);
  if (isGzip(buf)) {
    try {
      buf = await gunzipAsync(buf);
    } catch (e) {
      throw new NiftiError(path, `corrupt or truncated gzip stream (${(e as Error).message})`);
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
export function writeNiftiSync(path: string, image: NiftiImage, options: { gzip?: boolean; littleEndian?: boolean } = {}): void {
  writeFileSync(path, encodeNifti(image, { ...options, gzip: wantsGzip(path, options.gzip) }));
}

export async function writeNifti(path: string, image: NiftiImage, options: { gzip?: boolean; littleEndian?: boolean } = {}): Promise<void> {
  const raw = encodeNifti(image, { ...options, gzip: false });
  await writeFile(path, wantsGzip(path, options.gzip) ? await gzipAsync(raw) : raw);
}
