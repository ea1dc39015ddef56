import { engine } from '../engine.js';
import { OpError, fmtShape } from '../errors.js';
import { broadcastShapes, checkShape, normalizeAxis, shapesEqual, sizeOf } from '../shape.js';
import { Tensor } from '../tensor.js';
import { assertTensor, run1 } from './util.js';

/** Same storage, new shape; one entry may be -1. */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  assertTensor('reshape', x);
  const s = [...shape];
  const neg = s.indexOf(-1);
  if (neg >= 0) {
    if (s.indexOf(-1, neg + 1) >= 0) throw new OpError('reshape', `only one -1 allowed in ${fmtShape(shape)}`);
    const rest = sizeOf(s.filter((_, i) => i !== neg));
    if (rest === 0 || x.size % rest !== 0)
      throw new OpError('reshape', `cannot reshape ${fmtShape(x.shape)} to ${fmtShape(shape)}`);
    s[neg] = x.size / rest;
  }
  checkShape('reshape', s);
  if (sizeOf(s) !== x.size)
    throw new OpError('reshape', `cannot reshape ${fmtShape(x.shape)} (${x.size} elements) to ${fmtShape(shape)}`);
  const out = engine().view(x, s);
  engine().recordView('reshape', [x], { shape: s }, [out]);
  return out;
}

export function flatten(x: Tensor, startDim = 0, endDim = -1): Tensor {
  const a = normalizeAxis('flatten', startDim, x.rank === 0 ? [1] : x.shape),
    b = normalizeAxis('flatten', endDim, x.rank === 0 ? [1] : x.shape);
  const s = [...x.shape.slice(0, a), sizeOf(x.shape.slice(a, b + 1)), ...x.shape.slice(b + 1)];
  return reshape(x, s);
}

export function unsqueeze(x: Tensor, axis: number): Tensor {
  const a = normalizeAxis('unsqueeze', axis, x.rank + 1);
  return reshape(x, [...x.shape.slice(0, a), 1, ...x.shape.slice(a)]);
}

export function squeeze(x: Tensor, axis?: number): Tensor {
  if (axis === undefined)
    return reshape(
      x,
      x.shape.filter((d) => d !== 1),
    );
  const a = normalizeAxis('squeeze', axis, x.shape);
  if (x.shape[a] !== 1) throw new OpError('squeeze', `axis ${axis} of ${fmtShape(x.shape)} is not 1`);
  return reshape(
    x,
    x.shape.filter((_, i) => i !== a),
  );
}

/** Reorders axes (copies, as docs/design.md "Layout ops" decides). */
export function permute(x: Tensor, perm: readonly number[]): Tensor {
  assertTensor('permute', x);
  const p = perm.map((a) => normalizeAxis('permute', a, x.shape));
  if (p.length !== x.rank || new Set(p).size !== p.length) {
    throw new OpError('permute', `perm [${perm.join(', ')}] is not a permutation of the axes of ${fmtShape(x.shape)}`);
  }
  return run1('permute', [x], { perm: p });
}

export function transpose(x: Tensor, a = -2, b = -1): Tensor {
  const p = x.shape.map((_, i) => i);
  const i = normalizeAxis('transpose', a, x.shape),
    j = normalizeAxis('transpose', b, x.shape);
  [p[i], p[j]] = [p[j], p[i]];
  return permute(x, p);
}

/** The box [begin, begin + size); size -1 means "to the end". */
export function slice(x: Tensor, begin: readonly number[], size?: readonly number[]): Tensor {
  assertTensor('slice', x);
  if (begin.length !== x.rank || (size && size.length !== x.rank)) {
    throw new OpError('slice', `begin/size must have ${x.rank} entries for shape ${fmtShape(x.shape)}`);
  }
  const b = begin.map((v, i) => (v < 0 ? v + x.shape[i] : v));
  const s = (size ?? x.shape.map(() => -1)).map((v, i) => (v === -1 ? x.shape[i] - b[i] : v));
  for (let i = 0; i < x.rank; i++) {
    if (!Number.isInteger(b[i]) || !Number.isInteger(s[i]) || b[i] < 0 || s[i] < 0 || b[i] + s[i] > x.shape[i]) {
      throw new OpError(
        'slice',
        `box begin [${b.join(', ')}] size [${s.join(', ')}] is outside shape ${fmtShape(x.shape)}`,
      );
    }
  }
  return run1('slice', [x], { begin: b, size: s });
}

/** Constant padding; pads[d] = [before, after] for every axis. */
export function pad(x: Tensor, pads: readonly (readonly [number, number])[], value = 0): Tensor {
  assertTensor('pad', x);
  if (pads.length !== x.rank)
    throw new OpError('pad', `need ${x.rank} [before, after] pairs for shape ${fmtShape(x.shape)}, got ${pads.length}`);
  for (const [a, b] of pads) {
    if (!Number.isInteger(a) || !Number.isInteger(b) || a < 0 || b < 0) {
      throw new OpError(
        'pad',
        `padding must be non-negative integers, got ${JSON.stringify(pads)} for shape ${fmtShape(x.shape)}`,
      );
    }
  }
  return run1('pad', [x], { pads: pads.map((p): [number, number] => [p[0], p[1]]), value });
}

export function concat(xs: readonly Tensor[], axis = 0): Tensor {
  if (xs.length === 0) throw new OpError('concat', 'needs at least one tensor');
  xs.forEach((t, i) => assertTensor('concat', t, `tensor ${i}`));
  const a = normalizeAxis('concat', axis, xs[0].shape);
  for (const t of xs) {
    if (t.dtype !== xs[0].dtype) {
      throw new OpError('concat', `dtype mismatch: ${xs.map((q) => `${q.dtype} ${fmtShape(q.shape)}`).join(', ')}`);
    }
    if (t.rank !== xs[0].rank || t.shape.some((d, i) => i !== a && d !== xs[0].shape[i])) {
      throw new OpError('concat', `shapes ${xs.map((q) => fmtShape(q.shape)).join(', ')} differ outside axis ${a}`);
    }
  }
  return run1('concat', xs, { axis: a });
}

export function stack(xs: readonly Tensor[], axis = 0): Tensor {
  if (xs.length === 0) throw new OpError('stack', 'needs at least one tensor');
  for (const t of xs) {
    if (!shapesEqual(t.shape, xs[0].shape))
      throw new OpError('stack', `shapes differ: ${xs.map((q) => fmtShape(q.shape)).join(', ')}`);
  }
  const a = normalizeAxis('stack', axis, xs[0].rank + 1);
  return engine().tidy(() =>
    concat(
      xs.map((t) => unsqueeze(t, a)),
      a,
    ),
  );
}

/** x.index_select(axis, indices) with int32 indices. */
export function indexSelect(x: Tensor, axis: number, indices: Tensor | readonly number[]): Tensor {
  assertTensor('indexSelect', x);
  const a = normalizeAxis('indexSelect', axis, x.shape);
  if (indices instanceof Tensor) {
    checkIndices('indexSelect', indices, x.shape[a], a, x.shape);
    return run1('indexSelect', [x, indices], { axis: a });
  }
  // A host list is checked on the host, before it moves to x's backend, and
  // before Int32Array would truncate 1.5 to 1 and NaN to 0 without a word.
  checkIndexValues('indexSelect', indices, x.shape[a], a, x.shape);
  const host = Int32Array.from(indices);
  const idx = engine().fromValues(host, [host.length], 'int32', x.backend);
  const out = run1('indexSelect', [x, idx], { axis: a });
  idx.dispose();
  return out;
}

/**
 * Validates a 1-d int32 index tensor against an axis of length `n` (of
 * `shape`). The values are checked only where they can be read
 * synchronously (the cpu backend): indices that live on a GPU would need a
 * blocking read, so there the kernels clamp them into [0, n − 1] instead
 * (documented in @largo/gpu).
 */
function checkIndices(op: string, idx: Tensor, n: number, axis: number, shape: readonly number[]): void {
  assertTensor(op, idx, 'indices');
  if (idx.dtype !== 'int32' || idx.rank !== 1)
    throw new OpError(op, `indices must be a 1-d int32 tensor, got ${idx.dtype} ${fmtShape(idx.shape)}`);
  if (idx.backend.name === 'cpu') checkIndexValues(op, idx.dataSync(), n, axis, shape);
}

function checkIndexValues(
  op: string,
  values: ArrayLike<number>,
  n: number,
  axis: number,
  shape: readonly number[],
): void {
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (!Number.isInteger(v))
      throw new OpError(op, `index ${v} is not an integer (axis ${axis} of ${fmtShape(shape)})`);
    if (v < 0 || v >= n) throw new OpError(op, `index ${v} out of range for axis ${axis} of ${fmtShape(shape)}`);
  }
}

/** Zeros of `shape` with src added at `indices` along `axis` (the adjoint of indexSelect). */
export function indexAdd(src: Tensor, axis: number, indices: Tensor, shape: readonly number[]): Tensor {
  assertTensor('indexAdd', src);
  checkShape('indexAdd', shape);
  const a = normalizeAxis('indexAdd', axis, shape);
  checkIndices('indexAdd', indices, shape[a], a, shape);
  const expect = shape.map((d, i) => (i === a ? indices.size : d));
  if (!shapesEqual(src.shape, expect)) {
    throw new OpError(
      'indexAdd',
      `source ${fmtShape(src.shape)} does not match ${fmtShape(expect)} (output ${fmtShape(shape)}, ${indices.size} indices on axis ${a})`,
    );
  }
  return run1('indexAdd', [src, indices], { axis: a, shape: [...shape] });
}

/** Copy to a new storage (for when a caller must not share). */
export function clone(x: Tensor): Tensor {
  assertTensor('clone', x);
  return run1('slice', [x], { begin: x.shape.map(() => 0), size: [...x.shape] });
}

/** Broadcasts to `shape` by materializing (used by gradient rules). */
export function broadcastTo(x: Tensor, shape: readonly number[]): Tensor {
  assertTensor('broadcastTo', x);
  checkShape('broadcastTo', shape);
  const b = x.rank <= shape.length ? broadcastShapes('broadcastTo', x.shape, shape) : null;
  if (!b || !shapesEqual(b, shape))
    throw new OpError('broadcastTo', `cannot broadcast ${fmtShape(x.shape)} to ${fmtShape(shape)}`);
  return run1('broadcastTo', [x], { shape: [...shape] });
}
