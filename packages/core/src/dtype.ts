import { OpError } from './errors.js';

/** Element types. float64 exists on the CPU backend for gradient checks and audits only. */
export type DType = 'float32' | 'float64' | 'int32' | 'uint8';

export type TypedArray = Float32Array | Float64Array | Int32Array | Uint8Array;

export const DTYPES: readonly DType[] = ['float32', 'float64', 'int32', 'uint8'];

export function arrayCtor(dtype: DType) {
  switch (dtype) {
    case 'float32':
      return Float32Array;
    case 'float64':
      return Float64Array;
    case 'int32':
      return Int32Array;
    case 'uint8':
      return Uint8Array;
    default:
      throw new Error(`unknown dtype '${String(dtype)}'`);
  }
}

export function newArray(dtype: DType, size: number): TypedArray {
  return new (arrayCtor(dtype))(size);
}

export function isFloat(dtype: DType): boolean {
  return dtype === 'float32' || dtype === 'float64';
}

export function dtypeOfArray(a: TypedArray): DType {
  if (a instanceof Float32Array) return 'float32';
  if (a instanceof Float64Array) return 'float64';
  if (a instanceof Int32Array) return 'int32';
  if (a instanceof Uint8Array) return 'uint8';
  throw new Error('unsupported typed array');
}

/** Result dtype of a binary op: floats win, the wider float wins; ints must agree. */
export function upcast(op: string, a: DType, b: DType): DType {
  if (a === b) return a;
  if (a === 'float64' || b === 'float64') return 'float64';
  if (a === 'float32' || b === 'float32') return 'float32';
  if ((a === 'int32' && b === 'uint8') || (a === 'uint8' && b === 'int32')) return 'int32';
  throw new OpError(op, `dtype mismatch ${a} vs ${b}`);
}
