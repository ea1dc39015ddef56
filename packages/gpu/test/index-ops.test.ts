// indexSelect / indexAdd on WebGPU: against the float64 oracle (select) and
// a direct float64 sum (add), every dtype, repeated and missing indices,
// host index lists, bitwise agreement with the CPU's accumulation order,
// and the clamping of device-resident out-of-range indices.
import t from 'tap';
import fc from 'fast-check';
import * as C from '@largo/core';
import { engine, tensor, tidy, type DType } from '@largo/core';
import { refIndexSelect, refTensor, type RefTensor } from '@largo/core/reference';
import { GPU_RUNS, arbShape, check, compareTo, gpuOpts, leakFree, oracleCase, size, stored, take, wg } from './helpers.js';

const DTYPES: DType[] = ['float32', 'int32', 'uint8'];

/** Values of `dtype` for `n` elements. */
const arbValues = (n: number, dtype: DType) => dtype === 'float32'
  ? fc.array(fc.double({ min: -100, max: 100, noNaN: true }).map(Math.fround), { minLength: n, maxLength: n })
  : fc.array(fc.integer({ min: dtype === 'uint8' ? 0 : -1e6, max: dtype === 'uint8' ? 255 : 1e6 }), { minLength: n, maxLength: n });

const arbSelect = fc.constantFrom(...DTYPES).chain((dtype) => arbShape(1, 4, 5).chain((shape) => fc.tuple(
  fc.constant(dtype), fc.constant(shape), fc.integer({ min: 0, max: shape.length - 1 }), arbValues(size(shape), dtype),
).chain(([d, s, axis, v]) => fc.tuple(fc.constant(d), fc.constant(s), fc.constant(axis), fc.constant(v),
  fc.array(fc.integer({ min: 0, max: s[axis] - 1 }), { minLength: 0, maxLength: 7 }), fc.boolean()))));

t.test(wg(oracleCase('indexSelect')), gpuOpts(), async (t) => {
  await leakFree(t, async () => {
    await fc.assert(fc.asyncProperty(arbSelect, async ([dtype, shape, axis, values, idx, asList]) => {
      const y = tidy(() => C.indexSelect(tensor(values, shape, dtype), axis, asList ? idx : tensor(idx, [idx.length], 'int32')));
      if (y.dtype !== dtype) throw new Error(`indexSelect of ${dtype} gave ${y.dtype}`);
      const want = refIndexSelect(refTensor(shape, stored(values, dtype)), axis, idx);
      check(compareTo(await take(y), want, { rtol: 0, atol: 0 }), `indexSelect ${dtype} axis ${axis} of [${shape}] at [${idx}]`);
    }), { numRuns: GPU_RUNS });
    // A host list is still range-checked by the op; device indices are clamped into range by the WebGPU kernel.
    const x = tensor([[1, 2, 3], [4, 5, 6]]);
    t.throws(() => C.indexSelect(x, 1, [0, 3]), /out of range/, 'a host index list is checked');
    if (b.name === 'webgpu') {
      const y = tidy(() => C.indexSelect(x, 1, tensor([-2, 1, 7], [3], 'int32')));
      t.same((await take(y)).data, [1, 2, 3, 4, 5, 6], 'device indices are clamped into [0, n − 1]');
    }
    x.dispose();
  });
});

/** out = zeros(shape); out[.., idx[k], ..] += src[.., k, ..], in float64. */
function refIndexAdd(src: RefTensor, axis: number, idx: readonly number[], shape: readonly number[]): RefTensor {
  const out = refTensor(shape);
  const outer = size(shape.slice(0, axis)), inner = size(shape.slice(axis + 1)), n = shape[axis], K = idx.length;
  for (let a = 0; a < outer; a++) for (let k = 0; k < K; k++) for (let c = 0; c < inner; c++) {
    out.data[(a * n + idx[k]) * inner + c] += src.data[(a * K + k) * inner + c];
  }
  return out;
}

const arbAdd = fc.constantFrom(...DTYPES).chain((dtype) => arbShape(1, 4, 5).chain((shape) =>
  fc.tuple(fc.constant(shape), fc.integer({ min: 0, max: shape.length - 1 })).chain(([s, axis]) =>
    fc.array(fc.integer({ min: 0, max: s[axis] - 1 }), { minLength: 0, maxLength: 8 }).chain((idx) => {
      const srcShape = s.map((d, i) => (i === axis ? idx.length : d));
      return fc.tuple(fc.constant(dtype), fc.constant(s), fc.constant(axis), fc.constant(idx), fc.constant(srcShape), arbValues(size(srcShape), dtype));
    }))));

t.test(wg(oracleCase('indexAdd')), gpuOpts(), async (t) => {
  await leakFree(t, async () => {
    await fc.assert(fc.asyncProperty(arbAdd, async ([dtype, shape, axis, idx, srcShape, values]) => {
      const y = tidy(() => C.indexAdd(tensor(values, srcShape, dtype), axis, tensor(idx, [idx.length], 'int32'), shape));
      if (y.dtype !== dtype) throw new Error(`indexAdd of ${dtype} gave ${y.dtype}`);
      const r = refIndexAdd(refTensor(srcShape, stored(values, dtype)), axis, idx, shape);
      // Integers wrap like their typed arrays; float32 adds in the CPU's order (compared bitwise below).
      const want = dtype === 'float32' ? r : refTensor(r.shape, stored(r.data, dtype));
      const tol = dtype === 'float32' ? { rtol: 1e-6, atol: 1e-4 } : { rtol: 0, atol: 0 };
      check(compareTo(await take(y), want, tol), `indexAdd ${dtype} axis ${axis} into [${shape}] at [${idx}]`);
    }), { numRuns: GPU_RUNS });
  });
});

t.test(wg(oracleCase('indexAdd') + ': bitwise the cpu result (same accumulation order), clamped device indices on webgpu'), gpuOpts(), async (t) => {
  await leakFree(t, async () => {
    const src = Float32Array.from({ length: 3 * 9 * 5 }, (_, i) => Math.fround(Math.sin(i) * 1e3 + 1e-3 * i));
    const idx = [4, 0, 4, 2, 4, 0, 1, 4, 3];
    const run = () => tidy(() => C.indexAdd(tensor(src, [3, 9, 5]), 1, tensor(idx, [9], 'int32'), [3, 6, 5]));
    const here = await take(run());
    const prev = engine().backend.name;
    C.setBackend('cpu');
    const cpu = await take(run());
    C.setBackend(prev);
    t.same(here.data, cpu.data, `float32 sums on ${b.name} are bitwise the cpu sums`);
    if (b.name === 'webgpu') {
      const y = tidy(() => C.indexAdd(tensor([1, 2, 3, 4], [4]), 0, tensor([-1, 9, 1, 1], [4], 'int32'), [3]));
      t.same((await take(y)).data, [1, 7, 2], 'out-of-range device indices are clamped (−1 → 0, 9 → 2)');
    }
  });
});
