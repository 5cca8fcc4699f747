/**
 * VJP rules of shape and indexing ops. Gradients of index-selecting ops are scattered back with
 * ScatterElements (reduction 'add' where indices may repeat, which needs opset ≥ 16).
 */
import { attr } from '../builder.ts';
import { type Dim, type Tensor, formatShape, isStatic } from '../tensor.ts';
import { i64, node1, shapeOf, dimsTensor } from '../ops/core.ts';
import {
  SLICE_END,
  concat,
  expand,
  gatherElements,
  pad,
  reshape,
  scatterElements,
  sliceLength,
  split,
  squeeze,
  transpose,
  unsqueeze,
  zerosLike,
  constantOfShape,
  slice,
} from '../ops/shape.ts';
import { sumToShape } from '../ops/broadcast.ts';
import { registerVjp, type VjpContext } from './registry.ts';

// Reshape: g back to the input shape.
registerVjp('Reshape', (ctx) => {
  const x = ctx.input(0);
  return [reshape(ctx.gradOutputs[0]!, shapeOf(x), x.shape)];
}, { inputs: [0] });

// Transpose: inverse permutation.
registerVjp('Transpose', (ctx) => {
  const rank = ctx.input(0).shape.length;
  const perm = ctx.attrInts('perm') ?? Array.from({ length: rank }, (_, i) => rank - 1 - i);
  const inv = new Array<number>(rank);
  perm.forEach((p, i) => (inv[p] = i));
  return [transpose(ctx.gradOutputs[0]!, inv)];
});

// Unsqueeze ↔ Squeeze.
registerVjp('Unsqueeze', (ctx) => {
  const axes = ctx.constInts(1) ?? ctx.attrInts('axes')!;
  return [squeeze(ctx.gradOutputs[0]!, axes)];
}, { inputs: [0] });
registerVjp('Squeeze', (ctx) => {
  const x = ctx.input(0);
  const axes = ctx.constInts(1) ?? ctx.attrInts('axes');
  if (!axes) return [reshape(ctx.gradOutputs[0]!, shapeOf(x), x.shape)];
  return [unsqueeze(ctx.gradOutputs[0]!, axes.map((a) => (a < 0 ? a + x.shape.length : a)))];
}, { inputs: [0] });

// Expand: sum over the broadcast axes.
registerVjp('Expand', (ctx) => [sumToShape(ctx.gradOutputs[0]!, ctx.input(0).shape)], { inputs: [0] });

// Concat: each input gets its slab of g (Split when sizes are static, Slice with run-time offsets otherwise).
registerVjp('Concat', (ctx) => {
  const g = ctx.gradOutputs[0]!;
  const axis = ctx.attrInt('axis', 0);
  const xs = ctx.inputs.map((x) => x!);
  const a = axis < 0 ? axis + g.shape.length : axis;
  const sizes = xs.map((x) => x.shape[a]!);
  if (isStatic(sizes)) return split(g, sizes, a);
  const gg = ctx.graph;
  let offset: Tensor = i64(gg, [0]);
  return xs.map((x, i) => {
    const len = typeof sizes[i] === 'number' ? i64(gg, [sizes[i] as number]) : shapeOf(x, a, a + 1);
    const end = node1(gg, 'Add', [offset, len], { dtype: 'int64', shape: [1] });
    const piece = ctx.needsGrad[i] ? node1(gg, 'Slice', [g, offset, end, i64(gg, [a])], { dtype: g.dtype, shape: x.shape }) : null;
    offset = end;
    return piece;
  });
});

// Split: concatenate the pieces' gradients (zeros for pieces with none).
registerVjp('Split', (ctx) => {
  const axis = ctx.attrInt('axis', 0);
  return [concat(ctx.outputs.map((_, i) => ctx.gradOrZeros(i)), axis)];
}, { inputs: [0] });

/** Pads g on one axis back to the input's size for a step-1 slice (pads may be run-time values). */
function unsliceStep1(ctx: VjpContext, g: Tensor, axis: number, start: number, end: number, outShape: Dim[]): Tensor {
  const x = ctx.input(0);
  const rank = g.shape.length;
  const d = x.shape[axis]!;
  if (typeof d === 'number') {
    const sl = sliceLength(d, start, end, 1);
    const pads = new Array<number>(2 * rank).fill(0);
    pads[axis] = sl.start;
    pads[axis + rank] = d - sl.start - sl.count;
    return pad(g, pads, 0, outShape);
  }
  // Symbolic dim: assumes the bounds lie inside the dim (no clamping), as in x[:, 1:] or x[:, :1].
  const gg = ctx.graph;
  const dimT = (): Tensor => shapeOf(x, axis, axis + 1);
  const begin = start >= 0 ? i64(gg, [start]) : node1(gg, 'Add', [dimT(), i64(gg, [start])], { dtype: 'int64', shape: [1] });
  const after =
    end >= SLICE_END ? i64(gg, [0]) : end < 0 ? i64(gg, [-end]) : node1(gg, 'Sub', [dimT(), i64(gg, [end])], { dtype: 'int64', shape: [1] });
  const pieces: Tensor[] = [];
  if (axis > 0) pieces.push(i64(gg, new Array<number>(axis).fill(0)));
  pieces.push(begin);
  if (rank - 1 > 0) pieces.push(i64(gg, new Array<number>(rank - 1).fill(0)));
  pieces.push(after);
  if (rank - 1 - axis > 0) pieces.push(i64(gg, new Array<number>(rank - 1 - axis).fill(0)));
  const padsT = node1(gg, 'Concat', pieces, { dtype: 'int64', shape: [2 * rank] }, { axis: attr.int(0) });
  return pad(g, padsT, 0, outShape);
}

/** Scatters g on one axis back to the input's (static) size for a strided slice. */
function unsliceStrided(ctx: VjpContext, g: Tensor, axis: number, start: number, step: number, outShape: Dim[]): Tensor {
  const x = ctx.input(0);
  const d = x.shape[axis]!;
  const n = g.shape[axis] as number;
  if (typeof d !== 'number' || typeof n !== 'number') {
    throw new Error(`VJP of Slice '${ctx.node.name}': step ${step} needs a static axis, got ${formatShape(x.shape)}`);
  }
  const gg = ctx.graph;
  const idx = Array.from({ length: n }, (_, i) => start + i * step);
  const idxShape = g.shape.map((_, i) => (i === axis ? n : 1));
  const idxT = expand(gg.constant(idx, 'int64', idxShape), shapeOf(g), g.shape);
  const zeros = constantOfShape(gg, dimsTensor(gg, outShape, [g, x]), 0, g.dtype, outShape);
  return scatterElements(zeros, idxT, g, axis);
}

// Slice: undo the slice axis by axis (zero padding for step 1, scatter for other steps).
registerVjp('Slice', (ctx) => {
  const x = ctx.input(0);
  const rank = x.shape.length;
  const starts = ctx.constInts(1)!;
  const ends = ctx.constInts(2)!;
  const axes = (ctx.constInts(3) ?? starts.map((_, i) => i)).map((a) => (a < 0 ? a + rank : a));
  const steps = ctx.constInts(4) ?? starts.map(() => 1);
  let g = ctx.gradOutputs[0]!;
  const cur: Dim[] = [...g.shape];
  axes.forEach((axis, k) => {
    cur[axis] = x.shape[axis]!;
    const out = [...cur];
    const step = steps[k]!;
    if (step === 1) g = unsliceStep1(ctx, g, axis, starts[k]!, ends[k]!, out);
    else {
      const d = x.shape[axis]!;
      if (typeof d !== 'number') throw new Error(`VJP of Slice '${ctx.node.name}': step ${step} on symbolic dim ${d}`);
      g = unsliceStrided(ctx, g, axis, sliceLength(d, starts[k]!, ends[k]!, step).start, step, out);
    }
  });
  return [g];
}, { inputs: [0] });

// Pad (constant mode, non-negative pads): crop g back.
registerVjp('Pad', (ctx) => {
  const x = ctx.input(0);
  const rank = x.shape.length;
  if (ctx.attrString('mode', 'constant') !== 'constant') throw new Error(`VJP of Pad '${ctx.node.name}': only constant mode`);
  const pads = ctx.constInts(1)!;
  if (ctx.inputs[3]) throw new Error(`VJP of Pad '${ctx.node.name}': the axes input is not supported`);
  if (pads.some((p) => p < 0)) throw new Error(`VJP of Pad '${ctx.node.name}': negative pads are not supported`);
  const starts: number[] = [];
  const ends: number[] = [];
  for (let i = 0; i < rank; i++) {
    const d = x.shape[i]!;
    starts.push(pads[i]!);
    ends.push(typeof d === 'number' ? pads[i]! + d : pads[i + rank]! > 0 ? -pads[i + rank]! : SLICE_END);
  }
  const y = slice(ctx.gradOutputs[0]!, starts, ends);
  return [reshape(y, shapeOf(x), x.shape)];
}, { inputs: [0] });

// Gather: scatter-add g rows back at the indices (repeated indices accumulate).
registerVjp('Gather', (ctx) => {
  const x = ctx.input(0);
  const idx = ctx.input(1);
  const rank = x.shape.length;
  const axis = ctx.attrInt('axis', 0) < 0 ? ctx.attrInt('axis', 0) + rank : ctx.attrInt('axis', 0);
  const gFlat = reshape(ctx.gradOutputs[0]!, [...x.shape.slice(0, axis), -1, ...x.shape.slice(axis + 1)]);
  const idxShape = x.shape.map((_, i) => (i === axis ? -1 : 1));
  const idxE = expand(reshape(idx.dtype === 'int64' ? idx : castIdx(idx), idxShape), shapeOf(gFlat), gFlat.shape);
  return [scatterElements(zerosLike(x), idxE, gFlat, axis, 'add'), null];
}, { inputs: [0] });

function castIdx(idx: Tensor): Tensor {
  return node1(idx.graph, 'Cast', [idx], { dtype: 'int64', shape: idx.shape }, { to: attr.int(7) });
}

// GatherElements: scatter-add back.
registerVjp('GatherElements', (ctx) => {
  const x = ctx.input(0);
  const axis = ctx.attrInt('axis', 0);
  return [scatterElements(zerosLike(x), ctx.input(1), ctx.gradOutputs[0]!, axis, 'add'), null];
}, { inputs: [0] });

// ScatterElements: data keeps g except at overwritten positions ('none'); updates read g at their positions.
registerVjp('ScatterElements', (ctx) => {
  const g = ctx.gradOutputs[0]!;
  const idx = ctx.input(1);
  const upd = ctx.input(2);
  const axis = ctx.attrInt('axis', 0);
  const reduction = ctx.attrString('reduction', 'none');
  if (reduction !== 'none' && reduction !== 'add') {
    throw new Error(`VJP of ScatterElements '${ctx.node.name}': reduction '${reduction}' not supported`);
  }
  const gData = ctx.needsGrad[0] ? (reduction === 'add' ? g : scatterElements(g, idx, zerosLike(upd), axis)) : null;
  const gUpd = ctx.needsGrad[2] ? gatherElements(g, idx, axis) : null;
  return [gData, null, gUpd];
}, { inputs: [0, 2] });

