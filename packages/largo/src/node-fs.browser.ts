/** Browser stand-in for `node-fs.ts`: there are no files; every function says so, naming the path. */
function noFiles(fn: string): (path?: unknown) => never {
  return (path?: unknown) => {
    throw new Error(
      `${fn}(${typeof path === 'string' ? JSON.stringify(path) : ''}): there is no file system in a browser; pass bytes instead (decodeCheckpoint, parseNiftiBytes)`,
    );
  };
}
export const closeSync = noFiles('closeSync');
export const fsyncSync = noFiles('fsyncSync');
export const openSync = noFiles('openSync');
export const renameSync = noFiles('renameSync');
export const rmSync = noFiles('rmSync');
export const writeSync = noFiles('writeSync');
export const readFileSync = noFiles('readFileSync');
export const existsSync = noFiles('existsSync');
export const mkdirSync = noFiles('mkdirSync');
export const readdirSync = noFiles('readdirSync');
export const statSync = noFiles('statSync');
export function join(...parts: string[]): string {
  return parts.filter(Boolean).join('/').replace(/\/+/g, '/');
}
export function resolve(...parts: string[]): string {
  return join(...parts);
}
export function dirname(path: string): string {
  const i = path.lastIndexOf('/');
  return i < 0 ? '.' : i === 0 ? '/' : path.slice(0, i);
}
