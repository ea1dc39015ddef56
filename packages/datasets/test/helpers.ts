/** Test helpers: where the shared real data lives, and temp folders. */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { requirement } from '@largo/test-support';

const here = dirname(fileURLToPath(import.meta.url));
/** The repository root (packages/datasets/test → ../../..). */
export const repoRoot = resolve(here, '..', '..', '..');

/**
 * The shared data folder: $LARGO_SHARED_DATASETS, else ../shared/datasets
 * next to the repository root. null when it does not exist.
 */
const candidate = process.env.LARGO_SHARED_DATASETS || resolve(repoRoot, '..', 'shared', 'datasets');

export function sharedDatasets(): string | null {
  return existsSync(candidate) ? candidate : null;
}

export const SHARED = sharedDatasets();
/**
 * Pass as tap's `skip` option: false when the data is there, else the reason;
 * with LARGO_REQUIRE_SHARED=1 missing data throws instead.
 */
export const SKIP_SHARED: string | false = requirement(
  'SHARED',
  SHARED ? false : `shared data sets not found at ${candidate} (set LARGO_SHARED_DATASETS to their folder)`,
);

export function shared(...parts: string[]): string {
  if (!SHARED) throw new Error('shared data sets missing');
  return join(SHARED, ...parts);
}

/** A fresh temp folder removed when the test ends. */
export function tempDir(t: { teardown(fn: () => void): void }, prefix = 'largo-datasets-'): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}
