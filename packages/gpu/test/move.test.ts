// Engine.moveToBackend: a tensor built on the CPU moves to the GPU in place;
// its views and every holder of the tensor follow, the CPU storage is freed.
import t from 'tap';
import { engine, reshape, setBackend, tensor, add } from '@largo/core';
import { backend, gpuOpts, wg } from './helpers.js';

t.test(wg('moveToBackend: values, views and buffers'), gpuOpts(), async (t) => {
  const e = engine();
  const cpu = e.findBackend('cpu');
  setBackend('cpu');
  const cpuBefore = cpu.liveBuffers(),
    gpuBefore = backend!.liveBuffers();
  const x = tensor(Float32Array.from([1, 2, 3, 4, 5, 6]), [2, 3]);
  const v = reshape(x, [3, 2]);
  t.equal(cpu.liveBuffers(), cpuBefore + 1);
  e.moveToBackend(x, backend!);
  t.equal(x.backend.name, 'webgpu');
  t.equal(v.backend.name, 'webgpu', 'the view follows (shared storage)');
  t.equal(cpu.liveBuffers(), cpuBefore, 'the CPU array is freed');
  t.equal(backend!.liveBuffers(), gpuBefore + 1, 'one GPU buffer');
  t.same(Array.from(await v.data()), [1, 2, 3, 4, 5, 6]);
  setBackend('webgpu');
  const y = add(v, 1);
  t.same(Array.from(await y.data()), [2, 3, 4, 5, 6, 7], 'usable by GPU kernels');
  e.moveToBackend(x, backend!); // already there: no-op
  t.equal(backend!.liveBuffers(), gpuBefore + 2);
  for (const q of [x, v, y]) q.dispose();
  t.equal(backend!.liveBuffers(), gpuBefore, 'freed like any GPU tensor');
  // a GPU tensor cannot move back synchronously
  const g = tensor(Float32Array.from([1]), [1]);
  t.throws(() => e.moveToBackend(g, cpu), /synchronous reads are not possible/);
  t.equal(g.backend.name, 'webgpu', 'a failed move leaves the tensor where it was');
  g.dispose();
});
