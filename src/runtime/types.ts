/**
 * Tensor data as it crosses the runtime boundary: a dtype, a shape and a flat row-major typed array.
 * This is deliberately independent of onnxruntime's `Tensor` class so that graphs, train state, checkpoints and
 * worker messages can pass tensors around as plain, structured-cloneable objects.
 */

/** Element types the runtime accepts and returns. `bool` is stored one byte per element (0 or 1) in a Uint8Array. */
export type DType = 'float32' | 'float64' | 'int64' | 'int32' | 'bool' | 'uint8';

/** The typed arrays that back tensors. */
export type TypedArray = Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array;

/** A dense row-major tensor. `dims = []` is a scalar (one element). */
export interface TensorData {
  dtype: DType;
  dims: number[];
  data: TypedArray;
}

/** Every supported dtype, in a fixed order. */
export const DTYPES: readonly DType[] = ['float32', 'float64', 'int64', 'int32', 'bool', 'uint8'];

type TypedArrayCtor =
  | Float32ArrayConstructor
  | Float64ArrayConstructor
  | BigInt64ArrayConstructor
  | Int32ArrayConstructor
  | Uint8ArrayConstructor;

const CTORS: Record<DType, TypedArrayCtor> = {
  float32: Float32Array,
  float64: Float64Array,
  int64: BigInt64Array,
  int32: Int32Array,
  bool: Uint8Array,
  uint8: Uint8Array,
};

/** Bytes per element of each dtype. */
export const DTYPE_BYTES: Readonly<Record<DType, number>> = {
  float32: 4,
  float64: 8,
  int64: 8,
  int32: 4,
  bool: 1,
  uint8: 1,
};

/** Whether `x` names a supported dtype. */
export function isDType(x: unknown): x is DType {
  return typeof x === 'string' && Object.hasOwn(CTORS, x);
}

/** Number of elements of a shape: the product of its dims (1 for a scalar `[]`). */
export function numel(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}

/** A zero-filled typed array of `n` elements of `dtype`. */
export function allocTyped(dtype: DType, n: number): TypedArray {
  return new CTORS[dtype](n);
}

/** The typed-array class name a dtype must use, for error messages. */
function ctorName(dtype: DType): string {
  return CTORS[dtype].name;
}

function checkDims(dims: unknown, where: string): number[] {
  if (!Array.isArray(dims)) throw new Error(`${where}: dims must be an array of non-negative integers`);
  for (const d of dims) {
    if (typeof d !== 'number' || !Number.isInteger(d) || d < 0) {
      throw new Error(`${where}: dims must be non-negative integers, got [${dims.join(', ')}]`);
    }
  }
  return dims as number[];
}

/**
 * Validates an arbitrary value as a {@link TensorData} and returns it (same object).
 * Checks: known dtype, integer dims, typed-array class matching the dtype, element count = product of dims.
 * `where` names the tensor in error messages, e.g. `feed 'x' of session 'mlp/train'`.
 */
export function checkTensor(t: unknown, where: string): TensorData {
  if (typeof t !== 'object' || t === null) throw new Error(`${where}: expected a tensor {dtype, dims, data}`);
  const { dtype, dims, data } = t as Partial<TensorData>;
  if (!isDType(dtype)) throw new Error(`${where}: unknown dtype ${JSON.stringify(dtype)} (expected one of ${DTYPES.join(', ')})`);
  checkDims(dims, where);
  const ctor = CTORS[dtype];
  if (!(data instanceof ctor)) {
    const got = ArrayBuffer.isView(data) ? data.constructor.name : typeof data;
    throw new Error(`${where}: dtype ${dtype} needs a ${ctorName(dtype)}, got ${got}`);
  }
  const n = numel(dims!);
  if (data.length !== n) {
    throw new Error(`${where}: dims [${dims!.join(', ')}] hold ${n} elements but data has ${data.length}`);
  }
  return t as TensorData;
}

/**
 * Makes a tensor from a dtype, a shape and its data (not copied), validating that the typed array matches the
 * dtype and that `data.length` equals the product of `dims`.
 */
export function tensorData(dtype: DType, dims: readonly number[], data: TypedArray): TensorData {
  return checkTensor({ dtype, dims: [...dims], data }, 'tensorData');
}

/** A zero-filled tensor. */
export function zeros(dtype: DType, dims: readonly number[]): TensorData {
  checkDims([...dims], 'zeros');
  return { dtype, dims: [...dims], data: allocTyped(dtype, numel(dims)) };
}

/** A rank-0 (scalar) tensor holding `value`; for int64 the value must be a safe integer. */
export function scalar(dtype: 'float32' | 'float64' | 'int32' | 'int64', value: number): TensorData {
  switch (dtype) {
    case 'float32':
      return { dtype, dims: [], data: Float32Array.of(value) };
    case 'float64':
      return { dtype, dims: [], data: Float64Array.of(value) };
    case 'int32':
      return { dtype, dims: [], data: Int32Array.of(value) };
    case 'int64':
      if (!Number.isSafeInteger(value)) throw new Error(`scalar: int64 value must be a safe integer, got ${value}`);
      return { dtype, dims: [], data: BigInt64Array.of(BigInt(value)) };
  }
}

/** A deep copy whose typed array owns a fresh, exactly sized buffer. */
export function cloneTensor(t: TensorData): TensorData {
  return { dtype: t.dtype, dims: [...t.dims], data: t.data.slice() };
}

/**
 * Whether the typed array spans its whole (non-shared) ArrayBuffer, so the buffer can be transferred or handed
 * over without exposing or copying unrelated bytes (Node's Buffer pool hands out views into a shared 8 KB slab).
 */
export function ownsWholeBuffer(a: TypedArray): boolean {
  return a.byteOffset === 0 && a.byteLength === a.buffer.byteLength && a.buffer instanceof ArrayBuffer;
}

/** The raw bytes of a tensor as a view (no copy), sliced by byteOffset/byteLength. Platform byte order. */
export function tensorBytes(t: TensorData): Uint8Array {
  return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}

/**
 * Rebuilds a tensor from raw bytes (copied, so `bytes` may be a view into a larger or pooled buffer).
 * `where` names the source in errors.
 */
export function tensorFromBytes(dtype: DType, dims: readonly number[], bytes: Uint8Array, where = 'tensorFromBytes'): TensorData {
  if (!isDType(dtype)) throw new Error(`${where}: unknown dtype ${JSON.stringify(dtype)}`);
  checkDims([...dims], where);
  const n = numel(dims);
  const want = n * DTYPE_BYTES[dtype];
  if (bytes.byteLength !== want) {
    throw new Error(`${where}: ${dtype} [${dims.join(', ')}] needs ${want} bytes, got ${bytes.byteLength}`);
  }
  const data = allocTyped(dtype, n);
  new Uint8Array(data.buffer).set(bytes);
  return { dtype, dims: [...dims], data };
}

/** JSON form of a tensor: the bytes base64-encoded in little-endian order (the byte order of x86 and ARM). */
export interface TensorJSON {
  dtype: DType;
  dims: number[];
  base64: string;
}

/** Encodes a tensor as {@link TensorJSON}; exact for every dtype (no decimal round trip). */
export function tensorToJSON(t: TensorData): TensorJSON {
  const b = tensorBytes(t);
  return { dtype: t.dtype, dims: [...t.dims], base64: Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64') };
}

/** Decodes {@link TensorJSON}, validating every field; `where` names the source (file and field) in errors. */
export function tensorFromJSON(j: unknown, where: string): TensorData {
  if (typeof j !== 'object' || j === null) throw new Error(`${where}: expected {dtype, dims, base64}`);
  const { dtype, dims, base64 } = j as Partial<TensorJSON>;
  if (!isDType(dtype)) throw new Error(`${where}.dtype: unknown dtype ${JSON.stringify(dtype)}`);
  checkDims(dims, `${where}.dims`);
  if (typeof base64 !== 'string') throw new Error(`${where}.base64: expected a base64 string`);
  return tensorFromBytes(dtype, dims!, Buffer.from(base64, 'base64'), where);
}
