/**
 * VJP rules of Conv, MaxPool, AveragePool and the fused LayerNormalization.
 *
 * Conv Y[n,o,p] = Σ_{c,k} W[o,c,k]·Xpad[n,c,p·s + k·d] (+ b[o]):
 *   dX = ConvTranspose(G, W) with the same strides/pads/dilations/group and an output padding that restores
 *        the input size (the rows the forward stride skipped);
 *   dW[o,c,k] = Σ_{n,p} G[n,o,p]·Xpad[n,c,k·d + p·s] = Conv(Xᵀ, Gᵀ) with strides and dilations swapped
 *        (Xᵀ: batch and channel axes swapped), cropped to the kernel size, per group;
 *   db = Σ_{n,p} G.
 */
import type { DType, Tensor } from '../tensor.ts';
import { type Graph, attr } from '../builder.ts';
import { node1, shapeOf } from '../ops/core.ts';
import { add, div, mul, sqrt, sub } from '../ops/elementwise.ts';
import { reduceMean, reduceSum } from '../ops/reduce.ts';
import { concat, reshape, scatterElements, slice, split, transpose, constantOfShape } from '../ops/shape.ts';
import { conv, convTranspose } from '../ops/nn.ts';
import { sumToShape } from '../ops/broadcast.ts';
import { isStatic, mulDims } from '../tensor.ts';
import { registerVjp, type VjpContext } from './registry.ts';

interface Geo {
  kernel: number[];
  strides: number[];
  pads: number[];
  dilations: number[];
  group: number;
}

function geometry(ctx: VjpContext, kernel: number[]): Geo {
  const nd = kernel.length;
  return {
    kernel,
    strides: ctx.attrInts('strides') ?? new Array<number>(nd).fill(1),
    pads: ctx.attrInts('pads') ?? new Array<number>(2 * nd).fill(0),
    dilations: ctx.attrInts('dilations') ?? new Array<number>(nd).fill(1),
    group: ctx.attrInt('group', 1),
  };
}

/** Output padding that makes ConvTranspose(G) as large as the forward input. */
function outputPadding(x: Tensor, y: Tensor, geo: Geo): number[] {
  const nd = geo.kernel.length;
  return geo.kernel.map((k, i) => {
    const h = x.shape[i + 2] as number;
    const oh = y.shape[i + 2] as number;
    return h + geo.pads[i]! + geo.pads[i + nd]! - ((oh - 1) * geo.strides[i]! + geo.dilations[i]! * (k - 1) + 1);
  });
}

/** dW of one group: Conv(Xᵀ, Gᵀ) with strides↔dilations, cropped to the kernel, transposed back. */
function convWeightGrad(x: Tensor, g: Tensor, geo: Geo): Tensor {
  const nd = geo.kernel.length;
  const swap = [1, 0, ...Array.from({ length: nd }, (_, i) => i + 2)];
  const xt = transpose(x, swap);
  const gt = transpose(g, swap);
  let dwt = conv(xt, gt, null, { strides: geo.dilations, dilations: geo.strides, pads: geo.pads });
  const got = dwt.shape.slice(2) as number[];
  if (got.some((v, i) => v !== geo.kernel[i])) {
    dwt = slice(dwt, new Array<number>(nd).fill(0), geo.kernel, Array.from({ length: nd }, (_, i) => i + 2));
  }
  return transpose(dwt, swap);
}

registerVjp('Conv', (ctx) => {
  const x = ctx.input(0);
  const w = ctx.input(1);
  const y = ctx.outputs[0]!;
  const g = ctx.gradOutputs[0]!;
  const geo = geometry(ctx, w.shape.slice(2) as number[]);
  const nd = geo.kernel.length;
  let dx: Tensor | null = null;
  let dw: Tensor | null = null;
  let db: Tensor | null = null;
  if (ctx.needsGrad[0]) {
    dx = convTranspose(g, w, null, { ...geo, outputPadding: outputPadding(x, y, geo) });
  }
  if (ctx.needsGrad[1]) {
    if (geo.group === 1) dw = convWeightGrad(x, g, geo);
    else {
      const cg = (x.shape[1] as number) / geo.group;
      const og = (w.shape[0] as number) / geo.group;
      const xs = split(x, new Array<number>(geo.group).fill(cg), 1);
      const gs = split(g, new Array<number>(geo.group).fill(og), 1);
      dw = concat(xs.map((xi, i) => convWeightGrad(xi, gs[i]!, geo)), 0);
    }
  }
  if (ctx.inputs[2] && ctx.needsGrad[2]) db = reduceSum(g, [0, ...Array.from({ length: nd }, (_, i) => i + 2)]);
  return [dx, dw, db];
});

// MaxPool: recompute the argmax indices (flat over the whole input) and scatter-add g there.
registerVjp('MaxPool', (ctx) => {
  const x = ctx.input(0);
  const y = ctx.outputs[0]!;
  const g = ctx.gradOutputs[0]!;
  const gg = ctx.graph;
  const attrs = { ...ctx.node.attrs, storage_order: attr.int(0) };
  const [, idx] = gg.addNode('MaxPool', [x], [{ dtype: x.dtype, shape: y.shape }, { dtype: 'int64', shape: y.shape }], attrs);
  const n = mulDims(x.shape);
  const flatShape = node1(gg, 'Size', [x], { dtype: 'int64', shape: [] });
  const zeros = constantOfShape(gg, reshape(flatShape, [1]), 0, x.dtype, [n]);
  const s = scatterElements(zeros, reshape(idx!, [-1]), reshape(g, [-1]), 0, 'add');
  return [reshape(s, shapeOf(x), x.shape)];
});

// AveragePool: dX = ConvTranspose(G / count, ones) per channel (count = window size, or the number of
// non-padding elements when count_include_pad = 0).
registerVjp('AveragePool', (ctx) => {
  const x = ctx.input(0);
  const y = ctx.outputs[0]!;
  const g = ctx.gradOutputs[0]!;
  const gg = ctx.graph;
  const kernel = ctx.attrInts('kernel_shape')!;
  const geo = geometry(ctx, kernel);
  const nd = kernel.length;
  const c = x.shape[1];
  if (typeof c !== 'number') throw new Error(`VJP of AveragePool '${ctx.node.name}': channels must be static`);
  const inSp = x.shape.slice(2) as number[];
  const outSp = y.shape.slice(2) as number[];
  const includePad = ctx.attrInt('count_include_pad', 0) === 1;
  // count[p] over output positions (static geometry → a constant)
  const total = outSp.reduce((s, v) => s * v, 1);
  const counts = new Array<number>(total);
  for (let flat = 0; flat < total; flat++) {
    let rem = flat;
    let cnt = 1;
    for (let i = nd - 1; i >= 0; i--) {
      const p = rem % outSp[i]!;
      rem = Math.floor(rem / outSp[i]!);
      const lo = p * geo.strides[i]! - geo.pads[i]!;
      const hi = lo + kernel[i]!;
      const clampLo = includePad ? Math.max(lo, -geo.pads[i]!) : Math.max(lo, 0);
      const clampHi = includePad ? Math.min(hi, inSp[i]! + geo.pads[i + nd]!) : Math.min(hi, inSp[i]!);
      cnt *= Math.max(clampHi - clampLo, 0);
    }
    counts[flat] = cnt;
  }
  const countT = gg.constant(counts, x.dtype, [1, 1, ...outSp]);
  const ones = gg.constant(1, x.dtype, [c, 1, ...kernel]);
  // natural ConvTranspose size, then crop/pad to the input size
  const natural = kernel.map((k, i) => (outSp[i]! - 1) * geo.strides[i]! + k - geo.pads[i]! - geo.pads[i + nd]!);
  const op = natural.map((v, i) => Math.max(inSp[i]! - v, 0));
  let dx = convTranspose(div(g, countT), ones, null, { strides: geo.strides, pads: geo.pads, group: c, outputPadding: op });
  if (natural.some((v, i) => v > inSp[i]!)) {
    dx = slice(dx, new Array<number>(nd).fill(0), inSp, Array.from({ length: nd }, (_, i) => i + 2));
  }
  return [dx];
});

const filledCache = new WeakMap<Graph, Map<string, Tensor>>();

/** A constant filled with `value`, shared per graph, dtype and shape (the builder caches only small ones). */
function filled(g: Graph, value: number, dtype: DType, shape: number[]): Tensor {
  let m = filledCache.get(g);
  if (!m) filledCache.set(g, (m = new Map()));
  const key = `${value}|${dtype}|${shape.join(',')}`;
  let t = m.get(key);
  if (!t) m.set(key, (t = g.constant(value, dtype, shape)));
  return t;
}

// Fused LayerNormalization (normalised axes [axis, rank)): with x̂ = (x − μ)·r, r = 1/√(σ² + eps), gs = g·scale:
//   dx = r·(gs − mean(gs) − x̂·mean(gs·x̂)),  dscale = Σ g·x̂,  dbias = Σ g (sums over the leading axes).
// float32 gets x̂ and r in one pass from a LayerNormalization with unit scale and zero bias (its InvStdDev
// output); other dtypes (whose fused kernel keeps float32 statistics) recompute them with reductions.
registerVjp('LayerNormalization', (ctx) => {
  const x = ctx.input(0);
  const scale = ctx.input(1);
  const bias = ctx.inputs[2] ?? null;
  const g = ctx.gradOutputs[0]!;
  const rank = x.shape.length;
  const a0 = ctx.attrInt('axis', -1) < 0 ? ctx.attrInt('axis', -1) + rank : ctx.attrInt('axis', -1);
  const axes = Array.from({ length: rank - a0 }, (_, i) => a0 + i);
  const eps = ctx.attrFloat('epsilon', 1e-5);
  let xhat: Tensor;
  let r: Tensor;
  if (x.dtype === 'float32' && isStatic(scale.shape)) {
    const gr = ctx.graph;
    const stats = x.shape.map((d, i) => (i < a0 ? d : 1));
    const outs = gr.addNode(
      'LayerNormalization',
      [x, filled(gr, 1, x.dtype, scale.shape as number[]), filled(gr, 0, x.dtype, scale.shape as number[])],
      [{ dtype: x.dtype, shape: x.shape }, { dtype: x.dtype, shape: stats }, { dtype: x.dtype, shape: stats }],
      { axis: attr.int(a0), epsilon: attr.float(eps) },
    );
    xhat = outs[0]!;
    r = outs[2]!;
  } else {
    const mu = reduceMean(x, axes, true);
    const xc = sub(x, mu);
    r = div(1, sqrt(add(reduceMean(mul(xc, xc), axes, true), eps)));
    xhat = mul(xc, r);
  }
  let dx: Tensor | null = null;
  if (ctx.needsGrad[0]) {
    const gs = mul(g, scale);
    dx = mul(r, sub(sub(gs, reduceMean(gs, axes, true)), mul(xhat, reduceMean(mul(gs, xhat), axes, true))));
  }
  const ds = ctx.needsGrad[1] ? sumToShape(mul(g, xhat), scale.shape) : null;
  const dbias = bias && ctx.needsGrad[2] ? sumToShape(g, bias.shape) : null;
  return [dx, ds, dbias];
});

