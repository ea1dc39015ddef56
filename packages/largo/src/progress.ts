/**
 * Training progress: a one-line bar redrawn in place on a TTY (loss, step
 * time, ETA), plain log lines otherwise (CI logs, files, pipes).
 */

export interface ProgressStream {
  write(s: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface ProgressOptions {
  total: number;
  /** first step number shown (resumed runs start past 0) */
  start?: number;
  label?: string;
  stream?: ProgressStream;
  /** force TTY or plain mode (default: the stream's isTTY) */
  tty?: boolean;
  /** plain mode: print every this many steps (default: about 20 lines per run) */
  every?: number;
  /** injected clock in ms, for tests */
  now?: () => number;
}

/** Formats seconds as 1h02m, 3m05s, 12.3s or 850ms. */
export function formatDuration(sec: number): string {
  if (!Number.isFinite(sec) || sec < 0) return '--';
  if (sec < 1) return `${Math.round(sec * 1000)}ms`;
  if (sec < 60) return `${sec.toFixed(1)}s`;
  const s = Math.round(sec);
  const h = Math.floor(s / 3600),
    m = Math.floor((s % 3600) / 60),
    r = s % 60;
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : `${m}m${String(r).padStart(2, '0')}s`;
}

export class Progress {
  readonly total: number;
  private step: number;
  private readonly startStep: number;
  private readonly label: string;
  private readonly stream: ProgressStream;
  private readonly tty: boolean;
  private readonly every: number;
  private readonly now: () => number;
  private readonly t0: number;
  private lastTick: number;
  /** exponential moving average of the step time (s) */
  private stepTime = NaN;
  private lastLen = 0;
  private extra: Record<string, string> = {};

  constructor(o: ProgressOptions) {
    this.total = o.total;
    this.startStep = this.step = o.start ?? 0;
    this.label = o.label ?? '';
    this.stream = o.stream ?? process.stderr;
    this.tty = o.tty ?? Boolean(this.stream.isTTY);
    this.every = o.every ?? Math.max(1, Math.round(this.total / 20));
    this.now = o.now ?? (() => performance.now());
    this.t0 = this.lastTick = this.now();
  }

  /** Seconds per step (smoothed). */
  get secondsPerStep(): number {
    return this.stepTime;
  }

  /** Remaining time estimate in seconds. */
  get eta(): number {
    return (this.total - this.step) * this.stepTime;
  }

  /** Records one finished step with its metrics (numbers are formatted compactly). */
  tick(metrics: Record<string, number | string> = {}): void {
    const t = this.now();
    const dt = (t - this.lastTick) / 1000;
    this.lastTick = t;
    this.step++;
    this.stepTime = Number.isNaN(this.stepTime) ? dt : 0.9 * this.stepTime + 0.1 * dt;
    for (const [k, v] of Object.entries(metrics)) this.extra[k] = typeof v === 'number' ? fmtNum(v) : v;
    if (this.tty) this.draw();
    else if (this.step % this.every === 0 || this.step === this.total || this.step === this.startStep + 1)
      this.stream.write(this.line() + '\n');
  }

  /** A message that must not be overwritten by the bar (validation results, checkpoints). */
  log(msg: string): void {
    if (this.tty && this.lastLen > 0) this.stream.write('\r' + ' '.repeat(this.lastLen) + '\r');
    this.stream.write(msg + '\n');
    if (this.tty && this.step > this.startStep) this.draw();
  }

  done(): void {
    if (this.tty && this.lastLen > 0) this.stream.write('\n');
    this.lastLen = 0;
  }

  /** Total wall time since construction (s). */
  elapsed(): number {
    return (this.now() - this.t0) / 1000;
  }

  line(): string {
    const pct = this.total > 0 ? Math.floor((100 * this.step) / this.total) : 100;
    const kv = Object.entries(this.extra)
      .map(([k, v]) => `${k} ${v}`)
      .join(' ');
    return `${this.label ? this.label + ' ' : ''}step ${this.step}/${this.total} (${pct}%) ${kv} | ${formatDuration(this.stepTime)}/step, eta ${formatDuration(this.eta)}`.replace(
      / +/g,
      ' ',
    );
  }

  private draw(): void {
    const width = 24;
    const frac = this.total > 0 ? Math.min(1, this.step / this.total) : 1;
    const full = Math.round(frac * width);
    const bar = '█'.repeat(full) + '░'.repeat(width - full);
    let s = `${bar} ${this.line()}`;
    const cols = this.stream.columns ?? 120;
    if (s.length > cols - 1) s = s.slice(0, cols - 1);
    const pad = Math.max(0, this.lastLen - s.length);
    this.stream.write('\r' + s + ' '.repeat(pad));
    this.lastLen = s.length;
  }
}

function fmtNum(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e5)) return v.toExponential(2);
  return v.toFixed(4);
}
