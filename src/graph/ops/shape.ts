/**
 * Shape and indexing ops: reshape, transpose, (un)squeeze, concat, split, slice, pad, gather/scatter, expand,
 * shape, constantOfShape, range, oneHot. Axes/sizes/pads are inputs in opset 13+; the builder makes the int64
 * constants.
 */
import { attr, type Graph } from '../builder.ts';
import {
  type DType,
  type Dim,
  type Tensor,
  ONNX_DTYPE,
  broadcastShapes,
  describe,
  dimEq,
  divDims,
  formatShape,
  isStatic,
  mulDims,
  normAxes,
  normAxis,
  toData,
} from '../tensor.ts';
import { dimsTensor, graphOf, i64, node1, sameDType, shapeOf, symbolicDimTensor } from './core.ts';

/** Marks "to the end" in slice bounds (`Infinity` is accepted and mapped to it). */
export const SLICE_END = Number.MAX_SAFE_INTEGER;

/**
 * Reshape. `shape` entries: a positive number, `-1` (inferred, at most one), `0` (copy the input dim at that
 * index) or a symbolic name (read at run time from a tensor that carries it). A 1-D int64 tensor can be given
 * instead, together with the resulting `outShape`.
 */
export function reshape(x: Tensor, shape: readonly Dim[] | Tensor, outShape?: readonly Dim[]): Tensor {
  const g = x.graph;
  if (!Array.isArray(shape)) {
    const st = shape as Tensor;
    if (st.dtype !== 'int64' || st.shape.length !== 1) throw new Error(`Reshape: shape tensor must be int64 1-D, got ${describe(st)}`);
    if (!outShape) throw new Error('Reshape: a shape tensor needs outShape');
    return node1(g, 'Reshape', [x, st], { dtype: x.dtype, shape: outShape });
  }
  const target = shape as readonly Dim[];
  const minus = target.filter((d) => d === -1).length;
  if (minus > 1) throw new Error(`Reshape: more than one -1 in ${formatShape(target)}`);
  const out: Dim[] = target.map((d, i) => {
    if (d === 0) {
      if (i >= x.shape.length) throw new Error(`Reshape: 0 at index ${i} but input ${describe(x)} has rank ${x.shape.length}`);
      return x.shape[i]!;
    }
    if (typeof d === 'number' && (d < -1 || !Number.isInteger(d))) throw new Error(`Reshape: invalid dim ${d} in ${formatShape(target)}`);
    return d;
  });
  const total = mulDims(x.shape);
  const known = mulDims(out.filter((d) => d !== -1));
  if (minus === 1) {
    const q = divDims(total, known);
    if (q === null && typeof total === 'number' && typeof known === 'number') {
      throw new Error(`Reshape: cannot reshape ${describe(x)} to ${formatShape(target)}`);
    }
    const i = out.indexOf(-1);
    out[i] = q ?? g.uniqueName('reshape') + ':dim';
  } else {
    const q = divDims(total, known);
    if ((typeof total === 'number' && typeof known === 'number' && total !== known) || (typeof q === 'number' && q !== 1)) {
      throw new Error(`Reshape: cannot reshape ${describe(x)} (${total} elements) to ${formatShape(target)} (${known})`);
    }
  }
  // Materialise the shape: numbers, -1 and 0 go as they are; a symbolic dim at the same index as in x becomes 0.
  const spec: Dim[] = target.map((d, i) => (typeof d === 'string' && i < x.shape.length && dimEq(x.shape[i]!, d) ? 0 : d));
  let st: Tensor;
  if (isStatic(spec)) st = i64(g, spec);
  else {
    const pieces: Tensor[] = [];
    let run: number[] = [];
    for (const d of spec) {
      if (typeof d === 'number') run.push(d);
      else {
        if (run.length) pieces.push(i64(g, run));
        run = [];
        pieces.push(symbolicDimTensor(g, d, [x]));
      }
    }
    if (run.length) pieces.push(i64(g, run));
    st = pieces.length === 1 ? pieces[0]! : node1(g, 'Concat', pieces, { dtype: 'int64', shape: [spec.length] }, { axis: attr.int(0) });
  }
  return node1(g, 'Reshape', [x, st], { dtype: x.dtype, shape: out });
}

/** Permutes axes (reverses them when `perm` is omitted). */
export function transpose(x: Tensor, perm?: readonly number[]): Tensor {
  const rank = x.shape.length;
  const p = perm ? [...perm] : Array.from({ length: rank }, (_, i) => rank - 1 - i);
  if (p.length !== rank || [...p].sort((a, b) => a - b).some((v, i) => v !== i)) {
    throw new Error(`Transpose: perm ${JSON.stringify(perm)} invalid for ${describe(x)}`);
  }
  return node1(x.graph, 'Transpose', [x], { dtype: x.dtype, shape: p.map((i) => x.shape[i]!) }, { perm: attr.ints(p) });
}

/** Inserts size-1 axes at `axes` (positions in the output). */
export function unsqueeze(x: Tensor, axes: number | readonly number[]): Tensor {
  const g = x.graph;
  const list = typeof axes === 'number' ? [axes] : axes;
  const rank = x.shape.length + list.length;
  const ax = normAxes('Unsqueeze', list, rank).sort((a, b) => a - b);
  const shape: Dim[] = [];
  let j = 0;
  for (let i = 0; i < rank; i++) shape.push(ax.includes(i) ? 1 : x.shape[j++]!);
  return node1(g, 'Unsqueeze', [x, i64(g, ax)], { dtype: x.dtype, shape });
}

/** Removes size-1 axes (`axes` omitted: every static 1). */
export function squeeze(x: Tensor, axes?: number | readonly number[]): Tensor {
  const g = x.graph;
  const rank = x.shape.length;
  const ax =
    axes === undefined
      ? x.shape.flatMap((d, i) => (d === 1 ? [i] : []))
      : normAxes('Squeeze', typeof axes === 'number' ? [axes] : axes, rank);
  for (const a of ax) {
    if (x.shape[a] !== 1) throw new Error(`Squeeze: axis ${a} of ${describe(x)} is not 1`);
  }
  if (ax.length === 0) return x;
  const shape = x.shape.filter((_, i) => !ax.includes(i));
  return node1(g, 'Squeeze', [x, i64(g, ax)], { dtype: x.dtype, shape });
}

/** Joins tensors along `axis` (other dims must match). */
export function concat(xs: readonly Tensor[], axis: number): Tensor {
  if (xs.length === 0) throw new Error('Concat: no tensors');
  const g = graphOf('Concat', ...xs);
  const first = xs[0]!;
  const rank = first.shape.length;
  const a = normAxis('Concat', axis, rank);
  sameDType('Concat', ...xs);
  for (const x of xs) {
    if (x.shape.length !== rank) throw new Error(`Concat: rank mismatch: ${xs.map(describe).join(', ')}`);
    x.shape.forEach((d, i) => {
      if (i !== a && !dimEq(d, first.shape[i]!)) throw new Error(`Concat: dim ${i} mismatch: ${xs.map(describe).join(', ')}`);
    });
  }
  const parts = xs.map((x) => x.shape[a]!);
  const total: Dim = isStatic(parts) ? parts.reduce((s: number, v) => s + Number(v), 0) : g.uniqueName('concat') + ':dim';
  if (xs.length === 1) return xs[0]!;
  const shape = first.shape.map((d, i) => (i === a ? total : d));
  return node1(g, 'Concat', xs, { dtype: first.dtype, shape }, { axis: attr.int(a) });
}

/** Splits `x` along `axis` into pieces of the given sizes. */
export function split(x: Tensor, sizes: readonly number[], axis: number): Tensor[] {
  const g = x.graph;
  const a = normAxis('Split', axis, x.shape.length);
  const d = x.shape[a]!;
  const sum = sizes.reduce((s, v) => s + v, 0);
  if (sizes.some((v) => !Number.isInteger(v) || v < 0) || (typeof d === 'number' && sum !== d)) {
    throw new Error(`Split: sizes ${JSON.stringify(sizes)} do not split axis ${a} of ${describe(x)}`);
  }
  const outs = sizes.map((s) => ({ dtype: x.dtype, shape: x.shape.map((v, i) => (i === a ? s : v)) }));
  return g.addNode('Split', [x, i64(g, sizes)], outs, { axis: attr.int(a) });
}

/** Number of elements selected by a slice on a static dim (ONNX clamping rules). */
export function sliceLength(dim: number, start: number, end: number, step: number): { start: number; count: number } {
  let s = start < 0 ? start + dim : start;
  let e = end < 0 ? end + dim : end;
  if (step > 0) {
    s = Math.min(Math.max(s, 0), dim);
    e = Math.min(Math.max(e, 0), dim);
    return { start: s, count: Math.max(0, Math.ceil((e - s) / step)) };
  }
  s = Math.min(Math.max(s, 0), dim - 1);
  e = Math.min(Math.max(e, -1), dim - 1);
  return { start: s, count: Math.max(0, Math.ceil((e - s) / step)) };
}

/**
 * x[starts:ends:steps] on `axes` (default 0..n-1). Bounds may be negative; `Infinity`/`SLICE_END` means "to the
 * end". On a symbolic dim with step 1 the result is exact when bounds allow (e.g. `[0,1)`, `[-3,end)`).
 */
export function slice(
  x: Tensor,
  starts: readonly number[],
  ends: readonly number[],
  axes?: readonly number[],
  steps?: readonly number[],
): Tensor {
  const g = x.graph;
  const rank = x.shape.length;
  const ax = normAxes('Slice', axes ?? starts.map((_, i) => i), rank);
  const st = steps ?? starts.map(() => 1);
  if (starts.length !== ends.length || starts.length !== ax.length || st.length !== ax.length) {
    throw new Error(`Slice: starts/ends/axes/steps lengths differ on ${describe(x)}`);
  }
  const clampInf = (v: number): number => (v === Infinity ? SLICE_END : v === -Infinity ? -SLICE_END : v);
  const s0 = starts.map(clampInf);
  const e0 = ends.map(clampInf);
  const shape = [...x.shape];
  ax.forEach((a, k) => {
    const d = x.shape[a]!;
    const s = s0[k]!;
    const e = e0[k]!;
    const step = st[k]!;
    if (!Number.isInteger(s) || !Number.isInteger(e) || !Number.isInteger(step) || step === 0) {
      throw new Error(`Slice: bad bounds ${s}:${e}:${step} on ${describe(x)}`);
    }
    if (typeof d === 'number') shape[a] = sliceLength(d, s, e, step).count;
    else shape[a] = symbolicSliceLength(d, s, e, step) ?? g.uniqueName('slice') + ':dim';
  });
  return node1(g, 'Slice', [x, i64(g, s0), i64(g, e0), i64(g, ax), i64(g, st)], { dtype: x.dtype, shape });
}

/** Result length of a step-1 slice on a symbolic dim, when it does not depend on the dim (or keeps it). */
function symbolicSliceLength(d: string, s: number, e: number, step: number): Dim | null {
  if (step !== 1) return null;
  const toEnd = e >= SLICE_END;
  if (s === 0 && toEnd) return d;
  if (s >= 0 && e >= 0 && !toEnd) return Math.max(0, e - s);
  if (s < 0 && toEnd) return -s;
  if (s < 0 && e < 0) return Math.max(0, e - s);
  return null;
}

/**
 * Pads with a constant. `pads` is ONNX order `[b_0, ..., b_{n-1}, e_0, ..., e_{n-1}]` (numbers), or an int64
 * tensor with the resulting `outShape`.
 */
export function pad(x: Tensor, pads: readonly number[] | Tensor, value = 0, outShape?: readonly Dim[]): Tensor {
  const g = x.graph;
  const rank = x.shape.length;
  const cval = g.constant(value, x.dtype);
  if (!Array.isArray(pads)) {
    if (!outShape) throw new Error('Pad: a pads tensor needs outShape');
    return node1(g, 'Pad', [x, pads as Tensor, cval], { dtype: x.dtype, shape: outShape });
  }
  const p = pads as readonly number[];
  if (p.length !== 2 * rank || !p.every(Number.isInteger)) throw new Error(`Pad: pads ${JSON.stringify(p)} invalid for ${describe(x)}`);
  const shape = x.shape.map((d, i) => {
    const extra = p[i]! + p[i + rank]!;
    if (extra === 0) return d;
    if (typeof d === 'number') {
      if (d + extra < 0) throw new Error(`Pad: negative size on axis ${i} of ${describe(x)}`);
      return d + extra;
    }
    return g.uniqueName('pad') + ':dim';
  });
  return node1(g, 'Pad', [x, i64(g, p), cval], { dtype: x.dtype, shape });
}

/** Takes entries of `x` along `axis` at `indices` (int64/int32; negative counts from the end). */
export function gather(x: Tensor, indices: Tensor, axis = 0): Tensor {
  const g = graphOf('Gather', x, indices);
  const a = normAxis('Gather', axis, x.shape.length);
  if (indices.dtype !== 'int64' && indices.dtype !== 'int32') throw new Error(`Gather: indices must be int64/int32, got ${describe(indices)}`);
  const shape = [...x.shape.slice(0, a), ...indices.shape, ...x.shape.slice(a + 1)];
  return node1(g, 'Gather', [x, indices], { dtype: x.dtype, shape }, { axis: attr.int(a) });
}

/** out[i][j][k] = x[i][idx[i][j][k]][k] for axis 1 (and so on): indices have the rank of x. */
export function gatherElements(x: Tensor, indices: Tensor, axis: number): Tensor {
  const g = graphOf('GatherElements', x, indices);
  const a = normAxis('GatherElements', axis, x.shape.length);
  if (indices.dtype !== 'int64' && indices.dtype !== 'int32') throw new Error(`GatherElements: indices must be int64/int32, got ${describe(indices)}`);
  if (indices.shape.length !== x.shape.length) throw new Error(`GatherElements: rank mismatch ${describe(x)} vs ${describe(indices)}`);
  return node1(g, 'GatherElements', [x, indices], { dtype: x.dtype, shape: indices.shape }, { axis: attr.int(a) });
}

/**
 * Copy of `data` with `updates` written (or added, `reduction: 'add'`) at `indices` along `axis`. With
 * 'none' and duplicate indices the result is unspecified (and so is its gradient).
 */
export function scatterElements(
  data: Tensor,
  indices: Tensor,
  updates: Tensor,
  axis: number,
  reduction: 'none' | 'add' = 'none',
): Tensor {
  const g = graphOf('ScatterElements', data, indices, updates);
  const a = normAxis('ScatterElements', axis, data.shape.length);
  sameDType('ScatterElements', data, updates);
  if (indices.dtype !== 'int64' && indices.dtype !== 'int32') throw new Error(`ScatterElements: indices must be int64/int32, got ${describe(indices)}`);
  if (indices.shape.length !== data.shape.length || !indices.shape.every((d, i) => dimEq(d, updates.shape[i]!)) || updates.shape.length !== indices.shape.length) {
    throw new Error(`ScatterElements: shapes ${describe(data)}, ${describe(indices)}, ${describe(updates)} do not match`);
  }
  const attrs = { axis: attr.int(a), ...(reduction !== 'none' ? { reduction: attr.string(reduction) } : {}) };
  if (reduction !== 'none' && g.opset < 16) throw new Error(`ScatterElements: reduction '${reduction}' needs opset >= 16`);
  return node1(g, 'ScatterElements', [data, indices, updates], { dtype: data.dtype, shape: data.shape }, attrs);
}

/** Broadcasts `x` to `shape` (numpy rules; dims may be symbolic). A shape tensor needs `outShape`. */
export function expand(x: Tensor, shape: readonly Dim[] | Tensor, outShape?: readonly Dim[]): Tensor {
  const g = x.graph;
  if (!Array.isArray(shape)) {
    if (!outShape) throw new Error('Expand: a shape tensor needs outShape');
    return node1(g, 'Expand', [x, shape as Tensor], { dtype: x.dtype, shape: broadcastShapes('Expand', x.shape, outShape) });
  }
  const dims = shape as readonly Dim[];
  const out = broadcastShapes('Expand', x.shape, dims);
  return node1(g, 'Expand', [x, dimsTensor(g, dims, [x])], { dtype: x.dtype, shape: out });
}

/** The runtime shape of `x` (int64 1-D), optionally only `x.shape[start:end]`. */
export function shape(x: Tensor, start?: number, end?: number): Tensor {
  return shapeOf(x, start, end);
}

/** The number of elements of `x` (int64 scalar). */
export function size(x: Tensor): Tensor {
  return node1(x.graph, 'Size', [x], { dtype: 'int64', shape: [] });
}

/** A tensor of `shape` filled with `value` (computed at run time; symbolic dims allowed). */
export function constantOfShape(
  g: Graph,
  shape: readonly Dim[] | Tensor,
  value: number,
  dtype: DType,
  outShape?: readonly Dim[],
): Tensor {
  let st: Tensor;
  let out: readonly Dim[];
  if (Array.isArray(shape)) {
    out = shape as readonly Dim[];
    st = dimsTensor(g, out);
  } else {
    st = shape as Tensor;
    if (!outShape) throw new Error('ConstantOfShape: a shape tensor needs outShape');
    out = outShape;
  }
  return node1(g, 'ConstantOfShape', [st], { dtype, shape: out }, { value: attr.tensor(dtype, [1], toData([value], dtype)) });
}

/** Zeros with the shape and dtype of `x` (built at run time, no initializer). */
export function zerosLike(x: Tensor, dtype: DType = x.dtype): Tensor {
  return node1(x.graph, 'ConstantOfShape', [shapeOf(x)], { dtype, shape: x.shape }, { value: attr.tensor(dtype, [1], toData([0], dtype)) });
}

/** Ones with the shape and dtype of `x`. */
export function onesLike(x: Tensor, dtype: DType = x.dtype): Tensor {
  return node1(x.graph, 'ConstantOfShape', [shapeOf(x)], { dtype, shape: x.shape }, { value: attr.tensor(dtype, [1], toData([1], dtype)) });
}

/** [start, start+delta, ...) below `limit` as a 1-D tensor (int64 by default). */
export function range(g: Graph, start: number, limit: number, delta = 1, dtype: DType = 'int64'): Tensor {
  if (delta === 0) throw new Error('Range: delta 0');
  const n = Math.max(Math.ceil((limit - start) / delta), 0);
  return node1(g, 'Range', [g.constant(start, dtype), g.constant(limit, dtype), g.constant(delta, dtype)], { dtype, shape: [n] });
}

/** One-hot encoding of int indices with `depth` classes along a new last axis (`on`/`off` values). */
export function oneHot(indices: Tensor, depth: number, dtype: DType = 'float32', opts: { on?: number; off?: number } = {}): Tensor {
  const g = indices.graph;
  if (indices.dtype !== 'int64' && indices.dtype !== 'int32') throw new Error(`OneHot: indices must be int64/int32, got ${describe(indices)}`);
  if (!Number.isInteger(depth) || depth < 1) throw new Error(`OneHot: depth ${depth} invalid`);
  const values = g.constant([opts.off ?? 0, opts.on ?? 1], dtype, [2]);
  return node1(g, 'OneHot', [indices, g.constant(depth, 'int64'), values], { dtype, shape: [...indices.shape, depth] }, { axis: attr.int(-1) });
}

/** ONNX code of a dtype (for Cast-like attributes in custom nodes). */
export function onnxDType(dtype: DType): number {
  return ONNX_DTYPE[dtype];
}
