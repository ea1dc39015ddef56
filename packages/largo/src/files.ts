/**
 * File-system writes the CLI can promise things about: atomic replacement
 * (temporary file, fsync, rename, directory fsync), folders created one level
 * at a time (recursive mkdir spins forever under /proc), errors that name the
 * path, and cleanup of temporary files left by a killed writer.
 */
// through node-fs.js so that modules on the browser path (checkpoint.ts) can import this file
import {
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
  dirname,
  join,
  resolve,
} from './node-fs.js';

/** A write the user can fix (full disk, permissions, a file where a folder should be): exit code 2. */
export class FileWriteError extends Error {
  readonly code: string | undefined;
  constructor(
    readonly path: string,
    message: string,
    code?: string,
  ) {
    super(`${path}: ${message}`);
    this.name = 'FileWriteError';
    this.code = code;
  }
}

const ERRNO_TEXT: Record<string, string> = {
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  ENOTDIR: 'a parent is not a folder',
  EISDIR: 'is a folder',
  ENAMETOOLONG: 'name too long',
  ENOENT: 'no such file or folder',
  EEXIST: 'already exists',
  ELOOP: 'too many symbolic links',
  EIO: 'input/output error',
};

/** "what failed (ENOSPC: no space left on the device)". */
export function describeErrno(e: unknown): string {
  const code = (e as NodeJS.ErrnoException | null)?.code;
  if (code) return `${code}: ${ERRNO_TEXT[code] ?? (e as Error).message.replace(/^[A-Z]+: /, '')}`;
  return e instanceof Error ? e.message : String(e);
}

function wrap(path: string, what: string, e: unknown): FileWriteError {
  if (e instanceof FileWriteError) return e;
  return new FileWriteError(path, `${what} (${describeErrno(e)})`, (e as NodeJS.ErrnoException | null)?.code);
}

/**
 * Creates `path` and its missing parents, one mkdir per level, so that a
 * failure is immediate and names the folder that could not be made.
 */
export function makeDirs(path: string): void {
  const missing: string[] = [];
  let p = resolve(path);
  for (;;) {
    let st;
    try {
      st = statSync(p);
    } catch (e) {
      // ENOTDIR: some parent is a file; walking up finds and names it
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw wrap(p, 'cannot use this folder', e);
      missing.push(p);
      const parent = dirname(p);
      if (parent === p) break;
      p = parent;
      continue;
    }
    if (!st.isDirectory()) throw new FileWriteError(p, `is not a folder (needed for ${path})`, 'ENOTDIR');
    break;
  }
  for (const d of missing.reverse()) {
    try {
      mkdirSync(d);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST' && statSync(d).isDirectory()) continue;
      throw wrap(d, 'cannot create folder', e);
    }
  }
}

export interface FaultHooks {
  /** called after `bytes` of the temporary file were written (tests simulate crashes here) */
  afterWrite?: (tmpPath: string) => void;
  /** called just before the rename */
  beforeRename?: (tmpPath: string) => void;
}

/** The temporary file a writer with process id `pid` uses for `path`. */
export const TMP_INFIX = '.tmp-';
export function tmpPathFor(path: string, pid = process.pid): string {
  return `${path}${TMP_INFIX}${pid}`;
}

/** Writes `bytes` to `path` atomically; errors name the path. */
export function writeFileAtomic(path: string, bytes: Uint8Array | string, hooks: FaultHooks = {}): void {
  const data = typeof bytes === 'string' ? new TextEncoder().encode(bytes) : bytes;
  // renaming over a device, pipe or folder would replace it: only regular files are ever replaced
  let existing;
  try {
    existing = statSync(path);
  } catch {
    existing = null;
  }
  if (existing && !existing.isFile())
    throw new FileWriteError(
      path,
      existing.isDirectory()
        ? 'is a folder; give a file name'
        : 'exists and is not a regular file (a device or pipe?); refusing to replace it',
      existing.isDirectory() ? 'EISDIR' : 'EEXIST',
    );
  const tmp = tmpPathFor(path);
  let fd = -1;
  try {
    fd = openSync(tmp, 'w', 0o644);
    let off = 0;
    while (off < data.length) off += writeSync(fd, data, off, data.length - off);
    hooks.afterWrite?.(tmp);
    fsyncSync(fd);
    closeSync(fd);
    fd = -1;
    hooks.beforeRename?.(tmp);
    renameSync(tmp, path);
  } catch (e) {
    if (fd >= 0) {
      try {
        closeSync(fd);
      } catch {
        /* ignore */
      }
    }
    rmSync(tmp, { force: true });
    // errors from the fault hooks are the tests' own; everything else is the file system's
    throw (e as NodeJS.ErrnoException)?.code && !(e instanceof FileWriteError) ? wrap(path, 'cannot write', e) : e;
  }
  try {
    const d = openSync(dirname(path), 'r');
    try {
      fsyncSync(d);
    } finally {
      closeSync(d);
    }
  } catch {
    /* directories cannot be fsynced everywhere */
  }
}

function processAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes `<name>.tmp-<pid>` files in `dir` whose writer is no longer running
 * (a `kill -9` during an atomic write leaves one). Returns the removed paths.
 */
export function cleanStaleTemps(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const n of names) {
    const m = /\.tmp-(\d+)$/.exec(n);
    if (!m || processAlive(Number(m[1]))) continue;
    const p = join(dir, n);
    try {
      if (statSync(p).isFile()) {
        rmSync(p, { force: true });
        removed.push(p);
      }
    } catch {
      /* gone already */
    }
  }
  return removed;
}
