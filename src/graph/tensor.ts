/**
 * Tensor handles, element types and shape algebra of the graph builder.
 *
 * A `Tensor` is a symbolic value inside one `Graph`: it carries a name (the ONNX value name), an element type and
 * a shape. A dimension is a number (static) or a string (symbolic, e.g. `'batch'`). Symbolic dimensions may be
 * products written `'batch*tokens'` (factors sorted, an optional leading integer coefficient, e.g.
 * `'12*batch'`), so that reshapes which merge and split symbolic axes keep exact shapes.
 */
import type { Graph } from './builder.ts';

/** Element types the builder knows. */
export type DType = 'float32' | 'float64' | 'int64' | 'int32' | 'bool' | 'uint8';

/** A dimension: a static size or a symbolic name (`'batch'`, `'tokens'`, `'batch*tokens'`). */
export type Dim = number | string;

/** A value in a graph. Created by `Graph.input/param/constant` and by the op functions. */
export interface Tensor {
  readonly graph: Graph;
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly Dim[];
}

/** Typed arrays that can hold tensor data. `bool` and `uint8` data use `Uint8Array`. */
export type ArrayData = Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array;

/** ONNX `TensorProto.DataType` codes. */
export const ONNX_DTYPE: Readonly<Record<DType, number>> = {
  float32: 1,
  uint8: 2,
  int32: 6,
  int64: 7,
  bool: 9,
  float64: 11,
};

/** Bytes per element. */
export const DTYPE_BYTES: Readonly<Record<DType, number>> = {
  float32: 4,
  float64: 8,
  int64: 8,
  int32: 4,
  bool: 1,
  uint8: 1,
};

/** True for the floating point types (the only ones gradients flow through). */
export function isFloat(dtype: DType): boolean {
  return dtype === 'float32' || dtype === 'float64';
}

/** The element type that a typed array stores (`Uint8Array` maps to `uint8`). */
export function dtypeOfArray(data: ArrayData): DType {
  if (data instanceof Float32Array) return 'float32';
  if (data instanceof Float64Array) return 'float64';
  if (data instanceof BigInt64Array) return 'int64';
  if (data instanceof Int32Array) return 'int32';
  if (data instanceof Uint8Array) return 'uint8';
  throw new Error('unsupported typed array for tensor data');
}

/** Allocates a typed array of `n` elements for `dtype`. */
export function allocData(dtype: DType, n: number): ArrayData {
  switch (dtype) {
    case 'float32':
      return new Float32Array(n);
    case 'float64':
      return new Float64Array(n);
    case 'int64':
      return new BigInt64Array(n);
    case 'int32':
      return new Int32Array(n);
    case 'bool':
    case 'uint8':
      return new Uint8Array(n);
  }
}

/** Converts plain numbers to a typed array of `dtype` (ints are checked to be integers). */
export function toData(values: readonly number[], dtype: DType): ArrayData {
  const out = allocData(dtype, values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (dtype === 'int64') {
      if (!Number.isInteger(v)) throw new Error(`int64 constant needs integers, got ${v}`);
      (out as BigInt64Array)[i] = BigInt(v);
    } else if (dtype === 'bool') {
      (out as Uint8Array)[i] = v ? 1 : 0;
    } else {
      if ((dtype === 'int32' || dtype === 'uint8') && !Number.isInteger(v)) {
        throw new Error(`${dtype} constant needs integers, got ${v}`);
      }
      (out as Float64Array)[i] = v;
    }
  }
  return out;
}

/** Reads element `i` of tensor data as a JS number. */
export function dataAt(data: ArrayData, i: number): number {
  const v = data[i];
  if (v === undefined) throw new Error(`tensor data index ${i} out of range (${data.length})`);
  return typeof v === 'bigint' ? Number(v) : v;
}

/** `[2,'batch',3]` → `"[2,batch,3]"` for error messages. */
export function formatShape(shape: readonly Dim[]): string {
  return `[${shape.join(',')}]`;
}

/** Describes a tensor for error messages: `name float32[2,3]`. */
export function describe(t: Tensor): string {
  return `'${t.name}' ${t.dtype}${formatShape(t.shape)}`;
}

/** Product of static dims, or `null` if any dim is symbolic. */
export function staticSize(shape: readonly Dim[]): number | null {
  let n = 1;
  for (const d of shape) {
    if (typeof d !== 'number') return null;
    n *= d;
  }
  return n;
}

/** True if every dim is a number. */
export function isStatic(shape: readonly Dim[]): shape is readonly number[] {
  return shape.every((d) => typeof d === 'number');
}

// ---------------------------------------------------------------------------------------------------------------
// Symbolic dim algebra: a dim is coef * Π factors. Strings are canonical: factors sorted, '*'-joined, coefficient
// first when it is not 1.

interface Monomial {
  coef: number;
  factors: string[];
}

function toMonomial(d: Dim): Monomial {
  if (typeof d === 'number') return { coef: d, factors: [] };
  let coef = 1;
  const factors: string[] = [];
  for (const part of d.split('*')) {
    if (/^\d+$/.test(part)) coef *= Number(part);
    else factors.push(part);
  }
  factors.sort();
  return { coef, factors };
}

function fromMonomial(m: Monomial): Dim {
  if (m.factors.length === 0) return m.coef;
  const parts = m.factors.slice().sort();
  return m.coef === 1 ? parts.join('*') : `${m.coef}*${parts.join('*')}`;
}

/** Canonical form of a dim (`'tokens*batch'` → `'batch*tokens'`). */
export function canonicalDim(d: Dim): Dim {
  return typeof d === 'number' ? d : fromMonomial(toMonomial(d));
}

/**
 * True if `a` and `b` may be the same size at run time under broadcasting's assumption: equal, or one symbolic
 * and the other a number > 1 (see `broadcastShapes`).
 */
export function dimCompatible(a: Dim, b: Dim): boolean {
  if (dimEq(a, b)) return true;
  return (typeof a === 'string' && typeof b === 'number' && b > 1) || (typeof b === 'string' && typeof a === 'number' && a > 1);
}

/** Dim equality (numbers equal, or canonical symbolic forms equal). */
export function dimEq(a: Dim, b: Dim): boolean {
  if (typeof a === 'number' && typeof b === 'number') return a === b;
  if (typeof a !== typeof b) return false;
  return canonicalDim(a) === canonicalDim(b);
}

/** Shape equality, dim by dim. */
export function shapeEq(a: readonly Dim[], b: readonly Dim[]): boolean {
  return a.length === b.length && a.every((d, i) => dimEq(d, b[i]!));
}

/** Product of dims (symbolic-aware). */
export function mulDims(dims: readonly Dim[]): Dim {
  const m: Monomial = { coef: 1, factors: [] };
  for (const d of dims) {
    const x = toMonomial(d);
    m.coef *= x.coef;
    m.factors.push(...x.factors);
  }
  if (m.coef === 0) return 0;
  return fromMonomial(m);
}

/** Exact quotient a / b of dims, or `null` when it cannot be expressed (factor missing or not divisible). */
export function divDims(a: Dim, b: Dim): Dim | null {
  const x = toMonomial(a);
  const y = toMonomial(b);
  if (y.coef === 0 || x.coef % y.coef !== 0) return null;
  const rest = x.factors.slice();
  for (const f of y.factors) {
    const i = rest.indexOf(f);
    if (i < 0) return null;
    rest.splice(i, 1);
  }
  return fromMonomial({ coef: x.coef / y.coef, factors: rest });
}

/** Normalises a possibly negative axis for a tensor of rank `rank`; throws naming `op` when out of range. */
export function normAxis(op: string, axis: number, rank: number): number {
  if (!Number.isInteger(axis) || axis < -rank || axis >= rank) {
    throw new Error(`${op}: axis ${axis} out of range for rank ${rank}`);
  }
  return axis < 0 ? axis + rank : axis;
}

/** Normalises and checks a list of axes (no duplicates). */
export function normAxes(op: string, axes: readonly number[], rank: number): number[] {
  const out = axes.map((a) => normAxis(op, a, rank));
  if (new Set(out).size !== out.length) throw new Error(`${op}: duplicate axes ${JSON.stringify(axes)}`);
  return out;
}

/**
 * Numpy (multidirectional) broadcasting of two shapes. Rules per aligned axis: equal dims stay; a 1 takes the
 * other dim; a symbolic dim against a number n > 1 gives n and is *assumed to equal n at run time* (not 1: the
 * gradient is not reduced over that axis); anything else (two different numbers, two different symbolic names)
 * throws, naming `op`.
 */
export function broadcastShapes(op: string, a: readonly Dim[], b: readonly Dim[]): Dim[] {
  const rank = Math.max(a.length, b.length);
  const out: Dim[] = [];
  for (let i = 0; i < rank; i++) {
    const da = i < rank - a.length ? 1 : a[i - (rank - a.length)]!;
    const db = i < rank - b.length ? 1 : b[i - (rank - b.length)]!;
    if (dimEq(da, db)) out.push(canonicalDim(da));
    else if (da === 1) out.push(canonicalDim(db));
    else if (db === 1) out.push(canonicalDim(da));
    else if (typeof da === 'string' && typeof db === 'number') out.push(db);
    else if (typeof db === 'string' && typeof da === 'number') out.push(da);
    else throw new Error(`${op}: shapes ${formatShape(a)} and ${formatShape(b)} do not broadcast (axis ${i})`);
  }
  return out;
}

/** Broadcasts any number of shapes (see `broadcastShapes`). */
export function broadcastAll(op: string, shapes: readonly (readonly Dim[])[]): Dim[] {
  let out: Dim[] = [];
  for (const s of shapes) out = broadcastShapes(op, out, s);
  return out;
}
