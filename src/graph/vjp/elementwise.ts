/**
 * VJP rules of elementwise ops. Binary ops reduce broadcast gradients back with `sumToShape`.
 * Notation: y = f(a[, b]), g = dL/dy.
 */
import type { Tensor } from '../tensor.ts';
import {
  add,
  and,
  cast,
  div,
  equal,
  exp,
  greater,
  greaterOrEqual,
  less,
  lessOrEqual,
  log,
  mul,
  neg,
  pow,
  sigmoid,
  sign,
  sub,
  where,
} from '../ops/elementwise.ts';
import { sumToShape } from '../ops/broadcast.ts';
import { registerNonDifferentiable, registerVjp, type VjpContext } from './registry.ts';

/** g reduced to the shape of input i. */
function toInput(ctx: VjpContext, i: number, g: Tensor): Tensor {
  return sumToShape(g, ctx.input(i).shape);
}

// d(a+b) = g, g
registerVjp('Add', (ctx) => {
  const g = ctx.gradOutputs[0]!;
  return [ctx.needsGrad[0] ? toInput(ctx, 0, g) : null, ctx.needsGrad[1] ? toInput(ctx, 1, g) : null];
});

// d(a−b) = g, −g
registerVjp('Sub', (ctx) => {
  const g = ctx.gradOutputs[0]!;
  return [ctx.needsGrad[0] ? toInput(ctx, 0, g) : null, ctx.needsGrad[1] ? toInput(ctx, 1, neg(g)) : null];
});

// d(a·b) = g·b, g·a
registerVjp('Mul', (ctx) => {
  const g = ctx.gradOutputs[0]!;
  const [a, b] = [ctx.input(0), ctx.input(1)];
  return [ctx.needsGrad[0] ? toInput(ctx, 0, mul(g, b)) : null, ctx.needsGrad[1] ? toInput(ctx, 1, mul(g, a)) : null];
});

// d(a/b) = g/b, −g·y/b
registerVjp('Div', (ctx) => {
  const g = ctx.gradOutputs[0]!;
  const b = ctx.input(1);
  const y = ctx.outputs[0]!;
  return [ctx.needsGrad[0] ? toInput(ctx, 0, div(g, b)) : null, ctx.needsGrad[1] ? toInput(ctx, 1, neg(div(mul(g, y), b))) : null];
});

// d(aᵇ) = g·b·aᵇ⁻¹, g·y·ln a
registerVjp('Pow', (ctx) => {
  const g = ctx.gradOutputs[0]!;
  const [a, b] = [ctx.input(0), ctx.input(1)];
  const y = ctx.outputs[0]!;
  let ga: Tensor | null = null;
  if (ctx.needsGrad[0]) {
    const c = ctx.graph.constValues(b);
    if (c && c.length === 1) {
      const e = c[0]!;
      const d = e === 1 ? g : e === 2 ? mul(g, mul(a, 2)) : mul(g, mul(pow(a, e - 1), e));
      ga = toInput(ctx, 0, d);
    } else {
      ga = toInput(ctx, 0, mul(g, mul(b, pow(a, sub(b, 1)))));
    }
  }
  return [ga, ctx.needsGrad[1] ? toInput(ctx, 1, mul(g, mul(y, log(a)))) : null];
});

/** Max/Min: the winner gets g; ties split it evenly. */
function extremumRule(better: (a: Tensor, b: Tensor) => Tensor) {
  return (ctx: VjpContext) => {
    const g = ctx.gradOutputs[0]!;
    const [a, b] = [ctx.input(0), ctx.input(1)];
    const dt = g.dtype;
    const tie = mul(cast(equal(a, b), dt), 0.5);
    const maskA = add(cast(better(a, b), dt), tie);
    const maskB = add(cast(better(b, a), dt), tie);
    return [ctx.needsGrad[0] ? toInput(ctx, 0, mul(g, maskA)) : null, ctx.needsGrad[1] ? toInput(ctx, 1, mul(g, maskB)) : null];
  };
}
registerVjp('Max', extremumRule(greater));
registerVjp('Min', extremumRule(less));

registerVjp('Neg', (ctx) => [neg(ctx.gradOutputs[0]!)]);
registerVjp('Identity', (ctx) => [ctx.gradOutputs[0]!]);
// d√a = g / (2y)
registerVjp('Sqrt', (ctx) => [div(mul(ctx.gradOutputs[0]!, 0.5), ctx.outputs[0]!)]);
// d eᵃ = g·y
registerVjp('Exp', (ctx) => [mul(ctx.gradOutputs[0]!, ctx.outputs[0]!)]);
// d ln a = g / a
registerVjp('Log', (ctx) => [div(ctx.gradOutputs[0]!, ctx.input(0))]);
// d tanh a = g·(1 − y²)
registerVjp('Tanh', (ctx) => {
  const y = ctx.outputs[0]!;
  return [mul(ctx.gradOutputs[0]!, sub(1, mul(y, y)))];
});
// d erf a = g · 2/√π · e^(−a²)
registerVjp('Erf', (ctx) => {
  const a = ctx.input(0);
  return [mul(ctx.gradOutputs[0]!, mul(exp(neg(mul(a, a))), 2 / Math.sqrt(Math.PI)))];
});
// d σ(a) = g·y·(1 − y)
registerVjp('Sigmoid', (ctx) => {
  const y = ctx.outputs[0]!;
  return [mul(ctx.gradOutputs[0]!, mul(y, sub(1, y)))];
});
// d relu(a) = g·[a > 0]
registerVjp('Relu', (ctx) => [where(greater(ctx.input(0), 0), ctx.gradOutputs[0]!, 0)]);
// d softplus(a) = g·σ(a)
registerVjp('Softplus', (ctx) => [mul(ctx.gradOutputs[0]!, sigmoid(ctx.input(0)))]);
// d|a| = g·sign(a)
registerVjp('Abs', (ctx) => [mul(ctx.gradOutputs[0]!, sign(ctx.input(0)))]);
// d(1/a) = −g·y²
registerVjp('Reciprocal', (ctx) => {
  const y = ctx.outputs[0]!;
  return [neg(mul(ctx.gradOutputs[0]!, mul(y, y)))];
});

// d clip(a, lo, hi) = g·[lo ≤ a ≤ hi] (PyTorch clamp convention); bounds get no gradient.
registerVjp(
  'Clip',
  (ctx) => {
    const a = ctx.input(0);
    const [lo, hi] = [ctx.inputs[1] ?? null, ctx.inputs[2] ?? null];
    let mask: Tensor | null = lo ? greaterOrEqual(a, lo) : null;
    if (hi) mask = mask ? and(mask, lessOrEqual(a, hi)) : lessOrEqual(a, hi);
    const g = ctx.gradOutputs[0]!;
    return [mask ? where(mask, g, 0) : g];
  },
  { inputs: [0] },
);

// d where(c, a, b) = where(c, g, 0), where(c, 0, g); the condition gets none.
registerVjp(
  'Where',
  (ctx) => {
    const g = ctx.gradOutputs[0]!;
    const c = ctx.input(0);
    return [
      null,
      ctx.needsGrad[1] ? toInput(ctx, 1, where(c, g, 0)) : null,
      ctx.needsGrad[2] ? toInput(ctx, 2, where(c, 0, g)) : null,
    ];
  },
  { inputs: [1, 2] },
);

// float→float casts pass the gradient back in the input's dtype.
registerVjp('Cast', (ctx) => [cast(ctx.gradOutputs[0]!, ctx.input(0).dtype)]);

registerNonDifferentiable(
  'Greater',
  'Less',
  'Equal',
  'GreaterOrEqual',
  'LessOrEqual',
  'And',
  'Or',
  'Not',
  'Sign',
  'Shape',
  'Size',
  'ConstantOfShape',
  'Range',
  'OneHot',
  'ArgMax',
  'ArgMin',
);
