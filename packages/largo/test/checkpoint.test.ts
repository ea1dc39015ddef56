import t from 'tap';
import { mkdtempSync, readFileSync, writeFileSync, existsSync, readdirSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { tensor } from '@largo/core';
import {
  saveCheckpoint,
  loadCheckpoint,
  checkCompatible,
  restoreParams,
  CheckpointError,
  writeFileAtomic,
  type SaveInput,
} from '../src/checkpoint.js';
import { defaultConfig } from '../src/config.js';

const model = { method: 'largo', modalities: ['a', 'b'], classes: 3, baseFeatures: 4 };

function input(step: number, scale = 1): SaveInput {
  const w = tensor(
    Float32Array.from({ length: 6 }, (_, i) => i * scale),
    [2, 3],
  );
  const b = tensor(new Float32Array([0.5 * scale]), [1]);
  return {
    step,
    method: 'largo',
    config: defaultConfig('phantom'),
    model,
    params: [
      ['w', w],
      ['b', b],
    ],
    optim: {
      momentum: [
        ['w', new Float32Array(6).fill(step)],
        ['b', new Float32Array(1)],
      ],
    },
    optimScalars: { t: step },
    rng: { subset: { k0: 1, k1: 2, counter: 3 + step }, data: step * 2 },
    extra: { history: [[1, 0.5]] },
  };
}

t.test('save → load round trip (weights, optimizer state, RNG state, step, config sidecar)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ck-'));
  const s = input(7, 2);
  saveCheckpoint(join(dir, 'last'), s);
  const ck = loadCheckpoint(join(dir, 'last'));
  t.equal(ck.step, 7);
  t.equal(ck.method, 'largo');
  t.same([...ck.params.get('w')!.data], [0, 2, 4, 6, 8, 10]);
  t.same(ck.params.get('w')!.shape, [2, 3]);
  t.same([...ck.optim.get('momentum')!.get('w')!.data], [7, 7, 7, 7, 7, 7]);
  t.same(ck.rng, { subset: { k0: 1, k1: 2, counter: 10 }, data: 14 });
  t.same(ck.optimScalars, { t: 7 });
  const side = JSON.parse(readFileSync(join(dir, 'last.json'), 'utf8'));
  t.equal(side.step, 7);
  t.equal(side.config.dataset, 'phantom');
  // restore into fresh tensors
  const w = tensor(new Float32Array(6), [2, 3]),
    b = tensor(new Float32Array(1), [1]);
  checkCompatible(
    'x',
    ck,
    model,
    [
      ['w', w],
      ['b', b],
    ],
    defaultConfig('phantom'),
  );
  restoreParams(ck, [
    ['w', w],
    ['b', b],
  ]);
  t.same([...w.dataSync()], [0, 2, 4, 6, 8, 10]);
  t.same(readdirSync(dir).sort(), ['last.json', 'last.safetensors'], 'no temporary files left');
});

t.test('a crash mid-write leaves the previous checkpoint readable', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ck-'));
  const base = join(dir, 'last');
  saveCheckpoint(base, input(3));
  // simulated crash after the bytes were written, before fsync/rename
  t.throws(
    () =>
      saveCheckpoint(base, input(4), {
        afterWrite: () => {
          throw new Error('power cut');
        },
      }),
    /power cut/,
  );
  t.equal(loadCheckpoint(base).step, 3, 'old checkpoint intact after a crash before rename');
  t.throws(
    () =>
      saveCheckpoint(base, input(5), {
        beforeRename: () => {
          throw new Error('killed');
        },
      }),
    /killed/,
  );
  t.equal(loadCheckpoint(base).step, 3);
  t.same(
    readdirSync(dir).filter((f) => f.includes('.tmp-')),
    [],
    'temporary file cleaned up',
  );
  // a real crash: a child process SIGKILLed while its write is stalled before the rename
  const script = `
    import { writeFileAtomic } from ${JSON.stringify(new URL('../src/checkpoint.ts', import.meta.url).href)};
    writeFileAtomic(${JSON.stringify(base + '.safetensors')}, new Uint8Array(1 << 20).fill(7), { beforeRename: () => process.kill(process.pid, 'SIGKILL') });
  `;
  const r = spawnSync(process.execPath, [...process.execArgv, '--input-type=module', '-e', script], {
    encoding: 'utf8',
  });
  t.equal(r.signal, 'SIGKILL', 'child was killed mid-write');
  t.equal(loadCheckpoint(base).step, 3, 'previous checkpoint still loads');
  t.ok(
    readdirSync(dir).some((f) => f.includes('.tmp-')),
    'the torn temporary file is left beside it, never over it',
  );
  writeFileAtomic(join(dir, 'x.json'), '{"a":1}');
  t.equal(readFileSync(join(dir, 'x.json'), 'utf8'), '{"a":1}');
});

t.test('a truncated checkpoint: clear error naming the file', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ck-'));
  const base = join(dir, 'last');
  saveCheckpoint(base, input(1));
  const full = readFileSync(base + '.safetensors').length;
  for (const len of [full - 3, 100, 5, 0]) {
    truncateSync(base + '.safetensors', len);
    let err: unknown = null;
    try {
      loadCheckpoint(base);
    } catch (e) {
      err = e;
    }
    t.ok(
      err instanceof CheckpointError &&
        err.message.includes(base + '.safetensors') &&
        /truncated|corrupt|not a valid/.test(err.message),
      `cut at ${len} bytes: ${String(err)}`,
    );
  }
  t.throws(() => loadCheckpoint(join(dir, 'nope')), /nope: does not exist \(nor does .*nope\.safetensors\)/);
  writeFileSync(join(dir, 'junk.safetensors'), 'hello world, not a checkpoint');
  t.throws(() => loadCheckpoint(join(dir, 'junk')), /junk\.safetensors/);
});

t.test('a checkpoint from another config: error names the mismatching keys', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ck-'));
  const base = join(dir, 'last');
  saveCheckpoint(base, input(1));
  const ck = loadCheckpoint(base);
  const other = defaultConfig('phantom');
  other.model.baseFeatures = 16;
  other.train.lr = 0.5;
  other.train.valEvery = 999; // allowed to differ
  const w = tensor(new Float32Array(8), [2, 4]);
  try {
    checkCompatible(
      base + '.safetensors',
      ck,
      { ...model, baseFeatures: 16 },
      [
        ['w', w],
        ['c', w],
      ],
      other,
    );
    t.fail('should throw');
  } catch (e) {
    t.ok(e instanceof CheckpointError);
    const err = e as CheckpointError;
    t.match(err.message, base + '.safetensors');
    t.same(
      err.keys.sort(),
      ['model.baseFeatures', 'model.baseFeatures', 'param/b', 'param/c', 'param/w', 'train.lr'].sort(),
    );
    t.match(err.message, /model\.baseFeatures: checkpoint 4, current 16/);
    t.match(err.message, /param\/w: checkpoint shape \[2, 3\], model \[2, 4\]/);
    t.notMatch(err.message, /valEvery/);
  }
  t.ok(existsSync(base + '.safetensors'));
});
