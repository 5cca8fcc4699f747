/**
 * VJP checks for ops whose onnxruntime CPU kernels exist for float32 only (Conv, AveragePool, Erf, Softplus,
 * fused LayerNormalization, FusedMatMul) and for rules with a float32-only path (batched MatMul, the sigmoid
 * gate), plus a float32→float64 Cast. Truth: central finite differences of a plain-JS float64
 * forward implementation (or the textbook derivative for erf), evaluated on the same float32-rounded inputs.
 */
import * as G from '../../src/graph/index.ts';
import type { Dim, Tensor } from '../../src/graph/index.ts';
import { Rng, randValues, relErr, run, session } from './helpers.ts';

export interface F32Case {
  ops: string[];
  name: string;
  inputs: { name: string; shape: number[]; decl?: Dim[]; gen?: 'normal' | 'distinct' }[];
  build: (xs: Tensor[]) => Tensor;
  /** JS float64 forward on flat inputs → flat output. */
  js: (xs: Float64Array[]) => Float64Array;
  /** Textbook gradient of Σ R⊙out instead of differences (for erf, which JS lacks). */
  jsGrad?: (xs: Float64Array[], r: Float64Array) => Float64Array[];
  tol?: number;
}

/** Shape/geometry of an N-d convolution for the JS reference. */
interface ConvSpec {
  n: number;
  c: number;
  o: number;
  spatial: number[];
  kernel: number[];
  strides: number[];
  pads: number[];
  dilations: number[];
  group: number;
}

function outDims(s: ConvSpec, ceil = false): number[] {
  const nd = s.spatial.length;
  return s.spatial.map((h, i) => {
    const num = h + s.pads[i]! + s.pads[i + nd]! - s.dilations[i]! * (s.kernel[i]! - 1) - 1;
    return (ceil ? Math.ceil(num / s.strides[i]!) : Math.floor(num / s.strides[i]!)) + 1;
  });
}

/** Iterates over all multi-indices of `dims`. */
function* indices(dims: number[]): Generator<number[]> {
  const total = dims.reduce((a, b) => a * b, 1);
  for (let flat = 0; flat < total; flat++) {
    const idx = new Array<number>(dims.length);
    let r = flat;
    for (let i = dims.length - 1; i >= 0; i--) {
      idx[i] = r % dims[i]!;
      r = Math.floor(r / dims[i]!);
    }
    yield idx;
  }
}

function flatIndex(idx: number[], dims: number[]): number {
  let f = 0;
  for (let i = 0; i < dims.length; i++) f = f * dims[i]! + idx[i]!;
  return f;
}

/** y[n,o,p] = Σ_{ci,k} w[o,ci,k]·x[n, g·C/G + ci, p·s − pad + k·d] + b[o] (zero outside). */
function jsConv(s: ConvSpec, x: Float64Array, w: Float64Array, b: Float64Array | null): Float64Array {
  const od = outDims(s);
  const cg = s.c / s.group;
  const og = s.o / s.group;
  const out = new Float64Array(s.n * s.o * od.reduce((a, v) => a * v, 1));
  for (const [nn, oo, ...p] of indices([s.n, s.o, ...od])) {
    const grp = Math.floor(oo! / og);
    let acc = b ? b[oo!]! : 0;
    for (const [ci, ...k] of indices([cg, ...s.kernel])) {
      const pos = p.map((pi, i) => pi * s.strides[i]! - s.pads[i]! + k[i]! * s.dilations[i]!);
      if (pos.some((v, i) => v < 0 || v >= s.spatial[i]!)) continue;
      const xi = flatIndex([nn!, grp * cg + ci!, ...pos], [s.n, s.c, ...s.spatial]);
      const wi = flatIndex([oo!, ci!, ...k], [s.o, cg, ...s.kernel]);
      acc += w[wi]! * x[xi]!;
    }
    out[flatIndex([nn!, oo!, ...p], [s.n, s.o, ...od])] = acc;
  }
  return out;
}

/** Average pooling reference (ONNX count_include_pad semantics, optional ceil mode). */
function jsAvgPool(s: ConvSpec, x: Float64Array, includePad: boolean, ceil: boolean): Float64Array {
  const od = outDims(s, ceil);
  const nd = s.spatial.length;
  const out = new Float64Array(s.n * s.c * od.reduce((a, v) => a * v, 1));
  for (const [nn, cc, ...p] of indices([s.n, s.c, ...od])) {
    let acc = 0;
    let cnt = 0;
    for (const k of indices(s.kernel)) {
      const pos = p.map((pi, i) => pi * s.strides[i]! - s.pads[i]! + k[i]!);
      const inPadded = pos.every((v, i) => v >= -s.pads[i]! && v < s.spatial[i]! + s.pads[i + nd]!);
      const inside = pos.every((v, i) => v >= 0 && v < s.spatial[i]!);
      if (inside) acc += x[flatIndex([nn!, cc!, ...pos], [s.n, s.c, ...s.spatial])]!;
      if (inside || (includePad && inPadded)) cnt++;
    }
    out[flatIndex([nn!, cc!, ...p], [s.n, s.c, ...od])] = acc / cnt;
  }
  return out;
}

function convSpec(p: Partial<ConvSpec> & { n: number; c: number; o: number; spatial: number[]; kernel: number[] }): ConvSpec {
  const nd = p.spatial.length;
  return {
    strides: new Array<number>(nd).fill(1),
    pads: new Array<number>(2 * nd).fill(0),
    dilations: new Array<number>(nd).fill(1),
    group: 1,
    ...p,
  };
}

function convCase(name: string, s: ConvSpec, withBias: boolean, batchDecl?: Dim): F32Case {
  const inputs = [
    { name: 'x', shape: [s.n, s.c, ...s.spatial], decl: batchDecl !== undefined ? [batchDecl, s.c, ...s.spatial] : undefined },
    { name: 'w', shape: [s.o, s.c / s.group, ...s.kernel] },
    ...(withBias ? [{ name: 'b', shape: [s.o] }] : []),
  ];
  return {
    ops: ['Conv'],
    name,
    inputs,
    build: ([x, w, b]) => G.conv(x!, w!, b ?? null, { strides: s.strides, pads: s.pads, dilations: s.dilations, group: s.group }),
    js: ([x, w, b]) => jsConv(s, x!, w!, b ?? null),
  };
}

function poolCase(name: string, s: ConvSpec, includePad: boolean, ceil: boolean): F32Case {
  return {
    ops: ['AveragePool'],
    name,
    inputs: [{ name: 'x', shape: [s.n, s.c, ...s.spatial] }],
    build: ([x]) => G.averagePool(x!, { kernel: s.kernel, strides: s.strides, pads: s.pads, countIncludePad: includePad, ceilMode: ceil }),
    js: ([x]) => jsAvgPool(s, x!, includePad, ceil),
  };
}

function jsLayerNorm(x: Float64Array, scale: Float64Array, bias: Float64Array, d: number, eps: number): Float64Array {
  const out = new Float64Array(x.length);
  for (let r = 0; r < x.length / d; r++) {
    let mu = 0;
    for (let j = 0; j < d; j++) mu += x[r * d + j]!;
    mu /= d;
    let v = 0;
    for (let j = 0; j < d; j++) v += (x[r * d + j]! - mu) ** 2;
    v /= d;
    for (let j = 0; j < d; j++) out[r * d + j] = ((x[r * d + j]! - mu) / Math.sqrt(v + eps)) * scale[j]! + bias[j]!;
  }
  return out;
}

/** Broadcast shape of numpy batch dims (each pair equal or one of them 1). */
function broadcastBatch(a: number[], b: number[]): number[] {
  const n = Math.max(a.length, b.length);
  return Array.from({ length: n }, (_, i) => {
    const x = a[i - (n - a.length)] ?? 1;
    const y = b[i - (n - b.length)] ?? 1;
    if (x !== y && x !== 1 && y !== 1) throw new Error(`broadcastBatch: [${a}] vs [${b}]`);
    return Math.max(x, y);
  });
}

/** α·op(A)·op(B) for rank ≥ 2 operands with numpy batch broadcasting (op: swap of the last two axes). */
function jsMatmul(a: Float64Array, sa: number[], b: Float64Array, sb: number[], ta = false, tb = false, alpha = 1): Float64Array {
  const [ar, ac] = sa.slice(-2) as [number, number];
  const [br, bc] = sb.slice(-2) as [number, number];
  const [m, k] = ta ? [ac, ar] : [ar, ac];
  const [k2, n] = tb ? [bc, br] : [br, bc];
  if (k !== k2) throw new Error(`jsMatmul: inner dims ${k} vs ${k2}`);
  const batchA = sa.slice(0, -2);
  const batchB = sb.slice(0, -2);
  const batch = broadcastBatch(batchA, batchB);
  const out = new Float64Array(batch.reduce((p, v) => p * v, 1) * m * n);
  const offset = (idx: number[], dims: number[]): number => {
    const own = idx.slice(idx.length - dims.length).map((v, i) => (dims[i] === 1 ? 0 : v));
    return dims.length ? flatIndex(own, dims) : 0;
  };
  let o = 0;
  for (const idx of indices(batch)) {
    const oa = offset(idx, batchA) * ar * ac;
    const ob = offset(idx, batchB) * br * bc;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let acc = 0;
        for (let p = 0; p < k; p++) acc += a[oa + (ta ? p * ac + i : i * ac + p)]! * b[ob + (tb ? j * bc + p : p * bc + j)]!;
        out[o++] = alpha * acc;
      }
    }
  }
  return out;
}

/** softmax(q·kᵀ)·v per batch for q, k, v of shape [b, t, d]. */
function jsAttention(q: Float64Array, k: Float64Array, v: Float64Array, b: number, t: number, d: number): Float64Array {
  const s = jsMatmul(q, [b, t, d], k, [b, t, d], false, true);
  for (let r = 0; r < b * t; r++) {
    let mx = -Infinity;
    for (let j = 0; j < t; j++) mx = Math.max(mx, s[r * t + j]!);
    let z = 0;
    for (let j = 0; j < t; j++) z += (s[r * t + j] = Math.exp(s[r * t + j]! - mx));
    for (let j = 0; j < t; j++) s[r * t + j] = s[r * t + j]! / z;
  }
  return jsMatmul(s, [b, t, t], v, [b, t, d]);
}

/** A FusedMatMul node (com.microsoft) built directly, as the MatMul VJP emits it. */
function fusedMatMul(a: Tensor, b: Tensor, ta: boolean, tb: boolean, alpha: number, outShape: number[]): Tensor {
  const attrs = { transA: G.attr.int(ta ? 1 : 0), transB: G.attr.int(tb ? 1 : 0), alpha: G.attr.float(alpha) };
  return a.graph.addNode('FusedMatMul', [a, b], [{ dtype: 'float32', shape: outShape }], attrs, { domain: 'com.microsoft' })[0]!;
}

const sigmoidJs = (v: number): number => 1 / (1 + Math.exp(-v));

export const F32_CASES: F32Case[] = [
  convCase('conv 3x3 stride 1 pad 1 + bias', convSpec({ n: 2, c: 3, o: 4, spatial: [5, 5], kernel: [3, 3], pads: [1, 1, 1, 1] }), true),
  convCase('conv 2x2 stride 2 asymmetric pads', convSpec({ n: 1, c: 2, o: 3, spatial: [6, 5], kernel: [2, 2], strides: [2, 2], pads: [0, 1, 1, 0] }), true),
  convCase('conv 3x3 stride 2 dilation 2 (rows skipped)', convSpec({ n: 2, c: 2, o: 2, spatial: [8, 8], kernel: [3, 3], strides: [2, 2], dilations: [2, 2] }), false),
  convCase('conv group 2', convSpec({ n: 1, c: 4, o: 6, spatial: [4, 4], kernel: [3, 3], pads: [1, 1, 1, 1], group: 2 }), true),
  convCase('conv 1-D', convSpec({ n: 2, c: 2, o: 3, spatial: [7], kernel: [3], strides: [2] }), true),
  convCase('conv patch embedding (stride = kernel), symbolic batch', convSpec({ n: 2, c: 3, o: 4, spatial: [8, 8], kernel: [4, 4], strides: [4, 4] }), false, 'batch'),
  poolCase('averagePool 2x2 stride 2', convSpec({ n: 2, c: 2, o: 2, spatial: [4, 4], kernel: [2, 2], strides: [2, 2] }), false, false),
  poolCase('averagePool 3x3 pad 1 exclude pad', convSpec({ n: 1, c: 2, o: 2, spatial: [4, 4], kernel: [3, 3], pads: [1, 1, 1, 1] }), false, false),
  poolCase('averagePool 3x3 pad 1 include pad', convSpec({ n: 1, c: 2, o: 2, spatial: [4, 4], kernel: [3, 3], pads: [1, 1, 1, 1] }), true, false),
  poolCase('averagePool ceil mode 2x2 stride 2 on 5x5', convSpec({ n: 1, c: 1, o: 1, spatial: [5, 5], kernel: [2, 2], strides: [2, 2] }), false, true),
  poolCase('averagePool ceil mode 3x3 stride 2 pad 1 include pad on 6x6', convSpec({ n: 1, c: 1, o: 1, spatial: [6, 6], kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] }), true, true),
  {
    ops: ['Erf'],
    name: 'erf (textbook derivative 2/√π·e^(−x²))',
    inputs: [{ name: 'x', shape: [2, 5] }],
    build: ([x]) => G.erf(x!),
    js: () => new Float64Array(0),
    jsGrad: ([x], r) => [x!.map((v, i) => r[i]! * (2 / Math.sqrt(Math.PI)) * Math.exp(-v * v))],
  },
  {
    ops: ['Softplus'],
    name: 'softplus float32 (fused op)',
    inputs: [{ name: 'x', shape: [2, 5] }],
    build: ([x]) => G.softplus(x!),
    js: ([x]) => x!.map((v) => Math.log1p(Math.exp(v))),
  },
  {
    ops: ['LayerNormalization'],
    name: 'layerNorm float32 (fused op)',
    inputs: [
      { name: 'x', shape: [2, 3, 4] },
      { name: 's', shape: [4] },
      { name: 'b', shape: [4] },
    ],
    build: ([x, s, b]) => G.layerNorm(x!, s!, b!, 1e-5),
    js: ([x, s, b]) => jsLayerNorm(x!, s!, b!, 4, 1e-5),
  },
  {
    ops: ['LayerNormalization'],
    name: 'layerNorm float32 (fused op), symbolic batch',
    inputs: [
      { name: 'x', shape: [3, 2, 5], decl: ['b', 2, 5] },
      { name: 's', shape: [5] },
      { name: 'b', shape: [5] },
    ],
    build: ([x, s, b]) => G.layerNorm(x!, s!, b!, 1e-5),
    js: ([x, s, b]) => jsLayerNorm(x!, s!, b!, 5, 1e-5),
  },
  {
    ops: ['Sigmoid', 'Mul'],
    name: 'quickGelu float32 (sigmoid-gate rule)',
    inputs: [{ name: 'x', shape: [3, 4] }],
    build: ([x]) => G.quickGelu(x!),
    js: ([x]) => x!.map((v) => v * sigmoidJs(1.702 * v)),
  },
  {
    ops: ['MatMul', 'FusedMatMul'],
    name: 'matmul batched float32 [2,3,4] x [2,4,5] (FusedMatMul backward)',
    inputs: [
      { name: 'a', shape: [2, 3, 4] },
      { name: 'b', shape: [2, 4, 5] },
    ],
    build: ([a, b]) => G.matmul(a!, b!),
    js: ([a, b]) => jsMatmul(a!, [2, 3, 4], b!, [2, 4, 5]),
  },
  {
    ops: ['MatMul', 'FusedMatMul'],
    name: 'matmul batched broadcast float32 [2,1,3,4] x [3,4,2]',
    inputs: [
      { name: 'a', shape: [2, 1, 3, 4] },
      { name: 'b', shape: [3, 4, 2] },
    ],
    build: ([a, b]) => G.matmul(a!, b!),
    js: ([a, b]) => jsMatmul(a!, [2, 1, 3, 4], b!, [3, 4, 2]),
  },
  {
    ops: ['MatMul', 'Transpose', 'Softmax', 'FusedMatMul'],
    name: 'attention softmax(q·kᵀ)·v float32, symbolic batch',
    inputs: [
      { name: 'q', shape: [2, 3, 4], decl: ['b', 3, 4] },
      { name: 'k', shape: [2, 3, 4], decl: ['b', 3, 4] },
      { name: 'v', shape: [2, 3, 4], decl: ['b', 3, 4] },
    ],
    build: ([q, k, v]) => G.matmul(G.softmax(G.matmul(q!, G.transpose(k!, [0, 2, 1])), -1), v!),
    js: ([q, k, v]) => jsAttention(q!, k!, v!, 2, 3, 4),
  },
  ...([false, true] as const).flatMap((tA) =>
    ([false, true] as const).map(
      (tB): F32Case => ({
        ops: ['FusedMatMul'],
        name: `fusedMatMul transA=${tA} transB=${tB} alpha 0.7, batch broadcast [2,1,·,·] x [3,·,·]`,
        inputs: [
          { name: 'a', shape: tA ? [2, 1, 4, 3] : [2, 1, 3, 4] },
          { name: 'b', shape: tB ? [3, 5, 4] : [3, 4, 5] },
        ],
        build: ([a, b]) => fusedMatMul(a!, b!, tA, tB, 0.7, [2, 3, 3, 5]),
        js: ([a, b]) => jsMatmul(a!, tA ? [2, 1, 4, 3] : [2, 1, 3, 4], b!, tB ? [3, 5, 4] : [3, 4, 5], tA, tB, 0.7),
      }),
    ),
  ),
  {
    ops: ['Cast'],
    name: 'cast float32 -> float64 -> loss',
    inputs: [{ name: 'x', shape: [2, 3] }],
    build: ([x]) => G.cast(G.mul(G.cast(x!, 'float64'), G.cast(x!, 'float64')), 'float32'),
    js: ([x]) => x!.map((v) => v * v),
  },
];

/**
 * Runs a float32 case: ORT gradient of Σ R⊙out (float32) vs the JS float64 reference gradient on the same
 * rounded inputs. Returns the worst relative error per input.
 */
export async function checkF32(c: F32Case, seed = 11): Promise<{ relErr: Record<string, number>; nodes: string[] }> {
  const rng = new Rng(seed);
  const g = new G.Graph({ name: c.name });
  const vals = c.inputs.map((inp) => Float64Array.from(Float32Array.from(randValues(rng, inp.shape.reduce((a, b) => a * b, 1), inp.gen ?? 'normal'))));
  const xs = c.inputs.map((inp) => g.input(inp.name, 'float32', inp.decl ?? inp.shape));
  const out = c.build(xs);
  const outShape = out.shape.map((d, i) => (typeof d === 'number' ? d : c.inputs[0]!.shape[i]!));
  const nOut = outShape.reduce((a, b) => a * b, 1);
  const r = Float64Array.from(Float32Array.from(randValues(rng, nOut)));
  const R = g.constant(Float32Array.from(r), 'float32', outShape);
  const loss = G.reduceSum(G.mul(out, R));
  g.output(loss, 'loss');
  g.output(out, 'out');
  const grads = G.grad(loss, xs);
  grads.forEach((t, i) => g.output(t, `grad_${c.inputs[i]!.name}`));
  const s = await session(g);
  const feeds = Object.fromEntries(c.inputs.map((inp, i) => [inp.name, { dtype: 'float32' as const, data: Float32Array.from(vals[i]!), shape: inp.shape }]));
  const res = await run(s, feeds);
  let truth: Float64Array[];
  if (c.jsGrad) truth = c.jsGrad(vals, r);
  else {
    const lossOf = (v: Float64Array[]): number => c.js(v).reduce((acc, y, i) => acc + y * r[i]!, 0);
    if (c.js(vals).length !== nOut) throw new Error(`${c.name}: JS forward has ${c.js(vals).length} values, graph ${nOut}`);
    const eps = 1e-6;
    truth = vals.map((v, k) =>
      v.map((orig, j) => {
        const copy = vals.map((a) => a.slice());
        copy[k]![j] = orig + eps;
        const lp = lossOf(copy);
        copy[k]![j] = orig - eps;
        const lm = lossOf(copy);
        return (lp - lm) / (2 * eps);
      }),
    );
  }
  const relErrs: Record<string, number> = {};
  // the forward must agree with the JS reference too (else the reference gradient would prove nothing)
  if (!c.jsGrad) relErrs['(forward)'] = relErr(res['out']!.data, c.js(vals));
  c.inputs.forEach((inp, i) => {
    relErrs[inp.name] = relErr(res[`grad_${inp.name}`]!.data, truth[i]!);
  });
  return { relErr: relErrs, nodes: g.nodes.map((n) => n.opType) };
}
