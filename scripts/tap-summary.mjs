// Reads TAP from `npm test -- --reporter=tap` and ends with one line:
// "N passed, N failed" counting the tests inside each file (files that crash
// before reporting any test count as one failure). Each skipped test is listed
// first with its reason, so a skip is never silent.
import { readFileSync } from 'node:fs';

const [file, rcArg] = process.argv.slice(2);
const lines = readFileSync(file, 'utf8').split('\n');
let passed = 0,
  failed = 0,
  skipped = 0;
let fileFailures = 0,
  fileTests = 0;
const skips = [];
for (const line of lines) {
  // Skips at any depth (a backend case inside a test, too) are listed with their reasons.
  // (tap writes the directive as an unescaped upper-case "# SKIP"; a "\#" in a title is text).
  const skip = /^\s+ok \d+ - (.*?(?<!\\)# SKIP.*)$/.exec(line);
  if (skip) skips.push(skip[1]);
  const m = /^    (not ok|ok) \d+/.exec(line);
  if (m) {
    fileTests++;
    if (/(?<!\\)# SKIP/.test(line)) skipped++;
    else if (m[1] === 'ok') passed++;
    else {
      failed++;
      fileFailures++;
    }
    continue;
  }
  const top = /^(not ok|ok) \d+/.exec(line);
  if (top) {
    if (top[1] === 'not ok' && fileFailures === 0) failed++;
    fileFailures = 0;
    fileTests = 0;
  }
}
if (Number(rcArg) !== 0 && failed === 0) failed = 1;
for (const s of skips) console.log(`skipped: ${s}`);
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
