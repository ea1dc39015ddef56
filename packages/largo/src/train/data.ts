/**
 * Data for training and evaluation: the segmentation sets (phantom, BraTS,
 * ISLES) as in-memory case arrays with a deterministic split, and avMNIST.
 */
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import {
  PhantomDataset,
  openBrats,
  openIsles,
  splitCases,
  readSplitFile,
  BRATS_REGIONS,
  BRATS_LABELS,
  ISLES_REGIONS,
  ISLES_LABELS,
  loadAvMnist,
  standardizeAudio,
  Rng,
  readMnistImages,
  readMnistLabels,
  labelsToRegions,
  DataError,
  type CaseArrays,
  type CaseEntry,
  type Dataset,
  type Region,
  type AvMnistSplit,
} from '@largo/datasets';
import type { LargoConfig } from '../config.js';
import { deriveSeed, STREAM } from './rng.js';
import { toFeatureSpace, type FeatureSpace } from './encoders.js';
import { onCpu } from '../backend-select.js';
import { predLabels } from '../infer/labels.js';

export { predLabels };

export interface SegData {
  name: string;
  modalities: string[];
  labelMode: 'regions' | 'labels';
  /** evaluation regions (WT/TC/ET, lesion) */
  regions: readonly Region[];
  /** label values in class-index order (labels mode): index i ↔ value labelValues[i] */
  labelValues: readonly number[];
  /** network output channels: regions count, or number of label values */
  classes: number;
  train: CaseArrays[];
  val: CaseArrays[];
  test: CaseArrays[];
  /** a warning about the split (e.g. evaluating on training cases) */
  note?: string;
  /** cases left out because they lack a modality or the label, with what each lacks */
  skipped?: { id: string; lacks: string[] }[];
  /** training cases that lack a modality (data.incomplete = 'train'), with what each lacks */
  trainedIncomplete?: { id: string; lacks: string[] }[];
}

/** Maps a label map's values to class indices in place (labels mode). */
function toClassIndices(c: CaseArrays, values: readonly number[]): CaseArrays {
  if (!c.label) return c;
  const lut = new Int16Array(256).fill(-1);
  values.forEach((v, i) => {
    lut[v] = i;
  });
  const out = new Uint8Array(c.label.length);
  for (let i = 0; i < out.length; i++) {
    const v = lut[c.label[i]!]!;
    if (v < 0) throw new DataError(`case ${c.id}: label value ${c.label[i]} is not one of ${values.join(', ')}`);
    out[i] = v;
  }
  return { ...c, label: out };
}

/** Region masks [R, ...spatial] (0/1) of a case's ground truth, whatever the label mode. */
export function gtRegions(c: CaseArrays, d: SegData): Uint8Array {
  if (!c.label) throw new Error(`case ${c.id} has no label`);
  if (d.labelMode === 'regions') return c.label;
  const vals = new Uint8Array(c.label.length);
  for (let i = 0; i < vals.length; i++) vals[i] = d.labelValues[c.label[i]!]!;
  return labelsToRegions(vals, d.regions);
}

/**
 * Region masks from fused logits [C, ...spatial]: sigmoid > 0.5 (logit > 0)
 * per region channel, or argmax over classes then the label → region map.
 */
export function predRegions(logits: Float32Array, d: SegData, n: number): Uint8Array {
  const C = d.classes;
  if (d.labelMode === 'regions') {
    const out = new Uint8Array(C * n);
    for (let i = 0; i < C * n; i++) out[i] = logits[i]! > 0 ? 1 : 0;
    return out;
  }
  return labelsToRegions(predLabels(logits, d, n), d.regions);
}

function segDataset(
  cfg: LargoConfig,
  allowMissing = false,
): { ds: Dataset; regions: readonly Region[]; labelValues: readonly number[] } {
  const d = cfg.data;
  if (cfg.dataset === 'phantom') {
    const p = d.phantom;
    return {
      ds: new PhantomDataset({
        cases: p.cases,
        size: p.size,
        modalities: p.modalities,
        noise: p.noise,
        bias: p.bias,
        seed: dataSeed(cfg),
        labelMode: d.labelMode,
      }),
      regions: BRATS_REGIONS,
      labelValues: BRATS_LABELS,
    };
  }
  if (!d.path) throw new DataError(`dataset '${cfg.dataset}' needs data.path (--data <folder>)`);
  if (!existsSync(d.path)) throw new DataError(`${d.path}: data folder does not exist (data.path / --data)`);
  const opts = {
    labelMode: d.labelMode,
    labelPolicy: d.labelPolicy,
    targetSpacing: d.targetSpacing,
    requireLabel: true,
    gridMismatch: d.gridMismatch,
    allowMissing,
  } as const;
  if (cfg.dataset === 'brats')
    return { ds: openBrats(d.path, opts), regions: BRATS_REGIONS, labelValues: BRATS_LABELS };
  return { ds: openIsles(d.path, opts), regions: ISLES_REGIONS, labelValues: ISLES_LABELS };
}

/** The seed of the data (phantom generation, split): `data.seed`, else the run seed. */
export function dataSeed(cfg: LargoConfig): number {
  return cfg.data.seed ?? cfg.seed;
}

export async function loadSegData(cfg: LargoConfig): Promise<SegData> {
  const { ds, regions, labelValues } = segDataset(cfg);
  // cases that lack a modality or the label are never dropped silently: listed, and refused with data.incomplete = 'error'
  const incomplete: CaseEntry[] = 'incomplete' in ds ? (ds as { incomplete: CaseEntry[] }).incomplete : [];
  // data.incomplete = 'train': labelled cases lacking a modality join the training split with that channel zero and marked missing
  const trainable =
    cfg.data.incomplete === 'train'
      ? incomplete.filter((c) => c.label !== null && c.missing.length < ds.modalities.length)
      : [];
  const skipped = incomplete
    .filter((c) => !trainable.includes(c))
    .map((c) => ({ id: c.id, lacks: [...c.missing, ...(c.label ? [] : ['label'])] }));
  const skippedText =
    skipped
      .slice(0, 10)
      .map((c) => `${c.id} (lacks ${c.lacks.join(', ')})`)
      .join(', ') + (skipped.length > 10 ? ` and ${skipped.length - 10} more` : '');
  if (skipped.length && cfg.data.incomplete === 'error')
    throw new DataError(
      `${cfg.data.path}: ${skipped.length} case(s) lack a modality or the label: ${skippedText} (data.incomplete is 'error'; 'skip' trains on the complete cases, 'train' also trains on the ones that lack a modality)`,
    );
  if (ds.cases.length === 0)
    throw new DataError(
      `${cfg.data.path ?? cfg.dataset}: no complete labelled cases found${skipped.length ? ` (${skipped.length} incomplete: ${skippedText})` : ''}; every case needs ${ds.modalities.join(', ')} and a label`,
    );
  const split = cfg.data.splitFile
    ? readSplitFile(cfg.data.splitFile, { cases: ds.cases })
    : splitCases(ds.cases, { seed: deriveSeed(dataSeed(cfg), STREAM.split), fractions: cfg.data.split });
  if (split.train.length === 0)
    throw new DataError(
      `the split leaves no training cases (${ds.cases.length} cases, fractions ${cfg.data.split.join('/')})`,
    );
  const labelsMode = cfg.data.labelMode === 'labels';
  const load = async (ids: string[]) => {
    const out: CaseArrays[] = [];
    for (const id of ids) {
      const c = await ds.loadArrays(id);
      out.push(labelsMode ? toClassIndices(c, labelValues) : c);
    }
    return out;
  };
  const [train, val] = [await load(split.train), await load(split.val)];
  if (trainable.length) {
    const { ds: withMissing } = segDataset(cfg, true);
    for (const c of trainable) {
      const arrays = await withMissing.loadArrays(c.id);
      train.push(labelsMode ? toClassIndices(arrays, labelValues) : arrays);
    }
  }
  let note: string | undefined;
  let test: CaseArrays[];
  const tp = cfg.dataset === 'phantom' ? cfg.data.testPhantom : null;
  if (tp) {
    // held-out test cases from their own generator seed: nothing tuned on train/val has seen them
    const p = cfg.data.phantom;
    const tds = new PhantomDataset({
      cases: tp.cases,
      size: p.size,
      modalities: p.modalities,
      noise: p.noise,
      bias: p.bias,
      seed: tp.seed,
      labelMode: cfg.data.labelMode,
    });
    test = [];
    for (const id of tds.cases) {
      const c = tds.loadArraysSync(id);
      test.push({ ...(labelsMode ? toClassIndices(c, labelValues) : c), id: `test-${c.id}` });
    }
  } else if (split.test.length) test = await load(split.test);
  else if (val.length) {
    test = val;
    note = 'the split has no test cases: evaluating on the validation cases';
  } else {
    test = train;
    note =
      'the split has no test or validation cases: evaluating on the TRAINING cases (not a generalization estimate)';
  }
  return {
    name: ds.name,
    modalities: ds.modalities,
    labelMode: cfg.data.labelMode,
    regions,
    labelValues,
    classes: labelsMode ? labelValues.length : regions.length,
    train,
    val: val.length ? val : train.slice(0, 1),
    test,
    note,
    skipped,
    trainedIncomplete: trainable.map((c) => ({ id: c.id, lacks: c.missing })),
  };
}

// ---------------------------------------------------------------- avMNIST

export interface AvData {
  modalities: string[];
  train: AvMnistSplit;
  val: AvMnistSplit;
  test: AvMnistSplit;
  /** set under train.encoders = 'pretrained': the splits hold frozen encoder features instead of images/MFCCs */
  features?: FeatureSpace;
}

/** A subset of an avMNIST split by sample indices. */
export function takeSamples(s: AvMnistSplit, idx: readonly number[]): AvMnistSplit {
  const pix = s.imageShape[1]! * s.imageShape[2]!;
  const au = s.audioShape[1]! * s.audioShape[2]!;
  const images = new Float32Array(idx.length * pix),
    audio = new Float32Array(idx.length * au);
  const labels = new Int32Array(idx.length),
    imageIndices = new Int32Array(idx.length);
  idx.forEach((j, i) => {
    images.set(s.images.subarray(j * pix, (j + 1) * pix), i * pix);
    audio.set(s.audio.subarray(j * au, (j + 1) * au), i * au);
    labels[i] = s.labels[j]!;
    imageIndices[i] = s.imageIndices[j]!;
  });
  return {
    count: idx.length,
    images,
    imageShape: [idx.length, s.imageShape[1]!, s.imageShape[2]!],
    audio,
    audioShape: [idx.length, s.audioShape[1]!, s.audioShape[2]!],
    labels,
    recordings: idx.map((j) => s.recordings[j]!),
    imageIndices,
  };
}

/**
 * avMNIST from a folder holding mnist/ (IDX files) and fsdd/recordings/ (or
 * fsdd/ with the WAVs). The 2,100 training pairs are split by `data.split`'s
 * validation fraction into train / val (seeded); the 900 test pairs are the test set.
 */
export function loadAvData(cfg: LargoConfig, log: (s: string) => void = () => undefined): AvData {
  const root = cfg.data.path;
  if (!root) throw new DataError(`dataset 'avmnist' needs data.path (--data <folder with mnist/ and fsdd/>)`);
  const pick = (...cands: string[]) => cands.find((c) => existsSync(c));
  const images = pick(
    join(root, 'mnist', 't10k-images-idx3-ubyte.gz'),
    join(root, 'mnist', 't10k-images-idx3-ubyte'),
    join(root, 'mnist', 'train-images-idx3-ubyte.gz'),
  );
  const labels = pick(
    join(root, 'mnist', 't10k-labels-idx1-ubyte.gz'),
    join(root, 'mnist', 't10k-labels-idx1-ubyte'),
    join(root, 'mnist', 'train-labels-idx1-ubyte.gz'),
  );
  const fsdd = pick(join(root, 'fsdd', 'recordings'), join(root, 'fsdd'));
  if (!images || !labels)
    throw new DataError(
      `${join(root, 'mnist')}: no MNIST IDX files (t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz])`,
    );
  if (!fsdd) throw new DataError(`${join(root, 'fsdd')}: no FSDD recordings folder`);
  const { train, test, pairs } = loadAvMnist({
    mnistImages: images,
    mnistLabels: labels,
    fsddDir: fsdd,
    seed: dataSeed(cfg),
  });
  standardizeAudio(train, test);
  const n = train.count;
  const nVal = Math.round(n * (cfg.data.split[1] / Math.max(1e-9, cfg.data.split[0] + cfg.data.split[1])));
  const perm = permutation(n, deriveSeed(dataSeed(cfg), STREAM.split));
  const valIdx = perm.slice(0, nVal).sort((a, b) => a - b),
    trIdx = perm.slice(nVal).sort((a, b) => a - b);
  const out: AvData = {
    modalities: ['image', 'audio'],
    train: takeSamples(train, trIdx),
    val: takeSamples(train, valIdx.length ? valIdx : trIdx.slice(0, 64)),
    test,
  };
  if (cfg.train.encoders === 'pretrained') {
    // stage 1 of the paper's protocol: images no pair uses, and the training pairs' recordings (val held out)
    const img = readMnistImages(images),
      lab = readMnistLabels(labels);
    const used = new Set(pairs.map((p) => p.image));
    const free: number[] = [];
    for (let i = 0; i < img.count; i++) if (!used.has(i)) free.push(i);
    const pix = img.rows * img.cols;
    const encImages = new Float32Array(free.length * pix),
      encImageLabels = new Int32Array(free.length);
    free.forEach((j, i) => {
      for (let q = 0; q < pix; q++) encImages[i * pix + q] = img.pixels[j * pix + q]! / 255;
      encImageLabels[i] = lab[j]!;
    });
    const tr = out.train;
    // encoder pretraining and feature caching read values synchronously: on the CPU, whatever the run's backend
    out.features = onCpu(() =>
      toFeatureSpace(
        cfg,
        {
          images: encImages,
          imageLabels: encImageLabels,
          imageShape: [img.rows, img.cols],
          audio: Float32Array.from(tr.audio),
          audioLabels: Int32Array.from(tr.labels),
          audioShape: [tr.audioShape[1]!, tr.audioShape[2]!],
        },
        [out.train, out.val, out.test],
        log,
      ),
    );
  }
  return out;
}

/** A seeded permutation of [0, n). */
export function permutation(n: number, seed: number): number[] {
  return new Rng(seed).shuffle(Array.from({ length: n }, (_, i) => i));
}
