import { flatIndex, multiIndex, refTensor, type RefTensor } from './types.js';

export function refPermute(x: RefTensor, perm: readonly number[]): RefTensor {
  const out = refTensor(perm.map((p) => x.shape[p]));
  for (let i = 0; i < x.data.length; i++) {
    const idx = multiIndex(x.shape, i);
    out.data[
      flatIndex(
        out.shape,
        perm.map((p) => idx[p]),
      )
    ] = x.data[i];
  }
  return out;
}

export function refSlice(x: RefTensor, begin: readonly number[], size: readonly number[]): RefTensor {
  const out = refTensor(size);
  for (let i = 0; i < out.data.length; i++) {
    const idx = multiIndex(size, i).map((v, d) => v + begin[d]);
    out.data[i] = x.data[flatIndex(x.shape, idx)];
  }
  return out;
}

export function refPad(x: RefTensor, pads: readonly (readonly [number, number])[], value = 0): RefTensor {
  const out = refTensor(x.shape.map((d, i) => d + pads[i][0] + pads[i][1]));
  out.data.fill(value);
  for (let i = 0; i < x.data.length; i++) {
    const idx = multiIndex(x.shape, i).map((v, d) => v + pads[d][0]);
    out.data[flatIndex(out.shape, idx)] = x.data[i];
  }
  return out;
}

export function refConcat(xs: readonly RefTensor[], axis: number): RefTensor {
  const shape = [...xs[0].shape];
  shape[axis] = xs.reduce((s, t) => s + t.shape[axis], 0);
  const out = refTensor(shape);
  let at = 0;
  for (const t of xs) {
    for (let i = 0; i < t.data.length; i++) {
      const idx = multiIndex(t.shape, i);
      idx[axis] += at;
      out.data[flatIndex(shape, idx)] = t.data[i];
    }
    at += t.shape[axis];
  }
  return out;
}

export function refIndexSelect(x: RefTensor, axis: number, indices: readonly number[]): RefTensor {
  const shape = [...x.shape];
  shape[axis] = indices.length;
  const out = refTensor(shape);
  for (let i = 0; i < out.data.length; i++) {
    const idx = multiIndex(shape, i);
    idx[axis] = indices[idx[axis]];
    out.data[i] = x.data[flatIndex(x.shape, idx)];
  }
  return out;
}

export function refBroadcastTo(x: RefTensor, shape: readonly number[]): RefTensor {
  const out = refTensor(shape);
  const off = shape.length - x.shape.length;
  for (let i = 0; i < out.data.length; i++) {
    const idx = multiIndex(shape, i);
    out.data[i] =
      x.data[
        flatIndex(
          x.shape,
          x.shape.map((d, k) => (d === 1 ? 0 : idx[k + off])),
        )
      ];
  }
  return out;
}
