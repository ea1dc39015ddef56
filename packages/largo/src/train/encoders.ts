/**
 * The paper's avMNIST protocol, stage 1: the image and audio encoders are
 * pretrained on their own, frozen, and shared by every method; stage 2 trains
 * only each method's fusion network on the encoders' cached features.
 *
 * - Image encoder: trained on the MNIST images that no avMNIST pair uses
 *   (so the paired test images are never seen), with a linear classifier.
 * - Audio encoder: trained on the MFCCs of the training pairs' recordings
 *   (FSDD takes ≥ 15, the validation pairs held out), with a linear classifier.
 * - Adam (lr 1e-3), batch 64, `train.encoderEpochs` epochs (paper: 100), a
 *   seeded order. The weights depend only on the data, the encoder seed and
 *   the epochs, so they are cached (runs/.cache/) and reused by every method
 *   and seed that shares them; a cache file that does not decode is rebuilt.
 * - The features of every split are computed once; the zero-filled input's
 *   feature ("what the encoder says about a missing modality") is kept for
 *   the zero-imputation baselines.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import {
  Philox,
  crossEntropy,
  decodeSafetensors,
  encodeSafetensors,
  engine,
  tensor,
  tidy,
  type Tensor,
} from '@largo/core';
import { Adam, backward, noGrad, zeroGrad } from '@largo/autograd';
import { Rng, type AvMnistSplit } from '@largo/datasets';
import type { LargoConfig } from '../config.js';
import { writeFileAtomic } from '../checkpoint.js';
import { Linear } from '../layers/linear.js';
import { ConvEncoder2d } from '../nets/avmnist.js';
import { LayerFactory } from '../nets/factory.js';
import { deriveSeed } from './rng.js';

export const ENCODER_CHANNELS = [16, 32, 64, 128] as const;
export const IMAGE_FEATURES = 160;
export const AUDIO_FEATURES = 320;

export interface EncoderData {
  /** MNIST images used by no pair: [n, 28, 28] in [0, 1] */
  images: Float32Array;
  imageLabels: Int32Array;
  /** the training pairs' MFCC maps [n, 20, 20] (validation pairs excluded) */
  audio: Float32Array;
  audioLabels: Int32Array;
  imageShape: [number, number];
  audioShape: [number, number];
}

export interface FeatureSpace {
  /** encoder output of an all-zero input, the feature a zero-imputed modality gets */
  imputed: { image: Float32Array; audio: Float32Array };
  /** parameters of the two frozen encoders (not trained by any method) */
  encoderParams: number;
  /** test accuracy of each encoder's linear probe on the paired test split, for the record */
  probeAccuracy: { image: number; audio: number };
  cacheFile: string;
  epochs: number;
}

function buildEncoder(
  kind: 'image' | 'audio',
  shape: [number, number],
  gen: Philox,
): { enc: ConvEncoder2d; cls: Linear } {
  const f = new LayerFactory({ method: 'dropout', generator: gen });
  const feats = kind === 'image' ? IMAGE_FEATURES : AUDIO_FEATURES;
  const enc = new ConvEncoder2d(f, 1, ENCODER_CHANNELS, shape, feats);
  const cls = new Linear({ inFeatures: feats, outFeatures: 10, generator: gen, role: 'head' });
  return { enc, cls };
}

/** Trains one encoder + linear classifier; logs a line per epoch group. */
function trainEncoder(
  kind: 'image' | 'audio',
  x: Float32Array,
  y: Int32Array,
  shape: [number, number],
  epochs: number,
  seed: number,
  log: (s: string) => void,
): { enc: ConvEncoder2d; cls: Linear } {
  const gen = new Philox(seed);
  const m = buildEncoder(kind, shape, gen);
  const params = [
    ...m.enc.namedParameters(),
    ...m.cls.namedParameters().map(([n, p]) => [`cls.${n}`, p] as [string, Tensor]),
  ];
  const opt = new Adam(params, { lr: 1e-3 });
  const n = y.length,
    per = shape[0] * shape[1],
    B = 64;
  const t0 = performance.now();
  try {
    for (let e = 0; e < epochs; e++) {
      const order = new Rng(deriveSeed(seed, 7, e)).shuffle(Array.from({ length: n }, (_, i) => i));
      let lossSum = 0,
        batches = 0;
      for (let b = 0; b < n; b += B) {
        const idx = order.slice(b, b + B);
        const xb = new Float32Array(idx.length * per),
          yb = new Int32Array(idx.length);
        idx.forEach((j, i) => {
          xb.set(x.subarray(j * per, (j + 1) * per), i * per);
          yb[i] = y[j]!;
        });
        zeroGrad(params.map(([, p]) => p));
        lossSum += tidy(() => {
          const loss = crossEntropy(
            m.cls.forward(m.enc.forward(tensor(xb, [idx.length, 1, ...shape]), 0), 0),
            tensor(yb, [idx.length], 'int32'),
          );
          const v = loss.item();
          backward(loss);
          return v;
        });
        opt.step();
        batches++;
      }
      if (e === 0 || e === epochs - 1 || (e + 1) % Math.max(1, Math.round(epochs / 5)) === 0) {
        log(
          `  ${kind} encoder: epoch ${e + 1}/${epochs}, loss ${(lossSum / batches).toFixed(4)} (${((performance.now() - t0) / 1000).toFixed(0)} s)`,
        );
      }
    }
  } finally {
    opt.dispose();
  }
  return m;
}

/** Encoder features [n, F] of n inputs (noGrad, batched). */
function features(enc: ConvEncoder2d, x: Float32Array, n: number, shape: [number, number], F: number): Float32Array {
  const out = new Float32Array(n * F),
    per = shape[0] * shape[1];
  enc.train(false);
  for (let b = 0; b < n; b += 256) {
    const m = Math.min(256, n - b);
    const f = noGrad(() =>
      tidy(() => enc.forward(tensor(x.slice(b * per, (b + m) * per), [m, 1, ...shape]), 0).dataSync() as Float32Array),
    );
    out.set(f, b * F);
  }
  return out;
}

function accuracy(cls: Linear, feats: Float32Array, labels: Int32Array, F: number): number {
  const n = labels.length;
  const logits = noGrad(() => tidy(() => cls.forward(tensor(feats, [n, F]), 0).dataSync() as Float32Array));
  let ok = 0;
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let c = 1; c < 10; c++) if (logits[i * 10 + c]! > logits[i * 10 + best]!) best = c;
    if (best === labels[i]) ok++;
  }
  return ok / n;
}

/**
 * Pretrains (or loads from the cache) both encoders and replaces the splits'
 * images and audio by their features: imageShape [n, 1, 160], audioShape [n, 1, 320].
 */
export function toFeatureSpace(
  cfg: LargoConfig,
  encData: EncoderData,
  splits: AvMnistSplit[],
  log: (s: string) => void,
): FeatureSpace {
  const epochs = cfg.train.encoderEpochs;
  const seed = deriveSeed(cfg.data.seed ?? cfg.seed, 11);
  const key = createHash('sha256')
    .update(
      JSON.stringify({
        v: 1,
        epochs,
        seed,
        channels: ENCODER_CHANNELS,
        nImg: encData.imageLabels.length,
        nAud: encData.audioLabels.length,
        imgSum: checksum(encData.images),
        audSum: checksum(encData.audio),
      }),
    )
    .digest('hex')
    .slice(0, 16);
  const dir = join(cfg.out, '.cache');
  const cacheFile = join(dir, `avmnist-encoders-${key}.safetensors`);
  const img = buildEncoder('image', encData.imageShape, new Philox(seed));
  const aud = buildEncoder('audio', encData.audioShape, new Philox(seed + 1));
  const named = (): [string, Tensor][] => [
    ...img.enc.namedParameters().map(([n, p]) => [`image.${n}`, p] as [string, Tensor]),
    ...img.cls.namedParameters().map(([n, p]) => [`image.cls.${n}`, p] as [string, Tensor]),
    ...aud.enc.namedParameters().map(([n, p]) => [`audio.${n}`, p] as [string, Tensor]),
    ...aud.cls.namedParameters().map(([n, p]) => [`audio.cls.${n}`, p] as [string, Tensor]),
  ];
  let loaded = false;
  if (existsSync(cacheFile)) {
    try {
      const st = decodeSafetensors(readFileSync(cacheFile), cacheFile);
      for (const [n, p] of named()) {
        const e = st.tensors[n];
        if (!e || e.data.length !== p.size) throw new Error(`tensor ${n} missing or resized`);
        const tmp = tensor(Float32Array.from(e.data as Float32Array), [...p.shape]);
        engine().assign(p, tmp);
        tmp.dispose();
      }
      loaded = true;
      log(`avMNIST encoders: pretrained weights from ${cacheFile}`);
    } catch (e) {
      log(`avMNIST encoders: ${cacheFile} is unusable (${(e as Error).message}); pretraining again`);
    }
  }
  if (!loaded) {
    log(
      `avMNIST encoders: pretraining for ${epochs} epoch(s) (image: ${encData.imageLabels.length} unpaired MNIST images; audio: ${encData.audioLabels.length} training recordings)`,
    );
    const ti = trainEncoder('image', encData.images, encData.imageLabels, encData.imageShape, epochs, seed, log);
    const ta = trainEncoder('audio', encData.audio, encData.audioLabels, encData.audioShape, epochs, seed + 1, log);
    const entries: Record<string, { dtype: 'F32'; shape: number[]; data: Float32Array }> = {};
    const all: [string, Tensor][] = [
      ...ti.enc.namedParameters().map(([n, p]) => [`image.${n}`, p] as [string, Tensor]),
      ...ti.cls.namedParameters().map(([n, p]) => [`image.cls.${n}`, p] as [string, Tensor]),
      ...ta.enc.namedParameters().map(([n, p]) => [`audio.${n}`, p] as [string, Tensor]),
      ...ta.cls.namedParameters().map(([n, p]) => [`audio.cls.${n}`, p] as [string, Tensor]),
    ];
    for (const [n, p] of all)
      entries[n] = { dtype: 'F32', shape: [...p.shape], data: Float32Array.from(p.dataSync() as Float32Array) };
    mkdirSync(dir, { recursive: true });
    writeFileAtomic(
      cacheFile,
      encodeSafetensors(entries, {
        kind: 'largo avMNIST pretrained encoders',
        epochs: String(epochs),
        seed: String(seed),
      }),
    );
    img.enc.dispose();
    img.cls.dispose();
    aud.enc.dispose();
    aud.cls.dispose();
    Object.assign(img, ti);
    Object.assign(aud, ta);
  }
  try {
    const zerosImg = features(
      img.enc,
      new Float32Array(encData.imageShape[0] * encData.imageShape[1]),
      1,
      encData.imageShape,
      IMAGE_FEATURES,
    );
    const zerosAud = features(
      aud.enc,
      new Float32Array(encData.audioShape[0] * encData.audioShape[1]),
      1,
      encData.audioShape,
      AUDIO_FEATURES,
    );
    let probe = { image: NaN, audio: NaN };
    splits.forEach((s, si) => {
      const fi = features(img.enc, s.images, s.count, encData.imageShape, IMAGE_FEATURES);
      const fa = features(aud.enc, s.audio, s.count, encData.audioShape, AUDIO_FEATURES);
      if (si === splits.length - 1)
        probe = {
          image: accuracy(img.cls, fi, s.labels, IMAGE_FEATURES),
          audio: accuracy(aud.cls, fa, s.labels, AUDIO_FEATURES),
        };
      s.images = fi;
      s.imageShape = [s.count, 1, IMAGE_FEATURES];
      s.audio = fa;
      s.audioShape = [s.count, 1, AUDIO_FEATURES];
    });
    const encoderParams = [...img.enc.namedParameters(), ...aud.enc.namedParameters()].reduce(
      (a, [, p]) => a + p.size,
      0,
    );
    log(
      `avMNIST encoders: ${encoderParams.toLocaleString('en-US')} frozen parameters; linear-probe test accuracy image ${(probe.image * 100).toFixed(2)}%, audio ${(probe.audio * 100).toFixed(2)}%`,
    );
    return { imputed: { image: zerosImg, audio: zerosAud }, encoderParams, probeAccuracy: probe, cacheFile, epochs };
  } finally {
    img.enc.dispose();
    img.cls.dispose();
    aud.enc.dispose();
    aud.cls.dispose();
  }
}

function checksum(a: Float32Array): string {
  return createHash('sha256')
    .update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength))
    .digest('hex')
    .slice(0, 16);
}
