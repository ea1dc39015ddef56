/**
 * Reading and writing .safetensors files (Node only). Bundlers that honour the
 * package.json "browser" field (esbuild, webpack, rollup) swap this module for
 * `safetensors-file.browser.ts`, so browser bundles hold no `node:` import.
 */
import {
  decodeSafetensors,
  encodeSafetensors,
  type StDecodeOptions,
  type StDecoded,
  type StEntry,
} from './safetensors.js';

/** Reads and decodes a .safetensors file; errors name the path. */
export async function readSafetensorsFile(path: string, options: StDecodeOptions = {}): Promise<StDecoded> {
  const fs = await import('node:fs/promises');
  const buf = await fs.readFile(path);
  return decodeSafetensors(new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength), path, options);
}

/**
 * Writes a .safetensors file atomically: the bytes go to `path.tmp-<pid>`, which is fsynced,
 * then renamed over `path` (and the directory fsynced where the platform allows it). A crash at
 * any point leaves either the old file or the new one at `path`, never a torn one.
 */
export async function writeSafetensorsFileAtomic(
  path: string,
  entries: Record<string, StEntry>,
  metadata?: Record<string, string>,
): Promise<void> {
  const bytes = encodeSafetensors(entries, metadata);
  const fs = await import('node:fs/promises');
  const nodePath = await import('node:path');
  const tmp = `${path}.tmp-${process.pid}`;
  let fh: Awaited<ReturnType<typeof fs.open>> | undefined;
  try {
    fh = await fs.open(tmp, 'w', 0o644);
    let off = 0;
    while (off < bytes.length) {
      const { bytesWritten } = await fh.write(bytes, off, bytes.length - off);
      off += bytesWritten;
    }
    await fh.sync();
    await fh.close();
    fh = undefined;
    await fs.rename(tmp, path);
  } catch (err) {
    if (fh) await fh.close().catch(() => undefined);
    await fs.rm(tmp, { force: true }).catch(() => undefined);
    throw err;
  }
  // Make the rename itself durable. Directories cannot be opened this way on Windows: ignore.
  try {
    const dir = await fs.open(nodePath.dirname(path), 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  } catch {
    /* best effort */
  }
}
