/**
 * RIFF/WAVE reader: PCM 8/16/24/32-bit and IEEE float 32/64, any channel
 * count (mixed down to mono by averaging), WAVE_FORMAT_EXTENSIBLE included.
 */
import { readFileSync } from 'node:fs';

export class WavError extends Error {
  readonly path: string;
  constructor(path: string, message: string) {
    super(`${path}: ${message}`);
    this.name = 'WavError';
    this.path = path;
  }
}

export interface Wav {
  sampleRate: number;
  bitsPerSample: number;
  format: 'pcm' | 'float';
  /** one array per channel, samples scaled to [-1, 1) (PCM: divided by 2^(bits-1)) */
  channels: Float32Array[];
  /** average of the channels */
  mono: Float32Array;
}

function fourcc(buf: Uint8Array, at: number): string {
  return String.fromCharCode(buf[at]!, buf[at + 1]!, buf[at + 2]!, buf[at + 3]!);
}

export function decodeWav(buf: Uint8Array, path = '<buffer>'): Wav {
  if (buf.length < 12) throw new WavError(path, `truncated: ${buf.length} bytes, too short for a RIFF header`);
  if (fourcc(buf, 0) !== 'RIFF' || fourcc(buf, 8) !== 'WAVE') {
    throw new WavError(path, `not a RIFF/WAVE file (starts with '${fourcc(buf, 0)}' ... '${fourcc(buf, 8)}')`);
  }
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let fmt: { tag: number; channels: number; rate: number; align: number; bits: number } | null = null;
  let data: { at: number; size: number } | null = null;
  let at = 12;
  while (at + 8 <= buf.length) {
    const id = fourcc(buf, at);
    const size = dv.getUint32(at + 4, true);
    const body = at + 8;
    if (id === 'fmt ') {
      if (size < 16 || body + size > buf.length) throw new WavError(path, `corrupt 'fmt ' chunk (size ${size})`);
      let tag = dv.getUint16(body, true);
      if (tag === 0xfffe) {
        // WAVE_FORMAT_EXTENSIBLE: the real format is the first 2 bytes of the SubFormat GUID.
        if (size < 40) throw new WavError(path, `corrupt WAVE_FORMAT_EXTENSIBLE 'fmt ' chunk (size ${size})`);
        tag = dv.getUint16(body + 24, true);
      }
      fmt = {
        tag,
        channels: dv.getUint16(body + 2, true),
        rate: dv.getUint32(body + 4, true),
        align: dv.getUint16(body + 12, true),
        bits: dv.getUint16(body + 14, true),
      };
    } else if (id === 'data') {
      if (body + size > buf.length) {
        throw new WavError(
          path,
          `truncated: the 'data' chunk declares ${size} bytes but only ${buf.length - body} remain`,
        );
      }
      data = { at: body, size };
      break;
    }
    at = body + size + (size & 1); // chunks are padded to even length
  }
  if (!fmt) throw new WavError(path, "no 'fmt ' chunk before the audio data");
  if (!data) throw new WavError(path, "no 'data' chunk");
  const { tag, channels: nch, rate, bits } = fmt;
  if (nch < 1) throw new WavError(path, `invalid channel count ${nch}`);
  if (rate < 1) throw new WavError(path, `invalid sample rate ${rate}`);
  let format: 'pcm' | 'float';
  if (tag === 1 && [8, 16, 24, 32].includes(bits)) format = 'pcm';
  else if (tag === 3 && (bits === 32 || bits === 64)) format = 'float';
  else
    throw new WavError(
      path,
      `unsupported encoding: format tag ${tag} with ${bits} bits (PCM 8/16/24/32 and IEEE float 32/64 are supported)`,
    );
  const bytes = bits / 8;
  const frameBytes = bytes * nch;
  if (fmt.align !== frameBytes)
    throw new WavError(path, `block align ${fmt.align} disagrees with ${nch} channel(s) of ${bits} bits`);
  if (data.size % frameBytes !== 0)
    throw new WavError(path, `data chunk of ${data.size} bytes is not a whole number of ${frameBytes}-byte frames`);
  const n = data.size / frameBytes;
  const channels = Array.from({ length: nch }, () => new Float32Array(n));
  const read: (o: number) => number =
    format === 'float'
      ? bits === 32
        ? (o) => dv.getFloat32(o, true)
        : (o) => dv.getFloat64(o, true)
      : bits === 8
        ? (o) => (dv.getUint8(o) - 128) / 128
        : bits === 16
          ? (o) => dv.getInt16(o, true) / 32768
          : bits === 24
            ? (o) => (((dv.getUint8(o + 2) << 24) | (dv.getUint8(o + 1) << 16) | (dv.getUint8(o) << 8)) >> 8) / 8388608
            : (o) => dv.getInt32(o, true) / 2147483648;
  let o = data.at;
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < nch; c++, o += bytes) channels[c]![i] = read(o);
  }
  let mono: Float32Array;
  if (nch === 1) mono = channels[0]!;
  else {
    mono = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let c = 0; c < nch; c++) s += channels[c]![i]!;
      mono[i] = s / nch;
    }
  }
  return { sampleRate: rate, bitsPerSample: bits, format, channels, mono };
}

export function readWav(path: string): Wav {
  return decodeWav(readFileSync(path), path);
}

/** Encode 16-bit PCM (for tests and fixtures); samples are clipped to [-1, 1). */
export function encodeWav(
  channels: Float32Array[],
  sampleRate: number,
  options: { bits?: 8 | 16 | 24 | 32; float?: boolean } = {},
): Uint8Array {
  const float = options.float ?? false;
  const bits = float ? (options.bits === 32 || options.bits === undefined ? 32 : 64) : (options.bits ?? 16);
  const nch = channels.length;
  const n = channels[0]?.length ?? 0;
  const bytes = bits / 8;
  const dataSize = n * nch * bytes;
  const buf = new Uint8Array(44 + dataSize + (dataSize & 1));
  const dv = new DataView(buf.buffer);
  const put = (at: number, s: string) => {
    for (let i = 0; i < 4; i++) buf[at + i] = s.charCodeAt(i);
  };
  put(0, 'RIFF');
  dv.setUint32(4, buf.length - 8, true);
  put(8, 'WAVE');
  put(12, 'fmt ');
  dv.setUint32(16, 16, true);
  dv.setUint16(20, float ? 3 : 1, true);
  dv.setUint16(22, nch, true);
  dv.setUint32(24, sampleRate, true);
  dv.setUint32(28, sampleRate * nch * bytes, true);
  dv.setUint16(32, nch * bytes, true);
  dv.setUint16(34, bits, true);
  put(36, 'data');
  dv.setUint32(40, dataSize, true);
  let o = 44;
  const clip = (v: number, scale: number) => Math.max(-scale, Math.min(scale - 1, Math.round(v * scale)));
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < nch; c++, o += bytes) {
      const v = channels[c]![i]!;
      if (float) {
        if (bits === 32) dv.setFloat32(o, v, true);
        else dv.setFloat64(o, v, true);
      } else if (bits === 8) dv.setUint8(o, clip(v, 128) + 128);
      else if (bits === 16) dv.setInt16(o, clip(v, 32768), true);
      else if (bits === 24) {
        const s = clip(v, 8388608);
        dv.setUint8(o, s & 0xff);
        dv.setUint8(o + 1, (s >> 8) & 0xff);
        dv.setUint8(o + 2, (s >> 16) & 0xff);
      } else dv.setInt32(o, clip(v, 2147483648), true);
    }
  }
  return buf;
}
