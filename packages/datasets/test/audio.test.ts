import t, { type Test } from 'tap';
import fc from 'fast-check';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { parseIdx, readMnistImages, readMnistLabels, IdxError } from '../src/idx.js';
import { decodeWav, encodeWav, readWav, WavError } from '../src/wav.js';
import { fft, mfcc, Mfcc, melFilterbank, dctBasis, hzToMelHtk, melToHzHtk } from '../src/mfcc.js';
import { listFsdd, pairAvMnist, loadAvMnist, standardizeAudio, avMnistTensors } from '../src/avmnist.js';
import { SKIP_SHARED, shared, tempDir } from './helpers.js';

const here = dirname(fileURLToPath(import.meta.url));

t.test('MNIST t10k: 10,000 images, first labels 7 2 1 0 4', { skip: SKIP_SHARED }, async (t) => {
  const img = readMnistImages(shared('mnist', 't10k-images-idx3-ubyte.gz'));
  t.same([img.count, img.rows, img.cols], [10000, 28, 28]);
  t.equal(img.pixels.length, 10000 * 784);
  const labels = readMnistLabels(shared('mnist', 't10k-labels-idx1-ubyte.gz'));
  t.equal(labels.length, 10000);
  t.same([...labels.subarray(0, 5)], [7, 2, 1, 0, 4]);
  t.throws(
    () => readMnistLabels(shared('mnist', 't10k-images-idx3-ubyte.gz')),
    /wrong magic 0x00000803 for MNIST labels \(expected 0x00000801\)/,
  );
  t.throws(
    () => readMnistImages(shared('mnist', 't10k-labels-idx1-ubyte.gz')),
    /t10k-labels-idx1-ubyte\.gz: wrong magic 0x00000801/,
  );
});

t.test('IDX parsing: plain and gzipped, sizes validated', async (t) => {
  const mk = (magic: number[], dims: number[], body: number[]) => {
    const b = Buffer.alloc(4 + 4 * dims.length + body.length);
    b.set(magic, 0);
    dims.forEach((d, i) => b.writeUInt32BE(d, 4 + 4 * i));
    b.set(body, 4 + 4 * dims.length);
    return b;
  };
  const ok = mk([0, 0, 8, 3], [2, 1, 2], [1, 2, 3, 4]);
  t.same(parseIdx(ok), { magic: 0x803, shape: [2, 1, 2], data: Uint8Array.from([1, 2, 3, 4]) });
  t.same(parseIdx(gzipSync(ok)).data, Uint8Array.from([1, 2, 3, 4]));
  const i16 = mk([0, 0, 0x0b, 1], [2], [0xff, 0xfe, 0x01, 0x00]);
  t.same([...parseIdx(i16).data], [-2, 256], 'big-endian int16');
  t.throws(
    () => parseIdx(ok.subarray(0, ok.length - 1), 'x.idx'),
    /x\.idx: truncated: shape \[2, 1, 2\] needs 4 data bytes, found 3/,
  );
  t.throws(() => parseIdx(Buffer.concat([ok, Buffer.from([9])]), 'x.idx'), /size mismatch/);
  t.throws(() => parseIdx(mk([1, 2, 8, 1], [1], [0]), 'x.idx'), /x\.idx: not an IDX file: magic 0x01020801/);
  t.throws(() => parseIdx(gzipSync(ok).subarray(0, 10), 'x.gz'), /x\.gz: corrupt or truncated gzip/);
  t.throws(() => parseIdx(Buffer.from([0, 0]), 'x'), /truncated/);
  const dir = tempDir(t);
  const p = join(dir, 'bad-labels-idx1-ubyte');
  writeFileSync(p, mk([0, 0, 8, 1], [2], [3, 12]));
  t.throws(() => readMnistLabels(p), /label 12 at index 1 is not a digit/);
});

t.test('WAV: every encoding round-trips; stereo mixes to mono', async (t) => {
  fc.assert(
    fc.property(
      fc.constantFrom<[number, boolean]>([8, false], [16, false], [24, false], [32, false], [32, true], [64, true]),
      fc.integer({ min: 1, max: 3 }),
      fc.integer({ min: 0, max: 50 }),
      fc.integer({ min: 1, max: 48000 }),
      fc.infiniteStream(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 })),
      ([bits, float], nch, n, rate, ints) => {
        const it = ints[Symbol.iterator]();
        // values on each format's grid, so decoding is exact
        const q = float ? 2 ** 31 : 2 ** (bits - 1);
        const channels = Array.from({ length: nch }, () =>
          Float32Array.from({ length: n }, () => {
            const v = it.next().value as number;
            return float ? Math.fround(v / 2 ** 31) : Math.trunc((v / 2 ** 31) * q) / q;
          }),
        );
        const w = decodeWav(encodeWav(channels, rate, { bits: bits as 8 | 16 | 24 | 32, float }));
        if (
          w.sampleRate !== rate ||
          w.bitsPerSample !== bits ||
          w.format !== (float ? 'float' : 'pcm') ||
          w.channels.length !== nch
        )
          throw new Error('header');
        for (let c = 0; c < nch; c++)
          for (let i = 0; i < n; i++)
            if (w.channels[c]![i] !== channels[c]![i])
              throw new Error(`sample ${c}/${i}: ${w.channels[c]![i]} vs ${channels[c]![i]}`);
        for (let i = 0; i < n; i++) {
          const m = channels.reduce((s, ch) => s + ch[i]!, 0) / nch;
          if (Math.abs(w.mono[i]! - m) > 1e-6) throw new Error('mono');
        }
      },
    ),
    { numRuns: 200 },
  );
  t.pass('ok');
});

t.test('WAV errors name the file', async (t) => {
  const good = Buffer.from(encodeWav([Float32Array.from([0, 0.5, -0.5])], 8000));
  const cases: [string, Buffer, RegExp][] = [
    ['short.wav', good.subarray(0, 8), /truncated: 8 bytes/],
    ['notriff.wav', Buffer.concat([Buffer.from('RIFX'), good.subarray(4)]), /not a RIFF\/WAVE file/],
    ['cut.wav', good.subarray(0, good.length - 2), /truncated: the 'data' chunk declares 6 bytes but only 4 remain/],
    ['nodata.wav', good.subarray(0, 36), /no 'data' chunk/],
    [
      'adpcm.wav',
      (() => {
        const b = Buffer.from(good);
        b.writeUInt16LE(2, 20);
        return b;
      })(),
      /unsupported encoding: format tag 2 with 16 bits/,
    ],
    [
      'align.wav',
      (() => {
        const b = Buffer.from(good);
        b.writeUInt16LE(4, 32);
        return b;
      })(),
      /block align 4 disagrees/,
    ],
    ['nofmt.wav', Buffer.concat([good.subarray(0, 12), good.subarray(36)]), /no 'fmt ' chunk/],
  ];
  const dir = tempDir(t);
  for (const [name, bytes, re] of cases) {
    const p = join(dir, name);
    writeFileSync(p, bytes);
    t.throws(() => readWav(p), re, name);
    try {
      readWav(p);
    } catch (e) {
      t.type(e, WavError);
      t.ok((e as Error).message.startsWith(p + ': '), `${name} names the file`);
    }
  }
  // unknown chunks (odd sized, padded) before data are skipped
  const withList = Buffer.concat([
    good.subarray(0, 36),
    Buffer.from('LIST'),
    Buffer.from([3, 0, 0, 0, 1, 2, 3, 0]),
    good.subarray(36),
  ]);
  t.same([...decodeWav(withList).mono], [0, 0.5, -0.5]);
  // WAVE_FORMAT_EXTENSIBLE
  const ext = Buffer.alloc(68);
  ext.write('RIFF', 0);
  ext.writeUInt32LE(60, 4);
  ext.write('WAVE', 8);
  ext.write('fmt ', 12);
  ext.writeUInt32LE(40, 16);
  ext.writeUInt16LE(0xfffe, 20);
  ext.writeUInt16LE(1, 22);
  ext.writeUInt32LE(8000, 24);
  ext.writeUInt32LE(16000, 28);
  ext.writeUInt16LE(2, 32);
  ext.writeUInt16LE(16, 34);
  ext.writeUInt16LE(22, 36);
  ext.writeUInt16LE(16, 38);
  ext.writeUInt16LE(1, 44);
  ext.write('data', 60);
  ext.writeUInt32LE(0, 64);
  t.equal(decodeWav(ext).format, 'pcm');
});

t.test('all 3,000 FSDD recordings decode', { skip: SKIP_SHARED }, async (t) => {
  const recs = listFsdd(shared('fsdd', 'recordings'));
  t.equal(recs.length, 3000);
  let bad = 0;
  for (const r of recs) {
    const w = readWav(r.file);
    if (w.sampleRate !== 8000 || w.channels.length !== 1 || w.bitsPerSample !== 16 || w.mono.length < 500) bad++;
  }
  t.equal(bad, 0, 'all mono 8 kHz 16-bit');
  t.same(new Set(recs.map((r) => r.speaker)).size, 6);
  t.same(recs.filter((r) => r.take < 15).length, 900);
});

t.test('FFT matches a direct DFT', async (t) => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 7 }),
      fc.infiniteStream(fc.double({ min: -1, max: 1, noNaN: true })),
      (lg, s) => {
        const n = 1 << lg;
        const it = s[Symbol.iterator]();
        const re = Float64Array.from({ length: n }, () => it.next().value as number);
        const im = Float64Array.from({ length: n }, () => it.next().value as number);
        const [r0, i0] = [re.slice(), im.slice()];
        fft(re, im);
        for (let k = 0; k < n; k++) {
          let sr = 0,
            si = 0;
          for (let j = 0; j < n; j++) {
            const a = (-2 * Math.PI * j * k) / n;
            sr += r0[j]! * Math.cos(a) - i0[j]! * Math.sin(a);
            si += r0[j]! * Math.sin(a) + i0[j]! * Math.cos(a);
          }
          if (Math.abs(sr - re[k]!) > 1e-9 * n || Math.abs(si - im[k]!) > 1e-9 * n) throw new Error(`bin ${k} of ${n}`);
        }
      },
    ),
    { numRuns: 100 },
  );
  t.throws(() => fft(new Float64Array(6), new Float64Array(6)), /not a power of two/);
});

t.test('mel filterbank and DCT basics', async (t) => {
  t.ok(Math.abs(melToHzHtk(hzToMelHtk(1234.5)) - 1234.5) < 1e-9);
  t.ok(Math.abs(hzToMelHtk(700) - 2595 * Math.log10(2)) < 1e-12);
  const fb = melFilterbank(512, 40, 8000);
  t.equal(fb.length, 257);
  for (let m = 0; m < 40; m++) t.ok(Math.max(...fb.map((r) => r[m]!)) > 0.3, `band ${m} not empty`);
  const D = dctBasis(40, 40);
  for (let a = 0; a < 40; a++)
    for (let b = a; b < 40; b++) {
      const dot = D[a]!.reduce((s, v, i) => s + v * D[b]![i]!, 0);
      if (Math.abs(dot - (a === b ? 1 : 0)) > 1e-12) t.fail(`DCT rows ${a},${b} not orthonormal`);
    }
  t.pass('DCT orthonormal');
  const m = new Mfcc();
  t.equal(m.frameCount(100000), 20);
  t.equal(new Mfcc({ frames: null }).frameCount(4000), 1 + Math.floor(4000 / 256));
  t.same(mfcc(new Float32Array(3000)).shape, [20, 20]);
  t.throws(() => new Mfcc({ nFft: 500 }), /power of two/);
  t.throws(() => new Mfcc({ nMfcc: 50 }), /nMfcc 50 > nMels 40/);
});

interface Fixture {
  torchaudio: string;
  cases: { file: string | null; frames: number | null; preEmphasis: number; shape: number[]; mfcc: number[] }[];
}
const fixture = JSON.parse(readFileSync(join(here, 'fixtures', 'mfcc-torchaudio.json'), 'utf8')) as Fixture;

/**
 * Tolerance against torchaudio (float64 reference, see scripts/make-mfcc-fixture.py):
 * |ours − ref| ≤ 1e-6·(1 + |ref|). Our output is float32, whose rounding alone
 * is ≈ 6e-8 relative; the observed worst case is ≈ 5e-8.
 */
const TOL = 1e-6;
function compare(t: Test, got: { data: Float32Array; shape: number[] }, want: Fixture['cases'][number], name: string) {
  t.same(got.shape, want.shape, `${name} shape`);
  let worst = 0;
  for (let i = 0; i < want.mfcc.length; i++)
    worst = Math.max(worst, Math.abs(got.data[i]! - want.mfcc[i]!) / (1 + Math.abs(want.mfcc[i]!)));
  t.ok(worst <= TOL, `${name}: worst relative difference ${worst.toExponential(2)} ≤ ${TOL}`);
}

t.test(`MFCC matches torchaudio ${fixture.torchaudio} (synthetic chirp)`, async (t) => {
  const c = fixture.cases.find((x) => x.file === null)!;
  const x = new Float64Array(4000);
  for (let n = 0; n < 4000; n++)
    x[n] =
      0.5 * Math.sin((2 * Math.PI * (200 + (1500 * n) / 4000) * n) / 8000) +
      0.1 * Math.sin((2 * Math.PI * 3000 * n) / 8000);
  compare(t, mfcc(x, { frames: c.frames, preEmphasis: c.preEmphasis }), c, 'chirp');
});

t.test(`MFCC matches torchaudio ${fixture.torchaudio} on FSDD recordings`, { skip: SKIP_SHARED }, async (t) => {
  for (const c of fixture.cases.filter((x) => x.file !== null)) {
    const w = readWav(shared(c.file!));
    compare(
      t,
      mfcc(w.mono, { frames: c.frames, preEmphasis: c.preEmphasis }),
      c,
      `${c.file} (frames ${c.frames}, pre-emphasis ${c.preEmphasis})`,
    );
  }
});

t.test('avMNIST pairing: 2,100 / 900, same digits, no image reused, seeded', { skip: SKIP_SHARED }, async (t) => {
  const labels = readMnistLabels(shared('mnist', 't10k-labels-idx1-ubyte.gz'));
  const recs = listFsdd(shared('fsdd', 'recordings'));
  const pairs = pairAvMnist(recs, labels, { seed: 0 });
  t.equal(pairs.filter((p) => p.split === 'train').length, 2100);
  t.equal(pairs.filter((p) => p.split === 'test').length, 900);
  t.ok(
    pairs.every((p) => labels[p.image] === p.recording.digit),
    'image digit = spoken digit',
  );
  t.ok(
    pairs.every((p) => p.recording.take < 15 === (p.split === 'test')),
    'take < 15 is test',
  );
  t.equal(new Set(pairs.map((p) => p.image)).size, 3000, 'each image used once');
  const key = (ps: typeof pairs) => JSON.stringify(ps.map((p) => [p.recording.file, p.image, p.split]));
  t.equal(key(pairAvMnist(recs, labels, { seed: 0 })), key(pairs), 'deterministic');
  t.not(key(pairAvMnist(recs, labels, { seed: 1 })), key(pairs), 'seed changes pairing');
  t.throws(() => pairAvMnist(recs, labels.subarray(0, 500)), /digit \d has 300 recordings but only \d+ MNIST images/);
});

t.test('avMNIST loader end to end (test split features)', { skip: SKIP_SHARED }, async (t) => {
  const av = loadAvMnist({
    mnistImages: shared('mnist', 't10k-images-idx3-ubyte.gz'),
    mnistLabels: shared('mnist', 't10k-labels-idx1-ubyte.gz'),
    fsddDir: shared('fsdd', 'recordings'),
    seed: 0,
  });
  t.equal(av.train.count, 2100);
  t.equal(av.test.count, 900);
  t.same(av.test.imageShape, [900, 28, 28]);
  t.same(av.test.audioShape, [900, 20, 20]);
  t.ok(av.test.images.every((v) => v >= 0 && v <= 1));
  t.ok(av.train.audio.every(Number.isFinite));
  // audio features equal a direct MFCC of the same file
  const i = 17;
  t.same(av.test.audio.subarray(i * 400, (i + 1) * 400), mfcc(readWav(av.test.recordings[i]!).mono).data);
  const { mean, std } = standardizeAudio(av.train, av.test);
  t.equal(mean.length, 20);
  t.ok(std.every((s) => s > 0));
  const tt = avMnistTensors(av.test);
  t.same(tt.image.shape, [900, 1, 28, 28]);
  t.same(tt.audio.shape, [900, 1, 20, 20]);
  t.equal(tt.label.dtype, 'int32');
  tt.image.dispose();
  tt.audio.dispose();
  tt.label.dispose();
});
