/**
 * `@largo/datasets/browser`: the parts of the package that run in a browser
 * (no `node:` imports). NIfTI comes in as bytes (a dropped file's
 * ArrayBuffer); gzip is undone with the platform's `DecompressionStream`
 * (browsers, Node ≥ 18) instead of node:zlib.
 */
import { isGzip, parseRawNifti, encodeNiftiRaw, NiftiError, type NiftiImage } from './nifti-format.js';

export * from './nifti-format.js';
export * from './volume.js';
export * from './labels.js';
export * from './layouts.js';
export * from './case.js';
export * from './rng.js';
export * from './phantom.js';

async function throughStream(bytes: Uint8Array, stream: GenericTransformStream): Promise<Uint8Array> {
  const body = new Blob([bytes as BlobPart])
    .stream()
    .pipeThrough(stream as unknown as ReadableWritablePair<Uint8Array, Uint8Array>);
  return new Uint8Array(await new Response(body).arrayBuffer());
}

/** Parses a NIfTI-1 file (.nii or .nii.gz) held in memory; `name` names the source in errors. */
export async function parseNiftiBytes(data: ArrayBuffer | Uint8Array, name = '<buffer>'): Promise<NiftiImage> {
  let buf = data instanceof Uint8Array ? data : new Uint8Array(data);
  if (isGzip(buf)) {
    try {
      buf = await throughStream(buf, new DecompressionStream('gzip'));
    } catch (e) {
      throw new NiftiError(name, `corrupt or truncated gzip stream (${(e as Error).message})`);
    }
  }
  return parseRawNifti(buf, name);
}

/** Encodes a NIfTI-1 file; gzipped (.nii.gz) through `CompressionStream` when `gzip` is set. */
export async function encodeNiftiBytes(image: NiftiImage, options: { gzip?: boolean } = {}): Promise<Uint8Array> {
  const raw = encodeNiftiRaw(image);
  return options.gzip ? throughStream(raw, new CompressionStream('gzip')) : raw;
}
