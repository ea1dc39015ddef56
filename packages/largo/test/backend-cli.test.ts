// --backend / LARGO_BACKEND parsing and the auto rule: a software adapter
// (llvmpipe here) is never picked by auto, only by name.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { engine } from '@largo/core';
import { parseBackendChoice, selectBackend, BackendError } from '../src/backend-select.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const DIST_CLI = join(here, '..', 'dist', 'cli.js');
const CLI_ARGS = existsSync(DIST_CLI) ? [DIST_CLI] : [...process.execArgv, join(here, '..', 'src', 'cli.ts')];

t.test('parseBackendChoice: flag, then LARGO_BACKEND, then cpu; bad values name their source', async (t) => {
  const prev = process.env['LARGO_BACKEND'];
  try {
    delete process.env['LARGO_BACKEND'];
    t.equal(parseBackendChoice(undefined), 'cpu');
    t.equal(parseBackendChoice('auto'), 'auto');
    process.env['LARGO_BACKEND'] = 'webgpu';
    t.equal(parseBackendChoice(undefined), 'webgpu', 'LARGO_BACKEND is the default');
    t.equal(parseBackendChoice('cpu'), 'cpu', 'the flag wins');
    process.env['LARGO_BACKEND'] = 'tpu';
    t.throws(() => parseBackendChoice(undefined), /LARGO_BACKEND must be one of cpu, webgpu, auto, got 'tpu'/);
    t.throws(() => parseBackendChoice('gpu'), /--backend must be one of cpu, webgpu, auto, got 'gpu'/);
    t.throws(() => parseBackendChoice('gpu'), BackendError);
  } finally {
    if (prev === undefined) delete process.env['LARGO_BACKEND'];
    else process.env['LARGO_BACKEND'] = prev;
  }
});

t.test('the CLI: a bad --backend is a usage error (exit 2) before anything is written', async (t) => {
  const r = spawnSync(
    process.execPath,
    [
      ...CLI_ARGS,
      'train',
      '--config',
      join(here, '..', 'configs', 'tiny.json'),
      '--backend',
      'gpu',
      '--out',
      join(here, 'never-written'),
    ],
    { encoding: 'utf8' },
  );
  t.equal(r.status, 2);
  t.match(r.stderr, /train: --backend must be one of cpu, webgpu, auto, got 'gpu'/);
  t.notOk(existsSync(join(here, 'never-written')), 'no run folder');
});

t.test('auto never takes a software adapter; webgpu takes it when asked', async (t) => {
  const lines: string[] = [];
  const auto = await selectBackend('auto', { log: (s) => lines.push(s) });
  if (auto.name === 'webgpu') {
    t.notMatch(auto.adapter, /llvmpipe|lavapipe|swiftshader/i, `auto took a real GPU: ${auto.adapter}`);
  } else {
    t.equal(engine().backend.name, 'cpu');
    t.match(lines.join('\n'), /backend: cpu \(/, `auto says why it stayed on the CPU: ${lines.join(' ')}`);
    const sel = await selectBackend('webgpu').catch((e: Error) => e);
    if (sel instanceof Error)
      t.match(sel.message, /--backend webgpu: /, 'webgpu without an adapter is an error that says why');
    else {
      t.equal(sel.name, 'webgpu', `asked by name: ${sel.adapter}`);
      t.match(lines.join('\n'), /the only WebGPU adapter is software/, 'auto declined it as a software adapter');
    }
  }
  await selectBackend('cpu');
  t.equal(engine().backend.name, 'cpu');
});
