/**
 * The file-system functions that modules on the inference path (checkpoint
 * decoding, config resolution) use only for their Node-only parts. Browser
 * bundles get `node-fs.browser.ts` through the package.json "browser" field,
 * so the bundle holds no `node:` import while those modules stay one file.
 */
export {
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
  readFileSync,
  existsSync,
} from 'node:fs';
export { dirname, join, resolve } from 'node:path';
