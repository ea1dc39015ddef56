/**
 * The only place where @largo/datasets touches the tensor engine: everything
 * else works on plain typed arrays, so loaders and preprocessing can be
 * tested (and used) without a backend.
 */
import { tensor, type Tensor } from '@largo/core';

export type { Tensor };

export type TensorData = Float32Array | Int32Array | Uint8Array | Float64Array;

/** Wrap a typed array as a tensor of `shape` (dtype from the array). */
export function toTensor(data: TensorData, shape: readonly number[]): Tensor {
  return tensor(data, shape);
}
