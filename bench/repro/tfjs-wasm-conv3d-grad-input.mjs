// tfjs-backend-wasm 4.22's Conv3DBackpropInputV2 (tf.conv3dTranspose, and the
// input gradient of tf.conv3d) disagrees with tfjs-backend-cpu, PyTorch and
// LARGO.ts as soon as the depth axis has more than one voxel: with a 1×1×1
// filter only the first depth slice of dx is filled, the rest is zero.
// Found by compare.mjs's agreement check; this is the smallest case.
//   node bench/repro/tfjs-wasm-conv3d-grad-input.mjs
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';

await tf.setBackend('cpu');
const xShape = [1, 2, 2, 2, 1]; // NDHWC: depth 2, height 2, width 2, one channel
const w = [[[[[1]]]]]; // 1×1×1 filter, one in, one out channel: dx should equal dy
const dy = [1, 2, 3, 4, 5, 6, 7, 8];
const out = {};
for (const backend of ['cpu', 'wasm']) {
  await tf.setBackend(backend);
  out[backend] = Array.from(tf.conv3dTranspose(tf.tensor(dy, xShape), tf.tensor(w), xShape, 1, 'valid').dataSync());
  console.log(`${backend.padEnd(4)} dx = [${out[backend].join(', ')}]`);
}
const same = out.cpu.every((v, i) => v === out.wasm[i]);
console.log(same ? 'agree' : 'DISAGREE (expected dx = dy on both backends)');
process.exitCode = same ? 0 : 1;
