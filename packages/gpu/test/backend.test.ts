// The WebGPU backend itself: registration, device limits, buffer pool and
// live-buffer counter, dtype storage, ordering of writes against batched
// kernels, uniform arena overflow, and the clear errors.
import t from 'tap';
import * as C from '@largo/core';
import { engine, tensor, tidy } from '@largo/core';
import { bucketBytes, initWebGpu, webGpuUnavailableReason, type GpuData } from '@largo/gpu';
import { requirement } from '@largo/test-support';

// Before anything selects a backend: registering WebGPU must not change the default.
const be = await initWebGpu({ quiet: true });
const skip = requirement('WEBGPU', be ? false : `no WebGPU adapter: ${webGpuUnavailableReason()}`);
const defaultName = engine().backend.name;
if (be) C.setBackend('webgpu');
const opts = () => ({ skip });

t.test('initWebGpu registers below the cpu backend', opts(), async (t) => {
  t.equal(defaultName, 'cpu', 'cpu stays the default backend');
  t.ok(engine().backendNames().includes('webgpu'), 'webgpu is registered');
  t.equal(await initWebGpu(), be, 'a second call returns the same backend');
  t.equal(engine().findBackend('webgpu'), be);
  t.comment(`adapter: ${JSON.stringify(be!.info)}`);
  t.comment(`limits: ${JSON.stringify(be!.limits)}`);
});

t.test('the device has the adapter limits, not the compatibility defaults', opts(), async (t) => {
  const a = be!.adapter!.limits,
    d = be!.device.limits;
  for (const k of [
    'maxComputeInvocationsPerWorkgroup',
    'maxComputeWorkgroupSizeX',
    'maxStorageBuffersPerShaderStage',
    'maxStorageBufferBindingSize',
    'maxBufferSize',
  ] as const) {
    t.equal(d[k], a[k], `${k} = ${a[k]}`);
  }
  t.notOk(
    'gpu' in ((globalThis as { navigator?: object }).navigator ?? {}) && !(globalThis as { window?: unknown }).window,
    'no GPU object on globalThis.navigator in Node',
  );
});

t.test('buffer pool: power-of-two buckets, reuse on free, constant live count', opts(), async (t) => {
  t.equal(bucketBytes(1), 256);
  t.equal(bucketBytes(256), 256);
  t.equal(bucketBytes(257), 512);
  t.equal(bucketBytes(5000), 8192);
  const live0 = be!.liveBuffers();
  const counts: number[] = [];
  for (let i = 0; i < 6; i++) {
    const y = tidy(() => C.exp(C.mul(tensor(new Float32Array(1000).fill(i / 10), [10, 100]), 2)));
    const v = await y.data();
    t.ok(Math.abs(v[0] - Math.exp(i / 5)) < 1e-5, `value ${i}`);
    y.dispose();
    t.equal(be!.liveBuffers(), live0, `cycle ${i}: live buffers back to ${live0}`);
    counts.push(be!.stats.buffersCreated);
  }
  t.equal(counts[5], counts[1], 'after the first cycle every buffer comes from the pool');
  // Raw alloc/free through the Backend interface.
  const ids = [1, 100, 1000, 64, 65].map((n) => be!.alloc('float32', n));
  t.equal(be!.liveBuffers(), live0 + 5);
  t.equal((ids[1] as GpuData).buffer.size, 512);
  for (const id of ids) be!.free(id);
  be!.free(ids[0]);
  t.equal(be!.liveBuffers(), live0, 'free is idempotent per storage');
  const created = be!.stats.buffersCreated;
  const again = [1, 100, 1000, 64, 65].map((n) => be!.alloc('float32', n));
  t.equal(be!.stats.buffersCreated, created, 'same buckets reuse the freed buffers');
  for (const id of again) be!.free(id);
  t.ok(be!.pooledByteCount() > 0, 'freed buffers are parked in the pool');
  be!.dispose();
  t.equal(be!.pooledByteCount(), 0, 'dispose() empties the pool');
  t.equal(be!.liveBuffers(), live0);
});

t.test('synchronous reads give a clear error', opts(), async (t) => {
  const x = tensor([1, 2, 3]);
  t.throws(() => x.dataSync(), { message: /webgpu: .*use `await t\.data\(\)`/ });
  t.throws(() => C.sum(x).item(), { message: /webgpu: .*await t\.data\(\)/ });
  t.same(Array.from(await x.data()), [1, 2, 3], 'await t.data() works');
  x.dispose();
  t.equal(C.memory().tensors, 1, 'only the sum result is left (disposed next)');
});

t.test('dtypes: float32, int32 and uint8 (as u32) round-trip; float64 is refused', opts(), async (t) => {
  const f = tensor([1.5, -2.25, NaN, Infinity]),
    i = tensor([-2147483648, 2147483647, 0, -1], [4], 'int32'),
    u = tensor([0, 1, 254, 255], [4], 'uint8');
  t.same(Array.from(await f.data()).map(String), ['1.5', '-2.25', 'NaN', 'Infinity']);
  const iv = await i.data(),
    uv = await u.data();
  t.ok(iv instanceof Int32Array && uv instanceof Uint8Array, 'typed arrays of the tensor dtype');
  t.same(Array.from(iv), [-2147483648, 2147483647, 0, -1]);
  t.same(Array.from(uv), [0, 1, 254, 255]);
  t.throws(() => tensor([1, 2], [2], 'float64'), {
    message: /float64 is not supported|dtype float64 is not supported/,
  });
  const e = C.zeros([0, 3]);
  t.same(Array.from(await C.add(e, 1).data()), [], 'empty tensors work');
  for (const q of [f, i, u, e]) q.dispose();
});

t.test('a write into a recycled buffer waits for the kernels that read it', opts(), async (t) => {
  be!.maxBatch = 1000;
  const a = tensor([1, 2, 3, 4]);
  const y = C.mul(a, 10); // encoded, not submitted
  const aBuffer = (a.dataId as GpuData).buffer;
  a.dispose(); // a's buffer goes back to the pool…
  const s0 = be!.stats.submits;
  const b = tensor([100, 200, 300, 400]); // …and the write must not overtake mul
  t.equal(be!.stats.submits, s0, 'no flush was needed');
  t.not((b.dataId as GpuData).buffer, aBuffer, 'the write went to a buffer no pending kernel uses');
  t.same(Array.from(await y.data()), [10, 20, 30, 40]);
  t.same(Array.from(await b.data()), [100, 200, 300, 400]);
  y.dispose();
  b.dispose();
  be!.maxBatch = 64;
});

t.test('batched submission: one submit per read or per maxBatch dispatches', opts(), async (t) => {
  const x = tensor(new Float32Array(64).fill(1));
  await x.data();
  const s0 = be!.stats.submits;
  let y = C.add(x, 1);
  for (let k = 0; k < 9; k++) {
    const z = C.add(y, 1);
    y.dispose();
    y = z;
  }
  t.equal(be!.stats.submits - s0, 0, '10 kernels with scalar uploads, no submit before the read');
  t.equal((await y.data())[0], 11);
  y.dispose();
  // More dispatches than the uniform arena holds in one batch.
  be!.maxBatch = 10000;
  y = C.add(x, 0);
  for (let k = 0; k < 400; k++) {
    const z = C.add(y, x);
    y.dispose();
    y = z;
  }
  t.equal((await y.data())[63], 401, '400 chained kernels in one batch (arena flushes on overflow)');
  be!.maxBatch = 64;
  y.dispose();
  x.dispose();
});

t.test('copy and assign run in order with the kernels', opts(), async (t) => {
  const p = tensor([1, 2, 3]);
  const q = C.mul(p, 2);
  engine().assign(p, q);
  const r = C.add(p, 1);
  t.same(Array.from(await r.data()), [3, 5, 7]);
  for (const v of [p, q, r]) v.dispose();
});

t.test('GPU validation errors surface on the next read', opts(), async (t) => {
  const x = tensor([1, 2]);
  be!.dispatch({
    key: 'broken-shader',
    wgsl: () => 'this is not wgsl',
    inputs: [],
    outputs: [x.dataId as GpuData],
    workgroups: [1],
  });
  await t.rejects(x.data(), { message: /webgpu: / });
  x.dispose();
});
