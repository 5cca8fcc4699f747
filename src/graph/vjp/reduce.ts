/**
 * VJP rules of reductions, softmax variants, CumSum and TopK.
 */
import type { Tensor } from '../tensor.ts';
import { staticSize } from '../tensor.ts';
import { cast, div, equal, exp, mul, sub } from '../ops/elementwise.ts';
import { cumsum, reduceSum } from '../ops/reduce.ts';
import { expand, scatterElements, size, unsqueeze, zerosLike } from '../ops/shape.ts';
import { shapeOf } from '../ops/core.ts';
import { registerVjp, type VjpContext } from './registry.ts';

/** The normalised reduction axes of a Reduce* node (input 1 or the `axes` attribute; absent = all). */
function reduceAxes(ctx: VjpContext): number[] {
  const rank = ctx.input(0).shape.length;
  const ax = ctx.constInts(1) ?? ctx.attrInts('axes');
  if (!ax || ax.length === 0) return Array.from({ length: rank }, (_, i) => i);
  return ax.map((a) => (a < 0 ? a + rank : a)).sort((a, b) => a - b);
}

/** The output gradient with the reduced axes restored as size 1 (keepdims form). */
function keepdimsGrad(ctx: VjpContext, g: Tensor, axes: number[]): Tensor {
  return ctx.attrInt('keepdims', 1) ? g : unsqueeze(g, axes);
}

/** Broadcasts a keepdims-shaped tensor to the input's shape. */
function expandToInput(ctx: VjpContext, t: Tensor): Tensor {
  const x = ctx.input(0);
  return expand(t, shapeOf(x), x.shape);
}

// d Σ x = g broadcast back
registerVjp(
  'ReduceSum',
  (ctx) => {
    const axes = reduceAxes(ctx);
    return [expandToInput(ctx, keepdimsGrad(ctx, ctx.gradOutputs[0]!, axes))];
  },
  { inputs: [0] },
);

// d mean x = g / n broadcast back (n = number of reduced elements, static or from Size at run time)
registerVjp(
  'ReduceMean',
  (ctx) => {
    const x = ctx.input(0);
    const axes = reduceAxes(ctx);
    const n = staticSize(axes.map((a) => x.shape[a]!));
    const gk = keepdimsGrad(ctx, ctx.gradOutputs[0]!, axes);
    const scaled = n !== null ? div(gk, n) : div(gk, div(cast(size(x), x.dtype), cast(size(ctx.outputs[0]!), x.dtype)));
    return [expandToInput(ctx, scaled)];
  },
  { inputs: [0] },
);

/** ReduceMax/ReduceMin: g split evenly among the positions equal to the extremum. */
function extremumReduce(ctx: VjpContext): Tensor[] {
  const x = ctx.input(0);
  const axes = reduceAxes(ctx);
  const yk = keepdimsGrad(ctx, ctx.outputs[0]!, axes);
  const gk = keepdimsGrad(ctx, ctx.gradOutputs[0]!, axes);
  const mask = cast(equal(x, yk), x.dtype);
  const count = reduceSum(mask, axes, true);
  return [mul(mask, div(gk, count))];
}
registerVjp('ReduceMax', extremumReduce, { inputs: [0] });
registerVjp('ReduceMin', extremumReduce, { inputs: [0] });

// d softmax: dx = y ⊙ (g − Σ g⊙y)
registerVjp('Softmax', (ctx) => {
  const y = ctx.outputs[0]!;
  const g = ctx.gradOutputs[0]!;
  const axis = ctx.attrInt('axis', -1);
  return [mul(y, sub(g, reduceSum(mul(g, y), axis, true)))];
});

// d logsoftmax: dx = g − eʸ ⊙ Σ g
registerVjp('LogSoftmax', (ctx) => {
  const y = ctx.outputs[0]!;
  const g = ctx.gradOutputs[0]!;
  const axis = ctx.attrInt('axis', -1);
  return [sub(g, mul(exp(y), reduceSum(g, axis, true)))];
});

// d cumsum = cumsum of g in the opposite direction (same exclusivity)
registerVjp(
  'CumSum',
  (ctx) => {
    const axis = ctx.constInts(1)![0]!;
    return [
      cumsum(ctx.gradOutputs[0]!, axis, {
        exclusive: ctx.attrInt('exclusive', 0) === 1,
        reverse: ctx.attrInt('reverse', 0) !== 1,
      }),
    ];
  },
  { inputs: [0] },
);

// d topk: the values' gradient is scattered back to the selected positions.
registerVjp(
  'TopK',
  (ctx) => {
    const x = ctx.input(0);
    const axis = ctx.attrInt('axis', -1);
    return [scatterElements(zerosLike(x), ctx.outputs[1]!, ctx.gradOutputs[0]!, axis)];
  },
  { inputs: [0], outputs: [0] },
);
