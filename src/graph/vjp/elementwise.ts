/**
 * VJP rules of elementwise ops. Binary ops reduce broadcast gradients back with `sumToShape`.
 * Notation: y = f(a[, b]), g = dL/dy.
 */
import { type Tensor, isFloat, shapeEq } from '../tensor.ts';
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

/** A sigmoid gate y = x·σ(c·x): x's input index, c, σ(c·x), and x's input index in the inner Mul (null if c·x is x). */
interface SigmoidGate {
  xi: number;
  c: number;
  s: Tensor;
  innerXi: number | null;
}

/**
 * Recognises the Mul node y = x·σ(c·x) (SiLU, QuickGELU as `mul(x, sigmoid(mul(x, c)))`; c a one-element
 * constant; either operand order in both Muls; x, c·x and σ(c·x) of one shape), else null.
 */
function sigmoidGate(ctx: VjpContext): SigmoidGate | null {
  const gr = ctx.graph;
  for (const xi of [0, 1]) {
    const x = ctx.input(xi);
    const s = ctx.input(1 - xi);
    const ps = gr.producerOf(s)?.node;
    if (!ps || ps.opType !== 'Sigmoid' || !shapeEq(s.shape, x.shape)) continue;
    const u = ps.inputs[0]!;
    if (u.name === x.name) return { xi, c: 1, s, innerXi: null };
    const pu = gr.producerOf(u)?.node;
    if (!pu || pu.opType !== 'Mul' || !shapeEq(u.shape, x.shape)) continue;
    for (const k of [0, 1]) {
      const other = pu.inputs[1 - k];
      const cv = other ? gr.constValues(other) : undefined;
      if (pu.inputs[k]!.name === x.name && cv && cv.length === 1) return { xi, c: cv[0]!, s, innerXi: k };
    }
  }
  return null;
}

// d(a·b) = g·b, g·a.
// A sigmoid gate y = x·σ(u), u = c·x, is differentiated as a whole here: dx = g·s·(1 + u·(1 − s)), s = σ(u), and
// σ(u) gets no gradient from this node (its share of the chain rule is inside dx); other uses of σ(u) or u
// still send theirs through the Sigmoid and Mul rules. For c ≠ 1, u and s are recomputed from x with the
// inner Mul's operands swapped, so ORT's common-subexpression pass keeps them apart from the forward nodes and
// can fuse those into one QuickGelu (the forward keeps no u or s for the backward).
registerVjp('Mul', (ctx) => {
  const g = ctx.gradOutputs[0]!;
  const [a, b] = [ctx.input(0), ctx.input(1)];
  const gate = isFloat(g.dtype) ? sigmoidGate(ctx) : null;
  if (gate && shapeEq(g.shape, ctx.input(gate.xi).shape)) {
    const x = ctx.input(gate.xi);
    let u = x;
    let s = gate.s;
    if (gate.innerXi !== null) {
      const c = ctx.graph.constant(gate.c, x.dtype);
      u = gate.innerXi === 0 ? mul(c, x) : mul(x, c);
      s = sigmoid(u);
    }
    const dx = mul(g, mul(add(mul(u, sub(1, s)), 1), s));
    return gate.xi === 0 ? [dx, null] : [null, dx];
  }
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
