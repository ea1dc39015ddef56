// A small seeded slice of scripts/fuzz (issue 12): every NIfTI, safetensors, config
// and argv case ends in a clear error or a correct result. The full run (10^5 cases
// per format) is documented in docs/cli.md.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', '..');
const built = ['core', 'datasets', 'largo'].every((p) => existsSync(join(root, 'packages', p, 'dist', 'index.js')));

t.test(
  'fuzz slice: 300 cases per format, zero uncaught exceptions, hangs or memory blow-ups',
  { skip: built ? false : 'needs npm run build (npm test builds first)' },
  async (t) => {
    const r = spawnSync(
      process.execPath,
      [
        join(root, 'scripts', 'fuzz', 'fuzz.mjs'),
        '--cases',
        '300',
        '--seed',
        '20261130',
        '--json',
        '--timeout-ms',
        '20000',
      ],
      { encoding: 'utf8', timeout: 600_000 },
    );
    const summary = JSON.parse(r.stdout) as {
      failures: number;
      formats: Record<
        string,
        { done: number; ok: number; refused: number; failures: { index: number; kind: string; detail: string }[] }
      >;
    };
    t.same(Object.keys(summary.formats), ['nifti', 'safetensors', 'config', 'argv']);
    for (const [f, s] of Object.entries(summary.formats)) {
      t.same(s.failures, [], `${f}: no failures`);
      t.equal(s.done, 300, `${f}: every case ran`);
      t.ok(s.ok > 0 && s.refused > 0, `${f}: both accepted and refused inputs (${s.ok} / ${s.refused})`);
    }
    t.equal(summary.failures, 0);
    t.equal(r.status, 0, r.stderr);
  },
);
