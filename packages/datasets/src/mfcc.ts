/**
 * MFCC features, written to match torchaudio.transforms.MFCC(log_mels=True)
 * with a periodic Hann window, centred reflect-padded STFT, power spectrum,
 * HTK mel filterbank without area normalisation, natural log with offset
 * 1e-6, and orthonormal DCT-II. All arithmetic is float64.
 *
 * Default recipe for FSDD / avMNIST (8 kHz speech, median length ≈ 0.42 s,
 * 90th percentile ≈ 0.6 s): n_fft = win = 512 (64 ms), hop = 256 (32 ms),
 * 40 mel bands over 0–4 kHz, 20 coefficients. The waveform is zero-padded or
 * truncated to (frames − 1)·hop = 4864 samples (0.608 s), which the centred
 * STFT turns into exactly 20 frames: 20 coefficients × 20 frames.
 */

export interface MfccOptions {
  sampleRate?: number;
  /** FFT size, a power of two (default 512) */
  nFft?: number;
  /** window length ≤ nFft, centred in the FFT frame (default nFft) */
  winLength?: number;
  hopLength?: number;
  nMels?: number;
  nMfcc?: number;
  fMin?: number;
  /** default sampleRate / 2 */
  fMax?: number;
  /**
   * Fix the output to this many frames by zero-padding / truncating the
   * waveform to (frames − 1)·hop samples first (default 20). null: keep
   * every frame of the recording (1 + floor(len / hop)).
   */
  frames?: number | null;
  /** pre-emphasis coefficient (y[n] = x[n] − a·x[n−1]); 0 = off (default) */
  preEmphasis?: number;
  /** added before the log (default 1e-6, as torchaudio) */
  logOffset?: number;
}

export const DEFAULT_MFCC: Readonly<Required<Omit<MfccOptions, 'fMax' | 'winLength'>>> & {
  fMax: number;
  winLength: number;
} = {
  sampleRate: 8000,
  nFft: 512,
  winLength: 512,
  hopLength: 256,
  nMels: 40,
  nMfcc: 20,
  fMin: 0,
  fMax: 4000,
  frames: 20,
  preEmphasis: 0,
  logOffset: 1e-6,
};

const twiddleCache = new Map<number, [Float64Array, Float64Array]>();

/** cos / sin of −2πk/n for k < n/2, computed directly (no recurrence, so float64-accurate) and cached per n. */
function twiddles(n: number): [Float64Array, Float64Array] {
  let tw = twiddleCache.get(n);
  if (!tw) {
    const c = new Float64Array(n >> 1),
      s = new Float64Array(n >> 1);
    for (let k = 0; k < n >> 1; k++) {
      c[k] = Math.cos((-2 * Math.PI * k) / n);
      s[k] = Math.sin((-2 * Math.PI * k) / n);
    }
    tw = [c, s];
    twiddleCache.set(n, tw);
  }
  return tw;
}

/** In-place iterative radix-2 complex FFT (forward, no scaling). Length must be a power of two. */
export function fft(re: Float64Array, im: Float64Array): void {
  const n = re.length;
  if (im.length !== n) throw new Error('fft: real and imaginary parts differ in length');
  if (n === 0 || (n & (n - 1)) !== 0) throw new Error(`fft: length ${n} is not a power of two`);
  // bit-reversal permutation
  for (let i = 1, j = 0; i < n; i++) {
    let bit = n >> 1;
    for (; j & bit; bit >>= 1) j ^= bit;
    j ^= bit;
    if (i < j) {
      let t = re[i]!;
      re[i] = re[j]!;
      re[j] = t;
      t = im[i]!;
      im[i] = im[j]!;
      im[j] = t;
    }
  }
  const [cos, sin] = twiddles(n);
  for (let len = 2; len <= n; len <<= 1) {
    const half = len >> 1;
    const step = n / len;
    for (let k = 0; k < half; k++) {
      const wr = cos[k * step]!,
        wi = sin[k * step]!;
      for (let s = 0; s < n; s += len) {
        const a = s + k,
          b = a + half;
        const xr = re[b]! * wr - im[b]! * wi;
        const xi = re[b]! * wi + im[b]! * wr;
        re[b] = re[a]! - xr;
        im[b] = im[a]! - xi;
        re[a] = re[a]! + xr;
        im[a] = im[a]! + xi;
      }
    }
  }
}

/** Periodic Hann window (torch.hann_window default). */
export function hannWindow(n: number): Float64Array {
  const w = new Float64Array(n);
  for (let i = 0; i < n; i++) w[i] = 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / n);
  return w;
}

export const hzToMelHtk = (f: number) => 2595 * Math.log10(1 + f / 700);
export const melToHzHtk = (m: number) => 700 * (10 ** (m / 2595) - 1);

/**
 * Triangular HTK mel filterbank, [nFreqs][nMels] with nFreqs = nFft/2 + 1,
 * peaks equally spaced in mel between fMin and fMax, no area normalisation.
 */
export function melFilterbank(
  nFft: number,
  nMels: number,
  sampleRate: number,
  fMin = 0,
  fMax = sampleRate / 2,
): Float64Array[] {
  const nFreqs = nFft / 2 + 1;
  const mMin = hzToMelHtk(fMin),
    mMax = hzToMelHtk(fMax);
  const fPts: number[] = [];
  for (let i = 0; i < nMels + 2; i++) fPts.push(melToHzHtk(mMin + ((mMax - mMin) * i) / (nMels + 1)));
  const fb: Float64Array[] = [];
  for (let k = 0; k < nFreqs; k++) {
    const f = ((sampleRate / 2) * k) / (nFreqs - 1);
    const row = new Float64Array(nMels);
    for (let m = 0; m < nMels; m++) {
      const down = (f - fPts[m]!) / (fPts[m + 1]! - fPts[m]!);
      const up = (fPts[m + 2]! - f) / (fPts[m + 2]! - fPts[m + 1]!);
      row[m] = Math.max(0, Math.min(down, up));
    }
    fb.push(row);
  }
  return fb;
}

/** Orthonormal DCT-II basis, [nMfcc][nMels]: c_k = Σ_n x_n·cos(π/N·(n+½)·k)·s_k, s_0 = √(1/N), s_k = √(2/N). */
export function dctBasis(nMfcc: number, nMels: number): Float64Array[] {
  const out: Float64Array[] = [];
  for (let k = 0; k < nMfcc; k++) {
    const row = new Float64Array(nMels);
    const s = k === 0 ? Math.sqrt(1 / nMels) : Math.sqrt(2 / nMels);
    for (let n = 0; n < nMels; n++) row[n] = Math.cos((Math.PI / nMels) * (n + 0.5) * k) * s;
    out.push(row);
  }
  return out;
}

function resolve(o: MfccOptions) {
  const sampleRate = o.sampleRate ?? DEFAULT_MFCC.sampleRate;
  const nFft = o.nFft ?? DEFAULT_MFCC.nFft;
  const r = {
    sampleRate,
    nFft,
    winLength: o.winLength ?? nFft,
    hopLength: o.hopLength ?? DEFAULT_MFCC.hopLength,
    nMels: o.nMels ?? DEFAULT_MFCC.nMels,
    nMfcc: o.nMfcc ?? DEFAULT_MFCC.nMfcc,
    fMin: o.fMin ?? 0,
    fMax: o.fMax ?? sampleRate / 2,
    frames: o.frames === undefined ? DEFAULT_MFCC.frames : o.frames,
    preEmphasis: o.preEmphasis ?? 0,
    logOffset: o.logOffset ?? DEFAULT_MFCC.logOffset,
  };
  if ((nFft & (nFft - 1)) !== 0 || nFft < 2) throw new Error(`MFCC: nFft ${nFft} must be a power of two`);
  if (r.winLength > nFft || r.winLength < 1) throw new Error(`MFCC: winLength ${r.winLength} must be in [1, nFft]`);
  if (r.hopLength < 1) throw new Error(`MFCC: hopLength must be ≥ 1`);
  if (r.nMfcc > r.nMels) throw new Error(`MFCC: nMfcc ${r.nMfcc} > nMels ${r.nMels}`);
  return r;
}

/** Reusable MFCC extractor (filterbank, window and DCT are built once). */
export class Mfcc {
  readonly options: ReturnType<typeof resolve>;
  private readonly window: Float64Array;
  private readonly fb: Float64Array[];
  private readonly fbLo: Int32Array;
  private readonly fbHi: Int32Array;
  private readonly dct: Float64Array[];

  constructor(options: MfccOptions = {}) {
    this.options = resolve(options);
    const o = this.options;
    // A window shorter than nFft is zero-padded on both sides (torch.stft).
    this.window = new Float64Array(o.nFft);
    const w = hannWindow(o.winLength);
    this.window.set(w, Math.floor((o.nFft - o.winLength) / 2));
    this.fb = melFilterbank(o.nFft, o.nMels, o.sampleRate, o.fMin, o.fMax);
    this.fbLo = new Int32Array(this.fb.length);
    this.fbHi = new Int32Array(this.fb.length);
    this.fb.forEach((row, k) => {
      let lo = row.findIndex((v) => v !== 0);
      if (lo < 0) lo = 0;
      let hi = o.nMels;
      while (hi > lo && row[hi - 1] === 0) hi--;
      this.fbLo[k] = lo;
      this.fbHi[k] = hi;
    });
    this.dct = dctBasis(o.nMfcc, o.nMels);
  }

  /** Number of output frames for a waveform of `n` samples. */
  frameCount(n: number): number {
    return this.options.frames ?? 1 + Math.floor(n / this.options.hopLength);
  }

  /** The waveform as analysed: pre-emphasis, then fixed length when `frames` is set. */
  prepare(signal: ArrayLike<number>): Float64Array {
    const o = this.options;
    const n = o.frames === null ? signal.length : (o.frames - 1) * o.hopLength;
    const x = new Float64Array(n);
    const m = Math.min(n, signal.length);
    for (let i = 0; i < m; i++) x[i] = signal[i]!;
    if (o.preEmphasis !== 0) {
      for (let i = m - 1; i > 0; i--) x[i] = x[i]! - o.preEmphasis * x[i - 1]!;
    }
    return x;
  }

  /** Log-mel energies [frames][nMels]. */
  logMel(signal: ArrayLike<number>): Float64Array[] {
    const o = this.options;
    const x = this.prepare(signal);
    const pad = o.nFft >> 1;
    if (x.length <= pad)
      throw new Error(`MFCC: signal of ${x.length} samples is too short for reflect padding of ${pad}`);
    const T = 1 + Math.floor(x.length / o.hopLength);
    // reflect padding (no edge repeat), as torch.stft(center=True, pad_mode='reflect')
    const at = (i: number) => {
      if (i < 0) return x[-i]!;
      if (i >= x.length) return x[2 * (x.length - 1) - i]!;
      return x[i]!;
    };
    const nF = o.nFft / 2 + 1;
    const re = new Float64Array(o.nFft),
      im = new Float64Array(o.nFft);
    const out: Float64Array[] = [];
    for (let t = 0; t < T; t++) {
      const start = t * o.hopLength - pad;
      for (let i = 0; i < o.nFft; i++) {
        re[i] = at(start + i) * this.window[i]!;
        im[i] = 0;
      }
      fft(re, im);
      const mel = new Float64Array(o.nMels);
      for (let k = 0; k < nF; k++) {
        const p = re[k]! * re[k]! + im[k]! * im[k]!;
        const row = this.fb[k]!;
        // each frequency touches at most two triangles: skip the zero weights
        for (let m = this.fbLo[k]!; m < this.fbHi[k]!; m++) mel[m] = mel[m]! + p * row[m]!;
      }
      for (let m = 0; m < o.nMels; m++) mel[m] = Math.log(mel[m]! + o.logOffset);
      out.push(mel);
    }
    return out;
  }

  /** MFCC as [nMfcc, frames] row-major float32 (coefficient-major, like torchaudio). */
  compute(signal: ArrayLike<number>): { data: Float32Array; shape: [number, number] } {
    const lm = this.logMel(signal);
    const o = this.options;
    const T = lm.length;
    const data = new Float32Array(o.nMfcc * T);
    for (let t = 0; t < T; t++) {
      const v = lm[t]!;
      for (let k = 0; k < o.nMfcc; k++) {
        const basis = this.dct[k]!;
        let s = 0;
        for (let m = 0; m < o.nMels; m++) s += v[m]! * basis[m]!;
        data[k * T + t] = s;
      }
    }
    return { data, shape: [o.nMfcc, T] };
  }
}

/** One-shot MFCC with `options` (see Mfcc). */
export function mfcc(
  signal: ArrayLike<number>,
  options: MfccOptions = {},
): { data: Float32Array; shape: [number, number] } {
  return new Mfcc(options).compute(signal);
}
