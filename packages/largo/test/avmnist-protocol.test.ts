import t from 'tap';
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { requirement } from '@largo/test-support';
import type { AvMnistSplit } from '@largo/datasets';
import { resolveConfig } from '../src/config.js';
import { loadAvData } from '../src/train/data.js';
import { buildAvNet } from '../src/train/experiment.js';
import { AvTask } from '../src/train/av-task.js';
import { evaluateAvMnist } from '../src/eval/evaluate.js';
import { toFeatureSpace, type EncoderData } from '../src/train/encoders.js';

// pretraining on the real data takes ~1-2 min on an idle 2-core machine; far longer on a busy one
t.setTimeout(1_800_000);

const here = fileURLToPath(new URL('.', import.meta.url));
const SHARED = process.env['LARGO_SHARED_DATASETS'] || resolve(here, '..', '..', '..', '..', 'shared', 'datasets');
const have = existsSync(join(SHARED, 'mnist')) && existsSync(join(SHARED, 'fsdd'));
const skip = requirement(
  'SHARED',
  have ? false : `shared avMNIST data not found at ${SHARED} (set LARGO_SHARED_DATASETS)`,
);

/** A small synthetic avMNIST-shaped data set: digit d lights up row band d of the image and MFCC row d. */
function synthetic(n: number): { enc: EncoderData; split: () => AvMnistSplit } {
  const img = new Float32Array(n * 784),
    aud = new Float32Array(n * 400),
    y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const d = (y[i] = i % 10);
    for (let c = 0; c < 28; c++) img[i * 784 + (2 + 2 * d) * 28 + c] = 1;
    for (let c = 0; c < 20; c++) aud[i * 400 + d * 2 * 20 + c] = 1;
  }
  const split = (): AvMnistSplit => ({
    count: n,
    images: img.slice(),
    imageShape: [n, 28, 28],
    audio: aud.slice(),
    audioShape: [n, 20, 20],
    labels: y.slice(),
    recordings: Array.from({ length: n }, (_, i) => `r${i}.wav`),
    imageIndices: new Int32Array(n),
  });
  return {
    enc: { images: img, imageLabels: y, audio: aud, audioLabels: y, imageShape: [28, 28], audioShape: [20, 20] },
    split,
  };
}

t.test('pretrained encoders: cached by content, reused bitwise, rebuilt when the cache is corrupt', async (t) => {
  const out = mkdtempSync(join(tmpdir(), 'largo-enc-'));
  const cfg = resolveConfig(
    { dataset: 'avmnist', out, data: { path: '-' } },
    { 'train.encoders': 'pretrained', 'train.encoderEpochs': 2 },
  );
  const { enc, split } = synthetic(120);
  const lines: string[] = [];
  const s1 = split();
  const fs1 = toFeatureSpace(cfg, enc, [s1], (l) => lines.push(l));
  t.same(s1.imageShape, [120, 1, 160]);
  t.same(s1.audioShape, [120, 1, 320]);
  t.equal(fs1.imputed.image.length, 160);
  t.match(lines.join('\n'), /pretraining for 2 epoch\(s\)/);
  const cached = readdirSync(join(out, '.cache'));
  t.equal(cached.length, 1, 'one cache file');
  const lines2: string[] = [];
  const s2 = split();
  toFeatureSpace(cfg, enc, [s2], (l) => lines2.push(l));
  t.match(lines2.join('\n'), /pretrained weights from/);
  t.same(Buffer.from(s2.images.buffer), Buffer.from(s1.images.buffer), 'same features from the cache');
  writeFileSync(join(out, '.cache', cached[0]!), 'garbage');
  const lines3: string[] = [];
  const s3 = split();
  toFeatureSpace(cfg, enc, [s3], (l) => lines3.push(l));
  t.match(lines3.join('\n'), /is unusable .*pretraining again/);
  t.same(Buffer.from(s3.images.buffer), Buffer.from(s1.images.buffer), 'retraining is deterministic');
  // another epoch count is another cache entry
  toFeatureSpace(
    resolveConfig(
      { dataset: 'avmnist', out, data: { path: '-' } },
      { 'train.encoders': 'pretrained', 'train.encoderEpochs': 1 },
    ),
    enc,
    [split()],
    () => undefined,
  );
  t.equal(readdirSync(join(out, '.cache')).filter((f) => f.endsWith('.safetensors')).length, 2);
});

t.test(
  "avMNIST, the paper's protocol on the real data: encoders on unpaired images and training recordings, fusion-only methods",
  { skip },
  async (t) => {
    const out = mkdtempSync(join(tmpdir(), 'largo-avp-'));
    const cfg = resolveConfig(
      { dataset: 'avmnist', out, data: { path: SHARED, split: [0.9, 0.1, 0] } },
      { 'train.encoders': 'pretrained', 'train.encoderEpochs': 1, 'train.steps': 3, 'train.batchSize': 16 },
    );
    const lines: string[] = [];
    const data = loadAvData(cfg, (s) => lines.push(s));
    t.ok(data.features, 'feature space attached');
    t.same(data.train.imageShape.slice(1), [1, 160]);
    t.same(data.test.audioShape.slice(1), [1, 320]);
    t.equal(data.test.count, 900);
    t.match(
      lines.join('\n'),
      /pretraining for 1 epoch\(s\) \(image: 7000 unpaired MNIST images; audio: 1890 training recordings\)/,
    );
    t.ok(
      data.features!.probeAccuracy.image > 0.5,
      `image probe accuracy ${data.features!.probeAccuracy.image} after one epoch`,
    );
    t.ok(data.features!.encoderParams > 50_000, `frozen encoder parameters ${data.features!.encoderParams}`);
    for (const method of ['largo', 'dedicated', 'dropout'] as const) {
      const net = buildAvNet(cfg, method, data);
      try {
        t.notOk(
          net.namedParameters().some(([n]) => n.startsWith('image.') || n.startsWith('audio.')),
          `${method}: no encoder parameters are trained`,
        );
        const task = new AvTask(net, data, cfg, method);
        const parts = task.lossStep(0);
        const l = parts.reduce((a, p) => a + p.item(), 0);
        for (const p of parts) p.dispose();
        t.ok(Number.isFinite(l) && l > 0, `${method}: finite loss ${l}`);
        const recs = await evaluateAvMnist(net, method, data.test, 'test');
        t.equal(recs.length, 3);
      } finally {
        net.dispose();
      }
    }
  },
);
