/**
 * Finding cases in a folder: BraTS 2018-2021 (one folder per case, or all
 * files flat in one folder) and ISLES 2022 BIDS (sub-<id>/ses-<n>/{dwi,anat}/ and
 * derivatives/ for masks, or flat). Files are grouped by the prefix before
 * their last `_<modality>` suffix, so nesting depth does not matter.
 */
import { DataError } from './errors.js';
import { readdirSync, realpathSync, statSync } from 'node:fs';
import { join } from 'node:path';

import { LAYOUTS, type Layout, type LayoutSpec } from './layouts.js';

export * from './layouts.js';

export interface CaseEntry {
  id: string;
  /** modality → file path, for the modalities present */
  files: Record<string, string>;
  /** label map path, or null when the case has none */
  label: string | null;
  /** chosen modalities this case lacks (in modality order) */
  missing: string[];
}

export interface Discovery {
  root: string;
  layout: Layout;
  modalities: string[];
  /** every case that has at least one of the chosen modalities, sorted by id */
  cases: CaseEntry[];
  /** NIfTI files whose suffix matched nothing (or a modality not chosen), and label files without images */
  ignored: string[];
}

export interface DiscoverOptions {
  layout?: Layout | 'auto';
  /** modality order (canonical names of the layout); default the layout's */
  modalities?: string[];
  /** how deep to descend below root (default 6) */
  maxDepth?: number;
}

const NIFTI_RE = /\.nii(\.gz)?$/i;

/** Most folders one dataset scan reads (BraTS 2021: ~1,250 folders; ISLES 2022 BIDS with derivatives: ~1,500). */
export const MAX_SCANNED_FOLDERS = 3_000;

function listNifti(root: string, maxDepth: number): string[] {
  const out: string[] = [];
  // every real folder is read once: symlink cycles and fan-outs of links cannot make the scan explode
  const seenDirs = new Set<string>();
  let visited = 0;
  const walk = (dir: string, depth: number) => {
    // a data folder holds thousands of files, not millions: stop a scan of '/' or /proc early
    if (++visited > MAX_SCANNED_FOLDERS)
      throw new DataError(
        `${root}: more than ${MAX_SCANNED_FOLDERS} folders below it; point the data path at the dataset's own folder`,
      );
    let real: string;
    try {
      real = realpathSync(dir);
    } catch {
      return;
    }
    if (seenDirs.has(real)) return;
    seenDirs.add(real);
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch (e) {
      throw new DataError(`${dir}: cannot read folder (${(e as Error).message})`);
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      if (e.name.startsWith('.') || e.name === 'node_modules') continue;
      const p = join(dir, e.name);
      let isDir = e.isDirectory();
      let isFile = e.isFile();
      if (e.isSymbolicLink()) {
        try {
          const s = statSync(p);
          isDir = s.isDirectory();
          isFile = s.isFile();
        } catch {
          continue; // dangling link
        }
      }
      if (isDir && depth < maxDepth) walk(p, depth + 1);
      else if (isFile && NIFTI_RE.test(e.name)) out.push(p);
    }
  };
  walk(root, 0);
  return out;
}

function splitName(file: string): { prefix: string; suffix: string } | null {
  const base = file.split(/[\\/]/).pop()!.replace(NIFTI_RE, '');
  const k = base.lastIndexOf('_');
  if (k <= 0) return null;
  return { prefix: base.slice(0, k), suffix: base.slice(k + 1).toLowerCase() };
}

function suffixOwner(spec: LayoutSpec, suffix: string): string | 'label' | null {
  if (spec.labelSuffixes.includes(suffix)) return 'label';
  for (const [m, al] of Object.entries(spec.aliases)) if (al.includes(suffix)) return m;
  return null;
}

/** Which layout the files look like: ISLES-only suffixes (dwi, adc, msk) vs BraTS-only ones (t1, t1ce, t2, seg, ...). */
export function detectLayout(files: string[]): Layout {
  let isles = 0;
  let brats = 0;
  for (const f of files) {
    const s = splitName(f);
    if (!s) continue;
    if (['dwi', 'adc', 'msk'].includes(s.suffix)) isles++;
    if (['t1', 't1ce', 't1post', 't1gd', 't1c', 't2', 'seg'].includes(s.suffix)) brats++;
  }
  return isles > brats ? 'isles' : 'brats';
}

/** Scan `root` for cases. Throws when the folder is unreadable or two files claim the same case and modality. */
export function discoverCases(root: string, options: DiscoverOptions = {}): Discovery {
  let st;
  try {
    st = statSync(root);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new DataError(
      `${root}: ${code === 'ENOENT' ? 'data folder does not exist' : `cannot open data folder (${code ?? (e as Error).message})`}`,
    );
  }
  if (!st.isDirectory()) throw new DataError(`${root}: is not a folder (the data path must be a folder of cases)`);
  // kernel file systems hold millions of entries and no data
  let real = root;
  try {
    real = realpathSync(root);
  } catch {
    /* keep root */
  }
  if (/^\/(proc|sys|dev)(\/|$)/.test(real))
    throw new DataError(`${root}: is a system folder (${real}), not a data folder`);
  const files = listNifti(root, options.maxDepth ?? 6);
  const layout = !options.layout || options.layout === 'auto' ? detectLayout(files) : options.layout;
  const spec = LAYOUTS[layout];
  if (!spec) throw new DataError(`unknown layout '${String(layout)}' (use 'brats', 'isles' or 'auto')`);
  const modalities = options.modalities ?? spec.modalities;
  for (const m of modalities) {
    if (!(m in spec.aliases))
      throw new DataError(
        `modality '${m}' is not part of the ${layout} layout (known: ${Object.keys(spec.aliases).join(', ')})`,
      );
  }
  if (new Set(modalities).size !== modalities.length)
    throw new DataError(`modalities listed twice: [${modalities.join(', ')}]`);
  const byCase = new Map<string, { files: Record<string, string>; label: string | null }>();
  const ignored: string[] = [];
  for (const f of files) {
    const s = splitName(f);
    const owner = s ? suffixOwner(spec, s.suffix) : null;
    if (!s || owner === null || (owner !== 'label' && !modalities.includes(owner))) {
      ignored.push(f);
      continue;
    }
    let entry = byCase.get(s.prefix);
    if (!entry) byCase.set(s.prefix, (entry = { files: {}, label: null }));
    if (owner === 'label') {
      if (entry.label) throw new DataError(`case ${s.prefix} has two label files: ${entry.label} and ${f}`);
      entry.label = f;
    } else {
      const prev = entry.files[owner];
      if (prev) throw new DataError(`case ${s.prefix} has two ${owner} files: ${prev} and ${f}`);
      entry.files[owner] = f;
    }
  }
  const cases: CaseEntry[] = [];
  for (const [id, e] of [...byCase.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))) {
    if (Object.keys(e.files).length === 0) {
      if (e.label) ignored.push(e.label);
      continue;
    }
    cases.push({ id, files: e.files, label: e.label, missing: modalities.filter((m) => !(m in e.files)) });
  }
  return { root, layout, modalities: [...modalities], cases, ignored };
}
