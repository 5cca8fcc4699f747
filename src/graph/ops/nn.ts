/**
 * Neural-network ops: convolution, pooling, layer norm, GELU variants, cross-entropy and L2 normalisation.
 * Conv/ConvTranspose/AveragePool have float32 kernels only on ONNX Runtime's CPU provider; they throw for float64.
 */
import { attr, type AttrValue } from '../builder.ts';
import { type Dim, type Tensor, describe, dimEq, formatShape } from '../tensor.ts';
import { graphOf, node1, requireFloat, sameDType } from './core.ts';
import { add, div, erf, maximum, mul, neg, sigmoid, sqrt, sub, tanh } from './elementwise.ts';
import { gatherElements, squeeze, unsqueeze } from './shape.ts';
import { logSoftmax, reduceMean, reduceSum } from './reduce.ts';
import { cast } from './elementwise.ts';

/** Options of `conv` (per spatial axis; pads in ONNX order [begins..., ends...]). */
export interface ConvOptions {
  strides?: readonly number[];
  pads?: readonly number[];
  dilations?: readonly number[];
  group?: number;
}

/** Resolved convolution geometry. */
export interface ConvGeometry {
  kernel: number[];
  strides: number[];
  pads: number[];
  dilations: number[];
  group: number;
}

/** Fills defaults and checks lengths of conv/pool options for `nd` spatial axes. */
export function convGeometry(op: string, kernel: readonly number[], opts: ConvOptions): ConvGeometry {
  const nd = kernel.length;
  const strides = [...(opts.strides ?? new Array<number>(nd).fill(1))];
  const dilations = [...(opts.dilations ?? new Array<number>(nd).fill(1))];
  const pads = [...(opts.pads ?? new Array<number>(2 * nd).fill(0))];
  const group = opts.group ?? 1;
  if (strides.length !== nd || dilations.length !== nd || pads.length !== 2 * nd) {
    throw new Error(`${op}: strides/dilations need ${nd} values and pads ${2 * nd}`);
  }
  const bad = [...kernel, ...strides, ...dilations].some((v) => !Number.isInteger(v) || v < 1) || pads.some((v) => !Number.isInteger(v) || v < 0);
  if (bad || !Number.isInteger(group) || group < 1) throw new Error(`${op}: invalid geometry ${JSON.stringify({ kernel, strides, pads, dilations, group })}`);
  return { kernel: [...kernel], strides, pads, dilations, group };
}

function convAttrs(geo: ConvGeometry, withKernel: boolean): Record<string, AttrValue> {
  return {
    ...(withKernel ? { kernel_shape: attr.ints(geo.kernel) } : {}),
    strides: attr.ints(geo.strides),
    pads: attr.ints(geo.pads),
    dilations: attr.ints(geo.dilations),
  };
}

/** Output size of a conv/pool along one axis: ⌊(in + pb + pe − d·(k−1) − 1)/s⌋ + 1 (⌈⌉ with ceil mode). */
export function convOutDim(inDim: number, k: number, s: number, pb: number, pe: number, d: number, ceil = false): number {
  const num = inDim + pb + pe - d * (k - 1) - 1;
  return (ceil ? Math.ceil(num / s) : Math.floor(num / s)) + 1;
}

function spatialOut(op: string, x: Tensor, geo: ConvGeometry, ceil = false): number[] {
  const nd = geo.kernel.length;
  return x.shape.slice(2).map((d, i) => {
    if (typeof d !== 'number') throw new Error(`${op}: spatial dims must be static, got ${describe(x)}`);
    const o = convOutDim(d, geo.kernel[i]!, geo.strides[i]!, geo.pads[i]!, geo.pads[i + nd]!, geo.dilations[i]!, ceil);
    if (o < 1) throw new Error(`${op}: kernel larger than padded input on axis ${i + 2} of ${describe(x)}`);
    return o;
  });
}

function requireF32(op: string, x: Tensor): void {
  if (x.dtype !== 'float32') throw new Error(`${op}: onnxruntime's CPU provider implements it for float32 only, got ${describe(x)}`);
}

/** N-d convolution: x [N, C, *S], w [O, C/group, *K], b [O]. */
export function conv(x: Tensor, w: Tensor, b?: Tensor | null, opts: ConvOptions = {}): Tensor {
  const g = graphOf('Conv', x, w, b);
  requireF32('Conv', x);
  sameDType('Conv', x, w, ...(b ? [b] : []));
  const nd = x.shape.length - 2;
  if (nd < 1 || w.shape.length !== nd + 2) throw new Error(`Conv: ranks do not fit: ${describe(x)}, ${describe(w)}`);
  const kernel = w.shape.slice(2).map((d) => {
    if (typeof d !== 'number') throw new Error(`Conv: kernel dims must be static, got ${describe(w)}`);
    return d;
  });
  const geo = convGeometry('Conv', kernel, opts);
  const c = x.shape[1]!;
  const o = w.shape[0]!;
  const channelsOk =
    typeof o === 'number' &&
    o % geo.group === 0 &&
    (geo.group === 1 ? dimEq(c, w.shape[1]!) : typeof c === 'number' && c === (w.shape[1] as number) * geo.group);
  if (!channelsOk) {
    throw new Error(`Conv: channels do not fit (group ${geo.group}): ${describe(x)}, ${describe(w)}`);
  }
  if (b && (b.shape.length !== 1 || b.shape[0] !== o)) throw new Error(`Conv: bias must be [${o}], got ${describe(b)}`);
  const shape: Dim[] = [x.shape[0]!, o, ...spatialOut('Conv', x, geo)];
  return node1(g, 'Conv', b ? [x, w, b] : [x, w], { dtype: x.dtype, shape }, { ...convAttrs(geo, true), group: attr.int(geo.group) });
}

/** Transposed convolution: x [N, C, *S], w [C, O/group, *K]; out = s·(in−1) + outputPadding + d·(k−1) + 1 − pb − pe. */
export function convTranspose(
  x: Tensor,
  w: Tensor,
  b?: Tensor | null,
  opts: ConvOptions & { outputPadding?: readonly number[] } = {},
): Tensor {
  const g = graphOf('ConvTranspose', x, w, b);
  requireF32('ConvTranspose', x);
  sameDType('ConvTranspose', x, w, ...(b ? [b] : []));
  const nd = x.shape.length - 2;
  if (nd < 1 || w.shape.length !== nd + 2) throw new Error(`ConvTranspose: ranks do not fit: ${describe(x)}, ${describe(w)}`);
  const kernel = w.shape.slice(2) as number[];
  const geo = convGeometry('ConvTranspose', kernel, opts);
  const op = [...(opts.outputPadding ?? new Array<number>(nd).fill(0))];
  if (!dimEq(x.shape[1]!, w.shape[0]!)) throw new Error(`ConvTranspose: channels do not fit: ${describe(x)}, ${describe(w)}`);
  const o = (w.shape[1] as number) * geo.group;
  const spatial = x.shape.slice(2).map((d, i) => {
    if (typeof d !== 'number') throw new Error(`ConvTranspose: spatial dims must be static, got ${describe(x)}`);
    return geo.strides[i]! * (d - 1) + op[i]! + geo.dilations[i]! * (geo.kernel[i]! - 1) + 1 - geo.pads[i]! - geo.pads[i + nd]!;
  });
  return node1(g, 'ConvTranspose', b ? [x, w, b] : [x, w], { dtype: x.dtype, shape: [x.shape[0]!, o, ...spatial] }, {
    ...convAttrs(geo, true),
    group: attr.int(geo.group),
    output_padding: attr.ints(op),
  });
}

/** Options of the pooling ops. */
export interface PoolOptions {
  kernel: readonly number[];
  strides?: readonly number[];
  pads?: readonly number[];
  dilations?: readonly number[];
  ceilMode?: boolean;
}

/** Max pooling over the spatial axes of x [N, C, *S]. */
export function maxPool(x: Tensor, opts: PoolOptions): Tensor {
  const geo = convGeometry('MaxPool', opts.kernel, opts);
  if (x.shape.length !== geo.kernel.length + 2) throw new Error(`MaxPool: kernel ${formatShape(opts.kernel)} does not fit ${describe(x)}`);
  const shape: Dim[] = [x.shape[0]!, x.shape[1]!, ...spatialOut('MaxPool', x, geo, opts.ceilMode)];
  return node1(x.graph, 'MaxPool', [x], { dtype: x.dtype, shape }, { ...convAttrs(geo, true), ceil_mode: attr.int(opts.ceilMode ? 1 : 0) });
}

/** Average pooling over the spatial axes of x [N, C, *S] (`countIncludePad` as in ONNX; float32 only). */
export function averagePool(x: Tensor, opts: Omit<PoolOptions, 'dilations'> & { countIncludePad?: boolean }): Tensor {
  requireF32('AveragePool', x);
  const geo = convGeometry('AveragePool', opts.kernel, opts);
  if (x.shape.length !== geo.kernel.length + 2) throw new Error(`AveragePool: kernel ${formatShape(opts.kernel)} does not fit ${describe(x)}`);
  const shape: Dim[] = [x.shape[0]!, x.shape[1]!, ...spatialOut('AveragePool', x, geo, opts.ceilMode)];
  return node1(x.graph, 'AveragePool', [x], { dtype: x.dtype, shape }, {
    kernel_shape: attr.ints(geo.kernel),
    strides: attr.ints(geo.strides),
    pads: attr.ints(geo.pads),
    ceil_mode: attr.int(opts.ceilMode ? 1 : 0),
    count_include_pad: attr.int(opts.countIncludePad ? 1 : 0),
  });
}

/**
 * Layer normalisation over the last axis: y = (x − μ)/√(σ² + eps)·scale + bias, σ² the biased variance.
 * float32 at opset ≥ 17 uses the fused LayerNormalization op; float64 (whose fused kernel keeps float32
 * statistics) and older opsets use the decomposition.
 */
export function layerNorm(x: Tensor, scale: Tensor, bias?: Tensor | null, eps = 1e-5): Tensor {
  bias = bias ?? null;
  const g = graphOf('LayerNormalization', x, scale, bias);
  requireFloat('LayerNormalization', x);
  sameDType('LayerNormalization', x, scale, ...(bias ? [bias] : []));
  const d = x.shape[x.shape.length - 1];
  if (d === undefined) throw new Error(`LayerNormalization: scalar input ${describe(x)}`);
  for (const p of bias ? [scale, bias] : [scale]) {
    if (p.shape.length !== 1 || !dimEq(p.shape[0]!, d)) throw new Error(`LayerNormalization: scale/bias must be [${d}], got ${describe(p)}`);
  }
  if (x.dtype === 'float32' && g.opset >= 17) {
    return node1(g, 'LayerNormalization', bias ? [x, scale, bias] : [x, scale], { dtype: x.dtype, shape: x.shape }, {
      axis: attr.int(-1),
      epsilon: attr.float(eps),
    });
  }
  return g.scope('layernorm', () => {
    const mu = reduceMean(x, -1, true);
    const xc = sub(x, mu);
    const variance = reduceMean(mul(xc, xc), -1, true);
    const y = mul(div(xc, sqrt(add(variance, eps))), scale);
    return bias ? add(y, bias) : y;
  });
}

/**
 * GELU. 'erf': x·Φ(x) = ½x(1 + erf(x/√2)) (float32 only, see `erf`); 'tanh': ½x(1 + tanh(√(2/π)(x + 0.044715x³))).
 * Composed from basic ops (the Gelu op needs opset 20 and has no gradient kernel).
 */
export function gelu(x: Tensor, approximate: 'erf' | 'tanh' = 'erf'): Tensor {
  requireFloat('gelu', x);
  return x.graph.scope('gelu', () => {
    if (approximate === 'erf') return mul(mul(x, 0.5), add(erf(mul(x, Math.SQRT1_2)), 1));
    const inner = mul(add(x, mul(mul(mul(x, x), x), 0.044715)), Math.sqrt(2 / Math.PI));
    return mul(mul(x, 0.5), add(tanh(inner), 1));
  });
}

/** QuickGELU (OpenAI CLIP): x·σ(1.702x). */
export function quickGelu(x: Tensor): Tensor {
  requireFloat('quickGelu', x);
  return x.graph.scope('quickgelu', () => mul(x, sigmoid(mul(x, 1.702))));
}

/**
 * Cross-entropy of `logits` [N, C] against int class `targets` [N]: −log softmax(logits)[target], reduced by
 * 'mean' (default), 'sum' or 'none' (returns [N]).
 */
export function crossEntropy(logits: Tensor, targets: Tensor, reduction: 'mean' | 'sum' | 'none' = 'mean'): Tensor {
  graphOf('crossEntropy', logits, targets);
  if (logits.shape.length !== 2 || targets.shape.length !== 1 || !dimEq(logits.shape[0]!, targets.shape[0]!)) {
    throw new Error(`crossEntropy: needs logits [N,C] and targets [N], got ${describe(logits)} and ${describe(targets)}`);
  }
  return logits.graph.scope('cross_entropy', () => {
    const idx = unsqueeze(cast(targets, 'int64'), 1);
    const nll = neg(squeeze(gatherElements(logSoftmax(logits, 1), idx, 1), 1));
    if (reduction === 'none') return nll;
    return reduction === 'sum' ? reduceSum(nll) : reduceMean(nll);
  });
}

/** x / max(‖x‖₂, eps) along `axis` (PyTorch `F.normalize`). */
export function normalize(x: Tensor, axis = -1, eps = 1e-12): Tensor {
  requireFloat('normalize', x);
  return x.graph.scope('normalize', () => div(x, maximum(sqrt(reduceSum(mul(x, x), axis, true)), eps)));
}

/**
 * Batch normalisation with batch statistics, no affine parameters (PyTorch `BatchNorm2d(affine=False)` in
 * training mode, or with `track_running_stats=False`): per channel c of x [N, C, *S],
 * y = (x − μ_c)/√(σ²_c + eps) with μ_c, σ²_c the mean and biased variance over N and the spatial axes.
 * Composed from basic ops (autodiff through them; float32 and float64). Returns the batch mean and biased
 * variance [C] too, for running statistics kept by the caller.
 * With `stats` given (evaluation with running statistics), normalises by them instead of the batch's.
 */
export function batchNorm(x: Tensor, opts: { eps?: number; stats?: { mean: Tensor; variance: Tensor } } = {}): { y: Tensor; mean: Tensor; variance: Tensor } {
  graphOf('batchNorm', x);
  requireFloat('batchNorm', x);
  if (x.shape.length < 3) throw new Error(`batchNorm: needs [N, C, *spatial], got ${describe(x)}`);
  const eps = opts.eps ?? 1e-5;
  const axes = [0, ...x.shape.slice(2).map((_, i) => i + 2)];
  const C = x.shape[1]!;
  return x.graph.scope('batchnorm', () => {
    const s = opts.stats;
    if (s) {
      for (const t of [s.mean, s.variance]) {
        if (t.dtype !== x.dtype || t.shape.length !== 1 || !dimEq(t.shape[0]!, C)) throw new Error(`batchNorm: running stats must be [${C}] ${x.dtype}, got ${describe(t)}`);
      }
      const shape = [C, ...x.shape.slice(2).map(() => 1)] as number[];
      const mu = reshapeTo(s.mean, shape);
      const v = reshapeTo(s.variance, shape);
      return { y: div(sub(x, mu), sqrt(add(v, eps))), mean: s.mean, variance: s.variance };
    }
    const mu = reduceMean(x, axes, true);
    const xc = sub(x, mu);
    const variance = reduceMean(mul(xc, xc), axes, true);
    const y = div(xc, sqrt(add(variance, eps)));
    return { y, mean: squeeze(mu, axes), variance: squeeze(variance, axes) };
  });
}

function reshapeTo(t: Tensor, shape: number[]): Tensor {
  return unsqueeze(t, shape.slice(1).map((_, i) => i + 1));
}
