/**
 * Browser stand-in for `safetensors-file.ts` (selected by the package.json
 * "browser" field): there are no files, so both functions say so. Decode
 * bytes you already hold with `decodeSafetensors`.
 */
import type { StDecodeOptions, StDecoded, StEntry } from './safetensors.js';

function noFiles(fn: string, path: string): Error {
  return new Error(
    `${fn}(${JSON.stringify(path)}): there is no file system in a browser; use decodeSafetensors / encodeSafetensors on bytes`,
  );
}

export async function readSafetensorsFile(path: string, _options: StDecodeOptions = {}): Promise<StDecoded> {
  throw noFiles('readSafetensorsFile', path);
}

export async function writeSafetensorsFileAtomic(
  path: string,
  _entries: Record<string, StEntry>,
  _metadata?: Record<string, string>,
): Promise<void> {
  throw noFiles('writeSafetensorsFileAtomic', path);
}
