import { OpError, fmtShape } from './errors.js';

export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function stridesOf(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

export function checkShape(op: string, shape: readonly number[]): void {
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new OpError(op, `invalid shape ${fmtShape(shape)}`);
  }
}

export function shapesEqual(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** NumPy broadcasting of two shapes. */
export function broadcastShapes(op: string, a: readonly number[], b: readonly number[]): number[] {
  const n = Math.max(a.length, b.length);
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const da = i < n - a.length ? 1 : a[i - (n - a.length)];
    const db = i < n - b.length ? 1 : b[i - (n - b.length)];
    if (da !== db && da !== 1 && db !== 1) {
      throw new OpError(op, `shapes ${fmtShape(a)} and ${fmtShape(b)} cannot be broadcast`);
    }
    out[i] = da === 1 ? db : da;
  }
  return out;
}

/** Strides of `shape` viewed inside `outShape` with broadcasting (0 where broadcast). */
export function broadcastStrides(shape: readonly number[], outShape: readonly number[]): number[] {
  const st = stridesOf(shape);
  const off = outShape.length - shape.length;
  const r = new Array<number>(outShape.length).fill(0);
  for (let i = 0; i < shape.length; i++) r[i + off] = shape[i] === 1 ? 0 : st[i];
  return r;
}

/**
 * Normalizes axis arguments (negative allowed) to a sorted unique list.
 * `rankOrShape` may be the input's shape, so that errors can name it. A
 * rank-0 tensor accepts axis 0 and -1, as in PyTorch (and reduces nothing).
 */
export function normalizeAxes(
  op: string,
  axes: number | readonly number[] | undefined,
  rankOrShape: number | readonly number[],
): number[] {
  const rank = typeof rankOrShape === 'number' ? rankOrShape : rankOrShape.length;
  if (axes === undefined) return Array.from({ length: rank }, (_, i) => i);
  const list = typeof axes === 'number' ? [axes] : [...axes];
  const r = Math.max(rank, 1);
  const out = new Set<number>();
  for (const a of list) {
    if (!Number.isInteger(a) || a < -r || a >= r) {
      throw new OpError(op, `axis ${a} out of range for ${describe(rankOrShape)}`);
    }
    out.add(a < 0 ? a + r : a);
  }
  // A scalar has no axis to reduce: 0 / -1 name the scalar itself.
  if (rank === 0) return [];
  return [...out].sort((x, y) => x - y);
}

export function normalizeAxis(op: string, axis: number, rankOrShape: number | readonly number[]): number {
  const rank = typeof rankOrShape === 'number' ? rankOrShape : rankOrShape.length;
  if (!Number.isInteger(axis) || axis < -rank || axis >= rank) {
    throw new OpError(op, `axis ${axis} out of range for ${describe(rankOrShape)}`);
  }
  return axis < 0 ? axis + rank : axis;
}

function describe(rankOrShape: number | readonly number[]): string {
  return typeof rankOrShape === 'number'
    ? `rank ${rankOrShape}`
    : `shape ${fmtShape(rankOrShape)} (rank ${rankOrShape.length})`;
}

export function reducedShape(shape: readonly number[], axes: readonly number[], keepDims: boolean): number[] {
  const out: number[] = [];
  for (let i = 0; i < shape.length; i++) {
    if (axes.includes(i)) {
      if (keepDims) out.push(1);
    } else out.push(shape[i]);
  }
  return out;
}
