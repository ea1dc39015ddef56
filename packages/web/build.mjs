// Bundles the page (src/main.ts → dist/app.js) with esbuild for browsers and
// copies public/ beside it. Fails if anything on the browser path imports a
// `node:` module, and prints the bundle size.
import { build } from 'esbuild';
import { cpSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, 'dist');
mkdirSync(out, { recursive: true });

/** Any `node:` (or bare Node builtin) import on the browser path is a build error that names the importer. */
const noNode = {
  name: 'no-node-builtins',
  setup(b) {
    b.onResolve({ filter: /^(node:|fs$|path$|zlib$|os$|url$|util$|worker_threads$)/ }, (args) => ({
      errors: [{ text: `${args.importer} imports '${args.path}': the browser bundle must not import Node modules (give the module a browser entry or a "browser" field replacement)` }],
    }));
  },
};

const result = await build({
  entryPoints: [join(here, 'src/main.ts')],
  outdir: out,
  entryNames: 'app',
  chunkNames: 'chunks/[name]-[hash]',
  splitting: true,
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['chrome113', 'firefox121', 'safari17'],
  minify: true,
  sourcemap: true,
  metafile: true,
  logLevel: 'warning',
  plugins: [noNode],
});
cpSync(join(here, 'public'), out, { recursive: true });

const kib = (n) => `${(n / 1024).toFixed(1)} KiB`;
const lines = [];
const outputs = result.metafile.outputs;
const entry = Object.keys(outputs).find((f) => outputs[f].entryPoint?.endsWith('main.ts'));
// what the page loads at once: the entry and the chunks it imports statically
const eager = new Set([entry, ...outputs[entry].imports.filter((i) => i.kind === 'import-statement').map((i) => i.path)]);
let eagerBytes = 0;
for (const file of Object.keys(outputs)) {
  if (!file.endsWith('.js')) continue;
  const js = readFileSync(file);
  if (/\bfrom\s*["']node:|import\(\s*["']node:|require\(\s*["']node:/.test(js.toString())) {
    console.error(`web build: ${file} holds a node: import`);
    process.exit(1);
  }
  if (eager.has(file)) eagerBytes += js.length;
  lines.push(`  ${file.slice(file.indexOf('dist/'))}: ${kib(js.length)} (${kib(gzipSync(js).length)} gzipped)${file === entry ? ', the page' : eager.has(file) ? ', loaded with the page' : ', loaded when the gpujs backend is used'}`);
}
lines.push(`  loaded at start: ${kib(eagerBytes)}`);
const ck = statSync(join(out, 'phantom-largo.safetensors')).size;
console.log(`web build (no node: imports):\n${lines.join('\n')}\n  bundled checkpoint: ${kib(ck)}`);
