import t from 'tap';
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { requirement } from '@largo/test-support';
import { resolveConfig } from '../src/config.js';
import { loadAvData } from '../src/train/data.js';
import { buildAvNet } from '../src/train/experiment.js';
import { AvTask } from '../src/train/av-task.js';
import { evaluateAvMnist } from '../src/eval/evaluate.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const SHARED = process.env['LARGO_SHARED_DATASETS'] || resolve(here, '..', '..', '..', '..', 'shared', 'datasets');
const have = existsSync(join(SHARED, 'mnist')) && existsSync(join(SHARED, 'fsdd'));
const skip = requirement('SHARED', have ? false : `shared avMNIST data not found at ${SHARED} (set LARGO_SHARED_DATASETS)`);

t.test("avMNIST, the paper's protocol: pretrained frozen encoders shared by every method, cached features", { skip }, async (t) => {
  const out = mkdtempSync(join(tmpdir(), 'largo-avp-'));
  const cfg = resolveConfig({ dataset: 'avmnist', out, data: { path: SHARED, split: [0.9, 0.1, 0] } }, { 'train.encoders': 'pretrained', 'train.encoderEpochs': 1, 'train.steps': 3, 'train.batchSize': 16 });
  const lines: string[] = [];
  const data = loadAvData(cfg, (s) => lines.push(s));
  t.ok(data.features, 'feature space attached');
  t.same(data.train.imageShape.slice(1), [1, 160]);
  t.same(data.test.audioShape.slice(1), [1, 320]);
  t.equal(data.test.count, 900);
  t.match(lines.join('\n'), /pretraining for 1 epoch\(s\) \(image: 7000 unpaired MNIST images; audio: \d+ training recordings\)/);
  t.ok(data.features!.probeAccuracy.image > 0.5, `image probe accuracy ${data.features!.probeAccuracy.image} after one epoch`);
  t.ok(data.features!.encoderParams > 50_000, `frozen encoder parameters ${data.features!.encoderParams}`);
  const cached = readdirSync(join(out, '.cache'));
  t.equal(cached.length, 1, 'one cache file');
  // the second load reuses the cache and gives bitwise the same features
  const lines2: string[] = [];
  const again = loadAvData(cfg, (s) => lines2.push(s));
  t.match(lines2.join('\n'), /pretrained weights from/);
  t.same(Buffer.from(again.test.images.buffer), Buffer.from(data.test.images.buffer), 'same features from the cache');
  // a corrupt cache is rebuilt, not trusted
  writeFileSync(join(out, '.cache', cached[0]!), 'garbage');
  const lines3: string[] = [];
  loadAvData(cfg, (s) => lines3.push(s));
  t.match(lines3.join('\n'), /is unusable .*pretraining again/);
  for (const method of ['largo', 'dedicated', 'dropout'] as const) {
    const net = buildAvNet(cfg, method, data);
    try {
      t.notOk(net.namedParameters().some(([n]) => n.startsWith('image.') || n.startsWith('audio.')), `${method}: no encoder parameters are trained`);
      const task = new AvTask(net, data, cfg, method);
      const l = task.lossStep(0);
      t.ok(Number.isFinite(l) && l > 0, `${method}: finite loss ${l}`);
      const recs = evaluateAvMnist(net, method, data.test, 'test');
      t.equal(recs.length, 3);
    } finally { net.dispose(); }
  }
});
