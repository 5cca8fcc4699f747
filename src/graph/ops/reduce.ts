/**
 * Reductions, softmax, arg-reductions, TopK and CumSum. Reduction axes are inputs or attributes depending on the
 * opset (ReduceSum: input since 13; ReduceMean/Max/Min: input since 18); the builder hides this.
 */
import { attr, type AttrValue } from '../builder.ts';
import { type Dim, type Tensor, describe, normAxes, normAxis } from '../tensor.ts';
import { i64, node1, requireFloat } from './core.ts';

/** Output shape of a reduction over `axes` (normalised). */
function reducedShape(shape: readonly Dim[], axes: readonly number[], keepdims: boolean): Dim[] {
  const out: Dim[] = [];
  shape.forEach((d, i) => {
    if (!axes.includes(i)) out.push(d);
    else if (keepdims) out.push(1);
  });
  return out;
}

function resolveAxes(op: string, x: Tensor, axes: number | readonly number[] | undefined): number[] {
  const rank = x.shape.length;
  if (axes === undefined) return Array.from({ length: rank }, (_, i) => i);
  return normAxes(op, typeof axes === 'number' ? [axes] : axes, rank);
}

/** Generic reduction node: axes as input from `inputSince`, else as attribute. */
function reduce(op: string, inputSince: number, x: Tensor, axes: number | readonly number[] | undefined, keepdims: boolean): Tensor {
  const g = x.graph;
  const ax = resolveAxes(op, x, axes);
  if (ax.length === 0) return x;
  const shape = reducedShape(x.shape, ax, keepdims);
  const attrs: Record<string, AttrValue> = { keepdims: attr.int(keepdims ? 1 : 0) };
  if (g.opset >= inputSince) return node1(g, op, [x, i64(g, ax)], { dtype: x.dtype, shape }, attrs);
  return node1(g, op, [x], { dtype: x.dtype, shape }, { ...attrs, axes: attr.ints(ax) });
}

/** Σ over `axes` (all axes when omitted; `[]` returns x unchanged). */
export function reduceSum(x: Tensor, axes?: number | readonly number[], keepdims = false): Tensor {
  return reduce('ReduceSum', 13, x, axes, keepdims);
}
/** Mean over `axes` (all axes when omitted). */
export function reduceMean(x: Tensor, axes?: number | readonly number[], keepdims = false): Tensor {
  requireFloat('ReduceMean', x);
  return reduce('ReduceMean', 18, x, axes, keepdims);
}
/** Max over `axes` (all axes when omitted). Gradient is shared equally among tied maxima. */
export function reduceMax(x: Tensor, axes?: number | readonly number[], keepdims = false): Tensor {
  return reduce('ReduceMax', 18, x, axes, keepdims);
}
/** Min over `axes` (all axes when omitted). Gradient is shared equally among tied minima. */
export function reduceMin(x: Tensor, axes?: number | readonly number[], keepdims = false): Tensor {
  return reduce('ReduceMin', 18, x, axes, keepdims);
}

/** softmax along one axis: eˣ / Σ eˣ. */
export function softmax(x: Tensor, axis = -1): Tensor {
  requireFloat('Softmax', x);
  const a = normAxis('Softmax', axis, x.shape.length);
  return node1(x.graph, 'Softmax', [x], { dtype: x.dtype, shape: x.shape }, { axis: attr.int(a) });
}

/** log-softmax along one axis: x − log Σ eˣ. */
export function logSoftmax(x: Tensor, axis = -1): Tensor {
  requireFloat('LogSoftmax', x);
  const a = normAxis('LogSoftmax', axis, x.shape.length);
  return node1(x.graph, 'LogSoftmax', [x], { dtype: x.dtype, shape: x.shape }, { axis: attr.int(a) });
}

/** Index of the maximum along `axis` (int64; first index on ties). */
export function argMax(x: Tensor, axis = -1, keepdims = false): Tensor {
  const a = normAxis('ArgMax', axis, x.shape.length);
  const shape = reducedShape(x.shape, [a], keepdims);
  return node1(x.graph, 'ArgMax', [x], { dtype: 'int64', shape }, { axis: attr.int(a), keepdims: attr.int(keepdims ? 1 : 0) });
}

/** Index of the minimum along `axis` (int64; first index on ties). */
export function argMin(x: Tensor, axis = -1, keepdims = false): Tensor {
  const a = normAxis('ArgMin', axis, x.shape.length);
  const shape = reducedShape(x.shape, [a], keepdims);
  return node1(x.graph, 'ArgMin', [x], { dtype: 'int64', shape }, { axis: attr.int(a), keepdims: attr.int(keepdims ? 1 : 0) });
}

/**
 * The `k` largest (or smallest) entries along `axis`, sorted. `indices` are int64 and not differentiable;
 * `values` are (gradient scatters back to the chosen positions).
 */
export function topk(
  x: Tensor,
  k: number,
  axis = -1,
  opts: { largest?: boolean; sorted?: boolean } = {},
): { values: Tensor; indices: Tensor } {
  const g = x.graph;
  const a = normAxis('TopK', axis, x.shape.length);
  const d = x.shape[a]!;
  if (!Number.isInteger(k) || k < 1 || (typeof d === 'number' && k > d)) {
    throw new Error(`TopK: k=${k} invalid for axis ${a} of ${describe(x)}`);
  }
  const shape = x.shape.map((s, i) => (i === a ? k : s));
  const [values, indices] = g.addNode(
    'TopK',
    [x, i64(g, [k])],
    [
      { dtype: x.dtype, shape },
      { dtype: 'int64', shape },
    ],
    {
      axis: attr.int(a),
      largest: attr.int(opts.largest === false ? 0 : 1),
      sorted: attr.int(opts.sorted === false ? 0 : 1),
    },
  );
  return { values: values!, indices: indices! };
}

/** Cumulative sum along `axis` (`exclusive`: shifted by one; `reverse`: from the end). */
export function cumsum(x: Tensor, axis: number, opts: { exclusive?: boolean; reverse?: boolean } = {}): Tensor {
  const g = x.graph;
  const a = normAxis('CumSum', axis, x.shape.length);
  return node1(g, 'CumSum', [x, g.constant(a, 'int64')], { dtype: x.dtype, shape: x.shape }, {
    exclusive: attr.int(opts.exclusive ? 1 : 0),
    reverse: attr.int(opts.reverse ? 1 : 0),
  });
}
