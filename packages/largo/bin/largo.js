#!/usr/bin/env node
// The `largo` command. Committed (not built) so that `npm install` can link it
// on a fresh clone, before `npm run build` has produced dist/.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const cli = new URL('../dist/cli.js', import.meta.url);
if (!existsSync(fileURLToPath(cli))) {
  console.error(`largo: ${fileURLToPath(cli)} is missing; build the project first with 'npm run build' in the repository root`);
  process.exit(1);
}
const { main } = await import(cli.href);
main(process.argv.slice(2)).then((code) => { process.exitCode = code; }, (e) => { console.error(e); process.exitCode = 1; });
