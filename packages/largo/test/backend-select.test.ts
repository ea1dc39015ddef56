import t from 'tap';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { add, engine, tensor } from '@largo/core';
import { BackendError, isSoftwareAdapter, selectBackend, type BackendChoice } from '../src/backend-select.js';
import { exitCodeFor } from '../src/cli/common.js';

const SRC = fileURLToPath(new URL('../src', import.meta.url));

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? tsFiles(p) : p.endsWith('.ts') ? [p] : [];
  });
}

t.test('no static import of @largo/gpu anywhere in largo (the GPU package is optional)', async (t) => {
  const files = tsFiles(SRC);
  t.ok(files.length > 20, 'scanned the sources');
  const offenders = files.filter((f) =>
    /(?:from\s+|import\s*\(\s*|import\s+)['"]@largo\/gpu['"]/.test(readFileSync(f, 'utf8')),
  );
  t.same(offenders, [], 'only backend-select.ts loads it, through a variable specifier');
});

t.test('cpu: the CPU backend, whatever was current', async (t) => {
  const logs: string[] = [];
  const r = await selectBackend('cpu', { log: (s) => logs.push(s) });
  t.same(r, { name: 'cpu', adapter: 'cpu' });
  t.equal(engine().backend.name, 'cpu');
  t.same(await tensor([1, 2]).data(), new Float32Array([1, 2]));
});

t.test('an unknown choice is a BackendError naming the flag and the choices', async (t) => {
  await t.rejects(selectBackend('cuda' as BackendChoice), {
    name: 'BackendError',
    message: /--backend must be one of cpu, webgpu, auto, got 'cuda'/,
  });
  t.equal(exitCodeFor(new BackendError('x')), 2, 'the CLI treats it as bad input (exit code 2)');
});

t.test('software adapters are recognised (auto never picks them)', async (t) => {
  const info = (device: string, description: string, vendor = '') => ({
    vendor,
    architecture: '',
    device,
    description,
  });
  t.ok(
    isSoftwareAdapter(info('llvmpipe-llvm-15-0-6-256-bits-', 'OpenGL version OpenGL ES 3.2 Mesa 22.3.6')),
    'Mesa llvmpipe',
  );
  t.ok(isSoftwareAdapter(info('SwiftShader Device (Subzero)', 'SwiftShader driver', 'google')), 'SwiftShader');
  t.ok(isSoftwareAdapter(info('Microsoft Basic Render Driver', '')), 'WARP');
  t.notOk(isSoftwareAdapter(info('NVIDIA GeForce RTX 3060', 'NVIDIA: 535.54', 'nvidia')), 'a discrete GPU');
  t.notOk(isSoftwareAdapter(info('', 'Apple M2', 'apple')), 'an Apple GPU');
});

// In the workspace @largo/gpu is linked; whether an adapter exists depends on the machine.
const { initWebGpu, webGpuUnavailableReason } = await import('@largo/gpu');
const gpu = await initWebGpu({ quiet: true });
const noGpu = gpu ? false : `no WebGPU adapter: ${webGpuUnavailableReason()}`;
if (!gpu && process.env['LARGO_REQUIRE_WEBGPU'] === '1') throw new Error(`LARGO_REQUIRE_WEBGPU=1 but ${noGpu}`);

t.test('webgpu: the WebGPU backend on whatever adapter there is, named', { skip: noGpu }, async (t) => {
  const logs: string[] = [];
  const r = await selectBackend('webgpu', { log: (s) => logs.push(s) });
  t.equal(r.name, 'webgpu');
  t.equal(engine().backend.name, 'webgpu');
  t.match(logs.join('\n'), /backend: webgpu on /);
  t.ok(r.adapter.length > 0);
  t.same(await add(tensor([1, 2]), tensor([3, 4])).data(), new Float32Array([4, 6]), 'computes');
  await selectBackend('cpu');
});

t.test('auto: WebGPU only on a hardware adapter, else the CPU with the reason', { skip: noGpu }, async (t) => {
  const logs: string[] = [];
  const r = await selectBackend('auto', { log: (s) => logs.push(s) });
  if (isSoftwareAdapter(gpu!.info)) {
    t.same(r, { name: 'cpu', adapter: 'cpu' }, 'a software adapter is not picked');
    t.match(logs.join('\n'), /backend: cpu \(the only WebGPU adapter is software: /);
  } else t.equal(r.name, 'webgpu');
  t.equal(engine().backend.name, r.name);
  await selectBackend('cpu');
});

t.test('webgpu with LARGO_WEBGPU=off fails with the reason; auto falls back', async (t) => {
  // a fresh process: the adapter above is cached in this one
  const { spawnSync } = await import('node:child_process');
  const code = `import { selectBackend } from ${JSON.stringify(join(SRC, 'backend-select.ts'))};
    const logs = []; const r = await selectBackend('auto', { log: (s) => logs.push(s) }); console.log(JSON.stringify({ r, logs }));
    try { await selectBackend('webgpu'); } catch (e) { console.log(e.name + ': ' + e.message); }`;
  const res = spawnSync(process.execPath, [...process.execArgv, '--input-type=module', '-e', code], {
    encoding: 'utf8',
    env: { ...process.env, LARGO_WEBGPU: 'off' },
  });
  t.equal(res.status, 0, res.stderr);
  const [first, second] = res.stdout.trim().split('\n');
  t.same(JSON.parse(first!), {
    r: { name: 'cpu', adapter: 'cpu' },
    logs: ['backend: cpu (no WebGPU adapter: disabled by LARGO_WEBGPU=off)'],
  });
  t.equal(second, 'BackendError: --backend webgpu: disabled by LARGO_WEBGPU=off');
});
