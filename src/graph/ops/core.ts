/**
 * Shared helpers of the op functions: operand resolution, dtype checks, int64 constants and runtime shape
 * tensors for symbolic dims.
 */
import type { Graph, OutputSpec, AttrValue } from '../builder.ts';
import { attr } from '../builder.ts';
import {
  type DType,
  type Dim,
  type Tensor,
  describe,
  dimEq,
  formatShape,
  isFloat,
  isStatic,
} from '../tensor.ts';

/** A tensor operand or a JS number (turned into a scalar constant of the other operand's dtype). */
export type Operand = Tensor | number;

/** The graph of the first tensor among the operands; throws naming `op` if there is none or they differ. */
export function graphOf(op: string, ...xs: (Operand | null | undefined)[]): Graph {
  let g: Graph | undefined;
  for (const x of xs) {
    if (x === null || x === undefined || typeof x === 'number') continue;
    if (g && x.graph !== g) throw new Error(`${op}: operands belong to different graphs`);
    g = x.graph;
  }
  if (!g) throw new Error(`${op}: needs at least one tensor operand`);
  return g;
}

/** Resolves an operand to a tensor: numbers become scalar constants of `dtype`. */
export function asTensor(g: Graph, x: Operand, dtype: DType): Tensor {
  return typeof x === 'number' ? g.constant(x, dtype) : x;
}

/** Throws naming `op` unless all tensors share one dtype; returns it. */
export function sameDType(op: string, ...xs: Tensor[]): DType {
  const d = xs[0]!.dtype;
  for (const x of xs) {
    if (x.dtype !== d) throw new Error(`${op}: dtype mismatch: ${xs.map(describe).join(' vs ')}`);
  }
  return d;
}

/** Throws naming `op` unless `x` is float32/float64. */
export function requireFloat(op: string, x: Tensor): void {
  if (!isFloat(x.dtype)) throw new Error(`${op}: needs a float tensor, got ${describe(x)}`);
}

/** Adds a single-output node and returns its output. */
export function node1(
  g: Graph,
  opType: string,
  inputs: readonly (Tensor | null)[],
  out: OutputSpec,
  attrs: Record<string, AttrValue> = {},
): Tensor {
  return g.addNode(opType, inputs, [out], attrs)[0]!;
}

/** A 1-D int64 constant. */
export function i64(g: Graph, values: readonly number[]): Tensor {
  return g.constant(values, 'int64', [values.length]);
}

/** A scalar int64 constant. */
export function i64Scalar(g: Graph, value: number): Tensor {
  return g.constant(value, 'int64');
}

/** `Shape(x)` (optionally `x.shape[start:end]`) as an int64 1-D tensor. */
export function shapeOf(x: Tensor, start?: number, end?: number): Tensor {
  const g = x.graph;
  const rank = x.shape.length;
  const s = start === undefined ? 0 : start < 0 ? start + rank : start;
  const e = end === undefined ? rank : end < 0 ? end + rank : end;
  if (s < 0 || e > rank || s > e) throw new Error(`shape: range ${start}:${end} invalid for ${describe(x)}`);
  const outShape = [e - s];
  if (s === 0 && e === rank) return node1(g, 'Shape', [x], { dtype: 'int64', shape: outShape });
  if (g.opset >= 15) {
    const attrs: Record<string, AttrValue> = { start: attr.int(s) };
    if (e !== rank) attrs['end'] = attr.int(e);
    return node1(g, 'Shape', [x], { dtype: 'int64', shape: outShape }, attrs);
  }
  const full = node1(g, 'Shape', [x], { dtype: 'int64', shape: [rank] });
  return node1(g, 'Slice', [full, i64(g, [s]), i64(g, [e]), i64(g, [0])], { dtype: 'int64', shape: outShape });
}

/**
 * A runtime int64 1-D tensor holding `dims`. Static dims become constants; a symbolic dim is read with `Shape`
 * from the first `hints` tensor that has it (or from the tensor where the graph first saw it); a product dim
 * (`'batch*tokens'`) with no direct source is multiplied from its factors.
 */
export function dimsTensor(g: Graph, dims: readonly Dim[], hints: readonly Tensor[] = []): Tensor {
  if (isStatic(dims)) return i64(g, dims);
  for (const h of hints) {
    if (h.shape.length === dims.length && h.shape.every((d, i) => dimEq(d, dims[i]!))) return shapeOf(h);
  }
  const pieces: Tensor[] = [];
  let run: number[] = [];
  const flush = (): void => {
    if (run.length) pieces.push(i64(g, run));
    run = [];
  };
  for (const d of dims) {
    if (typeof d === 'number') {
      run.push(d);
      continue;
    }
    flush();
    pieces.push(symbolicDimTensor(g, d, hints));
  }
  flush();
  if (pieces.length === 1) return pieces[0]!;
  return node1(g, 'Concat', pieces, { dtype: 'int64', shape: [dims.length] }, { axis: attr.int(0) });
}

/** A 1-element int64 tensor with the runtime value of the symbolic dim `d`. */
export function symbolicDimTensor(g: Graph, d: string, hints: readonly Tensor[] = []): Tensor {
  for (const h of hints) {
    const axis = h.shape.findIndex((x) => dimEq(x, d));
    if (axis >= 0) return shapeOf(h, axis, axis + 1);
  }
  const src = g.symbolSource(d);
  if (src) return shapeOf(src.tensor, src.axis, src.axis + 1);
  const parts = d.split('*');
  if (parts.length > 1) {
    let acc: Tensor | undefined;
    for (const p of parts) {
      const t = /^\d+$/.test(p) ? i64(g, [Number(p)]) : symbolicDimTensor(g, p, hints);
      acc = acc ? node1(g, 'Mul', [acc, t], { dtype: 'int64', shape: [1] }) : t;
    }
    return acc!;
  }
  throw new Error(`cannot build the runtime value of symbolic dim '${d}': no tensor in the graph carries it`);
}

/** Checks that `x` has rank `rank` (or one of `ranks`), naming `op`. */
export function requireRank(op: string, x: Tensor, ...ranks: number[]): void {
  if (!ranks.includes(x.shape.length)) {
    throw new Error(`${op}: expected rank ${ranks.join(' or ')}, got ${describe(x)}`);
  }
}

/** Asserts two dims are equal, naming `op` and `what`. */
export function requireDimEq(op: string, what: string, a: Dim, b: Dim, sa: readonly Dim[], sb: readonly Dim[]): void {
  if (!dimEq(a, b)) {
    throw new Error(`${op}: ${what} mismatch (${a} vs ${b}) for shapes ${formatShape(sa)} and ${formatShape(sb)}`);
  }
}
