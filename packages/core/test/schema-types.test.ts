// The op schema at compile time: a backend's kernel table that lacks an op, or
// holds a kernel whose attributes differ from the schema, fails type checking
// with a message naming the op. Runs the TypeScript compiler on three small
// fixtures (test/fixtures/schema), against the built declarations of @largo/core.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const tsc = require.resolve('typescript/bin/tsc');
const dir = fileURLToPath(new URL('./fixtures/schema/', import.meta.url));
const files = ['complete.ts', 'missing-kernel.ts', 'wrong-attrs.ts'].map((f) => dir + f);

function typecheck(): string {
  try {
    execFileSync(
      process.execPath,
      [
        tsc,
        '--noEmit',
        '--strict',
        '--module',
        'nodenext',
        '--moduleResolution',
        'nodenext',
        '--target',
        'es2022',
        '--types',
        'node',
        '--skipLibCheck',
        ...files,
      ],
      { encoding: 'utf8', stdio: 'pipe' },
    );
    return '';
  } catch (e) {
    return String((e as { stdout?: string }).stdout ?? e);
  }
}

t.test('kernel tables are checked against the op schema at compile time', async (t) => {
  const out = typecheck();
  const errorsOf = (file: string) =>
    out
      .split('\n')
      .filter((l) => l.includes(file + '('))
      .join('\n');
  t.equal(errorsOf('complete.ts'), '', 'the complete CPU table type-checks');
  t.match(out, /missing-kernel\.ts\(\d+,\d+\): error TS1360/, 'a table lacking an op does not type-check');
  t.match(out, /Property 'softmax' is missing in type/, '...and the message names the op');
  t.match(
    out,
    /wrong-attrs\.ts\(\d+,\d+\): error TS2322: .* is not assignable to type 'KernelFn<"softmax", CpuBackend>'/,
    'a kernel with other attributes does not type-check, naming the op',
  );
  t.match(out, /Property 'axes' is missing in type 'SoftmaxAttrs'/, '...and the schema attribute type');
});
