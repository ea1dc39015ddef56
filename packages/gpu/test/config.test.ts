// The WebGPU matmul and convolution kernels have two configurations
// (packages/gpu/README.md): one for software adapters (llvmpipe, lavapipe,
// SwiftShader) and one for GPUs. On a software adapter the software kernels
// run by default and LARGO_WEBGPU_CONFIG=gpu forces the GPU ones; both give
// the same values; .ci/run reruns the matmul and convolution property tests
// with the GPU configuration forced, so that CI on llvmpipe tests both.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { conv3d, conv3dGradInput, conv3dGradWeight, matmul, Philox, tensor, tidy, type Tensor } from '@largo/core';
import { backend, gpuOpts, wg } from './helpers.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '../../..');
const normals = (shape: number[], seed: number) =>
  tensor(Float32Array.from(new Philox(seed).normal(shape.reduce((a, b) => a * b, 1))), shape);

/** matmul (vec4 sizes, a transpose), conv3d and its two gradients (unit stride, rows of 8) under the current configuration. */
async function run(): Promise<number[][]> {
  const ys = tidy(() => {
    const a = normals([36, 20], 1),
      b = normals([28, 20], 2);
    const x = normals([1, 3, 4, 5, 8], 3),
      w = normals([6, 3, 3, 3, 3], 4),
      bias = normals([6], 5);
    const y = conv3d(x, w, bias, { padding: 1 });
    const unit = { stride: [1, 1, 1], padding: [1, 1, 1], dilation: [1, 1, 1] };
    const dx = conv3dGradInput(y, w, [1, 3, 4, 5, 8], unit);
    const dw = conv3dGradWeight(x, y, [6, 3, 3, 3, 3], unit);
    return [matmul(a, b, { transposeB: true }), y, dx, dw] as Tensor[];
  });
  const out: number[][] = [];
  for (const y of ys) {
    out.push(Array.from((await y.data()) as Float32Array));
    y.dispose();
  }
  return out;
}

t.test(
  wg('kernel configurations: software kernels on a software adapter, GPU kernels when forced'),
  gpuOpts(),
  async (t) => {
    const be = backend!;
    const software = /llvmpipe|lavapipe|softpipe|swiftshader/i.test(
      `${be.info.device} ${be.info.description} ${be.info.architecture}`,
    );
    const saved = { config: process.env.LARGO_WEBGPU_CONFIG, unroll: process.env.LARGO_WEBGPU_UNROLL };
    const since = (before: string[]) => be.pipelineKeys().filter((k) => !before.includes(k));
    try {
      delete process.env.LARGO_WEBGPU_CONFIG;
      delete process.env.LARGO_WEBGPU_UNROLL;
      let before = be.pipelineKeys();
      const dflt = await run();
      const kDefault = since(before);
      t.equal(
        kDefault.some((k) => k.startsWith('matmul-soft:')),
        software,
        'matmul: software kernel iff a software adapter',
      );
      t.equal(
        kDefault.some((k) => k.startsWith('conv-soft:')),
        software,
        'conv3d: direct kernel iff a software adapter',
      );
      t.equal(
        kDefault.some((k) => k.startsWith('conv-soft-gw:')),
        software,
        'conv3dGradWeight: direct kernel iff a software adapter',
      );

      process.env.LARGO_WEBGPU_CONFIG = 'gpu';
      before = be.pipelineKeys();
      const gpu = await run();
      const kGpu = since(before);
      t.notOk(
        kGpu.some((k) => k.startsWith('matmul-soft:') || k.startsWith('conv-soft')),
        'forced GPU: no software kernel',
      );
      t.ok(
        kGpu.some((k) => k.startsWith('igemm:conv3d:')),
        'forced GPU: the implicit-GEMM convolution',
      );

      process.env.LARGO_WEBGPU_CONFIG = 'software';
      before = be.pipelineKeys();
      const soft = await run();
      // (on a software adapter the default compiled these pipelines already)
      const kSoft = software ? kDefault : since(before);
      t.ok(
        kSoft.some((k) => k.startsWith('matmul-soft:')),
        'forced software: the vec4 matmul',
      );
      t.ok(
        kSoft.some((k) => k.startsWith('conv-soft:')),
        'forced software: the direct convolution',
      );
      t.ok(
        kSoft.some((k) => k.startsWith('conv-soft-gw:')),
        'forced software: the direct weight gradient',
      );

      // Same values up to float32 summation order (reductions of 20 to 160 products).
      for (const [name, other] of [
        ['gpu', gpu],
        ['software', soft],
      ] as const)
        for (let i = 0; i < dflt.length; i++) {
          let worst = 0;
          for (let j = 0; j < dflt[i].length; j++)
            worst = Math.max(worst, Math.abs(dflt[i][j] - other[i][j]) / (1 + Math.abs(dflt[i][j])));
          t.ok(
            worst < 1e-5,
            `output ${i}: default and ${name} configuration agree (max rel diff ${worst.toExponential(1)})`,
          );
        }
    } finally {
      for (const [k, v] of [
        ['LARGO_WEBGPU_CONFIG', saved.config],
        ['LARGO_WEBGPU_UNROLL', saved.unroll],
      ] as const)
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
    }
  },
);

t.test(wg('kernel configurations: an unknown LARGO_WEBGPU_CONFIG is an error that names it'), gpuOpts(), async (t) => {
  const saved = process.env.LARGO_WEBGPU_CONFIG;
  process.env.LARGO_WEBGPU_CONFIG = 'fast';
  try {
    t.throws(
      () => tidy(() => matmul(normals([8, 8], 1), normals([8, 8], 2))),
      /LARGO_WEBGPU_CONFIG must be 'gpu' or 'software' \(or unset\), got 'fast'/,
    );
  } finally {
    if (saved === undefined) delete process.env.LARGO_WEBGPU_CONFIG;
    else process.env.LARGO_WEBGPU_CONFIG = saved;
  }
});

t.test('.ci/run reruns the matmul and convolution tests with the GPU configuration forced', async (t) => {
  const ci = readFileSync(join(root, '.ci/run'), 'utf8');
  t.match(
    ci,
    /^LARGO_WEBGPU_CONFIG=gpu \S*tap packages\/core\/test\/matmul\.test\.ts packages\/core\/test\/conv\.test\.ts/m,
  );
});
