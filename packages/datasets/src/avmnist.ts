/**
 * avMNIST: each Free Spoken Digit Dataset recording paired with an MNIST
 * image of the same digit. Recordings with take index < 15 form the test
 * split (6 speakers × 10 digits × 15 = 900), the rest the training split
 * (2,100).
 *
 * Pairing (seeded, no image used twice): per digit, the MNIST images of that
 * digit are shuffled with Rng.derive(seed, digit); the digit's test
 * recordings (sorted by speaker, take) take the first images of that order,
 * its training recordings the next ones. Any MNIST IDX pair can be given; the
 * shared data only holds t10k, whose smallest class (digit 5, 892 images)
 * still covers the 300 recordings per digit.
 */
import { DataError } from './errors.js';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { readMnistImages, readMnistLabels } from './idx.js';
import { readWav, WavError } from './wav.js';
import { Mfcc, type MfccOptions } from './mfcc.js';
import { Rng } from './rng.js';
import { toTensor, type Tensor } from './tensor.js';

export interface FsddRecording {
  file: string;
  digit: number;
  speaker: string;
  take: number;
}

const FSDD_RE = /^(\d)_([A-Za-z0-9-]+)_(\d+)\.wav$/;

/** List FSDD recordings `{digit}_{speaker}_{take}.wav`, sorted by (digit, speaker, take). Other files are ignored. */
export function listFsdd(dir: string): FsddRecording[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (e) {
    throw new DataError(`${dir}: cannot read FSDD recordings folder (${(e as Error).message})`);
  }
  const out: FsddRecording[] = [];
  for (const name of names) {
    const m = FSDD_RE.exec(name);
    if (!m) continue;
    out.push({ file: join(dir, name), digit: Number(m[1]), speaker: m[2]!, take: Number(m[3]) });
  }
  out.sort(
    (a, b) => a.digit - b.digit || (a.speaker < b.speaker ? -1 : a.speaker > b.speaker ? 1 : 0) || a.take - b.take,
  );
  return out;
}

export interface AvMnistPair {
  recording: FsddRecording;
  /** index into the MNIST file */
  image: number;
  split: 'train' | 'test';
}

/** Seeded pairing of recordings with MNIST image indices of the same digit (see the module comment). */
export function pairAvMnist(
  recordings: FsddRecording[],
  mnistLabels: Uint8Array,
  options: { seed?: number; testTakeBelow?: number } = {},
): AvMnistPair[] {
  const seed = options.seed ?? 0;
  const cut = options.testTakeBelow ?? 15;
  const byDigit: number[][] = Array.from({ length: 10 }, () => []);
  for (let i = 0; i < mnistLabels.length; i++) byDigit[mnistLabels[i]!]!.push(i);
  const pairs: AvMnistPair[] = [];
  for (let d = 0; d < 10; d++) {
    const recs = recordings.filter((r) => r.digit === d);
    const test = recs.filter((r) => r.take < cut);
    const train = recs.filter((r) => r.take >= cut);
    const pool = new Rng(Rng.derive(seed, d)).shuffle([...byDigit[d]!]);
    if (pool.length < recs.length) {
      throw new DataError(`avMNIST: digit ${d} has ${recs.length} recordings but only ${pool.length} MNIST images`);
    }
    let k = 0;
    for (const r of test) pairs.push({ recording: r, image: pool[k++]!, split: 'test' });
    for (const r of train) pairs.push({ recording: r, image: pool[k++]!, split: 'train' });
  }
  return pairs;
}

export interface AvMnistSplit {
  count: number;
  /** [N, 28, 28] in [0, 1] */
  images: Float32Array;
  imageShape: number[];
  /** [N, nMfcc, frames] */
  audio: Float32Array;
  audioShape: number[];
  labels: Int32Array;
  recordings: string[];
  imageIndices: Int32Array;
}

export interface AvMnistOptions {
  /** IDX images (gz or not) */
  mnistImages: string;
  /** IDX labels (gz or not) */
  mnistLabels: string;
  /** folder with the FSDD .wav files */
  fsddDir: string;
  seed?: number;
  testTakeBelow?: number;
  mfcc?: MfccOptions;
}

/** Load and pair everything: MFCCs for all recordings, images scaled to [0, 1]. */
export function loadAvMnist(options: AvMnistOptions): {
  train: AvMnistSplit;
  test: AvMnistSplit;
  pairs: AvMnistPair[];
} {
  const img = readMnistImages(options.mnistImages);
  const labels = readMnistLabels(options.mnistLabels);
  if (labels.length !== img.count) {
    throw new DataError(
      `avMNIST: ${options.mnistImages} has ${img.count} images but ${options.mnistLabels} has ${labels.length} labels`,
    );
  }
  const recordings = listFsdd(options.fsddDir);
  if (recordings.length === 0)
    throw new DataError(`${options.fsddDir}: no FSDD recordings ({digit}_{speaker}_{take}.wav)`);
  const pairs = pairAvMnist(recordings, labels, options);
  const extractor = new Mfcc(options.mfcc);
  const build = (split: 'train' | 'test'): AvMnistSplit => {
    const ps = pairs.filter((p) => p.split === split);
    const n = ps.length;
    const pix = img.rows * img.cols;
    const images = new Float32Array(n * pix);
    const imageIndices = new Int32Array(n);
    const labelsOut = new Int32Array(n);
    let audio: Float32Array | null = null;
    let audioShape: number[] = [];
    ps.forEach((p, i) => {
      const src = img.pixels.subarray(p.image * pix, (p.image + 1) * pix);
      for (let j = 0; j < pix; j++) images[i * pix + j] = src[j]! / 255;
      imageIndices[i] = p.image;
      labelsOut[i] = p.recording.digit;
      const wav = readWav(p.recording.file);
      if (wav.sampleRate !== extractor.options.sampleRate) {
        throw new WavError(
          p.recording.file,
          `sample rate ${wav.sampleRate} Hz, expected ${extractor.options.sampleRate} Hz`,
        );
      }
      const f = extractor.compute(wav.mono);
      if (!audio) {
        audioShape = [n, ...f.shape];
        audio = new Float32Array(n * f.data.length);
      }
      if (f.data.length * n !== audio.length)
        throw new DataError(`${p.recording.file}: MFCC length varies between recordings; set mfcc.frames to fix it`);
      audio.set(f.data, i * f.data.length);
    });
    return {
      count: n,
      images,
      imageShape: [n, img.rows, img.cols],
      audio: audio ?? new Float32Array(0),
      audioShape,
      labels: labelsOut,
      recordings: ps.map((p) => p.recording.file),
      imageIndices,
    };
  };
  return { train: build('train'), test: build('test'), pairs };
}

/**
 * Per-coefficient standardisation of the audio features with statistics of
 * `fit` (the training split), applied in place to every split given.
 */
export function standardizeAudio(
  fit: AvMnistSplit,
  ...apply: AvMnistSplit[]
): { mean: Float64Array; std: Float64Array } {
  const [n, K, T] = fit.audioShape as [number, number, number];
  const mean = new Float64Array(K),
    std = new Float64Array(K);
  for (let k = 0; k < K; k++) {
    let s = 0;
    for (let i = 0; i < n; i++) for (let t = 0; t < T; t++) s += fit.audio[(i * K + k) * T + t]!;
    const m = s / (n * T);
    let ss = 0;
    for (let i = 0; i < n; i++) for (let t = 0; t < T; t++) ss += (fit.audio[(i * K + k) * T + t]! - m) ** 2;
    mean[k] = m;
    std[k] = Math.sqrt(ss / (n * T)) || 1;
  }
  for (const sp of [fit, ...apply]) {
    const [sn] = sp.audioShape as [number];
    for (let i = 0; i < sn; i++)
      for (let k = 0; k < K; k++)
        for (let t = 0; t < T; t++) {
          const j = (i * K + k) * T + t;
          sp.audio[j] = (sp.audio[j]! - mean[k]!) / std[k]!;
        }
  }
  return { mean, std };
}

/** Tensors: image [N, 1, 28, 28] float32, audio [N, 1, nMfcc, frames] float32, label [N] int32. */
export function avMnistTensors(s: AvMnistSplit): { image: Tensor; audio: Tensor; label: Tensor } {
  const [n, h, w] = s.imageShape as [number, number, number];
  const [, k, t] = s.audioShape as [number, number, number];
  return {
    image: toTensor(s.images, [n, 1, h, w]),
    audio: toTensor(s.audio, [n, 1, k, t]),
    label: toTensor(s.labels, [n]),
  };
}
