/**
 * Human-readable summaries of data files and folders, for `largo inspect`.
 */
import { DataError } from './errors.js';
import { statSync, readdirSync } from 'node:fs';
import { basename } from 'node:path';
import { readNifti, niftiValues, hasScaling, type NiftiImage } from './nifti.js';
import { discoverCases } from './discovery.js';
import { BRATS_LABELS, ISLES_LABELS } from './labels.js';
import { readIdx } from './idx.js';
import { readWav } from './wav.js';
import { listFsdd } from './avmnist.js';

const fmt = (v: number) => (Number.isInteger(v) ? String(v) : Number(v.toPrecision(6)).toString());

/** Label-map heuristics: ≥ 95 % of voxels within 1e-3 of an integer and at most 32 distinct rounded values. */
const LABEL_MAX_VALUES = 32;

function describeNifti(path: string, img: NiftiImage, gz: boolean): string[] {
  const h = img.header;
  const lines: string[] = [];
  lines.push(`${path}`);
  lines.push(
    `  format: NIfTI-1${gz ? ' (gzip)' : ''}, ${h.littleEndian ? 'little' : 'big'}-endian, vox_offset ${h.voxOffset}`,
  );
  const axes = ['x', 'y', 'z', 't', 'u', 'v', 'w'].slice(0, h.dims.length);
  lines.push(
    `  shape (${axes.join(', ')}): ${h.dims.join(' × ')}  (array [D, H, W] = [${[...h.dims].slice(0, 3).reverse().join(', ')}])`,
  );
  lines.push(
    `  dtype: ${h.dtype} (datatype ${h.datatype})${hasScaling(h) ? `, scaled by scl_slope ${fmt(h.sclSlope)} and scl_inter ${fmt(h.sclInter)}` : ''}`,
  );
  const sp = h.pixdim.slice(1, 1 + Math.min(3, h.dims.length));
  lines.push(`  spacing (${axes.slice(0, sp.length).join(', ')}): ${sp.map(fmt).join(', ')} mm`);
  const src =
    h.sformCode > 0
      ? `sform (code ${h.sformCode})`
      : h.qformCode > 0
        ? `qform (code ${h.qformCode})`
        : 'pixdim only (no sform/qform)';
  lines.push(`  affine from ${src}`);
  const v = niftiValues(img);
  let min = Infinity,
    max = -Infinity,
    sum = 0,
    nonzero = 0,
    nan = 0,
    nearInt = 0;
  for (let i = 0; i < v.length; i++) {
    const x = v[i]!;
    if (Number.isNaN(x)) {
      nan++;
      continue;
    }
    if (x < min) min = x;
    if (x > max) max = x;
    sum += x;
    if (x !== 0) nonzero++;
    if (Math.abs(x - Math.round(x)) <= 1e-3) nearInt++;
  }
  const finite = v.length - nan;
  lines.push(
    `  intensity: min ${fmt(min)}, max ${fmt(max)}, mean ${fmt(sum / Math.max(1, finite))}, nonzero voxels ${nonzero} of ${v.length}${nan ? `, NaN voxels ${nan}` : ''}`,
  );
  // Label maps: count values (rounded) when few distinct ones exist.
  if (finite > 0 && nearInt >= 0.95 * finite) {
    const counts = new Map<number, number>();
    let tooMany = false;
    for (let i = 0; i < v.length && !tooMany; i++) {
      const x = v[i]!;
      if (Number.isNaN(x)) continue;
      const r = x < 0 ? -Math.round(-x) : Math.round(x);
      const k = r === 0 ? 0 : r; // fold -0 into 0
      counts.set(k, (counts.get(k) ?? 0) + 1);
      if (counts.size > LABEL_MAX_VALUES) tooMany = true;
    }
    if (!tooMany) {
      const sorted = [...counts.entries()].sort((a, b) => a[0] - b[0]);
      const rounded = finite - nearInt;
      lines.push(
        `  label map: ${sorted.length} distinct values${rounded ? ` after rounding to the nearest integer (${rounded} voxels were not integer-valued)` : ''}`,
      );
      lines.push(`  label counts: ${sorted.map(([k, c]) => `${k}: ${c}`).join(', ')}`);
      const name = basename(path).toLowerCase();
      const set = /_seg\.nii/.test(name) ? BRATS_LABELS : /_msk\.nii/.test(name) ? ISLES_LABELS : null;
      if (set) {
        const bad = sorted.filter(([k]) => !set.includes(k));
        lines.push(
          bad.length
            ? `  WARNING: values outside the ${set === BRATS_LABELS ? 'BraTS' : 'ISLES'} label set {${set.join(', ')}}: ${bad.map(([k, c]) => `${k} (${c} voxel${c === 1 ? '' : 's'})`).join(', ')}`
            : `  all values are in the ${set === BRATS_LABELS ? 'BraTS' : 'ISLES'} label set {${set.join(', ')}}`,
        );
      }
    }
  }
  return lines;
}

function describeFolder(path: string): string[] {
  const lines: string[] = [];
  const d = discoverCases(path);
  if (d.cases.length > 0) {
    lines.push(`${path}`);
    lines.push(`  layout: ${d.layout}; modalities (in order): ${d.modalities.join(', ')}`);
    const incomplete = d.cases.filter((c) => c.missing.length > 0);
    const noLabel = d.cases.filter((c) => c.label === null);
    lines.push(
      `  cases: ${d.cases.length} (${d.cases.length - incomplete.length} complete, ${incomplete.length} lacking a modality, ${noLabel.length} without label)`,
    );
    for (const c of d.cases) {
      const have = d.modalities.filter((m) => c.files[m]);
      lines.push(
        `  ${c.id}: has ${have.join(', ') || 'no modality'}; ${c.missing.length ? `lacks ${c.missing.join(', ')}` : 'lacks none'}; ${c.label ? 'label present' : 'no label'}`,
      );
    }
    if (d.ignored.length) lines.push(`  ignored files: ${d.ignored.map((f) => basename(f)).join(', ')}`);
    return lines;
  }
  // Not an imaging folder: try FSDD recordings or IDX files.
  const recs = listFsdd(path);
  if (recs.length > 0) {
    const speakers = [...new Set(recs.map((r) => r.speaker))].sort();
    const test = recs.filter((r) => r.take < 15).length;
    lines.push(`${path}`);
    lines.push(
      `  FSDD recordings: ${recs.length} (digits ${[...new Set(recs.map((r) => r.digit))].join(', ')}; speakers ${speakers.join(', ')})`,
    );
    lines.push(`  avMNIST split (take < 15 → test): ${recs.length - test} train, ${test} test`);
    return lines;
  }
  const files = readdirSync(path)
    .filter((f) => /idx\d-ubyte(\.gz)?$/.test(f))
    .sort();
  if (files.length > 0) {
    lines.push(`${path}`);
    for (const f of files) lines.push(...describeIdx(`${path}/${f}`).map((l) => `  ${l}`));
    return lines;
  }
  lines.push(
    `${path}: no NIfTI cases, FSDD recordings or IDX files found${d.ignored.length ? ` (unrecognised NIfTI files: ${d.ignored.map((f) => basename(f)).join(', ')})` : ''}`,
  );
  return lines;
}

function describeIdx(path: string): string[] {
  const a = readIdx(path);
  const lines = [`${path}`, `  IDX magic 0x${a.magic.toString(16).padStart(8, '0')}, shape [${a.shape.join(', ')}]`];
  if (a.shape.length === 1 && a.data instanceof Uint8Array) {
    const counts = new Array<number>(256).fill(0);
    for (const v of a.data) counts[v]!++;
    lines.push(
      `  label counts: ${counts
        .map((c, k) => [k, c] as const)
        .filter(([, c]) => c > 0)
        .map(([k, c]) => `${k}: ${c}`)
        .join(', ')}`,
    );
  }
  return lines;
}

/**
 * Summarise a .nii / .nii.gz file (shape, dtype, spacing, intensity range,
 * label counts for label maps), a .wav, an IDX file, or a folder (cases found
 * and the modalities each lacks).
 */
export async function inspectPath(path: string): Promise<string> {
  let st;
  try {
    st = statSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new DataError(
      `${path}: ${code === 'ENOENT' ? 'does not exist' : `cannot open (${code ?? (e as Error).message})`}`,
    );
  }
  if (st.isDirectory()) return describeFolder(path).join('\n');
  if (!st.isFile()) throw new DataError(`${path}: is not a regular file or folder (a device, pipe or socket?)`);
  const lower = path.toLowerCase();
  if (lower.endsWith('.nii') || lower.endsWith('.nii.gz')) {
    const img = await readNifti(path);
    return describeNifti(path, img, lower.endsWith('.gz')).join('\n');
  }
  if (lower.endsWith('.wav')) {
    const w = readWav(path);
    return [
      path,
      `  WAV: ${w.format === 'pcm' ? `PCM ${w.bitsPerSample}-bit` : `IEEE float ${w.bitsPerSample}-bit`}, ${w.channels.length} channel(s), ${w.sampleRate} Hz`,
      `  samples: ${w.mono.length} (${fmt(w.mono.length / w.sampleRate)} s)`,
    ].join('\n');
  }
  if (/idx\d-ubyte(\.gz)?$/.test(lower)) return describeIdx(path).join('\n');
  throw new DataError(`${path}: unknown file type (expected .nii, .nii.gz, .wav, an IDX file, or a folder)`);
}
