// WebGPU layout kernels against the float64 oracle: permute, slice, pad,
// concat, broadcastTo over random shapes, for every dtype (they move words).
import t from 'tap';
import fc from 'fast-check';
import * as C from '@largo/core';
import { tensor, tidy, type DType } from '@largo/core';
import { refBroadcastTo, refConcat, refPad, refPermute, refSlice, refTensor } from '@largo/core/reference';
import { GPU_RUNS, arbBroadcastable, arbShape, check, compareTo, gpuOpts, leakFree, oracleCase, size, stored, take, wg } from './helpers.js';

const DTYPES: DType[] = ['float32', 'int32', 'uint8'];
/** Values exact in every dtype, NaN for floats. */
const vals = (n: number, dtype: DType) => fc.array(
  dtype === 'float32' ? fc.oneof(fc.integer({ min: -1000, max: 1000 }).map((v) => v / 8), fc.constant(NaN)) : fc.integer({ min: 0, max: 255 }),
  { minLength: n, maxLength: n });
const exact = { rtol: 0, atol: 0 };

t.test(wg(oracleCase('permute')), gpuOpts(), async (t) => {
  await leakFree(t, async () => {
    await fc.assert(fc.asyncProperty(
      arbShape(0, 5, 5).chain((s) => fc.tuple(fc.constant(s), fc.shuffledSubarray(s.map((_, i) => i), { minLength: s.length, maxLength: s.length }),
        fc.constantFrom(...DTYPES)).chain(([s, p, d]) => fc.tuple(fc.constant(s), fc.constant(p), fc.constant(d), vals(size(s), d)))),
      async ([shape, perm, dtype, values]) => {
        const y = tidy(() => C.permute(tensor(values, shape, dtype), perm));
        check(compareTo(await take(y), refPermute(refTensor(shape, stored(values, dtype)), perm), exact), `permute [${shape}] by [${perm}] ${dtype}`);
      }), { numRuns: GPU_RUNS });
  });
});

t.test(wg(oracleCase('slice')), gpuOpts(), async (t) => {
  await leakFree(t, async () => {
    await fc.assert(fc.asyncProperty(
      arbShape(0, 5, 6).chain((s) => fc.tuple(fc.constant(s),
        fc.tuple(...s.map((d) => fc.integer({ min: 0, max: d }).chain((b) => fc.tuple(fc.constant(b), fc.integer({ min: 0, max: d - b }))))),
        fc.constantFrom(...DTYPES)).chain(([s, box, d]) => fc.tuple(fc.constant(s), fc.constant(box as [number, number][]), fc.constant(d), vals(size(s), d)))),
      async ([shape, box, dtype, values]) => {
        const begin = box.map((b) => b[0]), sz = box.map((b) => b[1]);
        const y = tidy(() => C.slice(tensor(values, shape, dtype), begin, sz));
        check(compareTo(await take(y), refSlice(refTensor(shape, stored(values, dtype)), begin, sz), exact), `slice [${shape}] at [${begin}] size [${sz}]`);
      }), { numRuns: GPU_RUNS });
  });
});

t.test(wg(oracleCase('pad')), gpuOpts(), async (t) => {
  await leakFree(t, async () => {
    await fc.assert(fc.asyncProperty(
      arbShape(0, 4, 4).chain((s) => fc.tuple(fc.constant(s),
        fc.tuple(...s.map(() => fc.tuple(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 3 })))),
        fc.constantFrom(...DTYPES), fc.constantFrom(0, -1.5, 7))
        .chain(([s, p, d, v]) => fc.tuple(fc.constant(s), fc.constant(p as [number, number][]), fc.constant(d), fc.constant(v), vals(size(s), d)))),
      async ([shape, pads, dtype, value, values]) => {
        const y = tidy(() => C.pad(tensor(values, shape, dtype), pads, value));
        const r = refPad(refTensor(shape, stored(values, dtype)), pads, value);
        check(compareTo(await take(y), refTensor(r.shape, stored(r.data, dtype)), exact), `pad [${shape}] by ${JSON.stringify(pads)} with ${value} (${dtype})`);
      }), { numRuns: GPU_RUNS });
  });
});

t.test(wg(oracleCase('concat')), gpuOpts(), async (t) => {
  await leakFree(t, async () => {
    await fc.assert(fc.asyncProperty(
      arbShape(1, 4, 4).chain((s) => fc.tuple(fc.constant(s), fc.integer({ min: 0, max: s.length - 1 }), fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 1, maxLength: 4 }), fc.constantFrom(...DTYPES)))
        .chain(([s, axis, lens, d]) => {
          const shapes = lens.map((l) => s.map((v, i) => (i === axis ? l : v)));
          return fc.tuple(fc.constant(shapes), fc.constant(axis), fc.constant(d), fc.tuple(...shapes.map((q) => vals(size(q), d))));
        }),
      async ([shapes, axis, dtype, values]) => {
        const y = tidy(() => C.concat(shapes.map((s, i) => tensor(values[i], s, dtype)), axis));
        const want = refConcat(shapes.map((s, i) => refTensor(s, stored(values[i], dtype))), axis);
        check(compareTo(await take(y), want, exact), `concat of ${JSON.stringify(shapes)} along ${axis}`);
      }), { numRuns: GPU_RUNS });
  });
});

t.test(wg(oracleCase('broadcastTo')), gpuOpts(), async (t) => {
  await leakFree(t, async () => {
    await fc.assert(fc.asyncProperty(
      arbShape(0, 5, 4).chain((out) => fc.tuple(fc.constant(out), arbBroadcastable(out), fc.constantFrom(...DTYPES)))
        .chain(([out, s, d]) => fc.tuple(fc.constant(out), fc.constant(s), fc.constant(d), vals(size(s), d))),
      async ([out, shape, dtype, values]) => {
        const y = tidy(() => C.broadcastTo(tensor(values, shape, dtype), out));
        check(compareTo(await take(y), refBroadcastTo(refTensor(shape, stored(values, dtype)), out), exact), `broadcast [${shape}] to [${out}]`);
      }), { numRuns: GPU_RUNS });
  });
});

t.test(wg('layout ops on larger tensors'), gpuOpts(), async (t) => {
  // A 2-d grid (more than 65535 workgroups would be needed at 1 element per thread only beyond 16M; here just many groups).
  const n = [3, 70, 500];
  const v = Float32Array.from({ length: size(n) }, (_, i) => i % 977);
  const x = tensor(v, n);
  const y = C.permute(x, [2, 0, 1]);
  check(compareTo(await take(y), refPermute(refTensor(n, v), [2, 0, 1]), exact), 'permute [3, 70, 500]');
  const s = C.slice(x, [1, 10, 0], [2, 50, 500]);
  check(compareTo(await take(s), refSlice(refTensor(n, v), [1, 10, 0], [2, 50, 500]), exact), 'slice of whole rows (a buffer copy per band)');
  x.dispose();
});
